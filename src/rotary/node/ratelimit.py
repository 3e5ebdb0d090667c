"""Per-connection command rate limits and error budget (docs/operations.md "A client that
floods commands"), Centrifugo PRO's model: opt-in, token buckets, no paid tier.

* Commands: a bucket of ``client.command_rate_burst`` tokens refilled at
  ``client.command_rate_limit`` per second; every command after connect takes one (pongs
  take none). A command finding the bucket empty is answered with error 111 "too many
  requests" (temporary: the SDKs retry) and not run.
* Errors: a bucket of ``client.error_limit`` tokens refilled over
  ``client.error_limit_interval``; every error reply takes one, 111 included. A connection
  that empties it is disconnected with 3509 "too many errors" (no reconnect).

Time comes from a monotonic clock passed in; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable

from rotary.config.model import ClientSettings

__all__ = ["CommandLimiter", "TokenBucket", "limiter_for"]


class TokenBucket:
    """`capacity` tokens, refilled continuously at `rate` per second, starting full."""

    __slots__ = ("_capacity", "_rate", "_stamp", "_tokens")

    def __init__(self, *, rate: float, capacity: float, now: float) -> None:
        self._rate = rate
        self._capacity = capacity
        self._tokens = capacity
        self._stamp = now

    def take(self, now: float) -> bool:
        """Take one token at time `now`; False (taking nothing) when there is none."""
        tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if tokens < 1.0:
            self._tokens = tokens
            return False
        self._tokens = tokens - 1.0
        return True


class CommandLimiter:
    """The two buckets of one connection; either may be absent (its limit is 0: off)."""

    __slots__ = ("_commands", "_errors", "_time")

    def __init__(
        self,
        *,
        time: Callable[[], float],
        command_rate: float,
        command_burst: int,
        error_limit: int,
        error_interval: float,
    ) -> None:
        now = time()
        self._time = time
        self._commands = (
            TokenBucket(rate=command_rate, capacity=command_burst or command_rate, now=now)
            if command_rate > 0
            else None
        )
        self._errors = (
            TokenBucket(rate=error_limit / error_interval, capacity=error_limit, now=now)
            if error_limit > 0 and error_interval > 0
            else None
        )

    @property
    def enabled(self) -> bool:
        return self._commands is not None or self._errors is not None

    def allow_command(self) -> bool:
        """One command may run now (False: answer it with 111)."""
        return self._commands is None or self._commands.take(self._time())

    def allow_error(self) -> bool:
        """One more error reply is within budget (False: disconnect with 3509)."""
        return self._errors is None or self._errors.take(self._time())


def limiter_for(settings: ClientSettings, time: Callable[[], float]) -> CommandLimiter | None:
    """The limiter a new connection gets, or None when both limits are off (no cost)."""
    if settings.command_rate_limit <= 0 and settings.error_limit <= 0:
        return None  # decided before building one: most servers set no limit
    limiter = CommandLimiter(
        time=time,
        command_rate=settings.command_rate_limit,
        command_burst=settings.command_rate_burst,
        error_limit=settings.error_limit,
        error_interval=settings.error_limit_interval,
    )
    return limiter if limiter.enabled else None
