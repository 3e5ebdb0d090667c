"""Admin tokens: what ``POST /admin/auth`` hands out and ``/admin/api`` asks for.

A token is ``<payload>.<mac>``, both base64url without padding: the payload is the JSON
object ``{"v": 1, "iat": …, "exp": …}`` (Unix seconds) and the mac is HMAC-SHA256 of a
fixed context string and the payload's text, keyed with ``admin.secret``. The context keeps
an admin token from ever passing for a JWT or anything else signed with the same secret,
should an operator reuse it. The format is Rotary's own: only Rotary's UI reads it.

Checking verifies the mac (constant-time) before reading the payload, then the expiry.
"""

from __future__ import annotations

import base64
import binascii
import hmac

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

__all__ = ["issue_admin_token", "valid_admin_token"]

_CONTEXT = b"rotary-admin-token-v1."
#: Longest token looked at; anything longer is refused unread.
_MAX_LENGTH = 512


def issue_admin_token(secret: str, *, now: float, ttl: float) -> str:
    """A token valid from `now` for `ttl` seconds, signed with `secret` (must not be empty)."""
    if not secret:
        raise ValueError("the admin secret is empty")
    claims = {"v": 1, "iat": int(now), "exp": int(now + ttl)}
    payload = _b64(orjson.dumps(claims))
    return f"{payload}.{_b64(_mac(secret, payload))}"


def valid_admin_token(secret: str, token: str, *, now: float) -> bool:
    """True when `token` was issued with `secret` and has not expired at `now`."""
    if not secret or len(token) > _MAX_LENGTH or token.count(".") != 1:
        return False
    payload, mac = token.split(".")
    try:
        given = _unb64(mac)
    except ValueError:
        return False
    if not hmac.compare_digest(given, _mac(secret, payload)):
        return False
    return _unexpired(payload, now)


def _unexpired(payload: str, now: float) -> bool:
    try:
        claims = orjson.loads(_unb64(payload))
    except (ValueError, orjson.JSONDecodeError):
        return False
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return isinstance(exp, int) and not isinstance(exp, bool) and now < exp


def _mac(secret: str, payload: str) -> bytes:
    mac = crypto_hmac.HMAC(secret.encode(), hashes.SHA256())
    mac.update(_CONTEXT + payload.encode("ascii", errors="replace"))
    return mac.finalize()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc
