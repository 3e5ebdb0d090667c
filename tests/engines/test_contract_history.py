"""Contract: history streams, offsets, epochs and filters (memory and Redis alike)."""

from __future__ import annotations

import pytest

from rotary.engines.base import (
    ClientInfo,
    HistoryFilter,
    Publication,
    PublishOptions,
    StreamPosition,
    UnrecoverablePosition,
)
from tests.engines.conftest import EngineUnderTest
from tests.engines.helpers import ALL, HISTORY, NO_HISTORY, all_history, publish_many


def offsets(pubs: list[Publication]) -> list[int]:
    return [p.offset for p in pubs]


async def test_offsets_start_at_1_and_grow_by_1_with_a_stable_epoch(
    engine: EngineUnderTest,
) -> None:
    positions = await publish_many(engine.broker, "h", 5)

    assert [p.offset for p in positions] == [1, 2, 3, 4, 5]
    assert len({p.epoch for p in positions}) == 1
    assert positions[0].epoch != ""


async def test_history_returns_the_publications_and_the_position_of_the_last(
    engine: EngineUnderTest,
) -> None:
    positions = await publish_many(engine.broker, "h", 3)

    result = await engine.broker.history("h", ALL)

    assert result.position == positions[-1]
    assert [p.data for p in result.publications] == [b'{"n":1}', b'{"n":2}', b'{"n":3}']
    assert offsets(result.publications) == [1, 2, 3]


async def test_history_of_an_unknown_channel_creates_an_epoch_at_offset_0(
    engine: EngineUnderTest,
) -> None:
    first = await engine.broker.history("fresh", HistoryFilter())
    again = await engine.broker.history("fresh", HistoryFilter())
    published = await engine.broker.publish("fresh", b"{}", HISTORY)

    assert first.position.offset == 0
    assert first.position.epoch != ""
    assert again.position == first.position
    assert published == StreamPosition(1, first.position.epoch)


async def test_history_keeps_only_the_newest_history_size_publications(
    engine: EngineUnderTest,
) -> None:
    opts = PublishOptions(history_size=3, history_ttl=60.0)
    await publish_many(engine.broker, "h", 5, opts)

    result = await engine.broker.history("h", ALL)

    assert offsets(result.publications) == [3, 4, 5]
    assert result.position.offset == 5


async def test_limit_0_returns_only_the_position(engine: EngineUnderTest) -> None:
    positions = await publish_many(engine.broker, "h", 3)

    result = await engine.broker.history("h", HistoryFilter(limit=0))

    assert result.publications == []
    assert result.position == positions[-1]


async def test_limit_minus_1_returns_every_publication(engine: EngineUnderTest) -> None:
    await publish_many(engine.broker, "h", 7)

    assert offsets(await all_history(engine.broker, "h")) == [1, 2, 3, 4, 5, 6, 7]


async def test_limit_n_returns_the_oldest_n(engine: EngineUnderTest) -> None:
    await publish_many(engine.broker, "h", 5)

    result = await engine.broker.history("h", HistoryFilter(limit=2))

    assert offsets(result.publications) == [1, 2]


async def test_reverse_with_limit_returns_the_newest_first(engine: EngineUnderTest) -> None:
    await publish_many(engine.broker, "h", 5)

    result = await engine.broker.history("h", HistoryFilter(limit=2, reverse=True))
    everything = await engine.broker.history("h", HistoryFilter(limit=-1, reverse=True))

    assert offsets(result.publications) == [5, 4]
    assert offsets(everything.publications) == [5, 4, 3, 2, 1]


async def test_since_returns_the_publications_after_that_offset(engine: EngineUnderTest) -> None:
    positions = await publish_many(engine.broker, "h", 5)
    since = positions[1]

    every = await engine.broker.history("h", HistoryFilter(since=since, limit=-1))
    some = await engine.broker.history("h", HistoryFilter(since=since, limit=2))

    assert offsets(every.publications) == [3, 4, 5]
    assert offsets(some.publications) == [3, 4]
    assert every.position == positions[-1]


async def test_since_the_top_returns_nothing(engine: EngineUnderTest) -> None:
    positions = await publish_many(engine.broker, "h", 3)

    result = await engine.broker.history("h", HistoryFilter(since=positions[-1], limit=-1))

    assert result.publications == []
    assert result.position == positions[-1]


async def test_since_with_reverse_returns_the_publications_before_it_newest_first(
    engine: EngineUnderTest,
) -> None:
    # Centrifugo pages backwards this way: `since` is the oldest offset already seen.
    positions = await publish_many(engine.broker, "h", 5)

    result = await engine.broker.history(
        "h", HistoryFilter(since=positions[3], limit=2, reverse=True)
    )

    assert offsets(result.publications) == [3, 2]


async def test_since_with_another_epoch_raises_unrecoverable_position(
    engine: EngineUnderTest,
) -> None:
    positions = await publish_many(engine.broker, "h", 3)
    stale = StreamPosition(1, positions[0].epoch + "x")

    with pytest.raises(UnrecoverablePosition):
        await engine.broker.history("h", HistoryFilter(since=stale, limit=-1))


async def test_since_without_an_epoch_is_read_in_the_current_epoch(
    engine: EngineUnderTest,
) -> None:
    await publish_many(engine.broker, "h", 3)

    result = await engine.broker.history("h", HistoryFilter(since=StreamPosition(1, ""), limit=-1))

    assert offsets(result.publications) == [2, 3]


async def test_remove_history_forgets_publications_but_keeps_the_position(
    engine: EngineUnderTest,
) -> None:
    positions = await publish_many(engine.broker, "h", 3)

    await engine.broker.remove_history("h")
    result = await engine.broker.history("h", ALL)
    after = await engine.broker.publish("h", b"{}", HISTORY)

    assert result.publications == []
    assert result.position == positions[-1]
    assert after == StreamPosition(4, positions[-1].epoch)


async def test_publish_without_history_returns_offset_0_and_stores_nothing(
    engine: EngineUnderTest,
) -> None:
    position = await engine.broker.publish("plain", b"{}", NO_HISTORY)

    assert position.offset == 0
    assert await all_history(engine.broker, "plain") == []


async def test_skip_history_keeps_a_publication_out_of_history(engine: EngineUnderTest) -> None:
    await publish_many(engine.broker, "h", 2)

    skipped = await engine.broker.publish(
        "h", b"{}", PublishOptions(history_size=10, history_ttl=60.0, skip_history=True)
    )

    assert skipped.offset == 0
    assert offsets(await all_history(engine.broker, "h")) == [1, 2]


async def test_history_size_without_ttl_keeps_no_history(engine: EngineUnderTest) -> None:
    position = await engine.broker.publish("h", b"{}", PublishOptions(history_size=10))

    assert position.offset == 0


async def test_publications_keep_their_info_and_tags_in_history(engine: EngineUnderTest) -> None:
    info = ClientInfo(user="u1", client="c1", conn_info=b'{"name":"Ann"}', chan_info=b"[1]")
    opts = PublishOptions(history_size=10, history_ttl=60.0, info=info, tags={"k": "v"})
    await engine.broker.publish("h", b'{"x":1}', opts)

    [pub] = await all_history(engine.broker, "h")

    assert pub.info == info
    assert dict(pub.tags or {}) == {"k": "v"}
    assert pub.data == b'{"x":1}'


async def test_a_repeated_idempotency_key_publishes_once_and_returns_the_first_result(
    engine: EngineUnderTest,
) -> None:
    opts = PublishOptions(history_size=10, history_ttl=60.0, idempotency_key="k1")

    first = await engine.broker.publish("h", b'{"a":1}', opts)
    second = await engine.broker.publish("h", b'{"a":2}', opts)

    assert second == first
    assert [p.data for p in await all_history(engine.broker, "h")] == [b'{"a":1}']


async def test_an_idempotency_key_is_per_channel(engine: EngineUnderTest) -> None:
    opts = PublishOptions(history_size=10, history_ttl=60.0, idempotency_key="k1")

    await engine.broker.publish("a", b"{}", opts)
    other = await engine.broker.publish("b", b"{}", opts)

    assert other.offset == 1
    assert len(await all_history(engine.broker, "b")) == 1


async def test_since_offset_0_of_the_current_epoch_returns_everything(
    engine: EngineUnderTest,
) -> None:
    positions = await publish_many(engine.broker, "h", 3)
    since = StreamPosition(0, positions[0].epoch)

    result = await engine.broker.history("h", HistoryFilter(since=since, limit=-1))

    assert offsets(result.publications) == [1, 2, 3]


async def test_history_expires_after_its_ttl_without_a_publish_but_the_position_stays(
    engine: EngineUnderTest,
) -> None:
    # Redis expires keys in real time, so this polls in small steps (instant on the memory
    # engine's manual clock). The meta TTL is memory-only (test_memory_broker.py): reading
    # the position to poll would itself keep the meta alive.
    opts = PublishOptions(history_size=10, history_ttl=1.0, history_meta_ttl=3600.0)
    positions = await publish_many(engine.broker, "h", 2, opts)

    for _ in range(50):
        await engine.elapse(0.1)
        if not await all_history(engine.broker, "h"):
            break

    result = await engine.broker.history("h", ALL)
    assert result.publications == []
    assert result.position == positions[-1]
    assert await engine.broker.publish("h", b"{}", opts) == StreamPosition(3, positions[0].epoch)
