"""Issue connection and subscription tokens from a backend: no server, event loop or Redis.

    from rotary.tokens import connection_token, subscription_token
    token = connection_token("42", key=SECRET, ttl=3600)
    sub = subscription_token("42", "$gossips", key=SECRET, ttl=600, override={"presence": False})

`key` is an HMAC secret (``str`` taken as UTF-8, or ``bytes``) or a PEM private key (RSA, EC
P-256/384/521, Ed25519); `alg` defaults from the key (HS256, RS256, ES256/384/512, EdDSA).
``iat`` is always the current time; `ttl` (seconds, > 0) sets ``exp``; None leaves ``exp`` out.

Whatever Rotary or Centrifugo would refuse is refused here, when the token is made, with a
`TokenError` naming the claim and the reason: the claims of every token are checked by the same
code the server runs on a verified token before the token is signed. The signing code is the
one behind ``rotary gentoken`` and ``rotary gensubtoken`` (`rotary.auth.signing`).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from rotary.auth.claims import ClaimRules, connection_from_claims, subscription_from_claims
from rotary.auth.signing import alg_for_key, sign_token
from rotary.auth.tokens import TokenRejected
from rotary.errors import ConfigError

__all__ = [
    "OVERRIDE_OPTIONS",
    "TokenError",
    "connection_token",
    "sign_claims",
    "subscription_token",
]

#: The channel options a subscription token may override (plain bool values here).
OVERRIDE_OPTIONS = (
    "presence",
    "join_leave",
    "force_push_join_leave",
    "force_recovery",
    "force_positioning",
)
_SUBS_FIELDS = frozenset(["info", "b64info", "data", "b64data", "override"])
_NO_RULES = ClaimRules()


class TokenError(ValueError):
    """A token that a server would refuse, refused before it is made.

    `claim` names the claim (or ``key``/``alg``) at fault, `reason` says why in plain words.
    The message never contains the key.
    """

    def __init__(self, claim: str, reason: str) -> None:
        super().__init__(f"{claim}: {reason}")
        self.claim = claim
        self.reason = reason


def connection_token(
    user: str,
    *,
    key: str | bytes,
    alg: str | None = None,
    ttl: int | None = None,
    expire_at: int | None = None,
    info: Any = None,
    b64info: str | None = None,
    aud: str | Sequence[str] | None = None,
    iss: str | None = None,
    jti: str | None = None,
    channels: Sequence[str] | None = None,
    subs: Mapping[str, Mapping[str, Any]] | None = None,
    meta: Any = None,
) -> str:
    """A signed connection token for `user` (a non-empty user id).

    `channels` are server-side channels; `subs` maps channel → options (``info``, ``b64info``,
    ``data``, ``b64data``, ``override`` with plain values as in `subscription_token`).
    `meta` is any JSON value kept on the server and never shown to other clients.
    Raise `TokenError` for anything a server would refuse.
    """
    now = int(time.time())
    claims = _common(user, now, ttl=ttl, expire_at=expire_at, aud=aud, iss=iss, jti=jti)
    _add_info(claims, info, b64info, "")
    if channels is not None:
        claims["channels"] = _channel_list(channels)
    if subs is not None:
        claims["subs"] = _subs(subs)
    if meta is not None:
        claims["meta"] = _json_value(meta, "meta")
    _self_check(connection_from_claims, claims, now)
    return sign_claims(claims, key=key, alg=alg)


def subscription_token(
    user: str,
    channel: str,
    *,
    key: str | bytes,
    alg: str | None = None,
    ttl: int | None = None,
    expire_at: int | None = None,
    info: Any = None,
    b64info: str | None = None,
    aud: str | Sequence[str] | None = None,
    iss: str | None = None,
    jti: str | None = None,
    override: Mapping[str, bool] | None = None,
) -> str:
    """A signed subscription token binding `user` to `channel` (both non-empty).

    `override` takes plain booleans for the options in `OVERRIDE_OPTIONS`
    (``{"presence": False}``) and writes Centrifugo's ``{"presence": {"value": false}}`` form.
    Raise `TokenError` for anything a server would refuse.
    """
    now = int(time.time())
    claims = _common(user, now, ttl=ttl, expire_at=expire_at, aud=aud, iss=iss, jti=jti)
    if not isinstance(channel, str) or not channel:
        raise TokenError("channel", "a subscription token needs a non-empty channel name")
    claims["channel"] = channel
    _add_info(claims, info, b64info, "")
    if override is not None:
        claims["override"] = _override(override, "override")
    _self_check(subscription_from_claims, claims, now)
    return sign_claims(claims, key=key, alg=alg)


def sign_claims(claims: Mapping[str, object], *, key: str | bytes, alg: str | None = None) -> str:
    """Sign `claims` as they are with `key`; `alg` defaults from the key.

    The one signing step of `connection_token`, `subscription_token` and the CLI. Raise
    `TokenError` (claim ``key`` or ``alg``) when the key does not fit the algorithm.
    """
    if not isinstance(key, str | bytes):
        raise TokenError("key", "must be an HMAC secret (str or bytes) or a PEM private key")
    try:
        chosen = alg if alg is not None else alg_for_key(key)
        return sign_token(claims, alg=chosen, key=key)
    except ConfigError as exc:
        where = "alg" if "unsupported" in str(exc) else "key"
        raise TokenError(where, str(exc).removeprefix("signing key: ")) from None


def _common(
    user: str,
    now: int,
    *,
    ttl: int | None,
    expire_at: int | None,
    aud: str | Sequence[str] | None,
    iss: str | None,
    jti: str | None,
) -> dict[str, Any]:
    if not isinstance(user, str) or not user:
        # An anonymous client needs no token (allow_anonymous_connect_without_token); an
        # empty user here is almost always a bug in the caller, such as an unset session.
        raise TokenError("sub", "the user id must be a non-empty string")
    claims: dict[str, Any] = {"sub": user}
    if ttl is not None:
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
            raise TokenError("exp", f"ttl must be a positive number of seconds, not {ttl!r}")
        claims["exp"] = now + ttl
    claims["iat"] = now
    if expire_at is not None:
        claims["expire_at"] = _expire_at(expire_at, now)
    if aud is not None:
        claims["aud"] = _audience(aud)
    for name, value in (("iss", iss), ("jti", jti)):
        if value is not None:
            if not isinstance(value, str) or not value:
                raise TokenError(name, "must be a non-empty string")
            claims[name] = value
    return claims


def _expire_at(value: int, now: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TokenError("expire_at", "must be Unix seconds (an int >= 0; 0: never expires)")
    if value > 10**11:
        # Unix seconds reach 10**11 in the year 5138: this is milliseconds.
        raise TokenError("expire_at", "looks like milliseconds; give Unix seconds")
    if 0 < value <= now:
        raise TokenError("expire_at", "is in the past: the server would refuse the connection")
    return value


def _audience(aud: str | Sequence[str]) -> str | list[str]:
    if isinstance(aud, str):
        if not aud:
            raise TokenError("aud", "must be a non-empty string or list of strings")
        return aud
    entries = list(aud)
    if not entries or not all(isinstance(entry, str) and entry for entry in entries):
        raise TokenError("aud", "must be a non-empty string or list of strings")
    return entries


def _add_info(claims: dict[str, Any], info: Any, b64info: str | None, where: str) -> None:
    if info is not None and b64info is not None:
        raise TokenError(f"{where}info", "give info or b64info, not both (b64info would win)")
    if info is not None:
        claims["info"] = _json_value(info, f"{where}info")
    if b64info is not None:
        claims["b64info"] = _base64(b64info, f"{where}b64info")


def _json_value(value: Any, claim: str) -> Any:
    """`value` as it will be read back from the token's JSON; refuse what is not JSON."""
    try:
        return orjson.loads(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise TokenError(claim, f"must be a JSON value ({exc})") from None


def _base64(value: str, claim: str) -> str:
    if not isinstance(value, str):
        raise TokenError(claim, "must be a string of standard base64")
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise TokenError(claim, "is not valid standard base64 (with padding)") from None
    return value


def _channel_list(channels: Sequence[str]) -> list[str]:
    if isinstance(channels, str):
        raise TokenError("channels", "must be a list of channel names, not one string")
    names = list(channels)
    if not all(isinstance(name, str) and name for name in names):
        raise TokenError("channels", "every entry must be a non-empty channel name")
    return names


def _subs(subs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for channel, options in subs.items():
        if not isinstance(channel, str) or not channel:
            raise TokenError("subs", "every key must be a non-empty channel name")
        where = f"subs.{channel}."
        if not isinstance(options, Mapping):
            raise TokenError(f"subs.{channel}", "must be a mapping of subscribe options")
        unknown = sorted(set(options) - _SUBS_FIELDS)
        if unknown:
            raise TokenError(f"{where}{unknown[0]}", f"unknown option; use {sorted(_SUBS_FIELDS)}")
        entry: dict[str, Any] = {}
        _add_info(entry, options.get("info"), options.get("b64info"), where)
        data, b64data = options.get("data"), options.get("b64data")
        if data is not None and b64data is not None:
            raise TokenError(f"{where}data", "give data or b64data, not both")
        if data is not None:
            entry["data"] = _json_value(data, f"{where}data")
        if b64data is not None:
            entry["b64data"] = _base64(b64data, f"{where}b64data")
        if options.get("override") is not None:
            entry["override"] = _override(options["override"], f"{where}override")
        out[channel] = entry
    return out


def _override(override: Mapping[str, bool], where: str) -> dict[str, Any]:
    if not isinstance(override, Mapping):
        raise TokenError(where, "must map option names to booleans")
    out: dict[str, Any] = {}
    for name, value in override.items():
        if name not in OVERRIDE_OPTIONS:
            raise TokenError(f"{where}.{name}", f"unknown option; one of {list(OVERRIDE_OPTIONS)}")
        if isinstance(value, Mapping):
            # Already in the wire form: a common mistake to double-wrap, so say so.
            raise TokenError(f"{where}.{name}", "give a plain bool; the {value} form is written")
        if not isinstance(value, bool):
            raise TokenError(f"{where}.{name}", f"must be a bool, not {type(value).__name__}")
        out[name] = {"value": value}
    return out


def _self_check(check: Any, claims: dict[str, Any], now: int) -> None:
    """Run the server's own claim checks on `claims` (any channel counts as known)."""
    try:
        check(claims, _NO_RULES, _any_channel, float(now), 0.0)
    except TokenRejected as exc:
        raise TokenError(exc.reason, exc.detail) from None


def _any_channel(_: str) -> bool:
    return True
