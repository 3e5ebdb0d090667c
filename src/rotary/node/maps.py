"""Map channels on a node: who receives their changes, the key-expiry ticker, API calls.

docs/map-subscriptions.md. Map subscribers are kept apart from the stream `Hub` (their pushes
carry keys and their catch-up is by state and stream pages), but like the hub this fan-out
encodes each change once and never awaits a subscriber.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from rotary.channels.maps import MapSettings, map_settings
from rotary.channels.options import ChannelOptions
from rotary.engines.base import ClientInfo, StreamPosition
from rotary.engines.maps import (
    MapBroker,
    MapPublication,
    MapPublishOptions,
    MapStateResult,
    MapStreamResult,
    MapUpdateResult,
)
from rotary.protocol.codec import JSON, client_info_obj, raw
from rotary.protocol.codes import CommandError, ErrorCode
from rotary.protocol.filters import TagsFilter, matches

if TYPE_CHECKING:
    from rotary.channels.resolver import ChannelResolver
    from rotary.node.scheduler import Scheduler, TimerHandle

__all__ = ["MapHost", "MapHub", "MapNode", "map_publication_obj"]


class MapHost(Protocol):
    """What the map side needs of its node: channel settings and timers (the node itself
    lives above this module and hands itself down)."""

    @property
    def resolver(self) -> ChannelResolver: ...

    @property
    def scheduler(self) -> Scheduler: ...


#: One change buffered for a subscriber going live: (encoded push, offset).
Buffered = tuple[bytes, int]

#: Seconds between two passes removing expired keys (Centrifugo checks every second).
EXPIRE_INTERVAL = 1.0


def map_publication_obj(pub: MapPublication) -> dict[str, Any]:
    """A map entry or change as the client protocol's Publication (``key``, ``removed``)."""
    obj: dict[str, Any] = {"data": raw(pub.data)} if pub.data else {}
    if pub.info is not None:
        obj["info"] = client_info_obj(pub.info)
    if pub.offset:
        obj["offset"] = pub.offset
    if pub.tags:
        obj["tags"] = dict(pub.tags)
    if pub.time:
        obj["time"] = pub.time
    obj["key"] = pub.key
    if pub.removed:
        obj["removed"] = True
    return obj


def _push(channel: str, pub: MapPublication) -> bytes:
    return orjson.dumps({"push": {"channel": channel, "pub": map_publication_obj(pub)}})


@dataclass(slots=True)
class _Live:
    """A live subscriber and the last position it got: a broker that delivers changes after
    the fact (Redis) may bring one its catch-up already held."""

    push: Callable[[bytes], None]
    position: StreamPosition
    #: Changes this filter drops are not pushed (the position still moves past them).
    tags_filter: TagsFilter | None = None


@dataclass(slots=True)
class _Channel:
    live: dict[str, _Live] = field(default_factory=dict)
    #: Changes buffered per pending subscriber, with their tags for its filter.
    pending: dict[str, list[tuple[bytes, int, Mapping[str, str] | None]]] = field(
        default_factory=dict
    )


class MapHub:
    """Local subscribers of map channels: *pending* ones buffer, *live* ones get pushes."""

    def __init__(self) -> None:
        self._channels: dict[str, _Channel] = {}

    def add_pending(self, channel: str, client_id: str) -> None:
        """Start buffering `channel`'s changes for `client_id`."""
        self._channels.setdefault(channel, _Channel()).pending[client_id] = []

    def activate(
        self,
        channel: str,
        client_id: str,
        push: Callable[[bytes], None],
        position: StreamPosition,
        tags_filter: TagsFilter | None = None,
    ) -> list[Buffered]:
        """Make a pending subscriber live at `position` (what its reply held); return what was
        buffered for it meanwhile and `tags_filter` passes, the caller skipping what
        `position` already covers."""
        ch = self._channels.setdefault(channel, _Channel())
        ch.live[client_id] = _Live(push, position, tags_filter)
        held = ch.pending.pop(client_id, [])
        return [
            (data, offset)
            for data, offset, tags in held
            if tags_filter is None or matches(tags_filter, tags)
        ]

    def remove(self, channel: str, client_id: str) -> None:
        """Forget `client_id` on `channel` (no effect when it is not there)."""
        ch = self._channels.get(channel)
        if ch is None:
            return
        ch.live.pop(client_id, None)
        ch.pending.pop(client_id, None)
        if not ch.live and not ch.pending:
            del self._channels[channel]

    def broadcast(self, channel: str, pub: MapPublication, sp: StreamPosition) -> None:
        """Queue one change to every local subscriber of `channel`, encoded once; a subscriber
        already past it (same epoch, offset not newer) is skipped."""
        ch = self._channels.get(channel)
        if ch is None:
            return
        data = _push(channel, pub)
        for live in ch.live.values():
            if live.position.epoch == sp.epoch and pub.offset <= live.position.offset:
                continue
            live.position = sp
            if live.tags_filter is None or matches(live.tags_filter, pub.tags):
                live.push(data)
        for buf in ch.pending.values():
            buf.append((data, pub.offset, pub.tags))

    def channels(self) -> dict[str, int]:
        """Channel → number of local subscribers (live and pending)."""
        return {name: len(ch.live) + len(ch.pending) for name, ch in self._channels.items()}


class MapNode:
    """The node's map side: the broker, the local fan-out and the key-expiry ticker."""

    def __init__(self, node: MapHost, broker: MapBroker) -> None:
        self._node = node
        self.broker = broker
        self.hub = MapHub()
        channels = node.resolver.settings
        #: Whether any namespace publishes its subscribers into presence maps or removes a
        #: subscriber's key on unsubscribe (most do not: then the subscribe path skips these
        #: hooks at no cost).
        self.presence_maps = any(
            o.map_clients_presence_channel_prefix
            or o.map_users_presence_channel_prefix
            or o.map_remove_client_on_unsubscribe
            for o in [channels.without_namespace, *(ns.options for ns in channels.namespaces)]
        )
        self._timer: TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Deliver changes to local subscribers and start removing expired keys."""
        self.broker.start(self._on_change, self._settings_of)
        self._arm()

    async def close(self) -> None:
        """Stop the ticker and the broker. Idempotent."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        await self.broker.close()

    def settings(self, channel: str) -> MapSettings:
        """The map options of `channel`; error 102 unknown, 108 when it is no map channel."""
        resolved = self._node.resolver.resolve(channel) if channel else None
        if resolved is None:
            raise CommandError(ErrorCode.UNKNOWN_CHANNEL if channel else ErrorCode.BAD_REQUEST)
        settings = map_settings(resolved.options)
        if settings is None:  # Centrifugo answers 107 for a map call on a stream channel
            raise CommandError(ErrorCode.BAD_REQUEST)
        return settings

    async def publish(
        self, channel: str, key: str, data: bytes, opts: MapPublishOptions
    ) -> MapUpdateResult:
        """Write `key` of a map channel (the API's ``map_publish``).

        The data must be JSON (107 otherwise): map subscribers are JSON clients for now.
        """
        settings = self.settings(channel)
        if not key or not JSON.carries(data or b"null"):
            raise CommandError(ErrorCode.BAD_REQUEST)
        return await self.broker.publish(channel, key, data, settings, opts)

    async def remove(self, channel: str, key: str, *, idempotency_key: str = "") -> MapUpdateResult:
        """Remove `key` of a map channel (the API's ``map_remove``)."""
        settings = self.settings(channel)
        if not key:
            raise CommandError(ErrorCode.BAD_REQUEST)
        return await self.broker.remove(channel, key, settings, idempotency_key=idempotency_key)

    async def read_state(
        self,
        channel: str,
        *,
        cursor: str = "",
        limit: int = 0,
        key: str = "",
        revision: StreamPosition | None = None,
    ) -> MapStateResult:
        """A page of the state (the API's ``map_read_state``); 112 when `revision`'s epoch
        is not the channel's."""
        settings = self.settings(channel)
        page = await self.broker.read_state(channel, settings, cursor=cursor, limit=limit, key=key)
        if revision is not None and revision.epoch != page.position.epoch:
            raise CommandError(ErrorCode.UNRECOVERABLE_POSITION)
        return page

    async def read_stream(
        self, channel: str, *, since: StreamPosition | None, limit: int = 0, reverse: bool = False
    ) -> MapStreamResult:
        """Changes of the stream (the API's ``map_read_stream``), newest first if `reverse`."""
        settings = self.settings(channel)
        if not reverse:
            return await self.broker.read_stream(channel, settings, since=since, limit=limit)
        every = await self.broker.read_stream(channel, settings, since=since, limit=-1)
        newest = every.publications[::-1]
        return MapStreamResult(newest if limit < 0 else newest[:limit], every.position)

    async def stats(self, channel: str) -> int:
        """The number of keys (the API's ``map_stats``)."""
        return await self.broker.stats(channel, self.settings(channel))

    async def clear(self, channel: str) -> None:
        """Forget the channel's state and stream (the API's ``map_clear``)."""
        self.settings(channel)
        await self.broker.clear(channel)

    async def join_presence(self, channel: str, info: ClientInfo) -> None:
        """Put (or keep alive) `info`'s client and user in `channel`'s presence maps."""
        options = self._options(channel)
        if options is None:
            return
        if options.map_clients_presence_channel_prefix:
            target = options.map_clients_presence_channel_prefix + channel
            opts = MapPublishOptions(info=info, key_mode="if_new", refresh_ttl_on_suppress=True)
            await self.broker.publish(target, info.client, b"", self.settings(target), opts)
        if options.map_users_presence_channel_prefix and info.user:
            target = options.map_users_presence_channel_prefix + channel
            opts = MapPublishOptions(key_mode="if_new", refresh_ttl_on_suppress=True)
            await self.broker.publish(target, info.user, b"", self.settings(target), opts)

    async def leave_presence(self, channel: str, client_id: str) -> None:
        """Remove the client from `channel`'s client presence map (user keys expire), and
        its own key from `channel` itself under ``remove_client_on_unsubscribe``."""
        options = self._options(channel)
        if options is not None and options.map_clients_presence_channel_prefix:
            target = options.map_clients_presence_channel_prefix + channel
            await self.broker.remove(target, client_id, self.settings(target))
        if options is not None and options.map_remove_client_on_unsubscribe:
            await self.broker.remove(channel, client_id, self.settings(channel))

    def _options(self, channel: str) -> ChannelOptions | None:
        if not self.presence_maps:
            return None
        resolved = self._node.resolver.resolve(channel)
        return resolved.options if resolved is not None else None

    def _settings_of(self, channel: str) -> MapSettings | None:
        resolved = self._node.resolver.resolve(channel)
        return map_settings(resolved.options) if resolved is not None else None

    def _on_change(self, channel: str, pub: MapPublication, sp: StreamPosition) -> None:
        self.hub.broadcast(channel, pub, sp)

    def _arm(self) -> None:
        self._timer = self._node.scheduler.call_later(EXPIRE_INTERVAL, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._task = asyncio.get_running_loop().create_task(self._expire())

    async def _expire(self) -> None:
        try:
            await self.broker.expire()
        finally:
            self._task = None
            self._arm()
