"""The Redis map broker's own settings (``map_broker.redis``): cleanup batch and interval,
idempotency TTL and skip_pub_sub, against the shared Redis under a unique prefix."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from rotary.channels.maps import MapSettings
from rotary.config.model import MapRedisSettings, RedisSettings
from rotary.engines.base import StreamPosition
from rotary.engines.maps import MapPublication, MapPublishOptions
from rotary.engines.redis.maps import RedisMapBroker
from rotary.testing import ManualClock
from tests.engines.conftest import REDIS_HOST, REDIS_PORT, _delete_keys, _redis_client

pytestmark = pytest.mark.redis

RECOVERABLE = MapSettings("recoverable", key_ttl=10.0, stream_size=100, stream_ttl=60.0)
PLAIN = MapPublishOptions()
Change = tuple[str, MapPublication, StreamPosition]
Start = Callable[..., Any]


@pytest.fixture
async def start_broker() -> AsyncIterator[Start]:
    """Start a broker with the given `MapRedisSettings` fields; it returns (broker, changes)."""
    client = await _redis_client()
    started: list[tuple[RedisMapBroker, str]] = []

    async def start(clock: ManualClock, **fields: Any) -> tuple[RedisMapBroker, list[Change]]:
        prefix = f"rotary-test-{uuid.uuid4().hex[:8]}"
        redis = RedisSettings(addresses=(f"{REDIS_HOST}:{REDIS_PORT}",), prefix=prefix)
        broker = RedisMapBroker(MapRedisSettings(redis=redis, **fields), clock=clock)
        changes: list[Change] = []
        broker.start(lambda c, p, sp: changes.append((c, p, sp)), {"m": RECOVERABLE}.get)
        await broker.wait_ready()
        started.append((broker, prefix))
        return broker, changes

    try:
        yield start
    finally:
        for broker, prefix in started:
            await broker.close()
            await _delete_keys(client, prefix)
        await client.aclose()


async def test_cleanup_batch_size_caps_the_keys_one_channel_loses_per_round(
    start_broker: Start,
) -> None:
    clock = ManualClock()
    broker, _ = await start_broker(clock, cleanup_batch_size=2)
    for key in "abcde":
        await broker.publish("m", key, b"1", RECOVERABLE, PLAIN)
    clock.advance(11)

    counts = []
    for _ in range(3):
        await broker.expire()
        counts.append(await broker.stats("m", RECOVERABLE))

    assert counts == [3, 1, 0]


async def test_idempotent_result_ttl_is_how_long_a_repeat_is_suppressed(
    start_broker: Start,
) -> None:
    broker, _ = await start_broker(ManualClock(), idempotent_result_ttl=2.0)
    opts = MapPublishOptions(idempotency_key="once")
    await broker.publish("m", "a", b"1", RECOVERABLE, opts)
    client = await _redis_client()
    try:
        keys = [k async for k in client.scan_iter(match=f"{broker._prefix}.map.result.*")]
        ttl = await client.pttl(keys[0])
    finally:
        await client.aclose()

    assert len(keys) == 1 and 1000 < ttl <= 2000
    again = await broker.publish("m", "a", b"2", RECOVERABLE, opts)
    assert again.suppress_reason == "idempotency"


async def test_cleanup_interval_is_the_brokers_expire_interval(start_broker: Start) -> None:
    off, _ = await start_broker(ManualClock(), cleanup_interval=-1.0)
    fast, _ = await start_broker(ManualClock(), cleanup_interval=0.25)
    default, _ = await start_broker(ManualClock(), cleanup_interval=0.0)

    assert (off.expire_interval, fast.expire_interval, default.expire_interval) == (-1.0, 0.25, 1.0)


async def test_skip_pub_sub_keeps_state_and_stream_but_publishes_nothing(
    start_broker: Start,
) -> None:
    broker, changes = await start_broker(ManualClock(), skip_pub_sub=True)
    client = await _redis_client()
    try:
        async with client.pubsub() as pubsub:
            await pubsub.psubscribe(f"{broker._prefix}.*")
            await broker.publish("m", "a", b"1", RECOVERABLE, PLAIN)
            await broker.remove("m", "a", RECOVERABLE)
            await broker.publish("m", "b", b"2", RECOVERABLE, PLAIN)
            heard = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.3)
    finally:
        await client.aclose()
    await asyncio.sleep(0)

    state = await broker.read_state("m", RECOVERABLE)
    stream = await broker.read_stream("m", RECOVERABLE, since=None)
    assert [(p.key, p.data) for p in state.entries] == [("b", b"2")]
    assert [(p.key, p.removed) for p in stream.publications] == [
        ("a", False),
        ("a", True),
        ("b", False),
    ]
    assert heard is None and changes == []
