"""Contract: presence entries, their stats and their expiry (memory and Redis alike)."""

from __future__ import annotations

from rotary.engines.base import ClientInfo, PresenceStats
from tests.engines.conftest import EngineUnderTest

ANN_1 = ClientInfo(user="ann", client="c1", conn_info=b'{"device":"phone"}')
ANN_2 = ClientInfo(user="ann", client="c2", chan_info=b'{"seat":2}')
BOB = ClientInfo(user="bob", client="c3")
ANONYMOUS_1 = ClientInfo(user="", client="a1")
ANONYMOUS_2 = ClientInfo(user="", client="a2")


async def add_all(engine: EngineUnderTest, channel: str, *infos: ClientInfo) -> None:
    for info in infos:
        await engine.presence.add_presence(channel, info.client, info, ttl=60.0)


async def test_presence_lists_every_client_with_its_info(engine: EngineUnderTest) -> None:
    await add_all(engine, "room", ANN_1, ANN_2, BOB)

    assert await engine.presence.presence("room") == {"c1": ANN_1, "c2": ANN_2, "c3": BOB}


async def test_presence_stats_count_three_clients_of_two_users(engine: EngineUnderTest) -> None:
    await add_all(engine, "room", ANN_1, ANN_2, BOB)

    assert await engine.presence.presence_stats("room") == PresenceStats(num_clients=3, num_users=2)


async def test_anonymous_clients_count_as_one_user(engine: EngineUnderTest) -> None:
    await add_all(engine, "room", ANONYMOUS_1, ANONYMOUS_2, BOB)

    assert await engine.presence.presence_stats("room") == PresenceStats(num_clients=3, num_users=2)


async def test_removing_clients_updates_presence_and_stats(engine: EngineUnderTest) -> None:
    await add_all(engine, "room", ANN_1, ANN_2, BOB)

    await engine.presence.remove_presence("room", "c1", "ann")
    assert await engine.presence.presence("room") == {"c2": ANN_2, "c3": BOB}
    assert await engine.presence.presence_stats("room") == PresenceStats(2, 2)

    await engine.presence.remove_presence("room", "c2", "ann")
    assert await engine.presence.presence_stats("room") == PresenceStats(1, 1)


async def test_removing_a_missing_entry_is_not_an_error(engine: EngineUnderTest) -> None:
    await engine.presence.remove_presence("room", "nobody", "ghost")

    assert await engine.presence.presence("room") == {}
    assert await engine.presence.presence_stats("room") == PresenceStats(0, 0)


async def test_adding_the_same_client_again_replaces_its_entry(engine: EngineUnderTest) -> None:
    updated = ClientInfo(user="ann", client="c1", conn_info=b'{"device":"tablet"}')

    await add_all(engine, "room", ANN_1)
    await add_all(engine, "room", updated)

    assert await engine.presence.presence("room") == {"c1": updated}
    assert await engine.presence.presence_stats("room") == PresenceStats(1, 1)


async def test_presence_is_per_channel(engine: EngineUnderTest) -> None:
    await add_all(engine, "room-a", ANN_1)
    await add_all(engine, "room-b", BOB)

    assert await engine.presence.presence("room-a") == {"c1": ANN_1}
    assert await engine.presence.presence_stats("room-b") == PresenceStats(1, 1)


async def test_an_entry_not_refreshed_within_its_ttl_disappears(engine: EngineUnderTest) -> None:
    # Redis keeps real time and may round a TTL to whole seconds, so this polls in small
    # steps (instant on the memory engine's manual clock) instead of asserting a moment.
    await engine.presence.add_presence("room", "c1", ANN_1, ttl=1.0)
    await engine.presence.add_presence("room", "c3", BOB, ttl=60.0)
    assert "c1" in await engine.presence.presence("room")

    for _ in range(50):
        await engine.elapse(0.1)
        if "c1" not in await engine.presence.presence("room"):
            break

    assert await engine.presence.presence("room") == {"c3": BOB}
    assert await engine.presence.presence_stats("room") == PresenceStats(1, 1)
