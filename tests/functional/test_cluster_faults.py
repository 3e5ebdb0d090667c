"""Faults under two nodes: PUB/SUB connections killed in Redis, Redis restarted empty.

Each test starts its own ``redis-server`` on a free port (no persistence), so killing
connections or restarting it never disturbs the shared Redis on 6379. Clients are the
official centrifuge-python SDK (recoverable subscriptions), or raw WebSocket clients where
the exact reply matters.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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
def private_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path).start()
    yield server
    server.stop()


def start_nodes(rotary_server: Any, addresses: list[str]) -> tuple[Any, Any]:
    cfg = cluster_config(addresses)
    return rotary_server({**cfg, "name": "node-a"}), rotary_server({**cfg, "name": "node-b"})


async def test_killed_pubsub_connections_lose_no_publication_while_another_node_publishes(
    rotary_server: Any, private_redis: RedisProcess
) -> None:
    a, b = start_nodes(rotary_server, [private_redis.address])
    channels = ["alpha", "beta"]
    killed: list[int] = []
    async with contextlib.AsyncExitStack() as stack:
        drivers = await sdk_subscribers(stack, [a, b, a], channels)
        await until(lambda: len(private_redis.broker_listeners()) == 2, what="both nodes listen")
        faults = {10: lambda: killed.append(private_redis.kill_pubsub())}
        faults[25] = lambda: killed.append(private_redis.kill_pubsub())
        await publish_series(b, channels, 40, faults)
        await assert_each_got_everything_once_in_order(drivers, channels, 40)
        assert len(killed) == 2 and min(killed) >= 2  # both brokers' connections, each time
        for driver in drivers:
            for ch in channels:
                again = resubscriptions(driver, ch)
                assert again, driver.dump()[-3000:]
                assert all(e["was_recovering"] and e["recovered"] for e in again)


async def test_redis_restarted_empty_tells_subscribers_recovered_false(
    rotary_server: Any, private_redis: RedisProcess
) -> None:
    a, b = start_nodes(rotary_server, [private_redis.address])
    async with contextlib.AsyncExitStack() as stack:
        (driver,) = await sdk_subscribers(stack, [a], ["gamma"])
        await publish_series(b, ["gamma"], 3, {})
        await until(lambda: len(received(driver, "gamma")) == 3, what="3 publications")
        first = driver.find(lambda e: e["ev"] == "sub_subscribed")[0]
        private_redis.restart()
        after = await driver.wait_for(
            lambda e: e["ev"] == "sub_subscribed" and e["was_recovering"], within=30
        )
        assert after["recovered"] is False
        assert after["epoch"] != first["epoch"]
        await until(lambda: b.api("publish", {"channel": "gamma", "data": {"seq": 1}}))
        await until(lambda: received(driver, "gamma")[3:] == [(1, 1)], what="new stream")


async def test_a_client_returning_after_a_redis_restart_is_told_recovered_false(
    rotary_server: Any, private_redis: RedisProcess, ws_connect: Any
) -> None:
    a, b = start_nodes(rotary_server, [private_redis.address])
    client = await ws_connect(a)
    await client.request({"id": 1, "connect": {"token": make_token("erin")}})
    sub = await client.request({"id": 2, "subscribe": {"channel": "delta", "recoverable": True}})
    old_epoch = sub["subscribe"]["epoch"]
    a.api("publish", {"channel": "delta", "data": {"seq": 1}})
    assert (await client.push())["push"]["pub"]["offset"] == 1
    await client.ws.close()
    private_redis.restart()
    await until(lambda: b.api("publish", {"channel": "delta", "data": {"seq": 1}}))
    back = await ws_connect(b)
    await back.request({"id": 1, "connect": {"token": make_token("erin")}})
    recover = {"channel": "delta", "recover": True, "offset": 1, "epoch": old_epoch}
    result = await back.request({"id": 2, "subscribe": {**recover, "recoverable": True}})
    reply = result["subscribe"]
    assert reply.get("recovered", False) is False and reply["was_recovering"] is True
    assert reply["epoch"] != old_epoch and reply["offset"] == 1
    assert "publications" not in reply
