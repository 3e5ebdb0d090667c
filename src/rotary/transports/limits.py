"""Admission limits checked before a connection is served (docs/protocol.md "Endpoint and
handshake", docs/transports.md).

`client_connection_limit` caps the sessions open on this node; `client_connection_rate_limit`
caps how many new connections per second it accepts. Both answer HTTP 503 before the upgrade.
The rate is a token bucket holding at most one second's worth of connections: a quiet node
accepts a burst of `rate` connections at once, then `rate` per second.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from aiohttp import web

from rotary.clock import Clock

if TYPE_CHECKING:
    from rotary.node.node import Node

__all__ = ["Admission", "ConnectionRateLimiter", "origin_allowed"]

_log = logging.getLogger("rotary.transports")


class ConnectionRateLimiter:
    """Allows `rate` new connections per second (bursts up to `rate`); `rate` 0: no limit.

    Time comes from `clock.monotonic()`.
    """

    def __init__(self, rate: int, clock: Clock) -> None:
        self._rate = float(rate)
        self._clock = clock
        self._tokens = self._rate
        self._last = clock.monotonic()

    def allow(self) -> bool:
        """Take one connection from the bucket; False when it is empty (refuse with 503)."""
        if self._rate <= 0:
            return True
        now = self._clock.monotonic()
        elapsed = max(now - self._last, 0.0)
        self._last = now
        self._tokens = min(self._rate, self._tokens + elapsed * self._rate)
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class Admission:
    """The checks every connection endpoint makes before serving a new connection.

    An Origin header outside `allowed_origins` gets 403 (`origin_allowed`); past
    `connection_limit` open sessions on `node`, or past the shared `rate`, 503. Limits of 0
    are off. One Admission serves every HTTP-streaming, SSE and unidirectional endpoint, so
    that the limits count their connections together.
    """

    def __init__(
        self,
        node: Node,
        *,
        allowed_origins: Sequence[str],
        connection_limit: int = 0,
        rate: ConnectionRateLimiter | None = None,
    ) -> None:
        self.node = node
        self.allowed_origins = tuple(allowed_origins)
        self._connection_limit = connection_limit
        self._rate = rate or ConnectionRateLimiter(0, node.clock)

    def origin_refusal(self, request: web.Request) -> web.Response | None:
        """403 when the request's Origin is not allowed, else None."""
        origin = request.headers.get("Origin")
        if origin_allowed(origin, self.allowed_origins):
            return None
        _log.info("%s refused: origin %r not allowed", request.path, origin)
        return web.Response(status=403, text="origin not allowed")

    def refusal(self, request: web.Request) -> web.Response | None:
        """The answer refusing a new connection (403 or 503), or None to serve it."""
        refused = self.origin_refusal(request)
        if refused is not None:
            return refused
        limit = self._connection_limit
        if limit > 0 and self.node.num_sessions >= limit:
            _log.info("%s refused: connection limit %d reached", request.path, limit)
            return web.Response(status=503, text="connection limit reached")
        if not self._rate.allow():
            _log.info("%s refused: connection rate limit reached", request.path)
            return web.Response(status=503, text="connection rate limit reached")
        return None


def origin_allowed(origin: str | None, allowed: Sequence[str]) -> bool:
    """docs/protocol.md "Endpoint and handshake": no list → only requests without Origin; ``*`` →
    all; else glob patterns."""
    if origin is None:
        return True
    if not allowed:
        return False
    origin = origin.lower()
    return any(p == "*" or fnmatch.fnmatchcase(origin, p.lower()) for p in allowed)
