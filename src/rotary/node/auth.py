"""What the node needs from token verification, without knowing anything about JWT.

`rotary.policy.tokens` adapts `rotary.auth.TokenVerifier` to `Authenticator`; node tests use
fakes. Failures are raised as `TokenProblem`, whose `kind` the command handlers map onto the
codes that docs/tokens.md gives for connect, refresh, subscribe and sub_refresh (the same
outcome means different codes in different commands).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from rotary.engines.revocation import TokenIdentity
from rotary.errors import RotaryError
from rotary.protocol.base import Codec
from rotary.protocol.codes import DisconnectCode, DisconnectError

__all__ = [
    "Authenticator",
    "ConnectCredentials",
    "Override",
    "ServerSubOptions",
    "SubscribeCredentials",
    "TokenProblem",
    "TokenProblemKind",
    "json_payload",
    "new_connect_credentials",
    "new_subscribe_credentials",
]

TokenProblemKind = Literal["invalid", "expired", "unknown_channel", "mismatch", "revoked"]


def json_payload(payload: bytes | None, codec: Codec) -> bytes | None:
    """`payload` if the client's `codec` can carry it; else disconnect 3506.

    Token ``b64info``/``b64data`` may carry arbitrary bytes, which only Protobuf clients
    can take (docs/protobuf.md); a JSON client needs JSON.
    """
    if payload is None or codec.carries(payload):
        return payload
    raise DisconnectError(DisconnectCode.INAPPROPRIATE_PROTOCOL)


class TokenProblem(RotaryError):
    """A token was refused. `reason` is a short machine word for logs (never the token).

    `user` is the token's user when it was verified before being refused (kind "revoked"),
    else ""; `detail` is a short human explanation, free of token material.
    """

    def __init__(
        self, kind: TokenProblemKind, reason: str = "", *, user: str = "", detail: str = ""
    ) -> None:
        self.kind: TokenProblemKind = kind
        self.reason = reason
        self.user = user
        self.detail = detail
        super().__init__(f"{kind}: {reason}" if reason else kind)


class Override(Protocol):
    """Per-subscriber overrides of namespace options; None keeps the namespace's value."""

    @property
    def presence(self) -> bool | None: ...
    @property
    def join_leave(self) -> bool | None: ...
    @property
    def force_push_join_leave(self) -> bool | None: ...
    @property
    def force_recovery(self) -> bool | None: ...
    @property
    def force_positioning(self) -> bool | None: ...


@dataclass(frozen=True, slots=True)
class ServerSubOptions:
    """Options of one server-side subscription named in a connection token's ``subs``."""

    info: bytes | None = None
    data: bytes | None = None
    override: Override | None = None


@dataclass(frozen=True, slots=True)
class ConnectCredentials:
    """A verified connection token. `expire_at` is the computed expiry (0: never).

    `identity` says which token it was, for revocation (None: no token, or not tracked).
    """

    user: str
    expire_at: int = 0
    info: bytes | None = None
    channels: tuple[str, ...] = ()
    subs: Mapping[str, ServerSubOptions] = field(default_factory=dict)
    meta: bytes | None = None
    identity: TokenIdentity | None = None

    def server_channels(self) -> dict[str, ServerSubOptions]:
        """Channels to subscribe at connect: `subs` when non-empty, else `channels`."""
        if self.subs:
            return dict(self.subs)
        return {ch: ServerSubOptions() for ch in self.channels}


@dataclass(frozen=True, slots=True)
class SubscribeCredentials:
    """A verified subscription token. `expire_at` is the computed expiry (0: never).

    `identity` says which token it was, for revocation (None: not tracked).
    """

    user: str
    channel: str
    client: str = ""
    expire_at: int = 0
    info: bytes | None = None
    data: bytes | None = None
    override: Override | None = None
    identity: TokenIdentity | None = None


# Positional constructors for the token hot path (credentials are built once per verified
# token). A frozen dataclass's __init__ goes through object.__setattr__ for every field; a
# builder class with the very same slots is filled by plain attribute stores instead, then
# made an instance of the frozen class (same layout, so __class__ may be reassigned).


class _ConnectCredentialsBuilder:
    __slots__ = ConnectCredentials.__slots__

    def __init__(
        self,
        user: str,
        expire_at: int,
        info: bytes | None,
        channels: tuple[str, ...],
        subs: Mapping[str, ServerSubOptions],
        meta: bytes | None,
        identity: TokenIdentity | None,
    ) -> None:
        self.user = user
        self.expire_at = expire_at
        self.info = info
        self.channels = channels
        self.subs = subs
        self.meta = meta
        self.identity = identity


def new_connect_credentials(
    user: str,
    expire_at: int,
    info: bytes | None,
    channels: tuple[str, ...],
    subs: Mapping[str, ServerSubOptions],
    meta: bytes | None,
    identity: TokenIdentity | None,
) -> ConnectCredentials:
    """``ConnectCredentials(...)`` with every field given in order, about twice as fast."""
    built: Any = _ConnectCredentialsBuilder(user, expire_at, info, channels, subs, meta, identity)
    built.__class__ = ConnectCredentials
    creds: ConnectCredentials = built
    return creds


class _SubscribeCredentialsBuilder:
    __slots__ = SubscribeCredentials.__slots__

    def __init__(
        self,
        user: str,
        channel: str,
        client: str,
        expire_at: int,
        info: bytes | None,
        data: bytes | None,
        override: Override | None,
        identity: TokenIdentity | None,
    ) -> None:
        self.user = user
        self.channel = channel
        self.client = client
        self.expire_at = expire_at
        self.info = info
        self.data = data
        self.override = override
        self.identity = identity


def new_subscribe_credentials(
    user: str,
    channel: str,
    client: str,
    expire_at: int,
    info: bytes | None,
    data: bytes | None,
    override: Override | None,
    identity: TokenIdentity | None,
) -> SubscribeCredentials:
    """``SubscribeCredentials(...)`` with every field given in order, about twice as fast."""
    built: Any = _SubscribeCredentialsBuilder(
        user, channel, client, expire_at, info, data, override, identity
    )
    built.__class__ = SubscribeCredentials
    creds: SubscribeCredentials = built
    return creds


class Authenticator(Protocol):
    """Verifies tokens. Both methods raise `TokenProblem` for a refused token.

    `subscribe_token` also checks the token against `channel`, `user` and `client` and
    raises kind "mismatch" when they differ. Kind "revoked" means the token verified but a
    revocation record refuses it (`rotary.engines.revocation`); handlers answer it as they
    answer an expired token, so that SDKs fetch a new one.
    """

    async def connect_token(self, token: str, *, now: float) -> ConnectCredentials: ...

    async def subscribe_token(
        self, token: str, *, now: float, channel: str, user: str, client: str
    ) -> SubscribeCredentials: ...
