"""A latency histogram that load workers fill and the parent merges.

Buckets are log-spaced, 1 % wide, keyed by an integer, so a worker holding a million
samples sends a few hundred numbers over its pipe, two histograms merge by adding counts,
and every percentile read from them is within 0.5 % of the sample it stands for (below
1 µs everything shares one bucket).
"""

from __future__ import annotations

import math

__all__ = ["Histogram"]

#: Width of a bucket: each one's upper edge is 1 % above its lower edge.
_STEP = math.log(1.01)
_FLOOR_NS = 1_000


class Histogram:
    """Counts of durations (nanoseconds in, seconds out) in 1 %-wide buckets."""

    def __init__(self, buckets: dict[int, int] | None = None) -> None:
        #: bucket key → samples; the key of a duration d is ⌊ln(d / 1 µs) / ln 1.01⌋.
        self.buckets: dict[int, int] = dict(buckets or {})

    def add_ns(self, ns: int) -> None:
        key = int(math.log(max(ns, _FLOOR_NS) / _FLOOR_NS) / _STEP)
        self.buckets[key] = self.buckets.get(key, 0) + 1

    def merge(self, buckets: dict[int, int]) -> None:
        """Add another histogram's `buckets` (as sent by a worker) to this one."""
        for key, n in buckets.items():
            self.buckets[key] = self.buckets.get(key, 0) + n

    @property
    def count(self) -> int:
        return sum(self.buckets.values())

    def percentiles(self, points: tuple[float, ...]) -> list[float | None]:
        """The nearest-rank percentiles `points` (0–100) in seconds, None when empty.

        Each is the middle of the bucket holding the sample of that rank.
        """
        total = self.count
        if not total:
            return [None for _ in points]
        ordered = sorted(self.buckets.items())
        return [_middle(_bucket_at(ordered, round(p / 100 * (total - 1)))) for p in points]


def _bucket_at(ordered: list[tuple[int, int]], rank: int) -> int:
    """The key of the bucket holding the sample of 0-based `rank`."""
    seen = 0
    for key, n in ordered:
        seen += n
        if seen > rank:
            return key
    return ordered[-1][0]


def _middle(key: int) -> float:
    return _FLOOR_NS * math.exp((key + 0.5) * _STEP) / 1e9
