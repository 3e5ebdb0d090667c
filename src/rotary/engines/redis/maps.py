"""The Redis map broker: map channels' state and change streams shared by every node.

docs/map-subscriptions.md "Where the state lives". It has its own Redis settings
(`MapRedisSettings`, ``map_broker.redis``), apart from the engine's. Keys of a channel ``C``
(``P`` = the prefix), on the channel's shard, with ``{C}`` written as the channel in braces:

``P.map.meta.{C}``      hash: ``e`` epoch, ``s`` top offset.
``P.map.state.{C}``     hash: key → ``<offset>:<body>``.
``P.map.keys.{C}``      sorted set of the keys (all scores 0): state pages in key order.
``P.map.stream.{C}``    stream of changes, id ``<offset>-0``, fields ``k`` key, ``r`` removed
                        (``0``/``1``), ``b`` body; capped at stream_size, PEXPIRE stream_ttl.
``P.map.expire.{C}``    sorted set: key → expiry (unix ms).
``P.map.result.{C}.<k>`` the first result of idempotency key ``k``.
``P.map.expiring``      per shard: the channels that have expiring keys.

On Redis Cluster a Lua script may only touch keys of one hash slot, and the expiry index is
written by the same script as the channel's keys. As Centrifugo's Redis map broker does, the
channels are then spread over `CLUSTER_PARTITIONS` partitions, and the hash tag is the
channel's partition ``p`` (jump hash of the channel): ``P.map.meta.{p}.C`` and so on, with one
index ``P.map.expiring.{p}`` per partition, in the partition's slot.
PUB/SUB ``P.map.changes`` per shard: every change, ``<offset>|<epoch>|<0|1><channel
                        and key, each as <length>:<bytes>><body>``; a write published
                        with delta allowed over an existing key is marked ``2`` and
                        carries the key's previous body, ``<length>:<body>``, before
                        its own.

A body is ``<length of data>:<data><JSON of time, tags, info>``. Every change is made by
``lua/map_write.lua`` in one step (state, stream, expiry, PUBLISH). Each node reads the
changes of every shard on one PUB/SUB connection per shard and hands them to its handler;
a change that arrives while that connection is being replaced is not replayed (map
subscribers catch up only when they resubscribe). With ``skip_pub_sub`` nothing is published
or read: the state and the stream are kept, and live subscribers hear no changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson

from rotary.channels.maps import MapSettings
from rotary.clock import Clock
from rotary.config.model import MapRedisSettings
from rotary.engines.base import ClientInfo, StreamPosition, UnrecoverablePosition
from rotary.engines.maps import (
    MapChangeHandler,
    MapPublication,
    MapPublishOptions,
    MapStateResult,
    MapStreamResult,
    MapUpdateResult,
    SettingsOf,
)
from rotary.engines.memory.broker import random_epoch
from rotary.engines.redis._scripts import Script
from rotary.engines.redis._shards import (
    Shard,
    build_shards,
    close_shards,
    feed_client,
    shard_index,
)

__all__ = ["CLUSTER_PARTITIONS", "RedisMapBroker"]

_log = logging.getLogger("rotary.engines.redis.maps")
_WRITE = Script("map_write")
#: Partitions of map channels on Redis Cluster (each one hash tag, one expiry index).
CLUSTER_PARTITIONS = 16
#: Used when the settings say 0, as Centrifugo does.
_DEFAULT_CLEANUP_INTERVAL = 1.0
_DEFAULT_BATCH = 100
_DEFAULT_IDEMPOTENCY_TTL = 300.0
#: Pause before a lost PUB/SUB connection is replaced.
_RECONNECT_DELAY = 0.5


def _framed(*parts: bytes) -> bytes:
    return b"".join(b"%d:%s" % (len(p), p) for p in parts)


def _unframe(data: bytes, at: int) -> tuple[bytes, int]:
    sep = data.index(b":", at)
    size = int(data[at:sep])
    return data[sep + 1 : sep + 1 + size], sep + 1 + size


def _body(data: bytes, time: int, opts: MapPublishOptions | None) -> bytes:
    meta: dict[str, Any] = {"t": time}
    if opts is not None and opts.tags:
        meta["g"] = dict(opts.tags)
    if opts is not None and opts.info is not None:
        info = opts.info
        meta["i"] = [info.user, info.client, _text(info.conn_info), _text(info.chan_info)]
    return _framed(data) + orjson.dumps(meta)


def _text(payload: bytes | None) -> str | None:
    return None if payload is None else payload.decode()


def _publication(key: str, offset: int, body: bytes, *, removed: bool = False) -> MapPublication:
    data, end = _unframe(body, 0)
    meta = orjson.loads(body[end:]) if end < len(body) else {}
    info = None
    if "i" in meta:
        user, client, conn, chan = meta["i"]
        info = ClientInfo(user, client, _bytes(conn), _bytes(chan))
    return MapPublication(
        key, data, offset, removed=removed, info=info, tags=meta.get("g"), time=meta.get("t", 0)
    )


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


class RedisMapBroker:
    """`rotary.engines.maps.MapBroker` in Redis (the shards of `settings.redis`)."""

    def __init__(self, settings: MapRedisSettings, *, clock: Clock) -> None:
        redis = settings.redis
        self._prefix = redis.prefix
        self._clock = clock
        self._shards: list[Shard] = build_shards(redis)
        self._cluster = bool(redis.cluster_addresses)
        self._feed = feed_client(redis) if self._cluster else None
        #: Seconds between `expire` calls (negative: never), ``cleanup_interval``.
        self.expire_interval = settings.cleanup_interval or _DEFAULT_CLEANUP_INTERVAL
        self._batch = settings.cleanup_batch_size or _DEFAULT_BATCH
        ttl = settings.idempotent_result_ttl or _DEFAULT_IDEMPOTENCY_TTL
        self._idempotency_ms = int(ttl * 1000)
        self._skip_pub_sub = settings.skip_pub_sub
        self._changes = f"{self._prefix}.map.changes"
        self._handler: MapChangeHandler | None = None
        self._settings_of: SettingsOf | None = None
        self._readers: list[asyncio.Task[None]] = []
        self._subscribed: list[asyncio.Event] = []

    # ------------------------------------------------------------------ life cycle

    def start(self, handler: MapChangeHandler, settings_of: SettingsOf) -> None:
        self._handler, self._settings_of = handler, settings_of
        if self._skip_pub_sub:
            return
        for shard in self._shards:
            ready = asyncio.Event()
            self._subscribed.append(ready)
            self._readers.append(asyncio.get_running_loop().create_task(self._read(shard, ready)))

    async def wait_ready(self) -> None:
        """Return once every shard's change feed is subscribed."""
        for ready in self._subscribed:
            await ready.wait()

    async def close(self) -> None:
        self._handler = None
        for task in self._readers:
            task.cancel()
        for task in self._readers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._readers.clear()
        await close_shards(self._shards)
        if self._feed is not None:
            await self._feed.aclose()

    # ------------------------------------------------------------------ writes

    async def publish(
        self, channel: str, key: str, data: bytes, settings: MapSettings, opts: MapPublishOptions
    ) -> MapUpdateResult:
        body = _body(data, self._millis(), opts)
        flags = ("p", opts.key_mode, "1" if opts.refresh_ttl_on_suppress else "0")
        return await self._write(
            channel, key, body, settings, flags, opts.idempotency_key, opts=opts
        )

    async def remove(
        self,
        channel: str,
        key: str,
        settings: MapSettings,
        *,
        idempotency_key: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> MapUpdateResult:
        body = _body(b"", self._millis(), MapPublishOptions(tags=tags) if tags else None)
        return await self._write(channel, key, body, settings, ("r", "", "0"), idempotency_key)

    async def _write(
        self,
        channel: str,
        key: str,
        body: bytes,
        settings: MapSettings,
        flags: tuple[str, str, str],
        idempotency_key: str,
        *,
        opts: MapPublishOptions | None = None,
    ) -> MapUpdateResult:
        op, mode, refresh = flags
        use_delta = opts is not None and opts.use_delta
        version = (opts.version, opts.version_epoch) if opts is not None else (0, "")
        keys = [self._key(kind, channel) for kind in ("meta", "state", "keys", "stream", "expire")]
        keys += [f"{self._key('result', channel)}.{idempotency_key}", self._expiring(channel)]
        args: list[str | bytes | int] = [
            op, key, body, mode, refresh,
            int(settings.key_ttl * 1000), settings.stream_size, int(settings.stream_ttl * 1000),
            int(settings.meta_ttl * 1000), random_epoch(),
            self._idempotency_ms if idempotency_key else 0, self._millis(),
            "" if self._skip_pub_sub else self._changes,
            _framed(channel.encode(), key.encode()), channel,
            "1" if use_delta else "0", *version,
        ]  # fmt: skip
        offset, epoch, reason = await _WRITE.run(self._client(channel), keys, args)
        position = StreamPosition(int(offset), _str(epoch))
        reason = _str(reason)
        return MapUpdateResult(position, suppressed=bool(reason), suppress_reason=reason)

    # ------------------------------------------------------------------ reads

    async def read_state(
        self,
        channel: str,
        settings: MapSettings,
        *,
        cursor: str = "",
        limit: int = -1,
        key: str = "",
    ) -> MapStateResult:
        position = await self._position(channel)  # first: later changes come from the stream
        client = self._client(channel)
        if key:
            keys = [key]
        elif limit == 0:
            return MapStateResult([], position)
        else:
            start = f"({cursor}" if cursor else "-"
            count = -1 if limit < 0 else limit + 1
            raw = await client.zrangebylex(self._key("keys", channel), start, "+", 0, count)
            keys = [_str(k) for k in raw]
        more = limit > 0 and len(keys) > limit
        keys = keys[:limit] if more else keys
        values = await client.hmget(self._key("state", channel), keys) if keys else []
        entries = [_entry(k, v) for k, v in zip(keys, values, strict=True) if v is not None]
        return MapStateResult(entries, position, keys[-1] if more else "")

    async def read_stream(
        self, channel: str, settings: MapSettings, *, since: StreamPosition | None, limit: int = -1
    ) -> MapStreamResult:
        position = await self._position(channel)
        if since is not None and (since.epoch != position.epoch or since.offset > position.offset):
            raise UnrecoverablePosition(channel)
        if limit == 0 or position.offset == (since.offset if since else 0):
            return MapStreamResult([], position)
        client, stream = self._client(channel), self._key("stream", channel)
        after = since.offset if since is not None else 0
        first = await client.xrange(stream, "-", "+", count=1)
        oldest = int(_str(first[0][0]).split("-")[0]) if first else position.offset + 1
        if since is not None and after + 1 < oldest:
            raise UnrecoverablePosition(channel)
        count = None if limit < 0 else limit
        rows = await client.xrange(stream, f"{after + 1}-0", "+", count=count)
        return MapStreamResult([_change(entry_id, fields) for entry_id, fields in rows], position)

    async def stats(self, channel: str, settings: MapSettings) -> int:
        return int(await self._client(channel).hlen(self._key("state", channel)))

    async def clear(self, channel: str) -> None:
        kinds = ("meta", "state", "keys", "stream", "expire")
        await self._client(channel).delete(*(self._key(kind, channel) for kind in kinds))

    async def expire(self) -> None:
        """Remove up to ``cleanup_batch_size`` due keys of each channel with expiring keys."""
        indexes = [f"{self._prefix}.map.expiring"]
        if self._cluster:
            indexes = [self._partition_key("expiring", p) for p in range(CLUSTER_PARTITIONS)]
        for shard in self._shards:
            for index in indexes:
                for raw in await shard.client.zrange(index, 0, -1):
                    await self._expire_channel(shard, index, _str(raw))

    async def _expire_channel(self, shard: Shard, index: str, channel: str) -> None:
        settings = self._settings_of(channel) if self._settings_of is not None else None
        expire_key = self._key("expire", channel)
        now = self._millis()
        due = await shard.client.zrangebyscore(expire_key, "-inf", now, 0, self._batch)
        if settings is None or not await shard.client.exists(expire_key):
            await shard.client.zrem(index, channel)
            return
        for key in due:
            await self._write(channel, _str(key), _body(b"", self._millis(), None), settings,
                              ("x", "", "0"), "")  # fmt: skip

    async def _position(self, channel: str) -> StreamPosition:
        client, meta = self._client(channel), self._key("meta", channel)
        await client.hsetnx(meta, "e", random_epoch())
        epoch, top = await client.hmget(meta, ["e", "s"])
        return StreamPosition(int(top or 0), _str(epoch))

    # ------------------------------------------------------------------ change feed

    async def _read(self, shard: Shard, ready: asyncio.Event) -> None:
        # Cluster PUB/SUB reaches every node: one plain connection to a seed node hears all.
        client = self._feed if self._feed is not None else shard.client
        while True:
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(self._changes)
                    ready.set()
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=1.0
                        )
                        if message is not None:
                            self._deliver(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.warning("map change feed of shard %d lost; reconnecting", shard.index)
                await asyncio.sleep(_RECONNECT_DELAY)

    def _deliver(self, data: bytes) -> None:
        offset, epoch, rest = data.split(b"|", 2)
        mark = rest[:1]
        channel, at = _unframe(rest, 1)
        key, at = _unframe(rest, at)
        prev = None
        if mark == b"2":
            prev_body, at = _unframe(rest, at)
            prev = _unframe(prev_body, 0)[0]
        pub = _publication(key.decode(), int(offset), rest[at:], removed=mark == b"1")
        if prev is not None:
            pub = replace(pub, prev=prev)
        if self._handler is not None:
            self._handler(channel.decode(), pub, StreamPosition(int(offset), epoch.decode()))

    # ------------------------------------------------------------------ helpers

    def _client(self, channel: str) -> Any:
        return self._shards[shard_index(channel, len(self._shards))].client

    def _key(self, kind: str, channel: str) -> str:
        if self._cluster:
            return f"{self._partition_key(kind, self._partition(channel))}.{channel}"
        return f"{self._prefix}.map.{kind}.{{{channel}}}"

    def _expiring(self, channel: str) -> str:
        if self._cluster:
            return self._partition_key("expiring", self._partition(channel))
        return f"{self._prefix}.map.expiring"

    def _partition_key(self, kind: str, partition: int) -> str:
        return f"{self._prefix}.map.{kind}.{{{partition}}}"

    @staticmethod
    def _partition(channel: str) -> int:
        return shard_index(channel, CLUSTER_PARTITIONS)

    def _millis(self) -> int:
        return int(self._clock.now() * 1000)


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry(key: str, value: bytes) -> MapPublication:
    offset, body = value.split(b":", 1)
    return _publication(key, int(offset), body)


def _change(entry_id: bytes, fields: dict[bytes, bytes]) -> MapPublication:
    offset = int(_str(entry_id).split("-")[0])
    return _publication(_str(fields[b"k"]), offset, fields[b"b"], removed=fields[b"r"] == b"1")
