"""Public helpers for testing code that embeds Rotary: a manual clock."""

from __future__ import annotations

__all__ = ["ManualClock"]


class ManualClock:
    """A `rotary.clock.Clock` that moves only when told to."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self._now = now
        self._mono = 0.0

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by `seconds`."""
        self._now += seconds
        self._mono += seconds
