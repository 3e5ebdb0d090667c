"""Per-client outbound queue and its writer: the only place a client's bytes are written.

`Outbox.push` never awaits, so the hub can fan a publication out to every subscriber in one
synchronous loop. The writer task drains the queue, joining queued messages into one frame
(spec §1.2), and bounds every write by `write_timeout`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Protocol

from rotary.protocol.codes import Disconnect, DisconnectCode

__all__ = ["Outbox", "Transport"]

#: Most messages joined into one frame (Centrifugo packs up to 16; more saves syscalls).
_MAX_BATCH = 64


class Transport(Protocol):
    """One client connection's byte channel (WebSocket in production, a recorder in tests)."""

    async def write(self, frame: bytes) -> None:
        """Send one text frame. Raises on failure."""

    async def close(self, disconnect: Disconnect) -> None:
        """Close with `disconnect`'s code and reason. Idempotent; never raises."""


class Outbox:
    """Queued frames of one client and the loop that writes them.

    `on_failure` is called (once) with 3008 when the queued bytes exceed `max_size`, or with
    3009 when a write fails or outlasts `write_timeout`.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        max_size: int,
        write_timeout: float,
        on_failure: Callable[[Disconnect], None],
    ) -> None:
        self._transport = transport
        self._max_size = max_size
        self._write_timeout = write_timeout
        self._on_failure = on_failure
        self._items: deque[bytes] = deque()
        self._size = 0
        self._wake = asyncio.Event()
        self._closing: Disconnect | None = None
        self._flush_first = True
        self.closed = False

    def push(self, message: bytes) -> None:
        """Queue one encoded message; never awaits."""
        if self._closing is not None:
            return
        self._items.append(message)
        self._size += len(message)
        if self._size > self._max_size > 0:
            self._fail(DisconnectCode.SLOW)
            return
        self._wake.set()

    def close(self, disconnect: Disconnect, *, flush: bool = True) -> None:
        """Stop accepting messages; write the queued ones if `flush`, then close."""
        if self._closing is not None:
            return
        self._closing = disconnect
        self._flush_first = flush
        self._wake.set()

    async def run(self) -> None:
        """Write queued messages until closed, then close the transport."""
        try:
            while self._closing is None or (self._items and self._flush_first):
                await self._wake.wait()
                self._wake.clear()
                if self._closing is None or self._flush_first:
                    await self._drain()
        finally:
            self.closed = True
            await self._transport.close(self._closing or DisconnectCode.CONNECTION_CLOSED)

    async def _drain(self) -> None:
        items = self._items
        while items and (self._closing is None or self._flush_first):
            count = min(len(items), _MAX_BATCH)
            batch = [items.popleft() for _ in range(count)]
            self._size -= sum(len(m) for m in batch)
            frame = batch[0] if count == 1 else b"\n".join(batch)
            try:
                async with asyncio.timeout(self._write_timeout or None):
                    await self._transport.write(frame)
            except (TimeoutError, OSError, ConnectionError, RuntimeError):
                self._fail(DisconnectCode.WRITE_ERROR)
                return

    def _fail(self, disconnect: Disconnect) -> None:
        self._items.clear()
        self._size = 0
        self.close(disconnect, flush=False)
        self._on_failure(disconnect)
