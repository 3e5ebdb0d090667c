"""One channel's history stream, kept in process memory. Pure logic: time is passed in.

The stream follows Centrifugo's memory broker: publications expire together once
`history_ttl` seconds pass without a publication (the position and epoch stay), and the
whole stream, epoch included, is forgotten after `history_meta_ttl` seconds without being
published to or read (the next access then starts a new epoch at offset 0).
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import replace

from rotary.engines.base import HistoryFilter, Publication, StreamPosition

__all__ = ["HistoryStream"]


class HistoryStream:
    """Publications of one channel, the top offset and the epoch.

    `expires_at` and `forget_at` are monotonic seconds (None: never). The owner checks
    `is_forgotten(now)` before using the stream and drops it when true.
    """

    def __init__(self, epoch: str) -> None:
        self.epoch = epoch
        self.top = 0
        self._pubs: deque[Publication] = deque()
        self._expires_at: float | None = None
        self._forget_at: float | None = None

    @property
    def position(self) -> StreamPosition:
        """The offset of the newest publication ever added, with the epoch."""
        return StreamPosition(self.top, self.epoch)

    def is_forgotten(self, now: float) -> bool:
        """Whether the meta TTL has passed, so the stream must be replaced by a new one."""
        return self._forget_at is not None and now >= self._forget_at

    def touch(self, now: float, meta_ttl: float) -> None:
        """Keep the stream's meta alive for `meta_ttl` more seconds (no change if 0)."""
        if meta_ttl > 0:
            self._forget_at = now + meta_ttl

    def add(self, pub: Publication, *, now: float, size: int, ttl: float) -> Publication:
        """Append `pub` at the next offset, keep at most `size`, and return it numbered."""
        self.expire(now)
        self.top += 1
        numbered = replace(pub, offset=self.top)
        self._pubs.append(numbered)
        while len(self._pubs) > size:
            self._pubs.popleft()
        self._expires_at = now + ttl
        return numbered

    def expire(self, now: float) -> None:
        """Drop every publication once the history TTL has passed since the last add."""
        if self._expires_at is not None and now >= self._expires_at:
            self._pubs.clear()
            self._expires_at = None

    def clear(self) -> None:
        """Forget the publications; the position and epoch stay."""
        self._pubs.clear()

    def select(self, flt: HistoryFilter) -> list[Publication]:
        """The publications `flt` asks for (its epoch is checked by the caller)."""
        if flt.limit == 0:
            return []
        if flt.reverse:
            bound = flt.since.offset if flt.since is not None else self.top + 1
            chosen = (p for p in reversed(self._pubs) if p.offset < bound)
        else:
            after = flt.since.offset if flt.since is not None else 0
            chosen = (p for p in self._pubs if p.offset > after)
        if flt.limit < 0:
            return list(chosen)
        return list(itertools.islice(chosen, flt.limit))
