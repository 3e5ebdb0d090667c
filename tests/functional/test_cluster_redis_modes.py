"""Two nodes on Redis Sentinel and on Redis Cluster, each started privately for the test.

Sentinel: one master and one Sentinel process (``redis-server --sentinel``); the nodes get
``redis_sentinel_address`` and ``redis_sentinel_master_name``. Cluster: three masters
sharing the 16384 slots (``CLUSTER ADDSLOTSRANGE`` + ``CLUSTER MEET``); the nodes get
``redis_cluster_address``. In both, publications, recovery and ``info`` cross nodes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.functional.cluster_helpers import RedisProcess, closing_ws, cluster_config, until
from tests.functional.conftest import make_token

pytestmark = pytest.mark.redis


@pytest.fixture
async def ws_connect(ws_connect: Any) -> AsyncIterator[Any]:
    """WebSocket clients closed at the end of each test."""
    async with closing_ws(ws_connect) as connect:
        yield connect


SLOTS = 16384


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
    masters: list[RedisProcess] = []
    try:
        for n in range(3):
            extra = ("--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{n}.conf")
            masters.append(RedisProcess(tmp_path, extra=extra).start())
        _form_cluster(masters)
        yield masters
    finally:
        for master in masters:
            master.stop()


def _form_cluster(masters: list[RedisProcess]) -> None:
    """Split the slots evenly, introduce the masters, wait until every one reports ok."""
    step = SLOTS // len(masters)
    for i, master in enumerate(masters):
        last = SLOTS - 1 if i == len(masters) - 1 else (i + 1) * step - 1
        with master.client() as c:
            c.execute_command("CLUSTER", "ADDSLOTSRANGE", i * step, last)
    with masters[0].client() as c:
        for other in masters[1:]:
            c.execute_command("CLUSTER", "MEET", "127.0.0.1", other.port)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        states = []
        for master in masters:
            with master.client() as c:
                states.append(c.execute_command("CLUSTER", "INFO").decode())
        if all("cluster_state:ok" in s for s in states):
            return
        time.sleep(0.1)
    raise RuntimeError("the Redis Cluster did not become ready")


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
