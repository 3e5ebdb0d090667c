"""`RedisPresenceManager`: who is in a channel, across every node, kept in Redis."""

from __future__ import annotations

from typing import Any

from redis.exceptions import RedisError

from rotary.clock import Clock
from rotary.config.model import RedisSettings
from rotary.engines.base import ClientInfo, PresenceStats
from rotary.engines.redis._codec import decode_info, decode_user, encode_info
from rotary.engines.redis._pubsub import RedisEngineError
from rotary.engines.redis._scripts import Script
from rotary.engines.redis._shards import Keys, Shard, build_shards, close_shards, shard_index

__all__ = ["RedisPresenceManager"]

#: The keys themselves expire at least this long after the last add, so channels whose
#: every node died vanish even if nobody reads them (entries expire by score before that).
_MIN_KEY_TTL = 60.0


class RedisPresenceManager:
    """A `rotary.engines.base.PresenceManager` over the same shards as `RedisBroker`.

    Per channel, a hash maps client id → info frame and a sorted set maps client id →
    expiry (unix seconds from `clock.now()`, so nodes must keep their clocks in sync).
    Reads drop expired entries first, in the same Lua script, so no reader ever sees one.
    """

    def __init__(self, settings: RedisSettings, *, clock: Clock) -> None:
        self._clock = clock
        self._keys = Keys(settings.prefix)
        self._shards: list[Shard] = build_shards(settings)
        self._closed = False
        self._add = Script("presence_add")
        self._get = Script("presence_get")
        self._remove = Script("presence_remove")

    async def add_presence(
        self, channel: str, client_id: str, info: ClientInfo, *, ttl: float
    ) -> None:
        """Add or refresh one entry; it lives `ttl` seconds unless added again."""
        expires_at = self._clock.now() + ttl
        key_ttl_ms = int(max(ttl, _MIN_KEY_TTL) * 1000)
        args: list[str | bytes | int] = [client_id, encode_info(info), repr(expires_at)]
        await self._eval(self._add, channel, [*args, key_ttl_ms])

    async def remove_presence(self, channel: str, client_id: str, user: str) -> None:
        """Remove one entry; a missing entry is not an error."""
        await self._eval(self._remove, channel, [client_id])

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        """Every live entry, by client id."""
        flat = await self._live(channel)
        return {flat[i].decode(): decode_info(flat[i + 1]) for i in range(0, len(flat), 2)}

    async def presence_stats(self, channel: str) -> PresenceStats:
        """How many live entries and how many distinct users among them."""
        flat = await self._live(channel)
        users = {decode_user(flat[i]) for i in range(1, len(flat), 2)}
        return PresenceStats(num_clients=len(flat) // 2, num_users=len(users))

    async def close(self) -> None:
        """Close every connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await close_shards(self._shards)

    async def _live(self, channel: str) -> list[bytes]:
        result: list[bytes] = await self._eval(self._get, channel, [repr(self._clock.now())])
        return result

    async def _eval(self, script: Script, channel: str, args: list[str | bytes | int]) -> Any:
        shard = self._shards[shard_index(channel, len(self._shards))]
        keys = [self._keys.presence_data(channel), self._keys.presence_expire(channel)]
        try:
            return await script.run(shard.client, keys, args)
        except RedisError as exc:
            raise RedisEngineError(f"{script.name} script failed: {exc}") from exc
