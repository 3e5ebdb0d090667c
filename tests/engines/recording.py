"""A `BrokerEventHandler` that records every event and lets tests await them."""

# ruff: noqa: ASYNC109 - the helpers take `timeout=` so that each wait reads as a sentence.

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from typing import TypeVar

from rotary.engines.base import ClientInfo, Publication, StreamPosition

__all__ = ["RecordingHandler"]

_T = TypeVar("_T")


class RecordingHandler:
    """Records publications, joins, leaves and control messages as they arrive.

    The `wait_*` helpers return once at least `n` events of that kind are recorded (the
    first `n` of them, in arrival order) and fail with `AssertionError` after `timeout` seconds.
    """

    def __init__(self) -> None:
        self.publications: dict[str, list[tuple[Publication, StreamPosition]]] = defaultdict(list)
        self.joins: dict[str, list[ClientInfo]] = defaultdict(list)
        self.leaves: dict[str, list[ClientInfo]] = defaultdict(list)
        self.controls: list[bytes] = []
        self._changed = asyncio.Event()

    def handle_publication(self, channel: str, pub: Publication, sp: StreamPosition) -> None:
        self.publications[channel].append((pub, sp))
        self._notify()

    def handle_join(self, channel: str, info: ClientInfo) -> None:
        self.joins[channel].append(info)
        self._notify()

    def handle_leave(self, channel: str, info: ClientInfo) -> None:
        self.leaves[channel].append(info)
        self._notify()

    def handle_control(self, data: bytes) -> None:
        self.controls.append(data)
        self._notify()

    async def wait_publications(
        self, channel: str, n: int, *, timeout: float = 2.0
    ) -> list[tuple[Publication, StreamPosition]]:
        """The first `n` publications delivered for `channel`, with their positions."""
        return await self._wait(lambda: self.publications[channel], n, timeout)

    async def wait_joins(self, channel: str, n: int, *, timeout: float = 2.0) -> list[ClientInfo]:
        return await self._wait(lambda: self.joins[channel], n, timeout)

    async def wait_leaves(self, channel: str, n: int, *, timeout: float = 2.0) -> list[ClientInfo]:
        return await self._wait(lambda: self.leaves[channel], n, timeout)

    async def wait_controls(self, n: int, *, timeout: float = 2.0) -> list[bytes]:
        return await self._wait(lambda: self.controls, n, timeout)

    def _notify(self) -> None:
        # Waiters hold the old event; replacing it wakes them all exactly once.
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait(self, events: Callable[[], list[_T]], n: int, timeout: float) -> list[_T]:
        try:
            async with asyncio.timeout(timeout):
                while len(events()) < n:
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"expected {n} events within {timeout}s, got {len(events())}"
            ) from None
        return events()[:n]
