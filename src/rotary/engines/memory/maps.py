"""The in-memory map broker: keyed state and change streams of map channels on one node.

docs/map-subscriptions.md. Offsets, epochs and TTLs follow Centrifugo's memory map broker:
the epoch is new for every channel this process creates, a key's TTL restarts with each
write, and a key whose TTL passes is removed as a change that subscribers see.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from rotary.channels.maps import MapSettings
from rotary.clock import Clock
from rotary.engines.base import StreamPosition, UnrecoverablePosition
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

__all__ = ["MemoryMapBroker"]

#: Seconds between two passes removing expired keys (Centrifugo checks every second).
_EXPIRE_INTERVAL = 1.0

#: How long an idempotency key suppresses a repeated write (Centrifugo's default).
_IDEMPOTENCY_TTL = 300.0


@dataclass(slots=True)
class _Channel:
    epoch: str
    top: int = 0
    #: key → (entry, expire_at monotonic seconds or 0).
    entries: dict[str, tuple[MapPublication, float]] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)  # sorted, for cursor paging
    #: (change, time it entered the stream, monotonic seconds).
    stream: deque[tuple[MapPublication, float]] = field(default_factory=deque)
    idempotent: dict[str, tuple[float, StreamPosition]] = field(default_factory=dict)
    #: key → (version, version epoch) of the keys written with a version; goes with the key.
    versions: dict[str, tuple[int, str]] = field(default_factory=dict)
    settings: MapSettings | None = None
    touched: float = 0.0


def _outdated(stored: tuple[int, str] | None, opts: MapPublishOptions) -> bool:
    """Whether a versioned write is not newer than the key's stored version (same epoch,
    or the write names none)."""
    if stored is None or not opts.version:
        return False
    version, epoch = stored
    return opts.version <= version and opts.version_epoch in ("", epoch)


class MemoryMapBroker:
    """`rotary.engines.maps.MapBroker` held in this process."""

    def __init__(self, clock: Clock, *, epoch_factory: Callable[[], str] | None = None) -> None:
        self.expire_interval = _EXPIRE_INTERVAL
        self._clock = clock
        self._new_epoch = epoch_factory or random_epoch
        self._channels: dict[str, _Channel] = {}
        self._handler: MapChangeHandler | None = None

    def start(self, handler: MapChangeHandler, settings_of: SettingsOf) -> None:
        self._handler = handler

    async def wait_ready(self) -> None:
        return None  # changes reach the handler as they are made

    async def close(self) -> None:
        self._handler = None

    async def publish(
        self, channel: str, key: str, data: bytes, settings: MapSettings, opts: MapPublishOptions
    ) -> MapUpdateResult:
        ch = self._channel(channel, settings)
        done = self._idempotent(ch, opts.idempotency_key)
        if done is not None:
            return done
        exists = key in ch.entries
        if exists and _outdated(ch.versions.get(key), opts):
            return MapUpdateResult(self._pos(ch), suppressed=True, suppress_reason="version")
        if (opts.key_mode == "if_new" and exists) or (opts.key_mode == "if_exists" and not exists):
            if exists and opts.refresh_ttl_on_suppress and settings.key_ttl:
                entry = ch.entries[key][0]
                ch.entries[key] = (entry, self._clock.monotonic() + settings.key_ttl)
            reason = "key_exists" if exists else "key_not_found"
            return MapUpdateResult(self._pos(ch), suppressed=True, suppress_reason=reason)
        pub = MapPublication(key, data, info=opts.info, tags=opts.tags, time=self._millis())
        prev = ch.entries[key][0].data if opts.use_delta and exists else None
        if opts.version:
            ch.versions[key] = (opts.version, opts.version_epoch)
        return self._apply(channel, ch, pub, opts.idempotency_key, prev=prev)

    async def remove(
        self,
        channel: str,
        key: str,
        settings: MapSettings,
        *,
        idempotency_key: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> MapUpdateResult:
        ch = self._channel(channel, settings)
        done = self._idempotent(ch, idempotency_key)
        if done is not None:
            return done
        entry = ch.entries.get(key)
        if entry is None:
            return MapUpdateResult(self._pos(ch), suppressed=True, suppress_reason="key_not_found")
        kept = entry[0].tags if tags is None else tags
        pub = MapPublication(key, b"", removed=True, tags=kept, time=self._millis())
        return self._apply(channel, ch, pub, idempotency_key)

    async def read_state(
        self,
        channel: str,
        settings: MapSettings,
        *,
        cursor: str = "",
        limit: int = -1,
        key: str = "",
    ) -> MapStateResult:
        ch = self._channel(channel, settings)
        if key:
            entry = ch.entries.get(key)
            return MapStateResult([entry[0]] if entry else [], self._pos(ch))
        start = bisect.bisect_right(ch.keys, cursor) if cursor else 0
        end = len(ch.keys) if limit < 0 else start + limit
        page = [ch.entries[k][0] for k in ch.keys[start:end]]
        more = end < len(ch.keys) and limit != 0
        return MapStateResult(page, self._pos(ch), page[-1].key if more and page else "")

    async def read_stream(
        self, channel: str, settings: MapSettings, *, since: StreamPosition | None, limit: int = -1
    ) -> MapStreamResult:
        ch = self._channel(channel, settings)
        self._trim(ch)
        if since is not None and (since.epoch != ch.epoch or since.offset > ch.top):
            raise UnrecoverablePosition(channel)
        after = since.offset if since is not None else 0
        oldest = ch.stream[0][0].offset if ch.stream else ch.top + 1
        if since is not None and after + 1 < oldest:
            raise UnrecoverablePosition(channel)
        pubs = [p for p, _ in ch.stream if p.offset > after]
        return MapStreamResult(pubs if limit < 0 else pubs[:limit], self._pos(ch))

    async def stats(self, channel: str, settings: MapSettings) -> int:
        return len(self._channel(channel, settings).entries)

    async def clear(self, channel: str) -> None:
        self._channels.pop(channel, None)

    async def expire(self) -> None:
        now = self._clock.monotonic()
        for name, ch in list(self._channels.items()):
            gone = [k for k, (_, at) in ch.entries.items() if at and at <= now]
            for key in gone:
                removal = MapPublication(key, b"", removed=True, time=self._millis())
                self._apply(name, ch, replace(removal, tags=ch.entries[key][0].tags), "")
            self._forget_idle(name, ch, now)

    # ------------------------------------------------------------------ internals

    def _channel(self, channel: str, settings: MapSettings) -> _Channel:
        ch = self._channels.get(channel)
        if ch is None:
            ch = self._channels[channel] = _Channel(self._new_epoch())
        ch.settings = settings
        ch.touched = self._clock.monotonic()
        return ch

    def _apply(
        self, name: str, ch: _Channel, pub: MapPublication, idem: str, *, prev: bytes | None = None
    ) -> MapUpdateResult:
        """Record a change: next offset, state, stream, TTL; then hand it to the handler,
        with `prev` (the key's data before a delta write) on the delivered copy only."""
        settings = ch.settings
        assert settings is not None  # set by `_channel` before any change
        ch.top += 1
        pub = replace(pub, offset=ch.top)
        now = self._clock.monotonic()
        self._set_entry(ch, pub, now + settings.key_ttl if settings.key_ttl else 0.0)
        if settings.has_stream:
            ch.stream.append((pub, now))
            self._trim(ch)
        position = self._pos(ch)
        if idem:
            ch.idempotent[idem] = (now + _IDEMPOTENCY_TTL, position)
        if self._handler is not None:
            self._handler(name, pub if prev is None else replace(pub, prev=prev), position)
        return MapUpdateResult(position)

    @staticmethod
    def _set_entry(ch: _Channel, pub: MapPublication, expire_at: float) -> None:
        if pub.removed:
            ch.versions.pop(pub.key, None)
            if ch.entries.pop(pub.key, None) is not None:
                del ch.keys[bisect.bisect_left(ch.keys, pub.key)]
            return
        if pub.key not in ch.entries:
            bisect.insort(ch.keys, pub.key)
        ch.entries[pub.key] = (pub, expire_at)

    def _idempotent(self, ch: _Channel, idem: str) -> MapUpdateResult | None:
        if not idem:
            return None
        seen = ch.idempotent.get(idem)
        if seen is None or seen[0] <= self._clock.monotonic():
            return None
        return MapUpdateResult(seen[1], suppressed=True, suppress_reason="idempotency")

    def _trim(self, ch: _Channel) -> None:
        """Keep at most `stream_size` changes, none older than `stream_ttl`."""
        settings = ch.settings
        if settings is None:
            return
        oldest_kept = self._clock.monotonic() - settings.stream_ttl
        while ch.stream and (
            len(ch.stream) > settings.stream_size or ch.stream[0][1] <= oldest_kept
        ):
            ch.stream.popleft()

    def _forget_idle(self, name: str, ch: _Channel, now: float) -> None:
        """Drop an empty channel once nothing of it can be recovered any more.

        Without a stream at once; with one when its meta TTL has passed since the last
        access (never in ``persistent`` mode, whose position is permanent).
        """
        self._trim(ch)
        ch.idempotent = {k: v for k, v in ch.idempotent.items() if v[0] > now}
        s = ch.settings
        if ch.entries or ch.stream or ch.idempotent:
            return
        if s is None or not s.has_stream or (s.meta_ttl and now - ch.touched >= s.meta_ttl):
            del self._channels[name]

    def _pos(self, ch: _Channel) -> StreamPosition:
        return StreamPosition(ch.top, ch.epoch)

    def _millis(self) -> int:
        return int(self._clock.now() * 1000)
