"""`RedisRevocationStore`: revocation records shared by every node through Redis.

Keys (``P`` = ``settings.prefix``; all on shard 0, in one Redis Cluster hash slot)
    ``P.revocation.{rev}.tokens``   hash: jti → expiry (unix seconds).
    ``P.revocation.{rev}.users``    hash: ``["<user>","<channel>"]`` (compact JSON) →
                                    ``"<issued_before>:<expiry>"``.
    ``P.revocation.{rev}.expiry``   sorted set: ``t:<jti>`` / ``u:<user key>`` → expiry;
                                    expired records are purged by every write (a bounded
                                    number) and by every load. The three keys also carry a
                                    key expiry at the last record's expiry.
    PUB/SUB ``P.revocation``        one JSON message per write:
                                    ``{"k":"t"|"u","f":<jti or user key>,"b":<issued_before>,
                                    "e":<expiry>}`` (the record as stored after merging).

Writes run ``lua/revocation_write.lua``, which merges, stores and publishes in one atomic step.
Each node keeps a local mirror (`RevocationTable`), so checks never touch the network: it is
loaded at `start` after the notification channel is subscribed (a write racing the load is
seen through one or the other; merging is order-independent), updated by every
notification, and loaded again in full each time the PUB/SUB connection comes back, since
notifications sent while it was down are lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from rotary.clock import Clock
from rotary.config.model import RedisSettings
from rotary.engines.redis._pubsub import RedisEngineError, ShardSubscriber
from rotary.engines.redis._scripts import Script
from rotary.engines.redis._shards import Shard, build_shards, close_shards
from rotary.engines.revocation import (
    RevocationEvent,
    RevocationListener,
    RevocationTable,
    TokenIdentity,
    call_listeners,
    record_expiry,
)

__all__ = ["RedisRevocationStore"]

logger = logging.getLogger("rotary.engines.redis")

#: Expired records one write purges at most (keeps each script short).
_PURGE_PER_WRITE = 100


class RedisRevocationStore:
    """A `rotary.engines.revocation.RevocationStore` shared through Redis.

    Every node sharing `settings` (addresses and prefix) sees every record. Writes raise
    `RedisEngineError` when Redis cannot be reached; checks never fail (they read the
    mirror). `start` raises `RedisEngineError` when Redis does not answer within
    ``io_timeout``.
    """

    def __init__(self, settings: RedisSettings, *, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        base = f"{settings.prefix}.revocation"
        self._keys = [f"{base}.{{rev}}.tokens", f"{base}.{{rev}}.users", f"{base}.{{rev}}.expiry"]
        self._channel = base
        self._shards: list[Shard] = build_shards(settings)
        self._table = RevocationTable()
        self._listeners: list[RevocationListener] = []
        self._subscriber: ShardSubscriber | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._write = Script("revocation_write")
        self._load = Script("revocation_load")
        self._reloads = 0
        self._closed = False

    @property
    def reloads(self) -> int:
        """How many times the whole set was loaded (1 after start, +1 per PUB/SUB return)."""
        return self._reloads

    @property
    def channel(self) -> str:
        """The PUB/SUB channel carrying notifications."""
        return self._channel

    async def start(self) -> None:
        """Subscribe the notification channel, then load every record.

        Call `close` even when this raises: the PUB/SUB task keeps reconnecting until then.
        """
        shard = self._shards[0]
        self._subscriber = ShardSubscriber(
            name=f"rotary-revocation-{id(self):x}",
            new_connection=shard.new_pubsub_connection,
            dispatch=self._dispatch,
            on_resubscribed=self._resubscribed,
            timeout=self._settings.io_timeout,
        )
        self._subscriber.start()
        await self._subscriber.subscribe([self._channel])
        await self._reload()

    async def close(self) -> None:
        """Stop listening, cancel a reload in progress, close connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._subscriber is not None:
            await self._subscriber.close()
        await close_shards(self._shards)

    def add_listener(self, fn: RevocationListener) -> None:
        self._listeners.append(fn)

    async def revoke_token(self, jti: str, *, expire_at: int) -> None:
        now = self._clock.now()
        expiry = record_expiry(expire_at, now)
        if expiry is None:
            return
        stored, _ = await self._run_write(now, "t", jti, 0, expiry)
        self._emit(self._table.merge_token(jti, stored, now))

    async def invalidate_user_tokens(
        self, user: str, *, issued_before: int, expire_at: int, channel: str = ""
    ) -> None:
        now = self._clock.now()
        expiry = record_expiry(expire_at, now)
        if expiry is None:
            return
        stored, before = await self._run_write(
            now, "u", _user_key(user, channel), issued_before, expiry
        )
        event = self._table.merge_user(
            user, channel, issued_before=before, expire_at=stored, now=now
        )
        self._emit(event)

    def is_revoked(self, token: TokenIdentity, *, now: float) -> str | None:
        table = self._table
        return table.check(token, now) if table.holding else None

    async def _run_write(
        self, now: float, kind: str, field: str, before: int, expiry: int
    ) -> tuple[int, int]:
        args: list[str | bytes | int] = [
            repr(now),
            kind,
            field,
            before,
            expiry,
            self._channel,
            _PURGE_PER_WRITE,
        ]
        try:
            reply = await self._write.run(self._shards[0].client, self._keys, args)
        except RedisError as exc:
            raise RedisEngineError(f"revocation write failed: {exc}") from exc
        return int(reply[0]), int(reply[1])

    async def _reload(self) -> None:
        """Load every record into the mirror; events for the ones this node did not know."""
        now = self._clock.now()
        try:
            async with asyncio.timeout(self._settings.io_timeout):
                reply = await self._load.run(self._shards[0].client, self._keys, [repr(now)])
        except (RedisError, TimeoutError) as exc:
            raise RedisEngineError(f"loading revocations failed: {exc!r}") from exc
        self._reloads += 1
        tokens, users = reply
        for jti, expiry in _pairs(tokens):
            self._emit(self._table.merge_token(jti, int(expiry), now))
        for key, value in _pairs(users):
            try:
                self._apply_user(key, value, now)
            except (ValueError, TypeError) as exc:
                logger.warning("ignoring a malformed revocation record %r: %r", key, exc)

    def _apply_user(self, key: str, value: str, now: float) -> None:
        user, channel = _parse_user_key(key)
        before, _, expiry = value.partition(":")
        self._emit(
            self._table.merge_user(
                user, channel, issued_before=int(before), expire_at=int(expiry), now=now
            )
        )

    def _dispatch(self, channel: bytes, payload: bytes) -> None:
        try:
            message: dict[str, Any] = json.loads(payload)
            now = self._clock.now()
            if message["k"] == "t":
                self._emit(self._table.merge_token(str(message["f"]), int(message["e"]), now))
            else:
                self._apply_user(str(message["f"]), f"{int(message['b'])}:{int(message['e'])}", now)
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring a malformed revocation notification: %r", exc)

    def _resubscribed(self) -> None:
        """The notification channel is back: reload, since notifications were lost."""
        if self._closed:
            return
        task = asyncio.create_task(self._reload_logged(), name="rotary-revocation-reload")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reload_logged(self) -> None:
        try:
            await self._reload()
        except RedisEngineError as exc:
            # The connection dropped again; its return triggers the next reload.
            logger.warning("revocation reload failed: %s", exc)

    def _emit(self, event: RevocationEvent | None) -> None:
        if event is not None:
            call_listeners(self._listeners, event)


def _user_key(user: str, channel: str) -> str:
    return json.dumps([user, channel], separators=(",", ":"), ensure_ascii=False)


def _parse_user_key(key: str) -> tuple[str, str]:
    user, channel = json.loads(key)
    return str(user), str(channel)


def _pairs(flat: list[bytes]) -> list[tuple[str, str]]:
    """``[k1, v1, k2, v2, …]`` as decoded pairs."""
    text = [item.decode() for item in flat]
    return list(zip(text[0::2], text[1::2], strict=True))


if TYPE_CHECKING:
    from rotary.engines.revocation import RevocationStore

    def _conforms(store: RedisRevocationStore) -> RevocationStore:
        """Fails type checking if the class drifts from its protocol."""
        return store
