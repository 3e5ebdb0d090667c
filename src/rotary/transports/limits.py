"""Admission limits checked before a WebSocket upgrade (docs/protocol.md "Endpoint and handshake").

`client_connection_limit` caps the sessions open on this node; `client_connection_rate_limit`
caps how many new connections per second it accepts. Both answer HTTP 503 before the upgrade.
The rate is a token bucket holding at most one second's worth of connections: a quiet node
accepts a burst of `rate` connections at once, then `rate` per second.
"""

from __future__ import annotations

from rotary.clock import Clock

__all__ = ["ConnectionRateLimiter"]


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
