"""The `engine` fixture: every contract test runs once on memory and once on Redis.

The Redis run needs `rotary.engines.redis` to import and Redis on 127.0.0.1:6379. When
either is missing it is skipped with the reason, except under CI (``CI`` set to a true
value), where it fails instead: CI must never pass by silently skipping an engine.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import NoReturn

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from rotary.clock import Clock, SystemClock
from rotary.engines.base import Broker, PresenceManager
from rotary.engines.memory import MemoryBroker, MemoryPresenceManager
from rotary.testing import ManualClock
from tests.engines.recording import RecordingHandler

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379


@dataclass
class EngineUnderTest:
    """One engine's broker and presence manager, started with a recording handler.

    `elapse(seconds)` lets time pass for the engine: the memory engine's `ManualClock`
    jumps instantly, while Redis keeps real time so the call really sleeps.
    """

    name: str
    broker: Broker
    presence: PresenceManager
    handler: RecordingHandler
    clock: Clock
    elapse: Callable[[float], Awaitable[None]]


def in_ci() -> bool:
    """Whether the CI environment variable asks for strictness."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test locally; fail it in CI so that a missing engine is never unnoticed."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[EngineUnderTest]:
    """A started engine whose handler records what it receives."""
    build = _memory_engine if request.param == "memory" else _redis_engine
    async with build() as built:
        yield built


@asynccontextmanager
async def _memory_engine() -> AsyncIterator[EngineUnderTest]:
    clock = ManualClock()
    counter = itertools.count(1)
    broker = MemoryBroker(clock, epoch_factory=lambda: f"epoch{next(counter)}")
    presence = MemoryPresenceManager(clock)
    handler = RecordingHandler()
    await broker.start(handler)

    async def elapse(seconds: float) -> None:
        clock.advance(seconds)

    try:
        yield EngineUnderTest("memory", broker, presence, handler, clock, elapse)
    finally:
        await broker.close()
        await presence.close()


@asynccontextmanager
async def _redis_engine() -> AsyncIterator[EngineUnderTest]:
    # Imported here so that the memory runs never depend on the Redis or config packages.
    try:
        from rotary.config.model import RedisSettings
        from rotary.engines.redis import RedisBroker, RedisPresenceManager
    except Exception as exc:
        skip_or_fail(f"the Redis engine (or its settings) does not import yet: {exc!r}")
    client = await _redis_client()
    prefix = f"rotary-test-{uuid.uuid4().hex[:8]}"
    settings = RedisSettings(addresses=(f"{REDIS_HOST}:{REDIS_PORT}",), prefix=prefix)
    clock = SystemClock()
    broker = RedisBroker(settings, node_id=uuid.uuid4().hex, clock=clock)
    presence = RedisPresenceManager(settings, clock=clock)
    handler = RecordingHandler()
    try:
        await broker.start(handler)
        yield EngineUnderTest("redis", broker, presence, handler, clock, asyncio.sleep)
    finally:
        await broker.close()
        await presence.close()
        await _delete_keys(client, prefix)
        await client.aclose()


async def _redis_client() -> aioredis.Redis:
    """A client to the test Redis, or skip/fail when it does not answer."""
    client = aioredis.Redis(
        host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0)
    )
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        skip_or_fail(f"Redis at {REDIS_HOST}:{REDIS_PORT} is unreachable: {exc!r}")
    return client


async def _delete_keys(client: aioredis.Redis, prefix: str) -> None:
    """Remove every key the test's engine created (they all contain the unique prefix)."""
    keys = [key async for key in client.scan_iter(match=f"*{prefix}*", count=500)]
    if keys:
        await client.delete(*keys)
