"""The clock seam: logic is handed a `Clock` and never reads the wall clock itself."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Time as logic sees it."""

    def now(self) -> float:
        """Unix time in seconds (wall clock: token claims are compared with it)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for timeouts and intervals)."""


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()
