"""Map channels on a Redis Cluster (``map_broker.redis.cluster_address``): two nodes share the
state, stream and live changes, and expired keys are removed, with each channel's keys and its
partition's expiry index in one hash slot. The cluster (three masters) is private to the module."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.functional.cluster_helpers import (
    RedisProcess,
    closing_ws,
    redis_cluster_of_three,
    start_node,
)
from tests.functional.conftest import API_KEY, SECRET, ServerHandle, make_token

pytestmark = pytest.mark.redis

PREFIX = f"rotary-mapcl-{uuid.uuid4().hex[:10]}"
#: Enough channels that they fall into several partitions, and so on several masters.
CHANNELS = [f"game:{n}" for n in range(12)]


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisProcess]]:
    with redis_cluster_of_three(tmp_path_factory.mktemp("map-cluster")) as masters:
        yield masters


@pytest.fixture(scope="module")
def nodes(
    tmp_path_factory: pytest.TempPathFactory, redis_cluster: list[RedisProcess]
) -> Iterator[tuple[ServerHandle, ServerHandle]]:
    """Nodes A and B (memory engine) whose map broker is the Redis Cluster."""
    game = {
        "name": "game",
        "subscription_type": "map",
        "allow_subscribe_for_client": True,
        "map": {"mode": "recoverable", "key_ttl": "1s"},
    }
    redis = {"cluster_address": [m.address for m in redis_cluster], "prefix": PREFIX}
    config = {
        "token_hmac_secret_key": SECRET,
        "api_key": API_KEY,
        "map_broker": {"type": "redis", "redis": {**redis, "cleanup_interval": "200ms"}},
        "channel": {"namespaces": [game]},
    }
    folder = tmp_path_factory.mktemp("map-cluster-nodes")
    a = start_node(config, folder, "a")
    try:
        b = start_node(config, folder, "b")
    except BaseException:
        a.stop()
        raise
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture
async def ws_connect(ws_connect: Any) -> AsyncIterator[Any]:
    async with closing_ws(ws_connect) as connect:
        yield connect


async def _subscribed(server: ServerHandle, ws_connect: Any, channel: str) -> tuple[Any, dict]:
    client = await ws_connect(server)
    assert "connect" in await client.request({"id": 1, "connect": {"token": make_token()}})
    reply = await client.request(
        {"id": 2, "subscribe": {"channel": channel, "type": 1, "phase": 2}}
    )
    return client, reply["subscribe"]


async def test_writes_through_one_node_reach_state_and_subscribers_on_the_other(
    nodes: tuple[ServerHandle, ServerHandle], redis_cluster: list[RedisProcess], ws_connect: Any
) -> None:
    a, b = nodes
    for channel in CHANNELS:
        b.api("map_publish", {"channel": channel, "key": "first", "data": 1})
    watcher, reply = await _subscribed(a, ws_connect, "game:0")
    written = b.api("map_publish", {"channel": "game:0", "key": "second", "data": 2})["result"]
    push = (await watcher.push())["push"]

    assert [(e["key"], e["data"]) for e in reply["state"]] == [("first", 1)]
    assert (push["pub"]["key"], push["pub"]["offset"]) == ("second", written["offset"])
    for channel in CHANNELS[1:]:
        assert a.api("map_stats", {"channel": channel})["result"] == {"num_keys": 1}
    holding = [m for m in redis_cluster if m.keys(f"{PREFIX}.map.meta.*")]
    assert len(holding) > 1  # the channels' partitions sit on several masters


async def test_a_key_past_its_ttl_is_removed_and_subscribers_see_it_go(
    nodes: tuple[ServerHandle, ServerHandle], ws_connect: Any
) -> None:
    a, b = nodes
    watcher, _ = await _subscribed(a, ws_connect, "game:ttl")
    b.api("map_publish", {"channel": "game:ttl", "key": "brief", "data": 1})

    written = (await watcher.push())["push"]["pub"]
    gone = (await watcher.push())["push"]["pub"]

    assert (written["key"], written.get("removed")) == ("brief", None)
    assert (gone["key"], gone["removed"], gone["offset"]) == ("brief", True, 2)
    assert b.api("map_stats", {"channel": "game:ttl"})["result"] == {"num_keys": 0}
