"""The memory broker's own behaviour: TTLs on a manual clock, epochs, life cycle."""

from __future__ import annotations

import itertools
import string

import pytest

from rotary.engines.base import HistoryFilter, PublishOptions, StreamPosition, UnrecoverablePosition
from rotary.engines.memory import IDEMPOTENCY_TTL, MemoryBroker, MemoryEngine, random_epoch
from rotary.testing import ManualClock
from tests.engines.helpers import ALL, all_history, publish_many
from tests.engines.recording import RecordingHandler

SHORT = PublishOptions(history_size=10, history_ttl=10.0, history_meta_ttl=100.0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def broker(clock: ManualClock) -> MemoryBroker:
    counter = itertools.count(1)
    broker = MemoryBroker(clock, epoch_factory=lambda: f"e{next(counter)}")
    await broker.start(RecordingHandler())
    return broker


def test_the_default_epoch_is_four_random_letters() -> None:
    epochs = {random_epoch() for _ in range(20)}

    assert all(len(e) == 4 and set(e) <= set(string.ascii_letters) for e in epochs)
    assert len(epochs) > 1


async def test_publications_expire_together_once_history_ttl_passes_without_a_publish(
    broker: MemoryBroker, clock: ManualClock
) -> None:
    await publish_many(broker, "h", 2, SHORT)
    clock.advance(9.0)
    await broker.publish("h", b"{}", SHORT)
    clock.advance(9.0)
    kept = await all_history(broker, "h")
    clock.advance(1.0)
    expired = await broker.history("h", ALL)

    assert [p.offset for p in kept] == [1, 2, 3]
    assert expired.publications == []
    assert expired.position == StreamPosition(3, "e1")


async def test_offsets_continue_after_the_publications_expired(
    broker: MemoryBroker, clock: ManualClock
) -> None:
    await publish_many(broker, "h", 2, SHORT)
    clock.advance(11.0)

    assert await broker.publish("h", b"{}", SHORT) == StreamPosition(3, "e1")
    assert [p.offset for p in await all_history(broker, "h")] == [3]


async def test_an_idle_stream_is_forgotten_after_the_meta_ttl_and_gets_a_new_epoch(
    broker: MemoryBroker, clock: ManualClock
) -> None:
    old = (await publish_many(broker, "h", 3, SHORT))[-1]
    clock.advance(100.0)

    fresh = await broker.history("h", HistoryFilter(), meta_ttl=100.0)

    assert old == StreamPosition(3, "e1")
    assert fresh.position == StreamPosition(0, "e2")
    with pytest.raises(UnrecoverablePosition):
        await broker.history("h", HistoryFilter(since=old, limit=-1))


async def test_reading_history_keeps_the_stream_meta_alive(
    broker: MemoryBroker, clock: ManualClock
) -> None:
    await broker.publish("h", b"{}", SHORT)
    for _ in range(3):
        clock.advance(60.0)
        await broker.history("h", HistoryFilter(), meta_ttl=100.0)

    assert (await broker.history("h", HistoryFilter())).position == StreamPosition(1, "e1")


async def test_without_any_meta_ttl_a_stream_is_never_forgotten(clock: ManualClock) -> None:
    broker = MemoryBroker(clock, epoch_factory=lambda: "only")
    opts = PublishOptions(history_size=1, history_ttl=1.0)
    await broker.publish("h", b"{}", opts)
    clock.advance(1e9)

    assert (await broker.history("h", HistoryFilter())).position == StreamPosition(1, "only")


async def test_the_broker_default_meta_ttl_applies_when_a_call_passes_0(
    clock: ManualClock,
) -> None:
    epochs = iter(["first", "second"])
    broker = MemoryBroker(clock, epoch_factory=lambda: next(epochs), history_meta_ttl=50.0)
    await broker.publish("h", b"{}", PublishOptions(history_size=1, history_ttl=1.0))
    clock.advance(50.0)

    assert (await broker.history("h", HistoryFilter())).position == StreamPosition(0, "second")


async def test_an_idempotency_key_is_forgotten_after_its_ttl(
    broker: MemoryBroker, clock: ManualClock
) -> None:
    opts = PublishOptions(history_size=10, history_ttl=1000.0, idempotency_key="k")
    first = await broker.publish("h", b"{}", opts)
    clock.advance(IDEMPOTENCY_TTL - 1)
    repeated = await broker.publish("h", b"{}", opts)
    clock.advance(1.0)
    later = await broker.publish("h", b"{}", opts)

    assert repeated == first
    assert later.offset == 2


async def test_an_idempotency_key_without_history_returns_offset_0_again(
    broker: MemoryBroker,
) -> None:
    opts = PublishOptions(idempotency_key="k")

    assert await broker.publish("plain", b"{}", opts) == StreamPosition()
    assert await broker.publish("plain", b"{}", opts) == StreamPosition()


async def test_publications_carry_the_wall_clock_time_in_milliseconds(
    broker: MemoryBroker, clock: ManualClock
) -> None:
    await broker.publish("h", b"{}", SHORT)

    [pub] = await all_history(broker, "h")

    assert pub.time == int(clock.now() * 1000)


async def test_nothing_is_delivered_after_close(clock: ManualClock) -> None:
    handler = RecordingHandler()
    broker = MemoryBroker(clock)
    await broker.start(handler)
    await broker.subscribe("ch")

    await broker.close()
    await broker.close()
    await broker.publish("ch", b"{}", SHORT)
    await broker.publish_control(b"x")

    assert handler.publications["ch"] == []
    assert handler.controls == []


async def test_publishing_before_start_writes_history_without_delivering(
    clock: ManualClock,
) -> None:
    broker = MemoryBroker(clock)
    await broker.subscribe("ch")

    position = await broker.publish("ch", b"{}", SHORT)

    assert position.offset == 1
    assert len(await all_history(broker, "ch")) == 1


async def test_delivery_happens_before_publish_returns(broker: MemoryBroker) -> None:
    handler = RecordingHandler()
    await broker.start(handler)
    await broker.subscribe("ch")

    await broker.publish("ch", b"{}", SHORT)

    assert len(handler.publications["ch"]) == 1


async def test_forgotten_idle_streams_are_swept_on_a_later_call(
    broker: MemoryBroker, clock: ManualClock
) -> None:
    await publish_many(broker, "idle", 1, SHORT)
    clock.advance(3600.0)
    await broker.publish("other", b"{}", SHORT)

    assert "idle" not in broker._streams


async def test_reverse_since_the_first_offset_returns_nothing(broker: MemoryBroker) -> None:
    positions = await publish_many(broker, "h", 3, SHORT)

    result = await broker.history("h", HistoryFilter(since=positions[0], limit=-1, reverse=True))

    assert result.publications == []


async def test_the_engine_holds_a_broker_and_a_presence_manager(clock: ManualClock) -> None:
    engine = MemoryEngine(clock, epoch_factory=lambda: "abcd")

    position = await engine.broker.publish("h", b"{}", SHORT)
    await engine.close()

    assert position == StreamPosition(1, "abcd")
    assert await engine.presence.presence("h") == {}
