"""The Redis presence manager against the shared Redis, on a manual clock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from rotary.config.model import RedisSettings
from rotary.engines.base import ClientInfo, PresenceStats
from rotary.engines.redis import RedisPresenceManager
from rotary.testing import ManualClock
from tests.engines.conftest import REDIS_HOST, REDIS_PORT, skip_or_fail

pytestmark = pytest.mark.redis

ANN_1 = ClientInfo(user="ann", client="c1", conn_info=b'{"n":"Ann"}')
ANN_2 = ClientInfo(user="ann", client="c2", chan_info=b'{"r":1}')
BOB = ClientInfo(user="bob", client="c3")


@pytest.fixture
async def client() -> AsyncIterator[aioredis.Redis]:
    redis_client = aioredis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=1.0)
    try:
        await redis_client.ping()
    except Exception as exc:
        await redis_client.aclose()
        skip_or_fail(f"Redis at {REDIS_HOST}:{REDIS_PORT} is unreachable: {exc!r}")
    yield redis_client
    await redis_client.aclose()


@pytest.fixture
async def prefix(client: aioredis.Redis) -> AsyncIterator[str]:
    name = f"rotary-test-{uuid.uuid4().hex[:8]}"
    yield name
    keys = [key async for key in client.scan_iter(match=f"{name}*")]
    if keys:
        await client.delete(*keys)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def presence(prefix: str, clock: ManualClock) -> AsyncIterator[RedisPresenceManager]:
    manager = RedisPresenceManager(RedisSettings(prefix=prefix), clock=clock)
    yield manager
    await manager.close()


async def test_stats_count_clients_and_distinct_users(presence: RedisPresenceManager) -> None:
    for info in (ANN_1, ANN_2, BOB):
        await presence.add_presence("ch", info.client, info, ttl=30)

    assert await presence.presence("ch") == {"c1": ANN_1, "c2": ANN_2, "c3": BOB}
    assert await presence.presence_stats("ch") == PresenceStats(num_clients=3, num_users=2)


async def test_an_entry_not_refreshed_within_its_ttl_disappears_from_redis_on_read(
    presence: RedisPresenceManager, clock: ManualClock, client: aioredis.Redis, prefix: str
) -> None:
    await presence.add_presence("ch", "c1", ANN_1, ttl=10)
    await presence.add_presence("ch", "c3", BOB, ttl=10)
    clock.advance(6)
    await presence.add_presence("ch", "c3", BOB, ttl=10)
    clock.advance(6)

    assert await presence.presence("ch") == {"c3": BOB}
    assert await client.hkeys(f"{prefix}.presence.data.{{ch}}") == [b"c3"]
    assert await client.zrange(f"{prefix}.presence.expire.{{ch}}", 0, -1) == [b"c3"]


async def test_removing_an_entry_twice_is_not_an_error(presence: RedisPresenceManager) -> None:
    await presence.add_presence("ch", "c1", ANN_1, ttl=30)

    await presence.remove_presence("ch", "c1", "ann")
    await presence.remove_presence("ch", "c1", "ann")

    assert await presence.presence_stats("ch") == PresenceStats(num_clients=0, num_users=0)


async def test_presence_keys_expire_by_themselves_when_nobody_refreshes(
    presence: RedisPresenceManager, client: aioredis.Redis, prefix: str
) -> None:
    await presence.add_presence("ch", "c1", ANN_1, ttl=120)

    ttl_ms = await client.pttl(f"{prefix}.presence.data.{{ch}}")

    assert 60_000 < ttl_ms <= 120_000


async def test_close_is_idempotent(presence: RedisPresenceManager) -> None:
    await presence.add_presence("ch", "c1", ANN_1, ttl=30)

    await presence.close()
    await presence.close()
