"""Typed claim decoding and the claim checks that follow a verified signature (docs/tokens.md
"Connection tokens", docs/tokens.md "Subscription tokens").

Everything here runs only on a payload whose signature has already been verified (or whose
check was switched off by ``insecure_skip_signature``). Types are checked exactly as
Centrifugo's Go structures do (docs/tokens.md "How a connection token is checked" step 2): a JSON
``null`` counts as an absent claim, a
wrong type is INVALID ``claims``. The order of the later checks follows Centrifugo's so the
observable outcome matches: aud/iss (INVALID) before ``channel`` and time (EXPIRED), then
namespaces (UNKNOWN_CHANNEL), then base64 fields (INVALID ``b64``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, NamedTuple

import orjson

from rotary.auth.jws import b64std_decode
from rotary.auth.tokens import (
    NO_OVERRIDE,
    ConnectionToken,
    Outcome,
    SubscribeOptions,
    SubscribeOverride,
    SubscriptionToken,
    TokenRejected,
)
from rotary.jsonbytes import dumps_kept

__all__ = [
    "ClaimRules",
    "connection_from_claims",
    "load_claims",
    "payload_refusal",
    "subscription_from_claims",
]

Claims = dict[str, Any]
ChannelKnown = Callable[[str], bool]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_OVERRIDE_FIELDS = (
    "presence",
    "join_leave",
    "force_push_join_leave",
    "force_recovery",
    "force_positioning",
)
_NO_OVERRIDE = NO_OVERRIDE
# Verified tokens are named tuples; tuple.__new__ builds one without the generated __new__.
_tuple_new: Any = tuple.__new__
_NO_SUBS: Mapping[str, SubscribeOptions] = MappingProxyType({})


def _invalid(reason: str, detail: str) -> TokenRejected:
    return TokenRejected(Outcome.INVALID, reason, detail)


def _wrong_type(name: str, expected: str) -> TokenRejected:
    return _invalid("claims", f"claim {name} must be {expected}")


def payload_refusal() -> TokenRejected:
    """The refusal of a payload that is not a JSON object (INVALID ``malformed``)."""
    return _invalid("malformed", "token payload is not a JSON object")


def load_claims(payload: bytes) -> Claims:
    """Parse the payload JSON; it must be an object (INVALID ``malformed`` otherwise)."""
    try:
        claims = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise payload_refusal() from None
    if type(claims) is not dict:
        raise payload_refusal()
    return claims


class ClaimRules:
    """Audience, issuer and user-id rules of one token kind, compiled once.

    Regexes are unanchored searches (docs/differences.md quirk 9). Pattern validity is the caller's
    concern (the verifier reports bad patterns as ConfigError before building this).
    """

    __slots__ = (
        "active",
        "audience",
        "audience_regex",
        "issuer",
        "issuer_regex",
        "user_id_claim",
    )

    def __init__(
        self,
        *,
        audience: str = "",
        audience_regex: str = "",
        issuer: str = "",
        issuer_regex: str = "",
        user_id_claim: str = "",
    ) -> None:
        self.audience = audience
        self.audience_regex = re.compile(audience_regex) if audience_regex else None
        self.issuer = issuer
        self.issuer_regex = re.compile(issuer_regex) if issuer_regex else None
        self.user_id_claim = user_id_claim
        #: Whether `check` has anything to check (the hot path skips it otherwise).
        self.active = bool(audience or audience_regex or issuer or issuer_regex)

    def check(self, claims: Claims) -> None:
        """Match ``aud``/``iss`` (already type-checked) against the configured rules."""
        aud = _audience(claims.get("aud"))
        iss = claims.get("iss") or ""
        if self.audience and self.audience not in aud:
            raise _invalid("audience", "invalid audience")
        if self.issuer and iss != self.issuer:
            raise _invalid("issuer", "invalid issuer")
        if self.issuer_regex is not None and self.issuer_regex.search(iss) is None:
            raise _invalid("issuer", "invalid issuer")
        if self.audience_regex is not None:
            search = self.audience_regex.search
            if not any(search(entry) is not None for entry in aud):
                raise _invalid("audience", "invalid audience")

    def user(self, claims: Claims, sub: str) -> str:
        """The user id: ``sub``, or the custom claim stringified as Centrifugo does."""
        if not self.user_id_claim:
            return sub
        return _stringify(claims.get(self.user_id_claim))


def _audience(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if type(value) is str:
        return (value,)
    return tuple(value)


def _stringify(value: object) -> str:
    """Text of a claim the way gjson's String() gives it (numbers as their plain text)."""
    if value is None:
        return ""
    if type(value) is str:
        return value
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is int:
        return str(value)
    if type(value) is float:
        return format(Decimal(repr(value)).normalize(), "f")
    return orjson.dumps(value).decode()


def _string(claims: Claims, name: str) -> str:
    value = claims.get(name)
    if value is None:
        return ""
    if type(value) is not str:
        raise _wrong_type(name, "a string")
    return value


_NONE = type(None)
_STR: frozenset[type] = frozenset([str, _NONE])
_NUMBER: frozenset[type] = frozenset([int, float, _NONE])
_INT: frozenset[type] = frozenset([int, _NONE])
_LIST: frozenset[type] = frozenset([list, _NONE])
_OBJECT: frozenset[type] = frozenset([dict, _NONE])
_AUD: frozenset[type] = frozenset([str, list, _NONE])
_EXPECTED = {_STR: "a string", _NUMBER: "a number", _INT: "an integer", _OBJECT: "an object"}
# JSON types each claim may have; claims not listed are not checked (``info``, ``meta``...).
_COMMON_TYPES = {
    "sub": _STR,
    "exp": _NUMBER,
    "nbf": _NUMBER,
    "iat": _NUMBER,
    "jti": _STR,
    "iss": _STR,
    "aud": _AUD,
    "expire_at": _INT,
    "channel": _STR,
    "b64info": _STR,
}
_CONNECTION_TYPES = {**_COMMON_TYPES, "channels": _LIST, "subs": _OBJECT}
#: Claims whose types the connection fast path checks inline (sub, exp, iat, jti) or that
#: may hold any JSON (info, meta).
_GATED = frozenset(["sub", "exp", "iat", "jti", "info", "meta"])
#: Claims whose types the subscription fast path checks inline, or that may hold any JSON
#: (``channels``, ``subs`` and ``meta`` are no subscription claims: ignored).
_SUB_GATED = frozenset(["sub", "channel", "exp", "iat", "info", "data", "channels", "subs", "meta"])
_SUBSCRIPTION_TYPES = {
    **_COMMON_TYPES,
    "client": _STR,
    "b64data": _STR,
    "override": _OBJECT,
}


def _check_types(claims: Claims, table: dict[str, frozenset[type]]) -> None:
    """One pass over the claims present: each listed claim must have an allowed JSON type.

    Element types of lists and the range of ``expire_at`` are checked by the callers.
    """
    for name, value in claims.items():
        allowed = table.get(name)
        if allowed is not None and type(value) not in allowed:
            raise _wrong_type(name, _EXPECTED.get(allowed, "a string or a list of strings"))
    aud = claims.get("aud")
    if type(aud) is list and not all(type(entry) is str for entry in aud):
        raise _wrong_type("aud", "a string or a list of strings")
    expire_at = claims.get("expire_at")
    if expire_at is not None and not _INT64_MIN <= expire_at <= _INT64_MAX:
        raise _wrong_type("expire_at", "an integer")


def _check_time(exp: float | None, nbf: float | None, now: float, leeway: float) -> None:
    """Centrifugo's strictness at leeway 0: exp must be later than now, nbf earlier."""
    if exp is not None and not exp > now - leeway:
        raise TokenRejected(Outcome.EXPIRED, "expired", "token expired")
    if nbf is not None and not nbf < now + leeway:
        raise TokenRejected(Outcome.EXPIRED, "not_yet_valid", "token expired: not valid yet")


def _raw_json(value: object) -> bytes | None:
    return None if value is None else dumps_kept(value)


class _RawOptions(NamedTuple):
    """Type-checked options whose base64 fields are not decoded yet."""

    info: object
    b64info: str
    data: object
    b64data: str
    override: SubscribeOverride


def _raw_options(source: Claims, where: str) -> _RawOptions:
    return _RawOptions(
        source.get("info"),
        _string(source, "b64info"),
        source.get("data"),
        _string(source, "b64data"),
        _override(source.get("override"), where),
    )


def _override(value: object, where: str) -> SubscribeOverride:
    if value is None:
        return _NO_OVERRIDE
    if type(value) is not dict:
        raise _wrong_type(f"{where}override", "an object")
    fields: dict[str, bool] = {}
    for name in _OVERRIDE_FIELDS:
        entry = value.get(name)
        if entry is None:
            continue
        flag = entry.get("value", False) if type(entry) is dict else None
        if type(flag) is not bool:
            raise _wrong_type(f"{where}override.{name}", 'an object {"value": bool}')
        fields[name] = flag
    return SubscribeOverride(**fields) if fields else _NO_OVERRIDE


def _decoded(raw: object, b64: str | None, name: str) -> bytes | None:
    """Compact JSON of `raw`, or the decoded base64 text when it is non-empty (it wins)."""
    if not b64:
        return None if raw is None else dumps_kept(raw)
    try:
        return b64std_decode(b64)
    except ValueError:
        raise _invalid("b64", f"{name} is not valid standard base64") from None


def _finish_options(raw: _RawOptions, where: str) -> SubscribeOptions:
    return SubscribeOptions(
        info=_decoded(raw.info, raw.b64info, f"{where}b64info"),
        data=_decoded(raw.data, raw.b64data, f"{where}b64data"),
        override=raw.override,
    )


def _channels(value: list[Any] | None) -> tuple[str, ...]:
    if not value:
        return ()
    if not all(type(entry) is str for entry in value):
        raise _wrong_type("channels", "a list of strings")
    return tuple(value)


def _subs(value: dict[str, Any] | None) -> dict[str, _RawOptions]:
    if not value:
        return {}
    subs: dict[str, _RawOptions] = {}
    for channel, entry in value.items():
        if entry is None:
            subs[channel] = _RawOptions(None, "", None, "", _NO_OVERRIDE)
        elif type(entry) is dict:
            subs[channel] = _raw_options(entry, f"subs.{channel}.")
        else:
            raise _wrong_type(f"subs.{channel}", "an object")
    return subs


def _require_known(channels: Any, channel_known: ChannelKnown) -> None:
    for channel in channels:
        if not channel_known(channel):
            raise TokenRejected(Outcome.UNKNOWN_CHANNEL, "unknown_channel", "unknown channel")


def _options_of(subs: dict[str, _RawOptions]) -> Mapping[str, SubscribeOptions]:
    if not subs:
        return _NO_SUBS
    return MappingProxyType(
        {name: _finish_options(raw, f"subs.{name}.") for name, raw in subs.items()}
    )


def connection_from_claims(
    claims: Claims, rules: ClaimRules, channel_known: ChannelKnown, now: float, leeway: float
) -> ConnectionToken:
    """Check and decode a connection token's verified claims (docs/tokens.md "How a connection
    token is checked" steps 2-13).

    Rotary is stricter than Centrifugo on one point (docs/differences.md quirk 6): a bad top-level
    ``b64info`` is INVALID ``b64`` (disconnect 3500), not an internal error.
    This is the hot path of every uncached connect: the common cases are inlined.
    """
    get = claims.get
    sub, exp, iat, jti = get("sub"), get("exp"), get("iat"), get("jti")
    # Fast gate: tokens made only of these claims are type-checked right here.
    if not (
        claims.keys() <= _GATED
        and type(sub) in _STR
        and type(exp) in _NUMBER
        and type(iat) in _NUMBER
        and type(jti) in _STR
    ):
        _check_types(claims, _CONNECTION_TYPES)
    channels, subs = get("channels"), get("subs")
    raw_subs = _subs(subs) if subs else None
    if rules.active:
        rules.check(claims)
    if get("channel"):
        detail = "connection JWT can not contain channel claim, only subscription JWT can"
        raise _invalid("channel_claim", detail)
    nbf = get("nbf")
    if (exp is not None and not exp > now - leeway) or nbf is not None:
        _check_time(exp, nbf, now, leeway)
    server_side = tuple(raw_subs) if raw_subs else _channels(channels) if channels else ()
    if server_side:
        _require_known(server_side, channel_known)
    expire_at, info, meta = get("expire_at"), get("info"), get("meta")
    if expire_at is None:
        expire_at = 0 if exp is None else int(exp)
    elif expire_at < 0:
        expire_at = 0
    if "b64info" in claims:
        info = _decoded(info, claims["b64info"], "b64info")
    elif info is not None:
        info = dumps_kept(info)
    sub = sub or ""
    values = (
        rules.user(claims, sub) if rules.user_id_claim else sub,
        expire_at,
        None if exp is None else int(exp),
        None if iat is None else int(iat),
        jti or "",
        info,
        server_side,
        _options_of(raw_subs) if raw_subs else _NO_SUBS,
        None if meta is None else dumps_kept(meta),
    )
    token: ConnectionToken = _tuple_new(ConnectionToken, values)  # new_connection_token
    return token


def subscription_from_claims(
    claims: Claims, rules: ClaimRules, channel_known: ChannelKnown, now: float, leeway: float
) -> SubscriptionToken:
    """Check and decode a subscription token's verified claims (docs/tokens.md "How a subscription
    token is checked" steps 2-9).

    The hot path of every uncached subscribe: common claims are type-checked inline.
    """
    get = claims.get
    sub, channel, exp, iat = get("sub"), get("channel"), get("exp"), get("iat")
    if not (
        claims.keys() <= _SUB_GATED
        and type(sub) in _STR
        and type(channel) in _STR
        and type(exp) in _NUMBER
        and type(iat) in _NUMBER
    ):
        _check_types(claims, _SUBSCRIPTION_TYPES)
    override = get("override")
    override = _override(override, "") if override is not None else _NO_OVERRIDE
    if rules.active:
        rules.check(claims)
    nbf = get("nbf")
    if (exp is not None and not exp > now - leeway) or nbf is not None:
        _check_time(exp, nbf, now, leeway)
    if not channel:
        raise _invalid("missing_channel", "channel claim is required in subscription JWT")
    if not channel_known(channel):
        raise TokenRejected(Outcome.UNKNOWN_CHANNEL, "unknown_channel", "unknown channel")
    expire_at, info, data = get("expire_at"), get("info"), get("data")
    if expire_at is None:
        expire_at = 0 if exp is None else int(exp)
    elif expire_at < 0:
        expire_at = 0
    if info is not None or "b64info" in claims:
        info = _decoded(info, get("b64info"), "b64info")
    if data is not None or "b64data" in claims:
        data = _decoded(data, get("b64data"), "b64data")
    sub = sub or ""
    values = (
        rules.user(claims, sub) if rules.user_id_claim else sub,
        channel,
        get("client") or "",
        expire_at,
        None if exp is None else int(exp),
        None if iat is None else int(iat),
        get("jti") or "",
        info,
        data,
        override,
    )
    token: SubscriptionToken = _tuple_new(SubscriptionToken, values)  # new_subscription_token
    return token
