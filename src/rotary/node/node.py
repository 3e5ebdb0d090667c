"""The Node: owns the hub, the engine and the client sessions of one Rotary process.

It is the broker's event handler (publications come in here and go out through the hub)
and implements the server-API surface the HTTP API executor calls (`api_*`, agreed in
notes/nodeapi.md). Operations addressed to users or clients (subscribe, unsubscribe,
disconnect, refresh) travel as control messages through the broker, so that with the Redis
engine they reach every node; the broker delivers them to this node as well.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from rotary.channels.resolver import ChannelResolver, ResolvedChannel
from rotary.clock import Clock, SystemClock
from rotary.config.model import ClientSettings
from rotary.engines.base import (
    Broker,
    ClientInfo,
    HistoryFilter,
    HistoryResult,
    PresenceManager,
    PresenceStats,
    Publication,
    PublishOptions,
    StreamPosition,
    UnrecoverablePosition,
)
from rotary.engines.maps import MapBroker
from rotary.engines.memory.maps import MemoryMapBroker
from rotary.node import control, poll_publish, revocation
from rotary.node.auth import Authenticator, Override
from rotary.node.client import ClientSession
from rotary.node.cluster import Cluster, is_cluster_message
from rotary.node.connect import VERSION
from rotary.node.emulation import Emulation, is_emulation_message
from rotary.node.hub import Hub
from rotary.node.maps import MapNode
from rotary.node.outbox import Transport
from rotary.node.position import PositionChecker
from rotary.node.scheduler import LoopScheduler, Scheduler
from rotary.node.shared_poll import SharedPollManager
from rotary.node.state import Mode
from rotary.protocol.base import Codec
from rotary.protocol.codec import JSON
from rotary.protocol.codes import CommandError, Disconnect, DisconnectCode, ErrorCode

if TYPE_CHECKING:
    from rotary.auth.track_signature import TrackSecrets
    from rotary.engines.revocation import RevocationStore
    from rotary.metrics import Metrics
    from rotary.node.proxy import ProxyHooks

__all__ = ["Node"]

_log = logging.getLogger("rotary.node")


def _uuid4() -> str:
    """A new client id: a random (version 4, RFC 4122) UUID as text.

    The same text as ``str(uuid.uuid4())`` from the same source (`os.urandom`), at a third
    of its cost: one is made per connection.
    """
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # variant RFC 4122
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Node:
    """One Rotary node. Call `start` before accepting clients and `close` at shutdown.

    Time comes from `clock`, timers from `scheduler`, client ids from `id_factory` and the
    random part of the first ping delay from `rand` (a float in [0, 1)).
    """

    def __init__(
        self,
        *,
        settings: ClientSettings,
        resolver: ChannelResolver,
        broker: Broker,
        presence: PresenceManager,
        auth: Authenticator,
        revocation: RevocationStore | None = None,
        metrics: Metrics | None = None,
        proxy: ProxyHooks | None = None,
        clock: Clock | None = None,
        scheduler: Scheduler | None = None,
        id_factory: Callable[[], str] = _uuid4,
        rand: Callable[[], float] = random.random,
        name: str = "",
        uid: str = "",
        write_timeout: float = 1.0,
        presence_ttl: float = 60.0,
        node_info_interval: float = 3.0,
        maps: MapBroker | None = None,
        shared_poll: SharedPollManager | None = None,
        track_secrets: TrackSecrets | None = None,
    ) -> None:
        self.settings = settings
        self.resolver = resolver
        self.broker = broker
        self.presence = presence
        self.auth = auth
        #: Token revocation records (see `rotary.node.revocation`); None: no revocation API.
        self.revocation = revocation
        self.metrics = metrics
        #: The app backend's proxies (docs/backend.md "The proxy"); None: none configured.
        self.proxy = proxy
        self.clock: Clock = clock or SystemClock()
        self.scheduler: Scheduler = scheduler or LoopScheduler()
        self.new_id = id_factory
        self.rand = rand
        self.uid = uid or _uuid4()
        self.name = name or self.uid
        self.write_timeout = write_timeout
        self.presence_ttl = max(presence_ttl, 3 * settings.presence_update_interval)
        self.hub = Hub(on_unencodable=self._unencodable, on_filtered=self._filtered)
        #: Map channels (docs/map-subscriptions.md); in memory unless an engine gives one.
        self.maps = MapNode(self, maps or MemoryMapBroker(self.clock), on_filtered=self._filtered)
        #: Shared poll channels (docs/shared-poll.md) and the secrets of their signatures.
        self.shared_poll = shared_poll
        self._poll_routes: poll_publish.PollRoutes | None = None
        if shared_poll is not None and not getattr(broker, "single_node", False):
            # Several nodes may share the engine: publications travel per key (poll_publish).
            self._poll_routes = shared_poll.routes = poll_publish.PollRoutes(broker, shared_poll)
        self.track_secrets = track_secrets
        self._live: dict[str, ClientSession] = {}
        self._clients: dict[str, ClientSession] = {}
        #: user → the client id of its one session here, or a set when it has several (most
        #: users hold one connection; an empty-ish set per user cost ~0.2 KB a connection).
        self._users: dict[str, str | set[str]] = {}
        self._broker_channels: set[str] = set()
        #: channel → the lock serialising its broker subscribe/unsubscribe, while in use.
        self._gates: dict[str, _Gate] = {}
        self._started_at = self.clock.monotonic()
        self._gone = asyncio.Event()
        self._position_check = PositionChecker(self)
        self.cluster = Cluster(
            uid=self.uid,
            own_info=self.info,
            publish=broker.publish_control,
            clock=self.clock,
            scheduler=self.scheduler,
            interval=node_info_interval,
        )
        self.emulation = Emulation(
            uid=self.uid, publish=broker.publish_control, node_alive=self._node_alive
        )

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Start receiving broker events, then announce this node to the others."""
        await self.broker.start(self)
        await self.maps.start()
        self._position_check.start()
        self.cluster.start()

    def disconnect_all(self, disconnect: Disconnect = DisconnectCode.SHUTDOWN) -> None:
        """Disconnect every session, connected or not, with `disconnect`."""
        for session in list(self._live.values()):
            session.disconnect(disconnect)

    async def wait_sessions_gone(self) -> None:
        """Return once every session has cleaned up (bound it with ``asyncio.timeout``)."""
        while self._live:
            self._gone.clear()
            await self._gone.wait()

    async def close(self) -> None:
        """Leave the cluster and close the engine (after `disconnect_all`). Idempotent."""
        await self.cluster.close()
        await self.emulation.close()
        self._position_check.stop()
        await self.maps.close()
        if self.shared_poll is not None:
            await self.shared_poll.close()
        if self._poll_routes is not None:
            await self._poll_routes.close()
        await self.broker.close()
        await self.presence.close()
        if self.proxy is not None:
            await self.proxy.close()

    @property
    def num_sessions(self) -> int:
        """Open sessions, connected or not."""
        return len(self._live)

    def new_session(
        self,
        transport: Transport,
        *,
        app_pings: bool = True,
        codec: Codec = JSON,
        mode: Mode = Mode.BIDIRECTIONAL,
        headers: Mapping[str, str] | None = None,
        write_timeout: float | None = None,
    ) -> ClientSession:
        """A session for a new connection (registered with the node once it connects).

        An emulated or unidirectional session gets a session id; an emulated one is reachable
        through `emulation` from its creation (its connect may come in the same request).
        `headers` are the connection request's headers; only those a proxy passes on are kept.
        `write_timeout` overrides the node's for this connection (a transport's own setting).
        """
        session_id = self.new_id() if mode is not Mode.BIDIRECTIONAL else ""
        session = ClientSession(
            self,
            transport,
            client_id=self.new_id(),
            app_pings=app_pings,
            codec=codec,
            mode=mode,
            session_id=session_id,
            write_timeout=write_timeout,
        )
        if headers is not None and self.proxy is not None:
            wanted = self.proxy.header_names
            session.headers = {k.lower(): v for k, v in headers.items() if k.lower() in wanted}
        self._live[session.id] = session
        if mode is Mode.EMULATED:
            self.emulation.add(session)
        return session

    def _node_alive(self, uid: str) -> bool:
        return uid in self.cluster.registry.live()

    def _filtered(self, count: int) -> None:
        """`count` subscribers' tags filters dropped a live publication."""
        if self.metrics is not None:
            self.metrics.tags_filter_dropped(count)

    def _unencodable(self, client_id: str) -> None:
        """A subscriber's codec cannot carry a broadcast: disconnect it, outside the fan-out."""
        session = self._live.get(client_id)
        if session is not None:
            self.call_soon(session.unencodable)

    def register(self, session: ClientSession) -> None:
        """Count an authenticated session (called by the session)."""
        self._clients[session.id] = session
        user, held = session.user, self._users.get(session.user)
        if held is None:
            self._users[user] = session.id
        elif isinstance(held, str):
            if held != session.id:
                self._users[user] = {held, session.id}
        else:
            held.add(session.id)

    def unregister(self, session: ClientSession) -> None:
        """Forget a session (called by the session's cleanup)."""
        self._live.pop(session.id, None)
        if session.mode is Mode.EMULATED:
            self.emulation.remove(session)
        if not self._live:
            self._gone.set()
        if self._clients.pop(session.id, None) is None:
            return
        user, held = session.user, self._users.get(session.user)
        if held == session.id:
            del self._users[user]
        elif isinstance(held, set):
            held.discard(session.id)
            if len(held) == 1:
                self._users[user] = next(iter(held))

    def connected_sessions(self) -> list[ClientSession]:
        """Every authenticated session of this node (a snapshot)."""
        return list(self._clients.values())

    def user_connections(self, user: str) -> int:
        """Connections of `user` on this node."""
        return len(self._user_ids(user))

    def _user_ids(self, user: str) -> Collection[str]:
        held = self._users.get(user)
        if held is None:
            return ()
        return (held,) if isinstance(held, str) else held

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run `callback` on the loop soon, outside the current call stack."""
        asyncio.get_running_loop().call_soon(callback)

    # ------------------------------------------------------------------ channels

    def meta_ttl(self, channel: str) -> float:
        """History meta TTL of `channel`'s namespace (the global default when unset)."""
        resolved = self.resolver.resolve(channel)
        ttl = resolved.options.history_meta_ttl if resolved else 0.0
        return ttl or self.resolver.settings.history_meta_ttl

    async def hub_subscribe(self, channel: str, client_id: str) -> None:
        """Add `client_id` to `channel` as pending; make sure the broker delivers it here."""
        self.hub.add_pending(channel, client_id)
        if channel in self._broker_channels:
            # Already delivered here. A release that could undo it has either not checked
            # yet (it will see the pending client above) or has already taken the channel
            # out of `_broker_channels`: no await separates its check from that.
            return
        gate = self._enter_gate(channel)
        try:
            async with gate.lock:
                if channel not in self._broker_channels and self.hub.has_channel(channel):
                    await self.broker.subscribe(channel)
                    self._broker_channels.add(channel)
        finally:
            self._leave_gate(channel, gate)

    async def broker_release(self, channel: str) -> None:
        """Stop broker delivery of `channel` when no local client needs it any more."""
        if self.hub.has_channel(channel):
            # Others still need it here; whoever leaves last releases it.
            return
        gate = self._enter_gate(channel)
        try:
            async with gate.lock:
                if channel in self._broker_channels and not self.hub.has_channel(channel):
                    self._broker_channels.discard(channel)
                    await self.broker.unsubscribe(channel)
        finally:
            self._leave_gate(channel, gate)

    def _enter_gate(self, channel: str) -> _Gate:
        """The channel's gate, counted as used until `_leave_gate` (made on first use)."""
        gate = self._gates.get(channel)
        if gate is None:
            gate = self._gates[channel] = _Gate()
        gate.users += 1
        return gate

    def _leave_gate(self, channel: str, gate: _Gate) -> None:
        """Drop the gate once nobody holds or waits for it (one lock per channel at a time)."""
        gate.users -= 1
        if gate.users == 0:
            del self._gates[channel]

    async def publish(
        self,
        ch: ResolvedChannel,
        data: bytes,
        *,
        info: ClientInfo | None = None,
        tags: Mapping[str, str] | None = None,
        skip_history: bool = False,
        idempotency_key: str = "",
        delta: bool = False,
    ) -> StreamPosition:
        """Publish to a resolved channel with its namespace's history settings; delta
        compression is allowed when `delta` or the namespace's ``delta_publish`` says so.

        Map channels take keyed writes only (``map_publish``): 107, as Centrifugo.
        """
        opts = ch.options
        if opts.subscription_type not in ("", "stream"):
            raise CommandError(ErrorCode.BAD_REQUEST)
        history = opts.history_enabled
        if self.metrics is not None:
            self.metrics.publication("api" if info is None else "client")
        return await self.broker.publish(
            ch.name,
            data,
            PublishOptions(
                history_size=opts.history_size if history else 0,
                history_ttl=opts.history_ttl if history else 0.0,
                history_meta_ttl=self.meta_ttl(ch.name),
                info=info,
                tags=tags,
                idempotency_key=idempotency_key,
                skip_history=skip_history,
                use_delta=delta or opts.delta_publish,
            ),
        )

    # ------------------------------------------------------------------ broker events

    def handle_publication(self, channel: str, pub: Publication, sp: StreamPosition) -> None:
        if poll_publish.is_key_channel(channel):
            poll_publish.apply(self.shared_poll, pub.data)
            return
        self.hub.broadcast_publication(channel, pub, sp)

    def handle_join(self, channel: str, info: ClientInfo) -> None:
        self.hub.broadcast_join_leave(channel, "join", info)

    def handle_leave(self, channel: str, info: ClientInfo) -> None:
        self.hub.broadcast_join_leave(channel, "leave", info)

    def handle_control(self, data: bytes) -> None:
        if is_cluster_message(data):
            self.cluster.receive(data)
            return
        if is_emulation_message(data):
            self.emulation.receive(data)
            return
        try:
            control.apply(self, data)
        except Exception:
            _log.exception("bad control message ignored")

    def handle_resubscribed(self, shard: int | None = None) -> None:
        """The broker lost and regained delivery (of one shard's channels, when `shard` is
        given and the broker has ``shard_of``): those positioned subscribers must recover."""
        _log.info("broker resubscribed (shard %s): making positioned subscribers recover", shard)
        shard_of = getattr(self.broker, "shard_of", None)

        def affected(channel: str) -> bool:
            return shard is None or shard_of is None or bool(shard_of(channel) == shard)

        for session in list(self._clients.values()):
            control.force_recover(session, affected)

    # ------------------------------------------------------------------ sessions

    def sessions(self, user: str, client: str = "", session: str = "") -> list[ClientSession]:
        """Local sessions of `user` (or only `client` when given; only the emulated or
        unidirectional session `session` when given)."""
        if client:
            found = self._clients.get(client)
            matches = [found] if found is not None and found.user == user else []
        else:
            matches = [self._clients[c] for c in self._user_ids(user) if c in self._clients]
        return [s for s in matches if s.session_id == session] if session else matches

    # ------------------------------------------------------------------ server API

    def _resolve(self, channel: str) -> ResolvedChannel:
        resolved = self.resolver.resolve(channel) if channel else None
        if resolved is None:
            raise CommandError(ErrorCode.UNKNOWN_CHANNEL if channel else ErrorCode.BAD_REQUEST)
        return resolved

    async def api_publish(
        self,
        channel: str,
        data: bytes,
        *,
        tags: Mapping[str, str] | None = None,
        skip_history: bool = False,
        idempotency_key: str = "",
        delta: bool = False,
    ) -> StreamPosition:
        ch = self._resolve(channel)
        return await self.publish(
            ch,
            data,
            tags=tags,
            skip_history=skip_history,
            idempotency_key=idempotency_key,
            delta=delta,
        )

    async def api_presence(self, channel: str) -> dict[str, ClientInfo]:
        if not self._resolve(channel).options.presence:
            raise CommandError(ErrorCode.NOT_AVAILABLE)
        return await self.presence.presence(channel)

    async def api_presence_stats(self, channel: str) -> PresenceStats:
        if not self._resolve(channel).options.presence:
            raise CommandError(ErrorCode.NOT_AVAILABLE)
        return await self.presence.presence_stats(channel)

    async def api_history(self, channel: str, flt: HistoryFilter) -> HistoryResult:
        if not self._resolve(channel).options.history_enabled:
            raise CommandError(ErrorCode.NOT_AVAILABLE)
        try:
            return await self.broker.history(channel, flt, meta_ttl=self.meta_ttl(channel))
        except UnrecoverablePosition as exc:
            raise CommandError(ErrorCode.UNRECOVERABLE_POSITION) from exc

    async def api_history_remove(self, channel: str) -> None:
        if not self._resolve(channel).options.history_enabled:
            raise CommandError(ErrorCode.NOT_AVAILABLE)
        await self.broker.remove_history(channel)

    async def api_subscribe(
        self,
        user: str,
        channel: str,
        *,
        client: str = "",
        session: str = "",
        expire_at: int = 0,
        info: bytes | None = None,
        data: bytes | None = None,
        recover_since: StreamPosition | None = None,
        override: Override | None = None,
    ) -> None:
        """Server-side subscribe of the user's connections (or of one `client` / `session`)."""
        self._resolve(channel)
        msg = control.subscribe_message(
            user,
            channel,
            client=client,
            session=session,
            expire_at=expire_at,
            info=info,
            data=data,
            recover_since=recover_since,
            override=override,
        )
        await self.broker.publish_control(msg)

    async def api_unsubscribe(
        self, user: str, channel: str, *, client: str = "", session: str = ""
    ) -> None:
        """Unsubscribe the user's connections from `channel` ("" = from every channel).

        A non-empty `session` picks the emulated or unidirectional connection with that
        session id (a WebSocket connection has none, so it matches no WebSocket).
        """
        if channel:
            self._resolve(channel)
        msg = {
            "op": "unsubscribe",
            "user": user,
            "channel": channel,
            "client": client,
            "session": session,
        }
        await self.broker.publish_control(orjson.dumps(msg))

    async def api_disconnect(
        self,
        user: str,
        *,
        client: str = "",
        session: str = "",
        whitelist: Sequence[str] = (),
        disconnect: Disconnect | None = None,
    ) -> None:
        """Disconnect the user's connections but the whitelisted (or one `client` / `session`)."""
        d = disconnect or DisconnectCode.FORCE_NO_RECONNECT
        msg = {
            "op": "disconnect",
            "user": user,
            "client": client,
            "session": session,
            "whitelist": list(whitelist),
            "code": d.code,
            "reason": d.reason,
        }
        await self.broker.publish_control(orjson.dumps(msg))

    async def api_refresh(
        self,
        user: str,
        *,
        client: str = "",
        session: str = "",
        expired: bool = False,
        expire_at: int = 0,
        info: bytes | None = None,
    ) -> None:
        """Refresh (or expire) the user's connections (or one `client` / `session`)."""
        msg: dict[str, Any] = {
            "op": "refresh",
            "user": user,
            "client": client,
            "session": session,
            "expired": expired,
            "expire_at": expire_at,
            "info": info.decode() if info else None,
        }
        await self.broker.publish_control(orjson.dumps(msg))

    async def api_revoke_token(self, uid: str, *, expire_at: int = 0) -> None:
        await revocation.revoke_token(self, uid, expire_at=expire_at)

    async def api_invalidate_user_tokens(
        self, user: str, *, issued_before: int = 0, expire_at: int = 0, channel: str = ""
    ) -> None:
        await revocation.invalidate_user_tokens(
            self, user, issued_before=issued_before, expire_at=expire_at, channel=channel
        )

    async def api_shared_poll_publish(
        self, channel: str, key: str, version: int, epoch: str, data: bytes
    ) -> None:
        await poll_publish.publish(self, channel, key, version, epoch, data)

    async def api_channels(self, pattern: str = "") -> dict[str, int]:
        channels = {**self.hub.channels(), **self.maps.hub.channels()}
        if not pattern:
            return channels
        import fnmatch

        return {ch: n for ch, n in channels.items() if fnmatch.fnmatchcase(ch, pattern)}

    async def api_info(self) -> list[dict[str, object]]:
        """Every live node of the cluster (this one included), from their announcements."""
        return self.cluster.nodes()

    def info(self) -> dict[str, object]:
        """This node's counts, as the ``info`` API shows them; live map subscriptions count
        among channels and subscriptions, as in Centrifugo."""
        return {
            "uid": self.uid,
            "name": self.name,
            "version": VERSION,
            "num_clients": len(self._clients),
            "num_users": len(self._users),
            "num_channels": self.hub.num_channels + self.maps.hub.num_live_channels,
            "num_subs": self.hub.num_subs + self.maps.hub.num_live_subs,
            "uptime": int(self.clock.monotonic() - self._started_at),
        }


class _Gate:
    """A channel's broker lock and how many coroutines hold it or wait for it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0
