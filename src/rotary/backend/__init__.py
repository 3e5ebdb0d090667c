"""Token endpoints for the app next to Rotary: the decisions, free of any web framework.

The SDKs' ``getToken`` and ``getSubscriptionToken`` callbacks fetch tokens from the app. The app
supplies two callables: who is the user of this request (a user id, or None for nobody), and
may this user subscribe to this channel. `TokenIssuer` turns their answers into the body of the
reply: ``{"token": "..."}``, or a refusal (HTTP 403). The framework adapters are
`rotary.backend.asgi` (Starlette, FastAPI) and `rotary.backend.django`.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rotary.tokens import TokenError, connection_token, subscription_token

__all__ = ["ProxyAnswers", "Refused", "TokenIssuer", "resolve"]

_T = TypeVar("_T")


class Refused(Exception):
    """The request gets no token: HTTP 403 with ``{"error": reason}``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def resolve(value: _T | Awaitable[_T]) -> _T:
    """`value`, awaited first when the app's callable was a coroutine function."""
    if inspect.isawaitable(value):
        return await value
    return value


@dataclass(frozen=True, slots=True)
class TokenIssuer:
    """Signs the tokens the endpoints hand out.

    `key`/`alg` as in `rotary.tokens`; `ttl` is the connection token's lifetime in seconds,
    `subscription_ttl` the subscription token's (None: the same). Short lifetimes are fine:
    the SDKs ask again before a token expires.
    """

    key: str | bytes
    alg: str | None = None
    ttl: int = 900
    subscription_ttl: int | None = None

    def connection(self, user: str | None) -> dict[str, str]:
        """The reply body for `user`; raise Refused when there is no user."""
        if not user:
            raise Refused("not signed in")
        return {"token": connection_token(user, key=self.key, alg=self.alg, ttl=self.ttl)}

    def subscription(self, user: str | None, channel: object, allowed: bool) -> dict[str, str]:
        """The reply body for `user` on `channel`; raise Refused unless `allowed`."""
        if not user:
            raise Refused("not signed in")
        if not isinstance(channel, str) or not channel:
            raise Refused("no channel given")
        if not allowed:
            raise Refused("permission denied")
        ttl = self.subscription_ttl or self.ttl
        try:
            token = subscription_token(user, channel, key=self.key, alg=self.alg, ttl=ttl)
        except TokenError as exc:
            raise Refused(str(exc)) from None
        return {"token": token}


#: Who is the user of this request: a user id, or None (or "") for nobody.
UserOf = Callable[[Any], "str | Awaitable[str | None] | None"]
#: May this user subscribe to this channel.
MaySubscribe = Callable[[str, str], "bool | Awaitable[bool]"]


_NO_METHOD: dict[str, Any] = {"error": {"code": 104, "message": "method not found"}}

#: An RPC method of the app: (user, the call's data) → the reply's data (any JSON value).
RpcMethod = Callable[[str, Any], "Any | Awaitable[Any]"]


@dataclass(frozen=True, slots=True)
class ProxyAnswers:
    """The answers of the proxy endpoints, in Centrifugo's proxy JSON (docs/backend.md).

    `ttl` (seconds) bounds what connect and subscribe grant: the refresh and sub_refresh
    proxies then ask again (None: no expiry). `rpc` maps method names to the app's functions.
    """

    ttl: int | None = None
    rpc: Mapping[str, RpcMethod] = field(default_factory=dict)

    def connect(self, user: str | None) -> dict[str, Any]:
        """Let `user` in, or close the connection for good (4501) when there is none."""
        if not user:
            return {"disconnect": {"code": 4501, "reason": "unauthorized"}}
        return {"result": {"user": user, **self._expiry()}}

    def refresh(self, still_valid: bool) -> dict[str, Any]:
        """Extend the connection, or let it expire (the client then connects anew)."""
        return {"result": self._expiry()} if still_valid else {"result": {"expired": True}}

    def subscribe(self, allowed: bool) -> dict[str, Any]:
        """Grant the subscription, or refuse it with error 103."""
        if not allowed:
            return {"error": {"code": 103, "message": "permission denied"}}
        return {"result": self._expiry()}

    def sub_refresh(self, allowed: bool) -> dict[str, Any]:
        """Extend the subscription, or end it (the client subscribes again, and is asked)."""
        return {"result": self._expiry()} if allowed else {"result": {"expired": True}}

    def publish(self, allowed: bool) -> dict[str, Any]:
        """Publish the client's data as it is, or refuse with error 103."""
        if not allowed:
            return {"error": {"code": 103, "message": "permission denied"}}
        return {"result": {}}

    async def call(self, user: str, method: object, data: Any) -> dict[str, Any]:
        """Run the app's RPC `method` for `user`; error 104 for an unknown method."""
        handler = self.rpc.get(method) if isinstance(method, str) else None
        if handler is None:
            return _NO_METHOD
        return {"result": {"data": await resolve(handler(user, data))}}

    def call_sync(self, user: str, method: object, data: Any) -> dict[str, Any]:
        """`call` for synchronous frameworks (Django views): the method must not be async."""
        handler = self.rpc.get(method) if isinstance(method, str) else None
        if handler is None:
            return _NO_METHOD
        return {"result": {"data": handler(user, data)}}

    def _expiry(self) -> dict[str, int]:
        return {} if self.ttl is None else {"expire_at": int(time.time()) + self.ttl}
