"""Redis engine settings end to end: the same cluster configured the v5 way, the v6 way and
through environment variables, with a password and a database number.

Node A reads v5 flat keys (``engine``, ``redis_address``, ``redis_prefix``,
``redis_password``, ``redis_db``); node B reads v6 nested keys (``engine.type``,
``engine.redis.*``); node C has a bare config and gets the engine from ``CENTRIFUGO_*``
variables. If any of them mapped a key wrongly they would not form one cluster.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.functional.cluster_helpers import RedisProcess, closing_ws, until
from tests.functional.conftest import API_KEY, SECRET, make_token

pytestmark = pytest.mark.redis


@pytest.fixture
async def ws_connect(ws_connect: Any) -> AsyncIterator[Any]:
    """WebSocket clients closed at the end of each test."""
    async with closing_ws(ws_connect) as connect:
        yield connect


PASSWORD = "cluster-test-password"
DB = 3
PREFIX = "rotary-config-e2e"


@pytest.fixture
def guarded_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path, password=PASSWORD).start()
    yield server
    server.stop()


def v5(address: str) -> dict[str, Any]:
    return {
        "token_hmac_secret_key": SECRET,
        "api_key": API_KEY,
        "name": "v5",
        "node_info_publish_interval": "300ms",
        "allow_subscribe_for_client": True,
        "history_size": 10,
        "history_ttl": "60s",
        "engine": "redis",
        "redis_address": address,
        "redis_prefix": PREFIX,
        "redis_password": PASSWORD,
        "redis_db": DB,
    }


def v6(address: str) -> dict[str, Any]:
    return {
        "client": {"token": {"hmac_secret_key": SECRET}},
        "http_api": {"key": API_KEY},
        "node": {"name": "v6", "info_publish_interval": "300ms"},
        "channel": {"without_namespace": {"allow_subscribe_for_client": True}},
        "engine": {
            "type": "redis",
            "redis": {"address": [address], "prefix": PREFIX, "password": PASSWORD, "db": DB},
        },
    }


def env(address: str) -> dict[str, str]:
    return {
        "CENTRIFUGO_ENGINE": "redis",
        "CENTRIFUGO_REDIS_ADDRESS": address,
        "CENTRIFUGO_REDIS_PREFIX": PREFIX,
        "CENTRIFUGO_REDIS_PASSWORD": PASSWORD,
        "CENTRIFUGO_REDIS_DB": str(DB),
        "CENTRIFUGO_NAME": "env",
        "CENTRIFUGO_NODE_INFO_PUBLISH_INTERVAL": "300ms",
    }


async def test_v5_v6_and_environment_configured_nodes_form_one_cluster(
    rotary_server: Any, guarded_redis: RedisProcess, ws_connect: Any
) -> None:
    address = guarded_redis.address
    a = rotary_server(v5(address))
    b = rotary_server(v6(address))
    bare = {"token_hmac_secret_key": SECRET, "api_key": API_KEY}
    c = rotary_server({**bare, "allow_subscribe_for_client": True}, env=env(address))
    names = lambda: [n["name"] for n in a.api("info", {})["result"]["nodes"]]  # noqa: E731
    await until(lambda: names() == ["env", "v5", "v6"], what="three nodes, one cluster")
    client = await ws_connect(c)
    await client.request({"id": 1, "connect": {"token": make_token("frank")}})
    await client.request({"id": 2, "subscribe": {"channel": "conf"}})
    reply = b.api("publish", {"channel": "conf", "data": {"from": "v6"}})
    assert reply == {"result": {}}  # no history in v6's defaults
    assert (await client.push())["push"] == {"channel": "conf", "pub": {"data": {"from": "v6"}}}
    a.api("publish", {"channel": "conf", "data": {"from": "v5"}})
    assert (await client.push())["push"]["pub"] == {"data": {"from": "v5"}, "offset": 1}
    stored = set(guarded_redis.keys(f"{PREFIX}.*", db=DB))
    assert {f"{PREFIX}.meta.{{conf}}", f"{PREFIX}.stream.{{conf}}"} <= stored
    assert guarded_redis.keys("*", db=0) == []
