"""Token buckets and the per-connection limiter, on a hand-moved clock."""

from __future__ import annotations

from rotary.config.model import ClientSettings
from rotary.node.ratelimit import CommandLimiter, TokenBucket, limiter_for


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_gives_its_capacity_at_once_then_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, capacity=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.25) is False  # half a token
    assert bucket.take(0.5) is True
    assert [bucket.take(10.0) for _ in range(4)] == [True, True, True, False]


def test_refused_takes_do_not_eat_into_the_refill() -> None:
    bucket = TokenBucket(rate=1.0, capacity=1, now=0.0)
    assert bucket.take(0.0)
    for t in (0.1, 0.2, 0.3, 0.9):
        assert not bucket.take(t)
    assert bucket.take(1.0)


def test_limiter_refuses_commands_past_the_burst_until_time_passes() -> None:
    clock = _Clock()
    limiter = CommandLimiter(
        time=clock, command_rate=8, command_burst=5, error_limit=0, error_interval=60
    )
    assert [limiter.allow_command() for _ in range(6)] == [True] * 5 + [False]
    clock.now += 0.125  # one token's worth at 8 per second
    assert limiter.allow_command() and not limiter.allow_command()
    assert all(limiter.allow_error() for _ in range(1000))  # no error budget set


def test_limiter_error_budget_allows_the_limit_per_interval() -> None:
    clock = _Clock()
    limiter = CommandLimiter(
        time=clock, command_rate=0, command_burst=0, error_limit=3, error_interval=60
    )
    assert [limiter.allow_error() for _ in range(4)] == [True, True, True, False]
    clock.now += 20
    assert limiter.allow_error() and not limiter.allow_error()
    assert all(limiter.allow_command() for _ in range(1000))  # no command rate set


def test_no_limiter_at_all_when_both_limits_are_off() -> None:
    assert limiter_for(ClientSettings(), _Clock()) is None
    on = ClientSettings(command_rate_limit=5)
    assert limiter_for(on, _Clock()) is not None


def test_burst_defaults_to_the_rate() -> None:
    limiter = limiter_for(ClientSettings(command_rate_limit=4), _Clock())
    assert limiter is not None
    assert [limiter.allow_command() for _ in range(5)] == [True] * 4 + [False]
