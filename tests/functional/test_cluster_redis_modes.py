"""Two nodes on Redis Sentinel and on Redis Cluster, each started privately for the test.

Sentinel: one master and one Sentinel process (``redis-server --sentinel``); the nodes get
``redis_sentinel_address`` and ``redis_sentinel_master_name``. Cluster: three masters
sharing the 16384 slots (``CLUSTER ADDSLOTSRANGE`` + ``CLUSTER MEET``); the nodes get
``redis_cluster_address``. In both, publications, recovery and ``info`` cross nodes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.functional.cluster_helpers import (
    RedisProcess,
    closing_ws,
    cluster_config,
    redis_cluster_of_three,
    until,
)
from tests.functional.conftest import make_token

pytestmark = pytest.mark.redis


@pytest.fixture
async def ws_connect(ws_connect: Any) -> AsyncIterator[Any]:
    """WebSocket clients closed at the end of each test."""
    async with closing_ws(ws_connect) as connect:
        yield connect


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[RedisProcess]:
    master = RedisProcess(tmp_path).start()
    watcher = RedisProcess(tmp_path)
    try:
        yield watcher.start_sentinel(master, "mymaster")
    finally:
        watcher.stop()
        master.stop()


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[list[RedisProcess]]:
    with redis_cluster_of_three(tmp_path) as masters:
        yield masters


async def check_two_nodes(a: Any, b: Any, ws_connect: Any) -> None:
    """Publication through B reaches a client on A; a client on B recovers; info lists both."""
    client = await ws_connect(a)
    await client.request({"id": 1, "connect": {"token": make_token("gina")}})
    sub = await client.request({"id": 2, "subscribe": {"channel": "modes", "recoverable": True}})
    epoch = sub["subscribe"]["epoch"]
    for n in (1, 2):
        b.api("publish", {"channel": "modes", "data": {"n": n}})
        assert (await client.push())["push"]["pub"] == {"data": {"n": n}, "offset": n}
    other = await ws_connect(b)
    await other.request({"id": 1, "connect": {"token": make_token("hank")}})
    recover = {"channel": "modes", "recover": True, "offset": 1, "epoch": epoch}
    result = await other.request({"id": 2, "subscribe": {**recover, "recoverable": True}})
    assert result["subscribe"]["recovered"] is True
    assert [p["data"] for p in result["subscribe"]["publications"]] == [{"n": 2}]
    stats = a.api("presence_stats", {"channel": "modes"})["result"]
    assert stats == {"num_clients": 2, "num_users": 2}
    names = lambda: [n["name"] for n in a.api("info", {})["result"]["nodes"]]  # noqa: E731
    await until(lambda: names() == ["node-a", "node-b"], what="info lists both nodes")


def start_nodes(rotary_server: Any, cfg: dict[str, Any]) -> tuple[Any, Any]:
    return rotary_server({**cfg, "name": "node-a"}), rotary_server({**cfg, "name": "node-b"})


async def test_two_nodes_through_redis_sentinel(
    rotary_server: Any, sentinel: RedisProcess, ws_connect: Any
) -> None:
    cfg = cluster_config(["unused:1"])
    del cfg["redis_address"]
    cfg |= {"redis_sentinel_address": sentinel.address, "redis_sentinel_master_name": "mymaster"}
    a, b = start_nodes(rotary_server, cfg)
    await check_two_nodes(a, b, ws_connect)


async def test_two_nodes_on_a_redis_cluster(
    rotary_server: Any, redis_cluster: list[RedisProcess], ws_connect: Any
) -> None:
    cfg = cluster_config(["unused:1"])
    del cfg["redis_address"]
    cfg["redis_cluster_address"] = [m.address for m in redis_cluster]
    a, b = start_nodes(rotary_server, cfg)
    await check_two_nodes(a, b, ws_connect)
