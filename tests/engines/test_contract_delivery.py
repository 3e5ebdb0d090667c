"""Contract: what reaches the node's handler, and in which order (memory and Redis alike).

To show that something was *not* delivered without waiting for a while, each such test
then publishes a marker to a subscribed channel and waits for that marker: events of one
node arrive in the order they were sent, so once the marker is in, the other would be too.
"""

from __future__ import annotations

import asyncio

from rotary.engines.base import ClientInfo, HistoryFilter, PublishOptions
from tests.engines.conftest import EngineUnderTest
from tests.engines.helpers import HISTORY, NO_HISTORY, all_history, publish_many

ANN = ClientInfo(user="ann", client="c-ann", conn_info=b'{"name":"Ann"}')
BOB = ClientInfo(user="bob", client="c-bob", chan_info=b'{"role":"x"}')


async def send_marker(engine: EngineUnderTest) -> None:
    """Publish to a subscribed marker channel and wait until it is delivered."""
    await engine.broker.subscribe("marker")
    await engine.broker.publish("marker", b'"marker"', NO_HISTORY)
    await engine.handler.wait_publications("marker", 1)


async def test_a_publication_reaches_the_handler_with_its_position(
    engine: EngineUnderTest,
) -> None:
    await engine.broker.subscribe("ch")

    position = await engine.broker.publish("ch", b'{"a":1}', HISTORY)
    [(pub, sp)] = await engine.handler.wait_publications("ch", 1)

    assert pub.data == b'{"a":1}'
    assert pub.offset == position.offset == 1
    assert sp == position


async def test_a_publication_without_history_is_delivered_with_offset_0(
    engine: EngineUnderTest,
) -> None:
    await engine.broker.subscribe("ch")

    await engine.broker.publish("ch", b'{"a":1}', NO_HISTORY)
    [(pub, sp)] = await engine.handler.wait_publications("ch", 1)

    assert pub.data == b'{"a":1}'
    assert pub.offset == 0
    assert sp.offset == 0


async def test_the_delta_flag_of_a_publication_reaches_the_handler_and_history(
    engine: EngineUnderTest,
) -> None:
    await engine.broker.subscribe("ch")
    delta = PublishOptions(history_size=5, history_ttl=60.0, use_delta=True)

    await engine.broker.publish("ch", b'{"a":1}', delta)
    await engine.broker.publish("ch", b'{"a":2}', HISTORY)
    delivered = await engine.handler.wait_publications("ch", 2)

    assert [pub.use_delta for pub, _ in delivered] == [True, False]
    kept = await engine.broker.history("ch", HistoryFilter(limit=-1))
    assert [pub.use_delta for pub in kept.publications] == [True, False]


async def test_delivered_publications_keep_their_info_and_tags(engine: EngineUnderTest) -> None:
    await engine.broker.subscribe("ch")
    opts = PublishOptions(history_size=5, history_ttl=60.0, info=ANN, tags={"t": "1"})

    await engine.broker.publish("ch", b"{}", opts)
    [(pub, _)] = await engine.handler.wait_publications("ch", 1)

    assert pub.info == ANN
    assert dict(pub.tags or {}) == {"t": "1"}


async def test_200_concurrent_publishes_are_delivered_in_offset_order(
    engine: EngineUnderTest,
) -> None:
    await engine.broker.subscribe("ch")

    positions = await asyncio.gather(
        *(engine.broker.publish("ch", b'{"n":%d}' % n, HISTORY) for n in range(200))
    )
    delivered = await engine.handler.wait_publications("ch", 200, timeout=5)

    assert [pub.offset for pub, _ in delivered] == list(range(1, 201))
    assert sorted(p.offset for p in positions) == list(range(1, 201))
    offset_of = {b'{"n":%d}' % n: p.offset for n, p in enumerate(positions)}
    assert all(offset_of[pub.data] == pub.offset for pub, _ in delivered)


async def test_a_publication_is_in_history_if_and_only_if_it_is_delivered(
    engine: EngineUnderTest,
) -> None:
    await engine.broker.subscribe("ch")
    opts = PublishOptions(history_size=100, history_ttl=60.0)

    await asyncio.gather(*(engine.broker.publish("ch", b"%d" % n, opts) for n in range(30)))
    delivered = await engine.handler.wait_publications("ch", 30)
    stored = await all_history(engine.broker, "ch")

    assert [(p.offset, p.data) for p, _ in delivered] == [(p.offset, p.data) for p in stored]


async def test_an_unsubscribed_channel_is_not_delivered_but_its_history_is_written(
    engine: EngineUnderTest,
) -> None:
    await engine.broker.publish("quiet", b"{}", HISTORY)
    await send_marker(engine)

    assert engine.handler.publications["quiet"] == []
    assert len(await all_history(engine.broker, "quiet")) == 1


async def test_unsubscribe_stops_delivery(engine: EngineUnderTest) -> None:
    await engine.broker.subscribe("ch")
    await engine.broker.publish("ch", b'"before"', HISTORY)
    await engine.handler.wait_publications("ch", 1)

    await engine.broker.unsubscribe("ch")
    await engine.broker.publish("ch", b'"after"', HISTORY)
    await send_marker(engine)

    assert [pub.data for pub, _ in engine.handler.publications["ch"]] == [b'"before"']


async def test_a_repeated_idempotency_key_is_delivered_once(engine: EngineUnderTest) -> None:
    await engine.broker.subscribe("ch")
    opts = PublishOptions(history_size=10, history_ttl=60.0, idempotency_key="once")

    await engine.broker.publish("ch", b'"first"', opts)
    await engine.broker.publish("ch", b'"second"', opts)
    await engine.broker.publish("ch", b'"third"', HISTORY)
    delivered = await engine.handler.wait_publications("ch", 2)

    assert [pub.data for pub, _ in delivered] == [b'"first"', b'"third"']
    assert [pub.offset for pub, _ in delivered] == [1, 2]


async def test_join_and_leave_reach_the_handler_of_a_subscribed_channel(
    engine: EngineUnderTest,
) -> None:
    await engine.broker.subscribe("ch")

    await engine.broker.publish_join("ch", ANN)
    await engine.broker.publish_join("ch", BOB)
    await engine.broker.publish_leave("ch", ANN)

    assert await engine.handler.wait_joins("ch", 2) == [ANN, BOB]
    assert await engine.handler.wait_leaves("ch", 1) == [ANN]


async def test_join_and_leave_of_an_unsubscribed_channel_are_not_delivered(
    engine: EngineUnderTest,
) -> None:
    await engine.broker.publish_join("quiet", ANN)
    await engine.broker.publish_leave("quiet", ANN)
    await send_marker(engine)

    assert engine.handler.joins["quiet"] == []
    assert engine.handler.leaves["quiet"] == []


async def test_a_control_message_reaches_this_node_s_handler(engine: EngineUnderTest) -> None:
    await engine.broker.publish_control(b"\x00control-1")
    await engine.broker.publish_control(b"control-2")

    assert await engine.handler.wait_controls(2) == [b"\x00control-1", b"control-2"]


async def test_positions_delivered_carry_the_epoch_of_history(engine: EngineUnderTest) -> None:
    await engine.broker.subscribe("ch")
    await publish_many(engine.broker, "ch", 3)

    delivered = await engine.handler.wait_publications("ch", 3)
    top = (await engine.broker.history("ch", HistoryFilter())).position

    assert [sp for _, sp in delivered][-1] == top
    assert {sp.epoch for _, sp in delivered} == {top.epoch}


async def test_concurrent_publishes_to_two_channels_keep_each_channel_in_offset_order(
    engine: EngineUnderTest,
) -> None:
    await engine.broker.subscribe("left")
    await engine.broker.subscribe("right")

    await asyncio.gather(
        *(
            engine.broker.publish(ch, b"%d" % n, HISTORY)
            for n in range(50)
            for ch in ("left", "right")
        )
    )
    left = await engine.handler.wait_publications("left", 50, timeout=5)
    right = await engine.handler.wait_publications("right", 50, timeout=5)

    assert [pub.offset for pub, _ in left] == list(range(1, 51))
    assert [pub.offset for pub, _ in right] == list(range(1, 51))
