"""Two `rotary` processes sharing the Redis on 6379 behave as one server.

Publications across nodes, recovery on the other node and presence counts are also checked
by tests/functional/test_ws_engines.py; this module adds the rest of the cluster surface:
presence lists, join/leave, the ``info`` API over live nodes, server-API actions reaching a
connection held by the other node, and recovery after moving between nodes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.functional.cluster_helpers import (
    SHARED_REDIS,
    closing_ws,
    cluster_config,
    shared_redis_or_skip,
    until,
)
from tests.functional.conftest import make_token

pytestmark = pytest.mark.redis


@pytest.fixture
async def ws_connect(ws_connect: Any) -> AsyncIterator[Any]:
    """WebSocket clients closed at the end of each test."""
    async with closing_ws(ws_connect) as connect:
        yield connect


#: One prefix for the whole module, as with Centrifugo's ``redis_prefix``.
PREFIX = f"rotary-cluster-nodes-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def two_nodes(rotary_server: Any) -> tuple[Any, Any]:
    shared_redis_or_skip()
    a = rotary_server(cluster_config([SHARED_REDIS], PREFIX, name="node-a"))
    b = rotary_server(cluster_config([SHARED_REDIS], PREFIX, name="node-b"))
    return a, b


async def connected(ws_connect: Any, server: Any, user: str, **claims: Any) -> Any:
    client = await ws_connect(server)
    reply = await client.request({"id": 1, "connect": {"token": make_token(user, **claims)}})
    client.client_id = reply["connect"]["client"]
    return client


def channel() -> str:
    return f"room-{uuid.uuid4().hex[:8]}"


async def test_presence_on_either_node_lists_clients_of_both(
    two_nodes: tuple[Any, Any], ws_connect: Any
) -> None:
    a, b = two_nodes
    ch = channel()
    on_a = await connected(ws_connect, a, "alice", info={"at": "a"})
    on_b = await connected(ws_connect, b, "bob", info={"at": "b"})
    await on_a.request({"id": 2, "subscribe": {"channel": ch}})
    await on_b.request({"id": 2, "subscribe": {"channel": ch}})
    expected = {
        on_a.client_id: {"user": "alice", "client": on_a.client_id, "conn_info": {"at": "a"}},
        on_b.client_id: {"user": "bob", "client": on_b.client_id, "conn_info": {"at": "b"}},
    }
    for node in (a, b):
        assert node.api("presence", {"channel": ch})["result"]["presence"] == expected
        stats = node.api("presence_stats", {"channel": ch})["result"]
        assert stats == {"num_clients": 2, "num_users": 2}
    for n, client in enumerate((on_a, on_b), start=3):
        reply = await client.request({"id": n, "presence": {"channel": ch}})
        assert reply["presence"]["presence"] == expected


async def test_join_and_leave_reach_a_watcher_on_the_other_node(
    two_nodes: tuple[Any, Any], ws_connect: Any
) -> None:
    a, b = two_nodes
    ch = channel()
    watcher = await connected(ws_connect, a, "watcher")
    await watcher.request({"id": 2, "subscribe": {"channel": ch, "join_leave": True}})
    joiner = await connected(ws_connect, b, "joiner", info={"n": 2})
    await joiner.request({"id": 2, "subscribe": {"channel": ch}})
    await joiner.request({"id": 3, "unsubscribe": {"channel": ch}})
    info = {"user": "joiner", "client": joiner.client_id, "conn_info": {"n": 2}}
    pushes = [(await watcher.push())["push"] for _ in range(3)]
    assert {"channel": ch, "join": {"info": info}} in pushes
    assert pushes[-1] == {"channel": ch, "leave": {"info": info}}


def node_names(server: Any) -> list[str]:
    return [n["name"] for n in server.api("info", {})["result"]["nodes"]]


async def test_info_lists_every_live_node_with_its_own_counts(
    two_nodes: tuple[Any, Any], ws_connect: Any
) -> None:
    a, b = two_nodes
    ch = channel()
    clients = [await connected(ws_connect, b, user) for user in ("u1", "u2")]
    for client in clients:
        await client.request({"id": 2, "subscribe": {"channel": ch}})

    def counts_on_a() -> dict[str, Any] | None:
        nodes = {n["name"]: n for n in a.api("info", {})["result"]["nodes"]}
        seen_b = nodes.get("node-b", {})
        return nodes if seen_b.get("num_clients") == 2 else None

    nodes = await until(counts_on_a, what="node-a lists node-b with 2 clients")
    assert sorted(nodes) == ["node-a", "node-b"]
    assert nodes["node-b"]["num_users"] == 2 and nodes["node-b"]["num_subs"] == 2
    assert nodes["node-b"]["num_channels"] == 1
    assert nodes["node-a"]["num_clients"] == 0
    assert nodes["node-a"]["uid"] != nodes["node-b"]["uid"]
    assert set(nodes["node-b"]) >= {"uid", "name", "version", "uptime", "num_clients"}
    await until(lambda: node_names(b) == ["node-a", "node-b"], what="node-b lists both")


def life_config(interval: str, name: str, prefix: str) -> dict[str, Any]:
    cfg = cluster_config([SHARED_REDIS], prefix, name=name)
    return {**cfg, "node_info_publish_interval": interval}


async def test_nodes_learn_of_a_newcomer_at_once_and_of_a_stopped_node_by_its_goodbye(
    rotary_server: Any,
) -> None:
    shared_redis_or_skip()
    prefix = f"rotary-cluster-life-{uuid.uuid4().hex[:8]}"
    # Announcements every 60 s: within this test only the answer to a newcomer's first
    # announcement can make nodes known, and only the goodbye can make one unknown.
    a, b, c = (rotary_server(life_config("60s", n, prefix)) for n in ("a", "b", "c"))
    for node in (a, b, c):
        await until(lambda n=node: node_names(n) == ["a", "b", "c"], what="three nodes")
    assert b.stop() == 0
    await until(lambda: node_names(a) == node_names(c) == ["a", "c"], what="b said goodbye")


async def test_a_killed_node_leaves_info_once_its_announcements_stop(
    rotary_server: Any,
) -> None:
    shared_redis_or_skip()
    prefix = f"rotary-cluster-kill-{uuid.uuid4().hex[:8]}"
    a = rotary_server(life_config("300ms", "a", prefix))
    b = rotary_server(life_config("300ms", "b", prefix))
    await until(lambda: node_names(a) == ["a", "b"], what="two nodes")
    b.process.kill()  # no goodbye
    b.process.wait(10)
    await until(lambda: node_names(a) == ["a"], what="b expired")


async def test_server_api_actions_through_one_node_reach_a_client_on_the_other(
    two_nodes: tuple[Any, Any], ws_connect: Any
) -> None:
    a, b = two_nodes
    ch, other = channel(), channel()
    client = await connected(ws_connect, a, "carol")
    await client.request({"id": 2, "subscribe": {"channel": ch}})
    assert b.api("unsubscribe", {"user": "carol", "channel": ch}) == {"result": {}}
    unsub = (await client.push())["push"]
    assert unsub == {"channel": ch, "unsubscribe": {"code": 2000, "reason": "server unsubscribe"}}
    assert b.api("subscribe", {"user": "carol", "channel": other}) == {"result": {}}
    sub = (await client.push())["push"]
    assert sub["channel"] == other and "subscribe" in sub
    b.api("refresh", {"user": "carol", "expire_at": int(time.time()) + 600})
    refresh = (await client.push())["push"]
    assert refresh["refresh"]["expires"] is True
    b.api("disconnect", {"user": "carol"})
    assert await client.closed() == (3503, "force disconnect")


async def test_a_client_moving_to_the_other_node_recovers_what_it_missed(
    two_nodes: tuple[Any, Any], ws_connect: Any
) -> None:
    a, b = two_nodes
    ch = channel()
    client = await connected(ws_connect, a, "dave")
    sub = await client.request({"id": 2, "subscribe": {"channel": ch, "recoverable": True}})
    epoch = sub["subscribe"]["epoch"]
    a.api("publish", {"channel": ch, "data": {"n": 1}})
    assert (await client.push())["push"]["pub"]["offset"] == 1
    await client.ws.close()
    for n in (2, 3):
        a.api("publish", {"channel": ch, "data": {"n": n}})
    moved = await connected(ws_connect, b, "dave")
    recover = {"channel": ch, "recoverable": True, "recover": True, "offset": 1, "epoch": epoch}
    result = (await moved.request({"id": 2, "subscribe": recover}))["subscribe"]
    assert result["recovered"] is True and result["epoch"] == epoch
    assert [(p["offset"], p["data"]) for p in result["publications"]] == [
        (2, {"n": 2}),
        (3, {"n": 3}),
    ]
    b.api("publish", {"channel": ch, "data": {"n": 4}})
    assert (await moved.push())["push"]["pub"] == {"data": {"n": 4}, "offset": 4}
