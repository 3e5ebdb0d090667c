"""Small helpers for building scenario results (ratios, curves, rounding)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["cumulative_curve", "ratio", "rounded"]


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """`numerator / denominator`, or None when either is missing, NaN or the divisor is 0."""
    if numerator is None or denominator is None:
        return None
    if math.isnan(numerator) or math.isnan(denominator) or denominator == 0:
        return None
    return round(numerator / denominator, 3)


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None or math.isnan(value) else round(value, digits)


def cumulative_curve(
    times: list[float], *, xlabel: str, ylabel: str, points: int = 200
) -> dict[str, Any]:
    """A count-over-time curve from sorted event times, thinned to about `points` points."""
    if not times:
        return {"x": [], "y": [], "xlabel": xlabel, "ylabel": ylabel}
    stride = max(1, len(times) // points)
    idx = list(range(0, len(times), stride))
    if idx[-1] != len(times) - 1:
        idx.append(len(times) - 1)
    return {
        "x": [round(times[i], 4) for i in idx],
        "y": [i + 1 for i in idx],
        "xlabel": xlabel,
        "ylabel": ylabel,
    }
