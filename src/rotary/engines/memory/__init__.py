"""The in-memory engine: broker and presence for a single node, no external service."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rotary.clock import Clock
from rotary.engines.memory.broker import IDEMPOTENCY_TTL, MemoryBroker, random_epoch
from rotary.engines.memory.presence import MemoryPresenceManager
from rotary.engines.memory.revocation import MemoryRevocationStore
from rotary.engines.memory.stream import HistoryStream

__all__ = [
    "IDEMPOTENCY_TTL",
    "HistoryStream",
    "MemoryBroker",
    "MemoryEngine",
    "MemoryPresenceManager",
    "MemoryRevocationStore",
    "random_epoch",
]


class MemoryEngine:
    """A `MemoryBroker` and a `MemoryPresenceManager` sharing one clock."""

    def __init__(
        self,
        clock: Clock,
        *,
        epoch_factory: Callable[[], str] | None = None,
        history_meta_ttl: float = 0.0,
    ) -> None:
        self.broker = MemoryBroker(
            clock, epoch_factory=epoch_factory, history_meta_ttl=history_meta_ttl
        )
        self.presence = MemoryPresenceManager(clock)

    async def close(self) -> None:
        """Close the broker, then the presence manager. Idempotent."""
        await self.broker.close()
        await self.presence.close()


if TYPE_CHECKING:
    from rotary.engines.base import Broker, PresenceManager

    def _conforms(b: MemoryBroker, p: MemoryPresenceManager) -> tuple[Broker, PresenceManager]:
        """Fails type checking if either class drifts from its protocol."""
        return b, p
