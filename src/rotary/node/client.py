"""The client session: one connection's state machine (docs/protocol.md "Pings", docs/protocol.md
"Connection life cycle").

Frames come in through `handle_frame` and are processed one command at a time, in order.
Replies and pushes leave through the session's `Outbox`. Timers (stale, ping/pong,
connection expiry, the periodic presence/expiry check) go through the node's `Scheduler`;
async work a timer starts is a task the session owns and cancels when it ends.

States: CONNECTING → CONNECTED → CLOSED, or CONNECTING → UNUSABLE (a connect answered with
an error: further commands are not read) → CLOSED.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Protocol

from rotary.engines.base import ClientInfo
from rotary.engines.revocation import TokenIdentity
from rotary.node import commands, connect, map_subscribe, poll_commands, subscribe
from rotary.node.contracts import NodeServices
from rotary.node.ending import remove_subscription
from rotary.node.outbox import Outbox, Transport
from rotary.node.proxy import NO_HEADERS, ProxyContext
from rotary.node.ratelimit import limiter_for
from rotary.node.scheduler import TimerHandle
from rotary.node.state import Mode, State
from rotary.node.subscription import Subscription
from rotary.protocol.base import Codec, NotEncodable, ProtocolViolation
from rotary.protocol.codec import JSON
from rotary.protocol.codes import (
    CommandError,
    Disconnect,
    DisconnectCode,
    DisconnectError,
    ErrorCode,
    Unsubscribe,
    unidirectional_disconnect,
)
from rotary.protocol.messages import (
    SUB_REFRESH_TRACK,
    SUB_REFRESH_UNTRACK,
    TYPE_MAP,
    TYPE_SHARED_POLL,
    Command,
    Request,
    SubRefreshRequest,
    SubscribeRequest,
)

__all__ = ["ClientSession", "SessionHost", "State"]

_log = logging.getLogger("rotary.client")

Handler = Callable[["ClientSession", int, Any], Awaitable[dict[str, Any] | None]]


class SessionHost(NodeServices, Protocol):
    """What a session needs of its node beyond the handlers' contract: its own
    registration, the write timeout of its outbox and the jitter of its pings. `Node`
    (rotary.node.node) is one; it sits above this module and hands itself down."""

    @property
    def write_timeout(self) -> float: ...

    @property
    def rand(self) -> Callable[[], float]: ...

    def register(self, session: ClientSession) -> None:
        """Count an authenticated session."""

    def unregister(self, session: ClientSession) -> None:
        """Forget a session."""


class ClientSession:
    """One client connection. Created by `Node.new_session`.

    `app_pings` False (``cf_ws_frame_ping_pong``) leaves liveness to the transport: no
    application pings and no ``ping``/``pong`` in the connect result. `codec` is the wire
    format the transport chose; nothing else in the node knows it. `mode` says how the
    client talks (`Mode`); an emulated or unidirectional session has a `session_id` too.
    `write_timeout` (None: the node's) bounds each write of its outbox.
    """

    def __init__(
        self,
        node: SessionHost,
        transport: Transport,
        *,
        client_id: str,
        app_pings: bool = True,
        codec: Codec = JSON,
        mode: Mode = Mode.BIDIRECTIONAL,
        session_id: str = "",
        write_timeout: float | None = None,
    ) -> None:
        self.node = node
        self.id = client_id
        self.app_pings = app_pings
        self.codec = codec
        self.mode = mode
        self.session_id = session_id
        self.state = State.CONNECTING
        self.user = ""
        self.conn_info: bytes | None = None
        self.meta: bytes | None = None
        self.expire_at = 0
        #: The connection token in force (set by connect and refresh), for revocation.
        self.token_identity: TokenIdentity | None = None
        #: Upgrade request headers a proxy passes on (lower-case names; set by the node).
        self.headers: Mapping[str, str] = NO_HEADERS
        #: Expiry handled by the refresh proxy, not by the client's refresh command.
        self.server_refresh = False
        self.subs: dict[str, Subscription] = {}
        # `subscribing`, `releasing` and `_tasks` are made on first use and dropped once
        # empty: most sessions hold them empty, and an empty set costs 216 bytes.
        self._subscribing: set[str] | None = None
        self._releasing: set[Subscription] | None = None
        self.disconnect_reason: Disconnect | None = None
        #: Why a unidirectional connect failed, as (code, text): the error's code and message,
        #: or the disconnect's when the failure was one (docs/transports.md "Connect errors as
        #: HTTP answers"). None until then.
        self.connect_refusal: tuple[int, str] | None = None
        settings = node.settings
        self.outbox = Outbox(
            transport,
            max_size=settings.queue_max_size,
            write_timeout=node.write_timeout if write_timeout is None else write_timeout,
            on_failure=self._on_write_failure,
            join=codec.join_frame,
        )
        #: Timer operation name → when it is due (on `node.clock.monotonic`). One scheduler
        #: handle serves them all (see `_schedule`).
        self._due: dict[str, float] = {}
        self._timer: TimerHandle | None = None
        self._timer_at = math.inf
        self._tasks: set[asyncio.Task[None]] | None = None
        self._pong_pending = False
        self._cleaned = False
        #: Command rate and error budget (`rotary.node.ratelimit`); None when both are off.
        self._limits = limiter_for(settings, node.clock.monotonic)
        self._schedule("stale", settings.stale_close_delay)

    # ------------------------------------------------------------------ identity

    def client_info(self, chan_info: bytes | None = None) -> ClientInfo:
        """This connection as seen by others, with a channel's info."""
        return ClientInfo(self.user, self.id, self.conn_info, chan_info)

    def proxy_context(self) -> ProxyContext:
        """This connection as the proxies describe it to the backend."""
        return ProxyContext(self.id, self.user, self.meta, self.headers, self.codec.name)

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    @property
    def subscribing(self) -> set[str]:
        """Channels whose subscribe is being answered (made on first use)."""
        if self._subscribing is None:
            self._subscribing = set()
        return self._subscribing

    @property
    def releasing(self) -> set[Subscription]:
        """Ended subscriptions whose release (presence, leave, broker) is still running."""
        if self._releasing is None:
            self._releasing = set()
        return self._releasing

    # ------------------------------------------------------------------ input

    async def handle_frame(self, frame: bytes) -> None:
        """Process every command of one frame in order (nothing once unusable or closed)."""
        if self.state in (State.UNUSABLE, State.CLOSED):
            return
        try:
            commands = self.codec.decode_frame(frame)
        except ProtocolViolation as exc:
            self._violation(str(exc))
            return
        for cmd in commands:
            if self.state in (State.UNUSABLE, State.CLOSED):
                return
            handler = self._handler_for(cmd)
            if handler is not None:
                await self._run(handler, cmd.id, cmd.method, cmd.request)

    def _handler_for(self, cmd: Command) -> Handler | None:
        """The handler to run for `cmd`, or None when it was dealt with here (pong, misuse)."""
        if cmd.id == 0 and cmd.method != "send":
            self._handle_pong()
            return None
        if self.state is State.CONNECTING and cmd.method != "connect":
            self._violation(f"{cmd.method or 'empty command'} before connect")
            return None
        if self._limits is not None and not self._limits.allow_command():
            self._over_rate(cmd)
            return None
        handler = _HANDLERS.get(cmd.method)
        if self.node.metrics is not None:
            self.node.metrics.command(cmd.method)
        if handler is None:
            self._violation(f"unsupported command {cmd.method or 'without method'}")
        return handler

    async def _run(self, handler: Handler, cmd_id: int, method: str, req: Request | None) -> None:
        """Run one command handler and answer for it; then drop `subscribing` if left empty."""
        try:
            result = await handler(self, cmd_id, req)
        except CommandError as exc:
            self._reply_error(cmd_id, method, exc)
        except DisconnectError as exc:
            if self.mode is Mode.UNIDIRECTIONAL:
                self.connect_refusal = (exc.disconnect.code, exc.disconnect.reason)
            self.disconnect(exc.disconnect)
        except ProtocolViolation as exc:
            self._violation(str(exc))
        except Exception:
            _log.exception("client %s: %s failed", self.id, method)
            self._reply_error(cmd_id, method, CommandError(ErrorCode.INTERNAL))
        else:
            if result is not None:
                self.reply(cmd_id, method, result)
        finally:
            if not self._subscribing:
                self._subscribing = None

    def _reply_error(self, cmd_id: int, method: str, exc: CommandError) -> None:
        if self.mode is Mode.UNIDIRECTIONAL:
            # Its client reads no replies: the error ends the connection instead.
            _log.info("client %s: connect refused with %d", self.id, exc.error.code)
            self.connect_refusal = (exc.error.code, exc.error.message)
            transforms = self.node.settings.connect_code_to_unidirectional_disconnect
            self.disconnect(unidirectional_disconnect(exc.error, transforms))
            return
        self.push(self.codec.encode_error(cmd_id, exc.error))
        if self._limits is not None and not self._limits.allow_error():
            _log.info("client %s: error budget spent", self.id)
            self.disconnect(DisconnectCode.TOO_MANY_ERRORS)
            return
        if method == "connect":
            # docs/protocol.md "Connection life cycle" rule 4: stop reading; the stale timer drops
            # a peer that lingers.
            self.state = State.UNUSABLE
            _log.info("client %s: connect refused with %d", self.id, exc.error.code)

    def _over_rate(self, cmd: Command) -> None:
        """Refuse a command beyond the rate limit: error 111, or for an asynchronous
        message (``send``, id 0: no reply expected) only a charge on the error budget."""
        if cmd.id != 0:
            self._reply_error(cmd.id, cmd.method, CommandError(ErrorCode.TOO_MANY_REQUESTS))
        elif self._limits is not None and not self._limits.allow_error():
            self.disconnect(DisconnectCode.TOO_MANY_ERRORS)

    def _handle_pong(self) -> None:
        if self.state is not State.CONNECTED or not self._pong_pending:
            self._violation("unexpected pong")
            return
        self._pong_pending = False
        self._cancel("pong")

    def _violation(self, why: str) -> None:
        _log.info("client %s: protocol violation: %s", self.id, why)
        self.disconnect(DisconnectCode.BAD_REQUEST)

    # ------------------------------------------------------------------ output

    def push(self, message: bytes) -> None:
        """Queue one encoded message for the client; never awaits."""
        self.outbox.push(message)

    def reply(self, cmd_id: int, method: str, result: Mapping[str, Any]) -> None:
        """Queue the successful reply to command `cmd_id` (3506 when it cannot be encoded)."""
        try:
            message = self.codec.encode_reply(cmd_id, method, result)
        except NotEncodable:
            self.unencodable()
        else:
            self.push(message)

    def send_push(self, kind: str, body: Mapping[str, Any], channel: str = "") -> None:
        """Queue a push of `kind` (3506 when it cannot be encoded)."""
        try:
            message = self.codec.encode_push(kind, body, channel)
        except NotEncodable:
            self.unencodable()
        else:
            self.push(message)

    def unencodable(self) -> None:
        """A message for this client holds bytes its format cannot carry: disconnect 3506."""
        _log.warning(
            "client %s (user %r): a payload is not JSON, %s cannot carry it",
            self.id,
            self.user,
            self.codec.name,
        )
        self.disconnect(DisconnectCode.INAPPROPRIATE_PROTOCOL)

    def send_unsubscribe(self, channel: str, unsub: Unsubscribe) -> None:
        """Queue an Unsubscribe push for `channel`."""
        self.send_push("unsubscribe", {"code": unsub.code, "reason": unsub.reason}, channel)

    async def run_writer(self) -> None:
        """Write queued messages until the session ends, then close the transport."""
        await self.outbox.run()

    # ------------------------------------------------------------------ life cycle

    def authenticated(self, *, user: str, info: bytes | None, expire_at: int) -> None:
        """Move to CONNECTED after a successful connect; arm the connected-state timers."""
        self.user, self.conn_info, self.expire_at = user, info, expire_at
        self.state = State.CONNECTED
        self._cancel("stale")
        self.node.register(self)

    def start_timers(self) -> None:
        """Arm ping, connection expiry and the periodic check (after the connect reply)."""
        settings = self.node.settings
        if self.app_pings and settings.ping_interval > 0:
            half = settings.ping_interval / 2
            self._schedule("ping", half + self.node.rand() * half)
        self.arm_expiry()
        interval = settings.presence_update_interval
        if interval > 0:
            self._schedule("periodic", interval)

    def arm_expiry(self) -> None:
        """(Re)arm the connection expiry check, or cancel it when there is no expiry."""
        self._cancel("expire")
        if self.expire_at > 0:
            delay = self.expire_at - self.node.clock.now()
            if not self.server_refresh:  # the client gets a grace time to refresh
                delay += self.node.settings.expired_close_delay
            self._schedule("expire", delay)

    def disconnect(self, disconnect: Disconnect, *, flush: bool = True) -> None:
        """End the session with `disconnect`: queued messages are written first if `flush`."""
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        self.disconnect_reason = disconnect
        if self.node.metrics is not None:
            self.node.metrics.disconnected(disconnect.code)
        self._due.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, math.inf
        # A client going away is routine (debug, as in Centrifugo); a server-side cut is not.
        routine = disconnect.code == DisconnectCode.CONNECTION_CLOSED.code
        level = logging.DEBUG if routine else logging.INFO
        _log.log(
            level,
            "client %s (user %r): disconnect %d %s",
            self.id,
            self.user,
            disconnect.code,
            disconnect.reason,
        )
        self.outbox.close(disconnect, flush=flush)

    async def cleanup(self) -> None:
        """Release everything once the transport is gone: subscriptions, presence, tasks."""
        if self._cleaned:
            return
        self._cleaned = True
        self.disconnect(DisconnectCode.CONNECTION_CLOSED, flush=False)
        for task in list(self._tasks or ()):
            task.cancel()
        pending = [*self.subs.values(), *self.releasing]
        self.subs.clear()
        for sub in pending:
            sub.ended = True
            await remove_subscription(self, sub)
        self.node.unregister(self)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run `coro` as a task this session owns (cancelled by `cleanup`)."""
        task = asyncio.get_running_loop().create_task(coro)
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if self._tasks is not None:
            self._tasks.discard(task)
            if not self._tasks:
                self._tasks = None
        if not task.cancelled() and task.exception() is not None:
            _log.error("client %s: background task failed", self.id, exc_info=task.exception())

    def _on_write_failure(self, disconnect: Disconnect) -> None:
        self.disconnect(disconnect, flush=False)

    # ------------------------------------------------------------------ timers

    # One scheduler handle per session, for its earliest due operation (as Centrifugo does):
    # a handle per operation cost ~0.25 KB each, and a cancelled one stays in the loop's heap
    # until its time comes.

    def _schedule(self, name: str, delay: float) -> None:
        """Run operation `name` (see `_TIMER_OPS`) after `delay` s, replacing a pending one."""
        due = self.node.clock.monotonic() + max(delay, 0.0)
        self._due[name] = due
        if due < self._timer_at:
            self._arm(due)

    def _cancel(self, name: str) -> None:
        # The handle stays armed: firing with nothing due only re-arms for the next operation.
        self._due.pop(name, None)

    def _arm(self, due: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = due
        delay = due - self.node.clock.monotonic()
        self._timer = self.node.scheduler.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        """Run every operation due by now (in due order), then arm for the next one."""
        # A handle may fire a hair early, or on a clock that did not move: its own time counts.
        now = max(self.node.clock.monotonic(), self._timer_at)
        self._timer, self._timer_at = None, math.inf
        for due, name in sorted((d, n) for n, d in self._due.items() if d <= now):
            if self._due.get(name) == due:  # an earlier operation may have cancelled it
                del self._due[name]
                _TIMER_OPS[name](self)
        upcoming = min(self._due.values(), default=math.inf)
        if upcoming < self._timer_at:
            self._arm(upcoming)

    def _on_stale(self) -> None:
        if self.state in (State.CONNECTING, State.UNUSABLE):
            self.disconnect(DisconnectCode.STALE)

    def _on_ping(self) -> None:
        settings = self.node.settings
        if self.state is not State.CONNECTED:
            return
        self.push(self.codec.ping)
        # A unidirectional client cannot answer: its pings only keep the stream alive.
        wants_pong = settings.pong_timeout > 0 and self.mode is not Mode.UNIDIRECTIONAL
        if wants_pong and not self._pong_pending:
            self._pong_pending = True
            self._schedule("pong", settings.pong_timeout)
        self._schedule("ping", settings.ping_interval)

    def _on_pong_timeout(self) -> None:
        if self._pong_pending:
            self.disconnect(DisconnectCode.NO_PONG)

    def _on_expire(self) -> None:
        if self.expire_at > 0 and self.expire_at <= self.node.clock.now():
            if self.server_refresh:
                self.spawn(connect.refresh_by_proxy(self))
            else:
                self.disconnect(DisconnectCode.EXPIRED)

    def _on_periodic(self) -> None:
        if self.state is not State.CONNECTED:
            return
        self.spawn(subscribe.check_subscriptions(self))
        poll_commands.expire_tracked(self)
        self._schedule("periodic", self.node.settings.presence_update_interval)


#: What each named timer operation runs.
_TIMER_OPS: dict[str, Callable[[ClientSession], None]] = {
    "stale": ClientSession._on_stale,
    "ping": ClientSession._on_ping,
    "pong": ClientSession._on_pong_timeout,
    "expire": ClientSession._on_expire,
    "periodic": ClientSession._on_periodic,
}


async def _subscribe(s: ClientSession, cmd_id: int, req: SubscribeRequest) -> None:
    """Route a subscribe: the map types run the map flow, shared poll its own, every other
    type the plain one."""
    poll_commands.check_type(s, req)
    if TYPE_MAP <= req.type < TYPE_SHARED_POLL:  # map, client presence map, user presence map
        await map_subscribe.handle_map_subscribe(s, cmd_id, req)
    elif req.type == TYPE_SHARED_POLL:
        await poll_commands.handle_subscribe(s, cmd_id, req)
    else:
        await subscribe.handle_subscribe(s, cmd_id, req)


async def _sub_refresh(
    s: ClientSession, cmd_id: int, req: SubRefreshRequest
) -> dict[str, Any] | None:
    """Route a sub_refresh: track and untrack of shared poll subscriptions, else a token."""
    keyed = req.type in (SUB_REFRESH_TRACK, SUB_REFRESH_UNTRACK)
    if keyed and poll_commands.is_keyed(s, req.channel):
        return await poll_commands.handle_keyed_refresh(s, cmd_id, req)
    return await subscribe.handle_sub_refresh(s, cmd_id, req)


_HANDLERS: dict[str, Handler] = {
    "connect": connect.handle_connect,
    "refresh": connect.handle_refresh,
    "subscribe": _subscribe,
    "unsubscribe": subscribe.handle_unsubscribe,
    "sub_refresh": _sub_refresh,
    "publish": commands.handle_publish,
    "presence": commands.handle_presence,
    "presence_stats": commands.handle_presence_stats,
    "history": commands.handle_history,
    "rpc": commands.handle_rpc,
    "send": commands.handle_send,
}
