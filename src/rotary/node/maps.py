"""Map channels on a node: who receives their changes, the key-expiry ticker, API calls.

docs/map-subscriptions.md. Map subscribers are kept apart from the stream `Hub` (their pushes
carry keys and their catch-up is by state and stream pages), but like the hub this fan-out
encodes each change once and never awaits a subscriber.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

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
from rotary.node.map_delta import MapPush
from rotary.protocol.base import Codec, NotEncodable
from rotary.protocol.codes import CommandError, ErrorCode
from rotary.protocol.filters import TagsFilter, matches

if TYPE_CHECKING:
    from rotary.channels.resolver import ChannelResolver
    from rotary.node.scheduler import Scheduler, TimerHandle

__all__ = ["MapHost", "MapHub", "MapNode", "MapSubscriber"]


class MapHost(Protocol):
    """What the map side needs of its node: channel settings and timers (the node itself
    lives above this module and hands itself down)."""

    @property
    def resolver(self) -> ChannelResolver: ...

    @property
    def scheduler(self) -> Scheduler: ...


#: Longest a node's start waits for its map broker to receive changes.
READY_TIMEOUT = 5.0

_log = logging.getLogger("rotary.node.maps")


def _nothing() -> None:
    return None


@dataclass(frozen=True, slots=True)
class MapSubscriber:
    """How one session receives a map channel's changes: its push, its format, whether it
    negotiated fossil delta, and what to call (from inside the fan-out, so it must not touch
    the hub there and then) when its format cannot carry a change."""

    push: Callable[[bytes], None]
    codec: Codec
    delta: bool = False
    unencodable: Callable[[], None] = _nothing
    #: Changes this filter drops are not pushed (the position still moves past them).
    tags_filter: TagsFilter | None = None

    @property
    def live_delta(self) -> bool:
        """Whether live changes may reach it as deltas: fossil negotiated and no tags filter
        (a filter may have kept from it the value a delta would apply to)."""
        return self.delta and self.tags_filter is None


@dataclass(slots=True)
class _Live:
    """A live subscriber and the last position it got: a broker that delivers changes after
    the fact (Redis) may bring one its catch-up already held. `chained`: it has received
    every change since it went live, so its copy of each key is a valid delta base."""

    sub: MapSubscriber
    position: StreamPosition
    chained: bool = True


@dataclass(slots=True)
class _Pending:
    sub: MapSubscriber
    #: (encoded push, offset) of each change since the subscriber started going live; the
    #: push is None for a change its tags filter drops (the position still moves past it).
    held: list[tuple[bytes | None, int]] = field(default_factory=list)


@dataclass(slots=True)
class _Channel:
    live: dict[str, _Live] = field(default_factory=dict)
    pending: dict[str, _Pending] = field(default_factory=dict)


class MapHub:
    """Local subscribers of map channels: *pending* ones buffer, *live* ones get pushes."""

    def __init__(self, on_filtered: Callable[[int], None] | None = None) -> None:
        self._channels: dict[str, _Channel] = {}
        #: Told, per change, how many subscribers' tags filters dropped it (when any did).
        self._on_filtered = on_filtered
        #: Live subscribers and channels with at least one, kept as they change (the
        #: ``info`` API and the metrics read them often; Centrifugo counts a map subscriber
        #: once it is live, not while it pages through the state).
        self.num_live_subs = 0
        self.num_live_channels = 0

    def add_pending(self, channel: str, client_id: str, sub: MapSubscriber) -> None:
        """Start buffering `channel`'s changes for `client_id`, encoded for `sub`."""
        self._channels.setdefault(channel, _Channel()).pending[client_id] = _Pending(sub)

    def activate(self, channel: str, client_id: str, position: StreamPosition) -> list[bytes]:
        """Make a pending subscriber live at `position` (what its reply held); return what
        was buffered for it meanwhile after `position` and its tags filter passes, to push in
        order."""
        ch = self._channels.setdefault(channel, _Channel())
        pending = ch.pending.pop(client_id, None)
        if pending is None:  # removed meanwhile (unsubscribed, disconnected)
            return []
        after = [(data, offset) for data, offset in pending.held if offset > position.offset]
        if after:
            position = StreamPosition(after[-1][1], position.epoch)
        if client_id not in ch.live:
            self.num_live_subs += 1
            self.num_live_channels += not ch.live
        ch.live[client_id] = _Live(pending.sub, position)
        return [data for data, _ in after if data is not None]

    def remove(self, channel: str, client_id: str) -> None:
        """Forget `client_id` on `channel` (no effect when it is not there)."""
        ch = self._channels.get(channel)
        if ch is None:
            return
        if ch.live.pop(client_id, None) is not None:
            self.num_live_subs -= 1
            self.num_live_channels -= not ch.live
        ch.pending.pop(client_id, None)
        if not ch.live and not ch.pending:
            del self._channels[channel]

    def broadcast(self, channel: str, pub: MapPublication, sp: StreamPosition) -> None:
        """Queue one change to every local subscriber of `channel`, encoded once per format;
        a subscriber already past it (same epoch, offset not newer) is skipped. A subscriber
        that missed a change gets every later one whole (its delta bases may be stale)."""
        ch = self._channels.get(channel)
        if ch is None:
            return
        pushes = MapPush(channel, pub)
        dropped = 0
        for live in ch.live.values():
            last = live.position
            if last.epoch == sp.epoch and pub.offset <= last.offset:
                continue
            if last.epoch != sp.epoch or pub.offset != last.offset + 1:
                live.chained = False
            live.position = sp
            if _passes(live.sub, pub):
                _give(live.sub, pushes, delta=live.sub.live_delta and live.chained)
            else:
                dropped += 1
        if dropped and self._on_filtered is not None:
            self._on_filtered(dropped)
        for pending in ch.pending.values():
            sub = pending.sub
            if not _passes(sub, pub):
                pending.held.append((None, pub.offset))
                continue
            try:
                data = pushes.encode(sub.codec, delta=sub.live_delta)
            except NotEncodable:
                sub.unencodable()
                continue
            pending.held.append((data, pub.offset))

    def channels(self) -> dict[str, int]:
        """Channel → number of local subscribers (live and pending)."""
        return {name: len(ch.live) + len(ch.pending) for name, ch in self._channels.items()}


def _passes(sub: MapSubscriber, pub: MapPublication) -> bool:
    return sub.tags_filter is None or matches(sub.tags_filter, pub.tags)


def _give(sub: MapSubscriber, pushes: MapPush, *, delta: bool) -> None:
    try:
        data = pushes.encode(sub.codec, delta=delta)
    except NotEncodable:
        sub.unencodable()
        return
    sub.push(data)


class MapNode:
    """The node's map side: the broker, the local fan-out and the key-expiry ticker."""

    def __init__(
        self,
        node: MapHost,
        broker: MapBroker,
        *,
        on_filtered: Callable[[int], None] | None = None,
    ) -> None:
        self._node = node
        self.broker = broker
        self.hub = MapHub(on_filtered)
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

    async def start(self) -> None:
        """Deliver changes to local subscribers and start removing expired keys; return once
        changes reach the subscribers, or after `READY_TIMEOUT` with a warning (the broker
        keeps trying: a node whose Redis is down still starts)."""
        self.broker.start(self._on_change, self._settings_of)
        self._arm()
        try:
            await asyncio.wait_for(self.broker.wait_ready(), READY_TIMEOUT)
        except TimeoutError:
            _log.warning("map changes are not received yet; starting anyway")

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
        """Write `key` of a map channel (the API's ``map_publish``); 107 without a key.

        Any bytes may be written: a JSON subscriber that cannot carry them is disconnected
        with 3506 when they reach it. The namespace's ``delta_publish`` turns delta on. A
        `MapPublishOptions.version` on a map without a stream (``ephemeral``) gets 100, as
        Centrifugo's map brokers refuse it.
        """
        settings = self.settings(channel)
        if not key:
            raise CommandError(ErrorCode.BAD_REQUEST)
        if opts.version and not settings.has_stream:
            raise CommandError(ErrorCode.INTERNAL)
        if not opts.use_delta and self._delta_publish(channel):
            opts = replace(opts, use_delta=True)
        return await self.broker.publish(channel, key, data, settings, opts)

    async def remove(
        self,
        channel: str,
        key: str,
        *,
        idempotency_key: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> MapUpdateResult:
        """Remove `key` of a map channel (the API's ``map_remove``, or a client's removal,
        which the map_remove proxy may give `tags`)."""
        settings = self.settings(channel)
        if not key:
            raise CommandError(ErrorCode.BAD_REQUEST)
        return await self.broker.remove(
            channel, key, settings, idempotency_key=idempotency_key, tags=tags
        )

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

    def _delta_publish(self, channel: str) -> bool:
        resolved = self._node.resolver.resolve(channel)
        return resolved is not None and resolved.options.delta_publish

    def _settings_of(self, channel: str) -> MapSettings | None:
        resolved = self._node.resolver.resolve(channel)
        return map_settings(resolved.options) if resolved is not None else None

    def _on_change(self, channel: str, pub: MapPublication, sp: StreamPosition) -> None:
        self.hub.broadcast(channel, pub, sp)

    def _arm(self) -> None:
        if self.broker.expire_interval >= 0:
            self._timer = self._node.scheduler.call_later(self.broker.expire_interval, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._task = asyncio.get_running_loop().create_task(self._expire())

    async def _expire(self) -> None:
        try:
            await self.broker.expire()
        finally:
            self._task = None
            self._arm()
