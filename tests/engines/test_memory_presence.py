"""The memory presence manager's expiry on a manual clock."""

from __future__ import annotations

from rotary.engines.base import ClientInfo, PresenceStats
from rotary.engines.memory import MemoryPresenceManager
from rotary.testing import ManualClock

ANN = ClientInfo(user="ann", client="c1")


async def test_an_entry_lives_exactly_its_ttl_without_refresh() -> None:
    clock = ManualClock()
    presence = MemoryPresenceManager(clock)
    await presence.add_presence("room", "c1", ANN, ttl=10.0)

    clock.advance(9.9)
    alive = await presence.presence("room")
    clock.advance(0.1)

    assert alive == {"c1": ANN}
    assert await presence.presence("room") == {}
    assert await presence.presence_stats("room") == PresenceStats(0, 0)


async def test_refreshing_an_entry_keeps_it_alive_past_its_first_ttl() -> None:
    clock = ManualClock()
    presence = MemoryPresenceManager(clock)

    for _ in range(5):
        await presence.add_presence("room", "c1", ANN, ttl=10.0)
        clock.advance(8.0)

    assert await presence.presence("room") == {"c1": ANN}


async def test_expired_entries_of_idle_channels_are_swept_on_a_later_call() -> None:
    clock = ManualClock()
    presence = MemoryPresenceManager(clock)
    await presence.add_presence("idle", "c1", ANN, ttl=10.0)
    clock.advance(3600.0)

    await presence.add_presence("busy", "c2", ANN, ttl=10.0)

    assert "idle" not in presence._channels
