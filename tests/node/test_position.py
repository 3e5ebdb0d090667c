"""The periodic stream-position check (docs/protocol.md "History and recovery",
``client_channel_position_check_delay``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rotary.channels.options import ChannelOptions, ChannelSettings, Namespace
from rotary.config.model import ClientSettings
from rotary.engines.base import HistoryFilter, HistoryResult, Publication, StreamPosition
from rotary.node.position import group_by_channel, in_step
from rotary.node.subscription import Subscription
from tests.node.conftest import MakeHarness
from tests.node.fakes import Conn, Harness

DELAY = 5.0
RECOVER = ChannelOptions(
    allow_subscribe_for_client=True, history_size=10, history_ttl=300.0, force_recovery=True
)
SHORT_META = ChannelOptions(
    allow_subscribe_for_client=True,
    history_size=10,
    history_ttl=300.0,
    history_meta_ttl=1.0,
    force_recovery=True,
)
CHANNELS = ChannelSettings(
    without_namespace=ChannelOptions(allow_subscribe_for_client=True),
    namespaces=(Namespace("rr", RECOVER), Namespace("meta", SHORT_META)),
)
INSUFFICIENT = {"code": 2500, "reason": "insufficient state"}


async def _h(make_harness: MakeHarness, delay: float = DELAY) -> Harness:
    settings = ClientSettings(
        ping_interval=0, presence_update_interval=0, channel_position_check_delay=delay
    )
    return await make_harness(settings=settings, channels=CHANNELS)


async def _subscribed(h: Harness, channel: str, user: str = "1") -> Conn:
    conn = await h.connect(user=user)
    reply = await conn.request({"id": 2, "subscribe": {"channel": channel}})
    assert reply["subscribe"]["positioned"] is True, reply
    conn.messages()
    return conn


def _unsubscribes(conn: Conn) -> list[dict[str, Any]]:
    return [m["push"] for m in conn.messages() if "unsubscribe" in m.get("push", {})]


def _held_back(h: Harness) -> list[Callable[[], None]]:
    """Make the hub miss publications from now on; return the deliveries it missed."""
    held: list[Callable[[], None]] = []
    real = h.node.hub.broadcast_publication

    def hold(channel: str, pub: Publication, sp: StreamPosition) -> None:
        held.append(lambda: real(channel, pub, sp))

    h.node.hub.broadcast_publication = hold  # type: ignore[method-assign]
    return held


class _CountingBroker:
    """Counts stream-top reads per channel, delegating to the real broker."""

    def __init__(self, h: Harness) -> None:
        self.reads: dict[str, int] = {}
        self._real = h.node.broker.history

    async def history(
        self, channel: str, flt: HistoryFilter, *, meta_ttl: float = 0.0
    ) -> HistoryResult:
        if flt.limit == 0 and flt.since is None:
            self.reads[channel] = self.reads.get(channel, 0) + 1
        return await self._real(channel, flt, meta_ttl=meta_ttl)


async def test_lost_publication_unsubscribes_with_2500_after_two_failed_checks(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    conn = await _subscribed(h, "rr:a")
    _held_back(h)
    await h.node.api_publish("rr:a", b'{"n":1}')
    await h.scheduler.advance(DELAY)
    assert _unsubscribes(conn) == []
    await h.scheduler.advance(DELAY)
    assert _unsubscribes(conn) == [{"channel": "rr:a", "unsubscribe": INSUFFICIENT}]
    assert "rr:a" not in conn.session.subs


async def test_publication_late_by_one_check_does_not_end_the_subscription(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    conn = await _subscribed(h, "rr:a")
    held = _held_back(h)
    await h.node.api_publish("rr:a", b'{"n":1}')
    await h.scheduler.advance(DELAY)
    held.pop()()
    for _ in range(3):
        await h.scheduler.advance(DELAY)
    assert _unsubscribes(conn) == []
    assert conn.session.subs["rr:a"].offset == 1


async def test_subscriber_in_step_is_left_alone_across_many_checks(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    conn = await _subscribed(h, "rr:a")
    for n in range(4):
        await h.node.api_publish("rr:a", b'{"n":%d}' % n)
        await h.scheduler.advance(DELAY)
    pushes = [m["push"] for m in conn.messages() if "push" in m]
    assert [p["pub"]["offset"] for p in pushes] == [1, 2, 3, 4]
    assert conn.closed is None


async def test_lost_stream_disconnects_server_side_subscriber_with_3010(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1", channels=("meta:a",))
    # The stream's meta TTL (1 s) runs out between checks: each read finds a new epoch.
    await h.scheduler.advance(DELAY)
    assert conn.closed is None
    await h.scheduler.advance(DELAY)
    assert conn.closed is not None and conn.closed.code == 3010


async def test_stream_top_is_read_once_per_channel_however_many_subscribers(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = await _h(make_harness)
    for user in ("1", "2", "3"):
        await _subscribed(h, "rr:a", user)
    await _subscribed(h, "rr:b", "4")
    counting = _CountingBroker(h)
    monkeypatch.setattr(h.node.broker, "history", counting.history)
    await h.scheduler.advance(DELAY)
    assert counting.reads == {"rr:a": 1, "rr:b": 1}


async def test_plain_subscriptions_are_not_checked(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    await conn.request({"id": 2, "subscribe": {"channel": "plain"}})
    counting = _CountingBroker(h)
    monkeypatch.setattr(h.node.broker, "history", counting.history)
    await h.scheduler.advance(DELAY)
    assert counting.reads == {}


async def test_zero_delay_turns_the_check_off(make_harness: MakeHarness) -> None:
    h = await _h(make_harness, delay=0)
    conn = await _subscribed(h, "rr:a")
    _held_back(h)
    await h.node.api_publish("rr:a", b'{"n":1}')
    await h.scheduler.advance(100)
    assert _unsubscribes(conn) == []


async def test_broker_error_skips_the_round(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = await _h(make_harness)
    conn = await _subscribed(h, "rr:a")
    _held_back(h)
    await h.node.api_publish("rr:a", b'{"n":1}')

    async def down(*args: object, **kwargs: object) -> HistoryResult:
        raise ConnectionError("broker away")

    monkeypatch.setattr(h.node.broker, "history", down)
    await h.scheduler.advance(3 * DELAY)
    assert _unsubscribes(conn) == []


def test_position_in_step_needs_same_epoch_and_offset_at_least_top() -> None:
    sub = Subscription(channel="c", info=None, epoch="e", offset=3)  # type: ignore[arg-type]
    assert in_step(sub, StreamPosition(3, "e"))
    assert in_step(sub, StreamPosition(2, "e"))
    assert not in_step(sub, StreamPosition(4, "e"))
    assert not in_step(sub, StreamPosition(3, "f"))


async def test_grouping_skips_ended_and_unpositioned_subscriptions(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    a = await _subscribed(h, "rr:a", "1")
    b = await _subscribed(h, "rr:a", "2")
    await b.request({"id": 3, "subscribe": {"channel": "plain"}})
    a.session.subs["rr:a"].ended = True
    groups = group_by_channel(h.node.connected_sessions())
    assert {ch: [s.id for s, _ in m] for ch, m in groups.items()} == {"rr:a": [b.session.id]}
