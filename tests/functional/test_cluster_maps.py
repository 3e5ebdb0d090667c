"""Map channels over the Redis map broker: two nodes share state, stream and live changes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.functional.cluster_helpers import (
    SHARED_REDIS,
    RedisProcess,
    pair_config,
    shared_redis_or_skip,
    start_node,
)
from tests.functional.conftest import ServerHandle, make_token

ENGINE_PREFIX = f"rotary-maps-{uuid.uuid4().hex[:10]}"
MAP_PREFIX = f"rotary-mapb-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def map_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """A private Redis for the map broker, apart from the engine's shared one."""
    server = RedisProcess(tmp_path_factory.mktemp("map-redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def nodes(
    tmp_path_factory: pytest.TempPathFactory, map_redis: RedisProcess
) -> Iterator[tuple[ServerHandle, ServerHandle]]:
    """Nodes A and B: the engine on the shared Redis, map channels on `map_redis`."""
    tmp_path = tmp_path_factory.mktemp("cluster-maps")
    shared_redis_or_skip()
    game = {
        "name": "game",
        "subscription_type": "map",
        "allow_subscribe_for_client": True,
        "map": {"mode": "recoverable", "key_ttl": "60s"},
    }
    map_broker = {"type": "redis", "redis": {"address": map_redis.address, "prefix": MAP_PREFIX}}
    config = pair_config(ENGINE_PREFIX, map_broker=map_broker, namespaces=[game])
    a = start_node(config, tmp_path, "a")
    try:
        b = start_node(config, tmp_path, "b")
    except BaseException:
        a.stop()
        raise
    yield a, b
    a.stop()
    b.stop()


async def _subscribed(server: ServerHandle, ws_connect: Any, channel: str) -> tuple[Any, dict]:
    client = await ws_connect(server)
    assert "connect" in await client.request({"id": 1, "connect": {"token": make_token()}})
    reply = await client.request(
        {"id": 2, "subscribe": {"channel": channel, "type": 1, "phase": 2}}
    )
    return client, reply["subscribe"]


async def test_a_write_through_one_node_reaches_the_state_and_subscribers_of_the_other(
    nodes: tuple[ServerHandle, ServerHandle], ws_connect: Any
) -> None:
    a, b = nodes
    b.api("map_publish", {"channel": "game:1", "key": "first", "data": 1})
    watcher, reply = await _subscribed(a, ws_connect, "game:1")
    assert [(e["key"], e["data"]) for e in reply["state"]] == [("first", 1)]

    written = b.api("map_publish", {"channel": "game:1", "key": "second", "data": 2})["result"]
    push = (await watcher.push())["push"]

    assert (push["pub"]["key"], push["pub"]["data"]) == ("second", 2)
    assert push["pub"]["offset"] == written["offset"] == 2
    assert reply["epoch"] == written["epoch"]
    assert a.api("map_stats", {"channel": "game:1"})["result"] == {"num_keys": 2}


async def test_a_subscriber_recovers_through_another_node(
    nodes: tuple[ServerHandle, ServerHandle], ws_connect: Any
) -> None:
    a, b = nodes
    first = a.api("map_publish", {"channel": "game:2", "key": "k", "data": 1})["result"]
    b.api("map_remove", {"channel": "game:2", "key": "k"})
    client = await ws_connect(b)
    assert "connect" in await client.request({"id": 1, "connect": {"token": make_token()}})

    since = {"offset": first["offset"], "epoch": first["epoch"], "recover": True}
    body = {"channel": "game:2", "type": 1, "phase": 1, **since}
    reply = (await client.request({"id": 2, "subscribe": body}))["subscribe"]

    assert [(p["key"], p.get("removed")) for p in reply["publications"]] == [("k", True)]


async def test_a_versioned_write_through_one_node_outdates_older_ones_through_the_other(
    nodes: tuple[ServerHandle, ServerHandle],
) -> None:
    a, b = nodes
    a.api("map_publish", {"channel": "game:v", "key": "k", "data": 1, "version": 7})

    stale = b.api("map_publish", {"channel": "game:v", "key": "k", "data": 2, "version": 7})
    state = b.api("map_read_state", {"channel": "game:v", "limit": -1})["result"]

    assert stale["result"]["suppress_reason"] == "version"
    assert [(e["key"], e["data"]) for e in state["entries"]] == [("k", 1)]


async def test_map_channels_live_on_the_map_brokers_own_redis(
    nodes: tuple[ServerHandle, ServerHandle], map_redis: RedisProcess
) -> None:
    a, _ = nodes
    a.api("map_publish", {"channel": "game:own", "key": "k", "data": 1})

    assert f"{MAP_PREFIX}.map.state.{{game:own}}" in map_redis.keys(f"{MAP_PREFIX}.*")
    assert _shared_keys(f"{MAP_PREFIX}.*") == []
    assert _shared_keys(f"{ENGINE_PREFIX}.map.*") == []


def _shared_keys(pattern: str) -> list[bytes]:
    host, port = SHARED_REDIS.split(":")
    with redis.Redis(host=host, port=int(port)) as client:
        return list(client.keys(pattern))
