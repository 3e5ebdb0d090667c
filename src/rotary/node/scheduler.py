"""The timer seam: sessions schedule callbacks through a `Scheduler`, never the loop itself.

Production uses `LoopScheduler` (asyncio's ``call_later``); tests use a manual scheduler
driven together with a manual clock, so that expiry and ping timers run in milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

__all__ = ["LoopScheduler", "Scheduler", "TimerHandle"]


class TimerHandle(Protocol):
    """A scheduled callback."""

    def cancel(self) -> None:
        """Make sure the callback does not run (no effect once it ran)."""


class Scheduler(Protocol):
    """Runs plain callbacks later, on the event loop thread."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Run `callback` after `delay` seconds (at once when `delay` ≤ 0)."""


class LoopScheduler:
    """`Scheduler` on the running asyncio loop."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(max(delay, 0.0), callback)
