"""The memory revocation store: synchronous listeners, failing listeners, many records."""

from __future__ import annotations

import logging

import pytest

from rotary.engines.memory import MemoryRevocationStore
from rotary.engines.revocation import (
    REVOKED_JTI,
    REVOKED_USER,
    RevocationEvent,
    RevocationTable,
    TokenIdentity,
)
from rotary.testing import ManualClock


async def test_listeners_run_before_the_write_returns() -> None:
    clock = ManualClock()
    store = MemoryRevocationStore(clock)
    seen: list[str | None] = []
    token = TokenIdentity("connection", "42", "t-1", None)
    store.add_listener(lambda event: seen.append(store.is_revoked(token, now=clock.now())))

    await store.revoke_token("t-1", expire_at=0)

    assert seen == [REVOKED_JTI]


async def test_a_failing_listener_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryRevocationStore(ManualClock())
    received: list[RevocationEvent] = []

    def broken(event: RevocationEvent) -> None:
        raise RuntimeError("listener bug")

    store.add_listener(broken)
    store.add_listener(received.append)
    with caplog.at_level(logging.ERROR, logger="rotary.revocation"):
        await store.revoke_token("t-1", expire_at=0)

    assert [e.jti for e in received] == ["t-1"]
    assert "a revocation listener failed" in caplog.text


async def test_expired_records_leave_the_table() -> None:
    clock = ManualClock()
    store = MemoryRevocationStore(clock)
    now = int(clock.now())
    for n in range(1000):
        await store.revoke_token(f"t-{n}", expire_at=now + 1 + n % 10)
    clock.advance(10)

    assert store.is_revoked(TokenIdentity("connection", "", "t-9", None), now=clock.now()) is None
    assert len(store._table) == 0


def test_the_table_holds_records_until_the_last_one_expires() -> None:
    table = RevocationTable()
    token = TokenIdentity("subscription", "42", "t-1", 5, "$c")
    assert not table.holding and table.check(token, 100) is None
    table.merge_token("t-1", 110, 100)
    table.merge_user("42", "$c", issued_before=10, expire_at=120, now=100)
    assert table.holding and table.check(token, 100) == REVOKED_JTI
    table.purge(110)
    assert table.holding and table.check(token, 110) == REVOKED_USER
    table.purge(120)
    assert not table.holding and len(table) == 0
