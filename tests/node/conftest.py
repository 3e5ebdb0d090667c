"""Fixtures for node tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.node.fakes import Harness

MakeHarness = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def make_harness() -> AsyncIterator[MakeHarness]:
    """Factory: `await make_harness(settings=..., channels=...)` → a started harness."""
    made: list[Harness] = []

    async def make(**kwargs: Any) -> Harness:
        h = Harness(**kwargs)
        await h.node.start()
        made.append(h)
        return h

    yield make
    for h in made:
        h.node.disconnect_all()
        await h.node.close()


@pytest.fixture
async def harness(make_harness: MakeHarness) -> Harness:
    return await make_harness()
