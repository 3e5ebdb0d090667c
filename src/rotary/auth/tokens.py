"""Values the token core hands out: verified tokens, and the one refusal exception.

Every refusal is a `TokenRejected` carrying an `Outcome` (which decides the client-facing
code, docs/tokens.md "How a connection token is checked" and docs/tokens.md "How a subscription
token is checked") and a machine-readable `reason`. Verified tokens are frozen values,
safe to share between connections and to keep in the verified-token cache.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

from rotary.errors import RotaryError

__all__ = [
    "NO_OVERRIDE",
    "ConnectionToken",
    "Outcome",
    "SubscribeOptions",
    "SubscribeOverride",
    "SubscriptionToken",
    "TokenRejected",
    "new_connection_token",
    "new_subscription_token",
]


class Outcome(enum.Enum):
    """What a refusal means for the client.

    INVALID: error 103 on subscribe, disconnect 3500 on connect, refresh and sub_refresh.
    EXPIRED: error 109 (``exp`` passed, or ``nbf`` not reached yet: reason ``not_yet_valid``).
    UNKNOWN_CHANNEL: error 102 (a channel named by the token has no namespace).
    MISMATCH: the subscription token is bound to another channel, user or client: 3500.
    """

    INVALID = "invalid"
    EXPIRED = "expired"
    UNKNOWN_CHANNEL = "unknown_channel"
    MISMATCH = "mismatch"


class TokenRejected(RotaryError):
    """A token was refused; nothing of it may be used.

    `reason` is machine-readable (``signature``, ``expired``, ``not_yet_valid``, ``audience``,
    ``issuer``, ``algorithm``, ``malformed``, ``claims``, ``channel_claim``,
    ``missing_channel``, ``channel_mismatch``, ``user_mismatch``, ``client_mismatch``,
    ``unknown_key``, ``unknown_channel``, ``jwks_unavailable``, ``too_large``, ``b64``).
    `detail` says why in plain words, in Centrifugo's wording where it has one; it never
    contains the token or a secret, so it is safe to log. `alg` is the header's algorithm when
    the header could be read, else "". `claims` is the raw payload JSON when it could be
    decoded (the CLI's ``checktoken`` prints it), else None.
    """

    def __init__(
        self,
        outcome: Outcome,
        reason: str,
        detail: str,
        *,
        alg: str = "",
        claims: bytes | None = None,
    ) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.reason = reason
        self.detail = detail
        self.alg = alg
        self.claims = claims

    def __repr__(self) -> str:
        return f"TokenRejected({self.outcome.name}, {self.reason!r}, {self.detail!r})"


@dataclass(frozen=True, slots=True)
class SubscribeOverride:
    """Per-channel overrides from a token; each None keeps the namespace default."""

    presence: bool | None = None
    join_leave: bool | None = None
    force_push_join_leave: bool | None = None
    force_recovery: bool | None = None
    force_positioning: bool | None = None


#: The override that overrides nothing: every token without one shares this instance.
NO_OVERRIDE = SubscribeOverride()
_NO_OVERRIDE = NO_OVERRIDE


@dataclass(frozen=True, slots=True)
class SubscribeOptions:
    """One entry of a connection token's ``subs``.

    `info` and `data` are compact JSON, or the decoded ``b64info``/``b64data`` when those are
    non-empty (they win).
    """

    info: bytes | None = None
    data: bytes | None = None
    override: SubscribeOverride = _NO_OVERRIDE


_NO_SUBS: Mapping[str, SubscribeOptions] = MappingProxyType({})


class ConnectionToken(NamedTuple):
    """A verified connection token (docs/tokens.md "Connection token claims").

    `expire_at` is the connection expiry in Unix seconds, 0 for never: the ``expire_at``
    claim when present (>0 used as is, <=0 means never), else ``exp`` truncated to seconds,
    else 0. Whether it already passed is the caller's decision (error 110).
    `channels` are the server-side channels: the keys of `subs` when it is non-empty, else
    the ``channels`` claim. `info` is compact one-line JSON, or decoded ``b64info``.

    An immutable record (a named tuple: one is built per uncached verification, and a
    tuple is by far the cheapest immutable object to build).
    """

    user: str
    expire_at: int
    exp: int | None = None
    iat: int | None = None
    jti: str = ""
    info: bytes | None = None
    channels: tuple[str, ...] = ()
    subs: Mapping[str, SubscribeOptions] = _NO_SUBS
    meta: bytes | None = None


class SubscriptionToken(NamedTuple):
    """A verified subscription token (docs/tokens.md "Subscription token claims"); `expire_at`
    follows the same rules.

    An immutable record, like `ConnectionToken`.
    """

    user: str
    channel: str
    client: str
    expire_at: int
    exp: int | None = None
    iat: int | None = None
    jti: str = ""
    info: bytes | None = None
    data: bytes | None = None
    override: SubscribeOverride = _NO_OVERRIDE


# Positional constructors for the verification hot path: the class call goes through a
# generated Python __new__; tuple.__new__ builds the same record directly.
_tuple_new: Any = tuple.__new__


def new_connection_token(
    user: str,
    expire_at: int,
    exp: int | None,
    iat: int | None,
    jti: str,
    info: bytes | None,
    channels: tuple[str, ...],
    subs: Mapping[str, SubscribeOptions],
    meta: bytes | None,
) -> ConnectionToken:
    """``ConnectionToken(...)`` with every field given in order, faster."""
    token: ConnectionToken = _tuple_new(
        ConnectionToken, (user, expire_at, exp, iat, jti, info, channels, subs, meta)
    )
    return token


def new_subscription_token(
    user: str,
    channel: str,
    client: str,
    expire_at: int,
    exp: int | None,
    iat: int | None,
    jti: str,
    info: bytes | None,
    data: bytes | None,
    override: SubscribeOverride,
) -> SubscriptionToken:
    """``SubscriptionToken(...)`` with every field given in order, faster."""
    token: SubscriptionToken = _tuple_new(
        SubscriptionToken,
        (user, channel, client, expire_at, exp, iat, jti, info, data, override),
    )
    return token
