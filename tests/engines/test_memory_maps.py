"""The memory map broker: keyed state, offsets, key modes, TTL removals, stream and paging."""

from __future__ import annotations

import pytest

from rotary.channels.maps import MapSettings
from rotary.engines.base import StreamPosition, UnrecoverablePosition
from rotary.engines.maps import MapPublication, MapPublishOptions
from rotary.engines.memory.maps import MemoryMapBroker
from rotary.testing import ManualClock

RECOVERABLE = MapSettings("recoverable", key_ttl=10.0, stream_size=3, stream_ttl=60.0)
PERSISTENT = MapSettings("persistent", stream_size=100, stream_ttl=60.0)
EPHEMERAL = MapSettings("ephemeral", key_ttl=10.0)
PLAIN = MapPublishOptions()

Change = tuple[str, MapPublication, StreamPosition]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def changes() -> list[Change]:
    return []


@pytest.fixture
def maps(clock: ManualClock, changes: list[Change]) -> MemoryMapBroker:
    broker = MemoryMapBroker(clock, epoch_factory=lambda: "ep")
    broker.start(lambda ch, pub, sp: changes.append((ch, pub, sp)))
    return broker


async def test_each_write_gets_the_next_offset_and_is_handed_to_the_handler(
    maps: MemoryMapBroker, changes: list[Change]
) -> None:
    first = await maps.publish("m", "a", b"1", PERSISTENT, PLAIN)
    second = await maps.publish("m", "a", b"2", PERSISTENT, PLAIN)

    assert (first.position, second.position) == (StreamPosition(1, "ep"), StreamPosition(2, "ep"))
    assert [(c, p.key, p.data, p.offset) for c, p, _ in changes] == [
        ("m", "a", b"1", 1),
        ("m", "a", b"2", 2),
    ]
    state = await maps.read_state("m", PERSISTENT)
    assert [(p.key, p.data, p.offset) for p in state.entries] == [("a", b"2", 2)]


async def test_key_modes_suppress_with_centrifugos_reasons(maps: MemoryMapBroker) -> None:
    missing = await maps.publish(
        "m", "a", b"1", PERSISTENT, MapPublishOptions(key_mode="if_exists")
    )
    await maps.publish("m", "a", b"1", PERSISTENT, PLAIN)
    taken = await maps.publish("m", "a", b"2", PERSISTENT, MapPublishOptions(key_mode="if_new"))

    assert (missing.suppressed, missing.suppress_reason) == (True, "key_not_found")
    assert (taken.suppressed, taken.suppress_reason) == (True, "key_exists")
    assert taken.position.offset == 1


async def test_a_repeated_idempotency_key_changes_nothing(maps: MemoryMapBroker) -> None:
    opts = MapPublishOptions(idempotency_key="once")
    await maps.publish("m", "a", b"1", PERSISTENT, opts)
    again = await maps.publish("m", "a", b"2", PERSISTENT, opts)

    assert (again.suppressed, again.suppress_reason, again.position.offset) == (
        True,
        "idempotency",
        1,
    )


async def test_remove_is_a_change_and_removing_a_missing_key_is_suppressed(
    maps: MemoryMapBroker, changes: list[Change]
) -> None:
    await maps.publish("m", "a", b"1", PERSISTENT, PLAIN)
    removed = await maps.remove("m", "a", PERSISTENT)
    again = await maps.remove("m", "a", PERSISTENT)

    assert removed.position.offset == 2 and changes[-1][1].removed
    assert (again.suppressed, again.suppress_reason) == (True, "key_not_found")
    assert await maps.stats("m", PERSISTENT) == 0


async def test_a_key_past_its_ttl_is_removed_as_a_change(
    maps: MemoryMapBroker, clock: ManualClock, changes: list[Change]
) -> None:
    await maps.publish("m", "a", b"1", RECOVERABLE, PLAIN)
    clock.advance(5)
    await maps.publish("m", "b", b"1", RECOVERABLE, PLAIN)
    clock.advance(6)
    await maps.expire()

    assert [(p.key, p.removed, p.offset) for _, p, _ in changes] == [
        ("a", False, 1),
        ("b", False, 2),
        ("a", True, 3),
    ]
    assert [p.key for p in (await maps.read_state("m", RECOVERABLE)).entries] == ["b"]


async def test_a_write_restarts_the_keys_ttl(maps: MemoryMapBroker, clock: ManualClock) -> None:
    await maps.publish("m", "a", b"1", RECOVERABLE, PLAIN)
    clock.advance(8)
    await maps.publish("m", "a", b"2", RECOVERABLE, PLAIN)
    clock.advance(8)
    await maps.expire()

    assert await maps.stats("m", RECOVERABLE) == 1


async def test_state_pages_in_key_order_with_a_cursor(maps: MemoryMapBroker) -> None:
    for key in ("c", "a", "d", "b", "e"):
        await maps.publish("m", key, b"1", PERSISTENT, PLAIN)

    first = await maps.read_state("m", PERSISTENT, limit=2)
    second = await maps.read_state("m", PERSISTENT, cursor=first.cursor, limit=2)
    last = await maps.read_state("m", PERSISTENT, cursor=second.cursor, limit=2)

    pages = [[p.key for p in r.entries] for r in (first, second, last)]
    assert pages == [["a", "b"], ["c", "d"], ["e"]]
    assert last.cursor == ""


async def test_stream_returns_changes_after_a_position(maps: MemoryMapBroker) -> None:
    for value in (b"1", b"2", b"3"):
        await maps.publish("m", "a", value, PERSISTENT, PLAIN)

    result = await maps.read_stream("m", PERSISTENT, since=StreamPosition(1, "ep"))

    assert [p.data for p in result.publications] == [b"2", b"3"]
    assert result.position == StreamPosition(3, "ep")


async def test_a_position_that_left_the_stream_is_unrecoverable(maps: MemoryMapBroker) -> None:
    for value in (b"1", b"2", b"3", b"4", b"5"):  # the stream keeps 3
        await maps.publish("m", "a", value, RECOVERABLE, PLAIN)

    with pytest.raises(UnrecoverablePosition):
        await maps.read_stream("m", RECOVERABLE, since=StreamPosition(1, "ep"))
    kept = await maps.read_stream("m", RECOVERABLE, since=StreamPosition(2, "ep"))
    assert [p.offset for p in kept.publications] == [3, 4, 5]


async def test_another_epoch_is_unrecoverable(maps: MemoryMapBroker) -> None:
    await maps.publish("m", "a", b"1", PERSISTENT, PLAIN)

    with pytest.raises(UnrecoverablePosition):
        await maps.read_stream("m", PERSISTENT, since=StreamPosition(1, "other"))


async def test_ephemeral_channels_keep_state_but_no_stream(maps: MemoryMapBroker) -> None:
    await maps.publish("m", "a", b"1", EPHEMERAL, PLAIN)

    assert (await maps.read_stream("m", EPHEMERAL, since=None)).publications == []
    assert [p.key for p in (await maps.read_state("m", EPHEMERAL)).entries] == ["a"]


async def test_clear_starts_a_new_epoch(clock: ManualClock) -> None:
    epochs = iter(["one", "two"])
    maps = MemoryMapBroker(clock, epoch_factory=lambda: next(epochs))
    await maps.publish("m", "a", b"1", PERSISTENT, PLAIN)
    await maps.clear("m")
    after = await maps.publish("m", "a", b"1", PERSISTENT, PLAIN)

    assert after.position == StreamPosition(1, "two")
