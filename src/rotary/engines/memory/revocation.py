"""`MemoryRevocationStore`: revocation records of a single node, kept in its memory."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rotary.clock import Clock
from rotary.engines.revocation import (
    RevocationEvent,
    RevocationListener,
    RevocationTable,
    TokenIdentity,
    call_listeners,
    record_expiry,
)

__all__ = ["MemoryRevocationStore"]


class MemoryRevocationStore:
    """A `rotary.engines.revocation.RevocationStore` for one node.

    Records live as long as the process (a restart forgets them: use the Redis store when
    that matters). Listeners are called synchronously, before the write method returns,
    once per record that changed.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._table = RevocationTable()
        self._listeners: list[RevocationListener] = []

    async def start(self) -> None:
        """Nothing to load."""

    async def close(self) -> None:
        """Nothing to release; records stay readable."""

    def add_listener(self, fn: RevocationListener) -> None:
        self._listeners.append(fn)

    async def revoke_token(self, jti: str, *, expire_at: int) -> None:
        now = self._clock.now()
        expiry = record_expiry(expire_at, now)
        if expiry is not None:
            self._emit(self._table.merge_token(jti, expiry, now))

    async def invalidate_user_tokens(
        self, user: str, *, issued_before: int, expire_at: int, channel: str = ""
    ) -> None:
        now = self._clock.now()
        expiry = record_expiry(expire_at, now)
        if expiry is not None:
            event = self._table.merge_user(
                user, channel, issued_before=issued_before, expire_at=expiry, now=now
            )
            self._emit(event)

    def is_revoked(self, token: TokenIdentity, *, now: float) -> str | None:
        table = self._table
        return table.check(token, now) if table.holding else None

    def _emit(self, event: RevocationEvent | None) -> None:
        if event is not None:
            call_listeners(self._listeners, event)


if TYPE_CHECKING:
    from rotary.engines.revocation import RevocationStore

    def _conforms(store: MemoryRevocationStore) -> RevocationStore:
        """Fails type checking if the class drifts from its protocol."""
        return store
