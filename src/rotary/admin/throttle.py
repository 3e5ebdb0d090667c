"""Login throttling: a fixed number of failed admin logins per address and time window.

Pure: the caller passes the time. Memory is bounded: at most `max_addresses` addresses are
remembered, the stalest forgotten first, so a flood from many addresses cannot grow it.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["LoginThrottle"]


class LoginThrottle:
    """Allows `limit` failed attempts per address within `window` seconds.

    `retry_after(address, now)` is 0 while the address may try, else the seconds until its
    oldest counted failure leaves the window. A success clears the address's failures.
    """

    def __init__(self, *, limit: int = 5, window: float = 60.0, max_addresses: int = 10_000):
        self._limit = limit
        self._window = window
        self._max = max_addresses
        self._failures: OrderedDict[str, list[float]] = OrderedDict()

    def retry_after(self, address: str, now: float) -> float:
        """Seconds `address` must wait before its next attempt (0: it may try now)."""
        times = self._recent(address, now)
        if len(times) < self._limit:
            return 0.0
        return max(times[0] + self._window - now, 0.0)

    def failed(self, address: str, now: float) -> None:
        """Count a failed attempt of `address` at `now`."""
        times = self._recent(address, now)
        times.append(now)
        self._failures[address] = times
        self._failures.move_to_end(address)
        while len(self._failures) > self._max:
            self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        """Forget the failures of `address`."""
        self._failures.pop(address, None)

    def _recent(self, address: str, now: float) -> list[float]:
        times = self._failures.get(address, [])
        return [t for t in times if t > now - self._window][-self._limit :]
