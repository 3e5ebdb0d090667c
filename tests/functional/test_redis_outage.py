"""Redis trouble never means silent loss: dead, black-holed, or deaf behind a TCP proxy.

Each test starts its own redis-server on a free port and puts `tcpproxy.TcpProxy` between
it and one Rotary node. Probes run every ``node_info_publish_interval`` (300 ms here) and
Redis commands time out after ``redis_io_timeout`` (1 s).
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.functional.cluster_helpers import RedisProcess, cluster_config, until
from tests.functional.conftest import make_token
from tests.functional.tcpproxy import TcpProxy, tcp_proxy

pytestmark = [pytest.mark.redis]

_CHANNEL = "news"


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def proxy(private_redis: RedisProcess) -> Iterator[TcpProxy]:
    with tcp_proxy(private_redis.port) as running:
        yield running


def _config(address: str) -> dict[str, Any]:
    return cluster_config([address], force_recovery=True, redis_io_timeout="1s")


def _health(server: Any) -> int:
    try:
        with urllib.request.urlopen(f"{server.http_url}/health", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def _publish(server: Any, n: int) -> dict[str, Any]:
    """Publish ``{"n": n}``; the API's whole answer (its 10 s timeout bounds a hang)."""
    return server.api("publish", {"channel": _CHANNEL, "data": {"n": n}})


class _Subscriber:
    """A raw client subscribed to the channel that recovers the way the SDKs do: told to
    (unsubscribe 2500), it subscribes again from the last position it saw."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.offset, self.epoch = 0, ""
        self.recoveries: list[bool] = []
        self._next_id = 2

    async def subscribe(self, **recovery: Any) -> list[dict[str, Any]]:
        self._next_id += 1
        command = {"id": self._next_id, "subscribe": {"channel": _CHANNEL, **recovery}}
        result = (await self.client.request(command))["subscribe"]
        assert result["recoverable"] is True
        self.epoch = result["epoch"]
        self.offset = max(self.offset, int(result.get("offset", 0)))
        if recovery:
            self.recoveries.append(bool(result.get("recovered")))
        return list(result.get("publications", []))

    async def numbers(self, count: int) -> list[int]:
        """The payloads of the next `count` publications, live or recovered."""
        got: list[int] = []
        while len(got) < count:
            push = (await self.client.push(wait=20))["push"]
            if "pub" in push:
                got.append(self._seen(push["pub"]))
            elif push.get("unsubscribe", {}).get("code") == 2500:
                position = {"recover": True, "offset": self.offset, "epoch": self.epoch}
                got += [self._seen(pub) for pub in await self.subscribe(**position)]
        return got

    def _seen(self, pub: dict[str, Any]) -> int:
        self.offset = int(pub.get("offset", self.offset))
        return int(pub["data"]["n"])


async def _subscriber(server: Any, ws_connect: Any) -> _Subscriber:
    client = await ws_connect(server)
    assert "connect" in await client.request({"id": 1, "connect": {"token": make_token("u")}})
    subscriber = _Subscriber(client)
    await subscriber.subscribe()
    return subscriber


async def test_deaf_pubsub_connection_is_found_by_the_probe_and_nothing_is_lost(
    rotary_server: Any, proxy: TcpProxy, ws_connect: Any
) -> None:
    server = rotary_server(_config(proxy.address))
    client = await _subscriber(server, ws_connect)
    for n in range(1, 4):
        assert "result" in _publish(server, n)
    assert await client.numbers(3) == [1, 2, 3]
    # The broker's PUB/SUB connection and the revocation store's.
    assert proxy.deafen_pubsub() >= 1
    # Redis still takes publications (and history): only this node stopped hearing them.
    for n in range(4, 8):
        assert "result" in _publish(server, n)
    assert await client.numbers(4) == [4, 5, 6, 7]
    assert client.recoveries == [True]
    assert "reconnecting: probe publications stopped arriving" in server.log()
    assert "result" in _publish(server, 8)
    assert await client.numbers(1) == [8]


async def test_black_holed_redis_fails_api_calls_with_an_error_and_delivery_resumes(
    rotary_server: Any, proxy: TcpProxy, ws_connect: Any
) -> None:
    server = rotary_server(_config(proxy.address))
    client = await _subscriber(server, ws_connect)
    assert "result" in _publish(server, 1)
    proxy.blackhole()
    # An error, not a hang and not a success: nothing was stored nor delivered.
    assert _publish(server, 2)["error"]["code"] == 100
    await until(lambda: _health(server) == 503, what="unhealthy while black-holed")
    proxy.restore()
    await until(lambda: _health(server) == 200, what="healthy again")
    await until(lambda: "result" in _publish(server, 3), what="publishing again")
    assert await client.numbers(2) == [1, 3]


async def test_killed_redis_fails_fast_reconnects_with_backoff_and_comes_back(
    rotary_server: Any, private_redis: RedisProcess, ws_connect: Any
) -> None:
    server = rotary_server(_config(private_redis.address))
    await _subscriber(server, ws_connect)
    private_redis.stop()
    assert _publish(server, 1)["error"]["code"] == 100
    await until(lambda: _health(server) == 503, what="unhealthy while Redis is dead")
    refused = "-pubsub-0: PUB/SUB connection lost or refused"  # the broker's, shard 0
    before = server.log().count(refused)
    await asyncio.sleep(3)
    attempts = server.log().count(refused) - before
    # Backoff doubles from 50 ms to a 2 s cap: a handful of attempts in 3 s, not a busy loop.
    assert 1 <= attempts <= 10, attempts
    private_redis.start()
    await until(lambda: _health(server) == 200, what="healthy again")
    await until(lambda: "result" in _publish(server, 2), what="publishing again")
    assert server.api("info", {})["result"]["nodes"][0]["num_clients"] == 1
