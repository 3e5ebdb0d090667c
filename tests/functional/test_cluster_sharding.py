"""Two nodes sharding channels over two Redis instances (``redis_address`` as a list).

Each channel lives on one Redis (jump consistent hash of its CRC-32, as the engine
documents); control messages, and so the ``info`` API's announcements, use the first.
Everything the single-Redis tests show still holds, and a fault on one shard touches only
that shard's channels.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rotary.engines.redis._shards import shard_index
from tests.functional.cluster_helpers import (
    RedisProcess,
    assert_each_got_everything_once_in_order,
    closing_ws_fixture,
    cluster_config,
    publish_series,
    received,
    resubscriptions,
    sdk_subscribers,
    until,
)
from tests.functional.conftest import make_token

pytestmark = [pytest.mark.redis, pytest.mark.sdk]


#: WebSocket clients closed at the end of each test.
ws_connect = closing_ws_fixture()


@pytest.fixture
def shards(tmp_path: Path) -> Iterator[list[RedisProcess]]:
    servers = [RedisProcess(tmp_path).start() for _ in range(2)]
    yield servers
    for server in servers:
        server.stop()


def channels_per_shard(per_shard: int) -> list[list[str]]:
    """`per_shard` channel names for each of the two shards."""
    found: list[list[str]] = [[], []]
    n = 0
    while min(len(f) for f in found) < per_shard:
        name = f"sharded-{n}"
        bucket = found[shard_index(name, 2)]
        if len(bucket) < per_shard:
            bucket.append(name)
        n += 1
    return found


async def push_where(client: Any, pred: Any) -> dict[str, Any]:
    """The next push body matching `pred` (others are skipped)."""
    while True:
        body: dict[str, Any] = (await client.push())["push"]
        if pred(body):
            return body


def start_nodes(rotary_server: Any, shards: list[RedisProcess], prefix: str) -> tuple[Any, Any]:
    cfg = cluster_config([s.address for s in shards], prefix)
    return rotary_server({**cfg, "name": "node-a"}), rotary_server({**cfg, "name": "node-b"})


async def test_channels_spread_over_both_redis_and_cross_node_features_hold(
    rotary_server: Any, shards: list[RedisProcess], ws_connect: Any
) -> None:
    a, b = start_nodes(rotary_server, shards, "sharded")
    by_shard = channels_per_shard(2)
    for ch in by_shard[0] + by_shard[1]:
        b.api("publish", {"channel": ch, "data": {"seq": 1}})
    for index, server in enumerate(shards):
        mine = sorted(f"sharded.meta.{{{ch}}}" for ch in by_shard[index])
        assert server.keys("sharded.meta.*") == mine
    watcher = await ws_connect(a)
    await watcher.request({"id": 1, "connect": {"token": make_token("watcher")}})
    joiner = await ws_connect(b)
    joined = await joiner.request({"id": 1, "connect": {"token": make_token("joiner")}})
    for cmd_id, ch in enumerate((by_shard[0][0], by_shard[1][0]), start=2):
        await watcher.request({"id": cmd_id, "subscribe": {"channel": ch, "join_leave": True}})
        await joiner.request({"id": cmd_id, "subscribe": {"channel": ch}})
        join = await push_where(
            watcher, lambda p: p.get("join", {}).get("info", {}).get("user") == "joiner"
        )
        assert join["channel"] == ch
        assert join["join"]["info"] == {"user": "joiner", "client": joined["connect"]["client"]}
        presence = a.api("presence", {"channel": ch})["result"]["presence"]
        assert sorted(p["user"] for p in presence.values()) == ["joiner", "watcher"]
        b.api("publish", {"channel": ch, "data": {"seq": 2}})
        pub = await push_where(watcher, lambda p: "pub" in p)
        assert pub == {"channel": ch, "pub": {"data": {"seq": 2}, "offset": 2}}
    names = lambda: [n["name"] for n in a.api("info", {})["result"]["nodes"]]  # noqa: E731
    await until(lambda: names() == ["node-a", "node-b"], what="info lists both nodes")


async def test_pubsub_killed_on_each_shard_in_turn_loses_no_publication(
    rotary_server: Any, shards: list[RedisProcess]
) -> None:
    a, b = start_nodes(rotary_server, shards, "sharded-kill")
    by_shard = channels_per_shard(2)
    channels = by_shard[0] + by_shard[1]
    async with contextlib.AsyncExitStack() as stack:
        drivers = await sdk_subscribers(stack, [a, b], channels)
        for server in shards:
            await until(lambda s=server: len(s.broker_listeners()) == 2, what="nodes listen")
        faults = {8: shards[1].kill_pubsub, 20: shards[0].kill_pubsub}
        await publish_series(b, channels, 30, faults)
        await assert_each_got_everything_once_in_order(drivers, channels, 30)
        for driver in drivers:
            for ch in channels:
                again = resubscriptions(driver, ch)
                assert again and all(e["recovered"] for e in again), driver.dump()[-3000:]


async def test_restarting_one_shard_only_breaks_the_streams_it_held(
    rotary_server: Any, shards: list[RedisProcess]
) -> None:
    a, b = start_nodes(rotary_server, shards, "sharded-restart")
    (kept,), (lost,) = channels_per_shard(1)
    async with contextlib.AsyncExitStack() as stack:
        (driver,) = await sdk_subscribers(stack, [a], [kept, lost])
        await publish_series(b, [kept, lost], 3, {})
        for ch in (kept, lost):
            await until(lambda c=ch: len(received(driver, c)) == 3, what=f"3 on {ch}")
        shards[1].restart()
        after = await driver.wait_for(
            lambda e: e["ev"] == "sub_subscribed" and e["channel"] == lost and e["was_recovering"],
            within=30,
        )
        assert after["recovered"] is False
        await until(lambda: b.api("publish", {"channel": kept, "data": {"seq": 4}}))
        await until(lambda: received(driver, kept)[-1] == (4, 4), what="kept stream goes on")
        assert resubscriptions(driver, kept) == []
