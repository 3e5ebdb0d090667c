"""Login throttling per address: a fixed number of failures per window, bounded memory."""

from __future__ import annotations

from rotary.admin.throttle import LoginThrottle


def test_an_address_is_held_back_after_the_limit_of_failures_until_the_window_passes() -> None:
    throttle = LoginThrottle(limit=3, window=60)
    for t in (0, 1, 2):
        assert throttle.retry_after("10.0.0.1", t) == 0
        throttle.failed("10.0.0.1", t)
    assert throttle.retry_after("10.0.0.1", 3) == 57
    assert throttle.retry_after("10.0.0.2", 3) == 0
    assert throttle.retry_after("10.0.0.1", 60.5) == 0


def test_a_success_clears_the_failures_of_its_address() -> None:
    throttle = LoginThrottle(limit=2, window=60)
    throttle.failed("a", 0)
    throttle.succeeded("a")
    throttle.failed("a", 1)
    assert throttle.retry_after("a", 2) == 0


def test_only_the_most_recent_addresses_are_remembered() -> None:
    throttle = LoginThrottle(limit=1, window=60, max_addresses=2)
    for address in ("a", "b", "c"):
        throttle.failed(address, 0)
    assert throttle.retry_after("a", 1) == 0
    assert throttle.retry_after("b", 1) > 0
    assert throttle.retry_after("c", 1) > 0
