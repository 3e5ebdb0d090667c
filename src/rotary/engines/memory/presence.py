"""`MemoryPresenceManager`: who is in which channel, for a single node, in process memory."""

from __future__ import annotations

from rotary.clock import Clock
from rotary.engines.base import ClientInfo, PresenceStats

__all__ = ["MemoryPresenceManager"]

#: Seconds between sweeps that drop channels whose every entry expired.
_SWEEP_INTERVAL = 60.0


class MemoryPresenceManager:
    """A `rotary.engines.base.PresenceManager` holding entries in memory.

    An entry expires `ttl` seconds (on `clock.monotonic`) after its last `add_presence`;
    expired entries are dropped when their channel is read, and idle channels are swept
    now and then on later calls, so no background task is needed.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._channels: dict[str, dict[str, tuple[float, ClientInfo]]] = {}
        self._next_sweep = clock.monotonic() + _SWEEP_INTERVAL

    async def add_presence(
        self, channel: str, client_id: str, info: ClientInfo, *, ttl: float
    ) -> None:
        """Add or refresh `client_id`'s entry for `ttl` more seconds."""
        now = self._clock.monotonic()
        self._sweep(now)
        self._channels.setdefault(channel, {})[client_id] = (now + ttl, info)

    async def remove_presence(self, channel: str, client_id: str, user: str) -> None:
        """Remove `client_id`'s entry (`user` is not needed in memory)."""
        entries = self._channels.get(channel)
        if entries is None:
            return
        entries.pop(client_id, None)
        if not entries:
            del self._channels[channel]

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        """Every live entry of `channel`, by client id."""
        return {client_id: info for client_id, info in self._live(channel).items()}

    async def presence_stats(self, channel: str) -> PresenceStats:
        """Live clients, and distinct `user` values among them ("" counts as one user)."""
        live = self._live(channel)
        return PresenceStats(
            num_clients=len(live), num_users=len({info.user for info in live.values()})
        )

    async def close(self) -> None:
        """Nothing to release. Idempotent."""

    def _live(self, channel: str) -> dict[str, ClientInfo]:
        """Drop `channel`'s expired entries and return the rest."""
        now = self._clock.monotonic()
        self._sweep(now)
        entries = self._channels.get(channel)
        if entries is None:
            return {}
        _drop_expired(entries, now)
        if not entries:
            del self._channels[channel]
        return {client_id: info for client_id, (_, info) in entries.items()}

    def _sweep(self, now: float) -> None:
        """Drop expired entries of every channel now and then."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_INTERVAL
        for channel in list(self._channels):
            entries = self._channels[channel]
            _drop_expired(entries, now)
            if not entries:
                del self._channels[channel]


def _drop_expired(entries: dict[str, tuple[float, ClientInfo]], now: float) -> None:
    expired = [client_id for client_id, (expires_at, _) in entries.items() if expires_at <= now]
    for client_id in expired:
        del entries[client_id]
