"""HS256 tokens for the load clients, made with PyJWT (an implementation independent of Rotary).

Tokens are deterministic for a given (secret, index, exp): no `iat`, no random `jti`, so a
second storm with the same arguments presents byte-identical tokens (the warm-cache run).
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt

__all__ = ["ClientTokens", "client_tokens", "user_id"]


@dataclass(frozen=True, slots=True)
class ClientTokens:
    """A connection token and one subscription token per channel, in channel order."""

    connect: str
    subscribe: tuple[str, ...]


def user_id(index: int) -> str:
    """The user id of load client number `index`."""
    return f"u{index}"


def client_tokens(
    secret: str, index: int, channels: tuple[str, ...], *, exp: int, info_size: int = 0
) -> ClientTokens:
    """Tokens for client `index`: connection token (sub, exp), one sub token per channel.

    With `info_size`, the connection token also carries an ``info`` object of about that
    many bytes of JSON (what a backend typically puts there: the user's display data).
    """
    user = user_id(index)
    claims: dict[str, object] = {"sub": user, "exp": exp}
    if info_size > 0:
        claims["info"] = {"name": user, "about": "x" * max(0, info_size - 30)}
    conn = jwt.encode(claims, secret, algorithm="HS256")
    subs = tuple(
        jwt.encode({"sub": user, "channel": ch, "exp": exp}, secret, algorithm="HS256")
        for ch in channels
    )
    return ClientTokens(conn, subs)
