"""The map brokers (memory and Redis, one contract): keyed state, offsets, key modes, TTL
removals, stream and paging. Key TTLs follow the broker's clock, a manual one here."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

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


@pytest.fixture(params=["memory", "redis"])
async def maps(
    request: pytest.FixtureRequest, clock: ManualClock, changes: list[Change]
) -> AsyncIterator[Any]:
    def record(ch: str, pub: MapPublication, sp: StreamPosition) -> None:
        changes.append((ch, pub, sp))

    if request.param == "memory":
        broker: Any = MemoryMapBroker(clock)
        broker.start(record, lambda ch: None)
        yield broker
        return
    from rotary.config.model import MapRedisSettings, RedisSettings
    from rotary.engines.redis.maps import RedisMapBroker
    from tests.engines.conftest import REDIS_HOST, REDIS_PORT, _delete_keys, _redis_client

    client = await _redis_client()
    prefix = f"rotary-test-{uuid.uuid4().hex[:8]}"
    settings = RedisSettings(addresses=(f"{REDIS_HOST}:{REDIS_PORT}",), prefix=prefix)
    broker = RedisMapBroker(MapRedisSettings(redis=settings), clock=clock)
    broker.start(record, {"m": RECOVERABLE}.get)
    await broker.wait_ready()
    try:
        yield broker
    finally:
        await broker.close()
        await _delete_keys(client, prefix)
        await client.aclose()


async def _delivered(changes: list[Change], count: int) -> list[Change]:
    """`changes` once it holds `count` (Redis delivers through PUB/SUB, a moment later)."""
    async with asyncio.timeout(5):
        while len(changes) < count:  # noqa: ASYNC110 - the changes arrive from PUB/SUB
            await asyncio.sleep(0.01)
    return changes


async def test_each_write_gets_the_next_offset_and_is_handed_to_the_handler(
    maps: Any, changes: list[Change]
) -> None:
    first = await maps.publish("m", "a", b"1", PERSISTENT, PLAIN)
    second = await maps.publish("m", "a", b"2", PERSISTENT, PLAIN)

    assert (first.position.offset, second.position.offset) == (1, 2)
    assert first.position.epoch == second.position.epoch != ""
    assert [(c, p.key, p.data, p.offset) for c, p, _ in await _delivered(changes, 2)] == [
        ("m", "a", b"1", 1),
        ("m", "a", b"2", 2),
    ]
    state = await maps.read_state("m", PERSISTENT)
    assert [(p.key, p.data, p.offset) for p in state.entries] == [("a", b"2", 2)]


async def test_key_modes_suppress_with_centrifugos_reasons(maps: Any) -> None:
    missing = await maps.publish(
        "m", "a", b"1", PERSISTENT, MapPublishOptions(key_mode="if_exists")
    )
    await maps.publish("m", "a", b"1", PERSISTENT, PLAIN)
    taken = await maps.publish("m", "a", b"2", PERSISTENT, MapPublishOptions(key_mode="if_new"))

    assert (missing.suppressed, missing.suppress_reason) == (True, "key_not_found")
    assert (taken.suppressed, taken.suppress_reason) == (True, "key_exists")
    assert taken.position.offset == 1


async def test_a_repeated_idempotency_key_changes_nothing(maps: Any) -> None:
    opts = MapPublishOptions(idempotency_key="once")
    await maps.publish("m", "a", b"1", PERSISTENT, opts)
    again = await maps.publish("m", "a", b"2", PERSISTENT, opts)

    assert (again.suppressed, again.suppress_reason, again.position.offset) == (
        True,
        "idempotency",
        1,
    )


async def test_remove_is_a_change_and_removing_a_missing_key_is_suppressed(
    maps: Any, changes: list[Change]
) -> None:
    await maps.publish("m", "a", b"1", PERSISTENT, PLAIN)
    removed = await maps.remove("m", "a", PERSISTENT)
    again = await maps.remove("m", "a", PERSISTENT)

    assert removed.position.offset == 2 and (await _delivered(changes, 2))[-1][1].removed
    assert (again.suppressed, again.suppress_reason) == (True, "key_not_found")
    assert await maps.stats("m", PERSISTENT) == 0


async def test_a_key_past_its_ttl_is_removed_as_a_change(
    maps: Any, clock: ManualClock, changes: list[Change]
) -> None:
    await maps.publish("m", "a", b"1", RECOVERABLE, PLAIN)
    clock.advance(5)
    await maps.publish("m", "b", b"1", RECOVERABLE, PLAIN)
    clock.advance(6)
    await maps.expire()

    assert [(p.key, p.removed, p.offset) for _, p, _ in await _delivered(changes, 3)] == [
        ("a", False, 1),
        ("b", False, 2),
        ("a", True, 3),
    ]
    assert [p.key for p in (await maps.read_state("m", RECOVERABLE)).entries] == ["b"]


async def test_a_write_restarts_the_keys_ttl(maps: Any, clock: ManualClock) -> None:
    await maps.publish("m", "a", b"1", RECOVERABLE, PLAIN)
    clock.advance(8)
    await maps.publish("m", "a", b"2", RECOVERABLE, PLAIN)
    clock.advance(8)
    await maps.expire()

    assert await maps.stats("m", RECOVERABLE) == 1


async def test_state_pages_in_key_order_with_a_cursor(maps: Any) -> None:
    for key in ("c", "a", "d", "b", "e"):
        await maps.publish("m", key, b"1", PERSISTENT, PLAIN)

    first = await maps.read_state("m", PERSISTENT, limit=2)
    second = await maps.read_state("m", PERSISTENT, cursor=first.cursor, limit=2)
    last = await maps.read_state("m", PERSISTENT, cursor=second.cursor, limit=2)

    pages = [[p.key for p in r.entries] for r in (first, second, last)]
    assert pages == [["a", "b"], ["c", "d"], ["e"]]
    assert last.cursor == ""


async def test_stream_returns_changes_after_a_position(maps: Any) -> None:
    for value in (b"1", b"2", b"3"):
        await maps.publish("m", "a", value, PERSISTENT, PLAIN)

    epoch = (await maps.read_state("m", PERSISTENT, limit=0)).position.epoch
    result = await maps.read_stream("m", PERSISTENT, since=StreamPosition(1, epoch))

    assert [p.data for p in result.publications] == [b"2", b"3"]
    assert result.position == StreamPosition(3, epoch)


async def test_a_position_that_left_the_stream_is_unrecoverable(maps: Any) -> None:
    for value in (b"1", b"2", b"3", b"4", b"5"):  # the stream keeps 3
        await maps.publish("m", "a", value, RECOVERABLE, PLAIN)

    epoch = (await maps.read_state("m", RECOVERABLE, limit=0)).position.epoch
    with pytest.raises(UnrecoverablePosition):
        await maps.read_stream("m", RECOVERABLE, since=StreamPosition(1, epoch))
    kept = await maps.read_stream("m", RECOVERABLE, since=StreamPosition(2, epoch))
    assert [p.offset for p in kept.publications] == [3, 4, 5]


async def test_another_epoch_is_unrecoverable(maps: Any) -> None:
    await maps.publish("m", "a", b"1", PERSISTENT, PLAIN)

    with pytest.raises(UnrecoverablePosition):
        await maps.read_stream("m", PERSISTENT, since=StreamPosition(1, "other"))


async def test_ephemeral_channels_keep_state_but_no_stream(maps: Any) -> None:
    await maps.publish("m", "a", b"1", EPHEMERAL, PLAIN)

    assert (await maps.read_stream("m", EPHEMERAL, since=None)).publications == []
    assert [p.key for p in (await maps.read_state("m", EPHEMERAL)).entries] == ["a"]


async def test_clear_starts_a_new_epoch(maps: Any) -> None:
    before = await maps.publish("m", "a", b"1", PERSISTENT, PLAIN)
    await maps.clear("m")
    after = await maps.publish("m", "a", b"1", PERSISTENT, PLAIN)

    assert after.position.offset == 1 and after.position.epoch != before.position.epoch


async def test_entries_keep_their_info_and_tags(maps: Any) -> None:
    from rotary.engines.base import ClientInfo

    info = ClientInfo("u", "c", b'{"a":1}', None)
    opts = MapPublishOptions(info=info, tags={"t": "1"})
    await maps.publish("m", "k", b'{"x":1}', PERSISTENT, opts)

    [entry] = (await maps.read_state("m", PERSISTENT)).entries
    assert (entry.data, entry.info, dict(entry.tags or {})) == (b'{"x":1}', info, {"t": "1"})


async def test_a_delta_write_hands_along_the_keys_previous_data_and_stores_none_of_it(
    maps: Any, changes: list[Change]
) -> None:
    delta = MapPublishOptions(use_delta=True)
    await maps.publish("m", "a", b'"first"', PERSISTENT, delta)  # a new key: no base
    await maps.publish("m", "a", b'"second"', PERSISTENT, delta)
    await maps.publish("m", "a", b'"third"', PERSISTENT, PLAIN)  # delta not asked
    await maps.remove("m", "a", PERSISTENT)

    delivered = await _delivered(changes, 4)

    assert [p.prev for _, p, _ in delivered] == [None, b'"first"', None, None]
    stream = await maps.read_stream("m", PERSISTENT, since=None)
    assert all(p.prev is None for p in stream.publications)


def _v(version: int, epoch: str = "") -> MapPublishOptions:
    return MapPublishOptions(version=version, version_epoch=epoch)


async def test_a_write_whose_version_is_not_newer_than_the_keys_is_suppressed_with_version(
    maps: Any,
) -> None:
    await maps.publish("m", "a", b"1", PERSISTENT, _v(5))
    same = await maps.publish("m", "a", b"2", PERSISTENT, _v(5))
    older = await maps.publish("m", "a", b"3", PERSISTENT, _v(4))
    newer = await maps.publish("m", "a", b"4", PERSISTENT, _v(6))

    assert [(r.suppressed, r.suppress_reason) for r in (same, older)] == [(True, "version")] * 2
    assert same.position.offset == 1 and not newer.suppressed
    state = await maps.read_state("m", PERSISTENT)
    assert [(p.key, p.data) for p in state.entries] == [("a", b"4")]


async def test_another_version_epoch_restarts_the_count_and_a_write_without_version_keeps_it(
    maps: Any,
) -> None:
    await maps.publish("m", "a", b"1", PERSISTENT, _v(5, "x"))
    other_epoch = await maps.publish("m", "a", b"2", PERSISTENT, _v(1, "y"))
    plain = await maps.publish("m", "a", b"3", PERSISTENT, PLAIN)
    stale = await maps.publish("m", "a", b"4", PERSISTENT, _v(1, "y"))
    no_epoch_named = await maps.publish("m", "a", b"5", PERSISTENT, _v(1))

    assert not other_epoch.suppressed and not plain.suppressed
    assert stale.suppress_reason == no_epoch_named.suppress_reason == "version"


async def test_a_removed_key_forgets_its_version_and_other_keys_have_their_own(maps: Any) -> None:
    await maps.publish("m", "a", b"1", PERSISTENT, _v(5))
    other_key = await maps.publish("m", "b", b"1", PERSISTENT, _v(1))
    await maps.remove("m", "a", PERSISTENT)
    rewritten = await maps.publish("m", "a", b"2", PERSISTENT, _v(1))

    assert not other_key.suppressed and not rewritten.suppressed


async def test_the_version_is_checked_before_the_key_mode(maps: Any) -> None:
    await maps.publish("m", "a", b"1", PERSISTENT, _v(5))
    both = MapPublishOptions(version=3, key_mode="if_new")

    assert (await maps.publish("m", "a", b"2", PERSISTENT, both)).suppress_reason == "version"


async def test_a_key_that_expired_forgets_its_version(maps: Any, clock: ManualClock) -> None:
    await maps.publish("m", "a", b"1", RECOVERABLE, _v(5))
    clock.advance(11)
    await maps.expire()

    assert not (await maps.publish("m", "a", b"2", RECOVERABLE, _v(1))).suppressed


async def test_a_cleared_channel_forgets_the_versions_of_its_keys(maps: Any) -> None:
    await maps.publish("m", "a", b"1", PERSISTENT, _v(5))
    await maps.clear("m")

    assert not (await maps.publish("m", "a", b"2", PERSISTENT, _v(1))).suppressed
