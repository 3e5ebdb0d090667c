"""What the command handlers (and the operations below them) need of a session and its node.

`ClientSession` (rotary.node.client) and `Node` (rotary.node.node) live above the command
handlers and hand themselves down; modules below them name these protocols instead of
importing them, so the package's imports go one way (see the package docstring). Each
protocol lists only what its users read or call: growing it is how a handler moves off a
type-only import of the session or the node.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rotary.auth.track_signature import TrackSecrets
    from rotary.channels.resolver import ChannelResolver, ResolvedChannel
    from rotary.clock import Clock
    from rotary.config.model import ClientSettings
    from rotary.engines.base import Broker, ClientInfo, PresenceManager, StreamPosition
    from rotary.engines.revocation import RevocationStore, TokenIdentity
    from rotary.metrics import Metrics
    from rotary.node.auth import Authenticator
    from rotary.node.hub import Hub
    from rotary.node.maps import MapNode
    from rotary.node.proxy import ProxyContext, ProxyHooks
    from rotary.node.scheduler import Scheduler
    from rotary.node.shared_poll import SharedPollManager
    from rotary.node.state import Mode, State
    from rotary.node.subscription import Subscription
    from rotary.protocol.base import Codec
    from rotary.protocol.codes import Disconnect, Unsubscribe

__all__ = ["NodeServices", "Session"]


class NodeServices(Protocol):
    """The node as the command handlers see it."""

    @property
    def settings(self) -> ClientSettings: ...

    @property
    def resolver(self) -> ChannelResolver: ...

    @property
    def broker(self) -> Broker: ...

    @property
    def presence(self) -> PresenceManager: ...

    @property
    def hub(self) -> Hub: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def scheduler(self) -> Scheduler: ...

    @property
    def proxy(self) -> ProxyHooks | None: ...

    @property
    def shared_poll(self) -> SharedPollManager | None:
        """Shared poll channels (docs/shared-poll.md); None: not configured."""

    @property
    def track_secrets(self) -> TrackSecrets | None:
        """The secrets track signatures are checked with; None: none configured."""

    @property
    def auth(self) -> Authenticator: ...

    @property
    def presence_ttl(self) -> float: ...

    @property
    def uid(self) -> str: ...

    def user_connections(self, user: str) -> int:
        """Connections of `user` on this node."""

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run `callback` on the loop soon, outside the current call stack."""

    async def hub_subscribe(self, channel: str, client_id: str) -> None:
        """Add `client_id` to `channel` as pending; make the broker deliver it here."""

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
        """Publish to a resolved channel with its namespace's history settings."""

    def meta_ttl(self, channel: str) -> float:
        """Seconds the history meta of `channel` lives (its namespace's, or the default)."""

    @property
    def revocation(self) -> RevocationStore | None: ...

    @property
    def metrics(self) -> Metrics | None: ...

    def sessions(self, user: str, client: str = "", session: str = "") -> Sequence[Session]:
        """The user's sessions on this node (or the one `client` / `session`)."""

    def connected_sessions(self) -> Sequence[Session]:
        """Every authenticated session of this node (a snapshot)."""

    @property
    def maps(self) -> MapNode: ...

    async def broker_release(self, channel: str) -> None:
        """Stop broker delivery of `channel` when no local client needs it any more."""

    async def api_disconnect(
        self,
        user: str,
        *,
        client: str = "",
        session: str = "",
        whitelist: Sequence[str] = (),
        disconnect: Disconnect | None = None,
    ) -> None:
        """Disconnect the user's connections but the whitelisted (or one client / session)."""


class Session(Protocol):
    """A client session as the command handlers see it."""

    @property
    def id(self) -> str: ...

    @property
    def user(self) -> str: ...

    @property
    def node(self) -> NodeServices: ...

    @property
    def subs(self) -> dict[str, Subscription]: ...

    @property
    def closed(self) -> bool: ...

    @property
    def codec(self) -> Codec: ...

    def proxy_context(self) -> ProxyContext:
        """The session as the proxy hooks describe it."""

    # Written by the connect and refresh handlers, hence plain attributes.
    token_identity: TokenIdentity | None
    meta: bytes | None
    conn_info: bytes | None
    expire_at: int
    server_refresh: bool

    @property
    def session_id(self) -> str: ...

    @property
    def app_pings(self) -> bool: ...

    @property
    def mode(self) -> Mode: ...

    @property
    def state(self) -> State: ...

    def authenticated(self, *, user: str, info: bytes | None, expire_at: int) -> None:
        """Mark the session connected as `user`."""

    def start_timers(self) -> None:
        """Start the ping and periodic timers of a connected session."""

    def arm_expiry(self) -> None:
        """(Re)arm the connection expiry check from `expire_at` (cancel it when 0)."""

    @property
    def releasing(self) -> set[Subscription]: ...

    @property
    def subscribing(self) -> set[str]: ...

    def push(self, message: bytes) -> None:
        """Queue one encoded message for the client; never awaits."""

    def reply(self, cmd_id: int, method: str, result: Mapping[str, Any]) -> None:
        """Queue the successful reply to command `cmd_id`."""

    def send_push(self, kind: str, body: Mapping[str, Any], channel: str = "") -> None:
        """Queue a push of `kind` (on `channel`)."""

    def unencodable(self) -> None:
        """A message for this client holds bytes its format cannot carry: disconnect 3506."""

    def client_info(self, chan_info: bytes | None = None) -> ClientInfo:
        """This connection as seen by others, with a channel's info."""

    def send_unsubscribe(self, channel: str, unsub: Unsubscribe) -> None:
        """Queue an Unsubscribe push for `channel`."""

    def disconnect(self, disconnect: Disconnect, *, flush: bool = True) -> None:
        """End the session with `disconnect`."""

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run `coro` as a task the session owns."""
