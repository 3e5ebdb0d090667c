"""Server life cycle and server-API operations on connected clients, over real processes."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

from tests.functional.conftest import API_KEY, SECRET, make_token


def config(**extra: Any) -> dict[str, Any]:
    return {"token_hmac_secret_key": SECRET, "api_key": API_KEY, **extra}


async def _client(server: Any, ws_connect: Any, **claims: Any) -> tuple[Any, dict[str, Any]]:
    client = await ws_connect(server)
    reply = await client.request({"id": 1, "connect": {"token": make_token(**claims)}})
    return client, reply["connect"]


async def _api(server: Any, method: str, params: dict[str, Any]) -> dict[str, Any]:
    return await asyncio.to_thread(server.api, method, params)


def test_health_answers_200_with_empty_object(rotary_server: Any) -> None:
    server = rotary_server(config())
    with urllib.request.urlopen(f"{server.http_url}/health", timeout=5) as resp:
        assert resp.status == 200
        assert json.loads(resp.read()) == {}


async def test_sigterm_disconnects_clients_with_3001_and_exits_0(
    rotary_server: Any, ws_connect: Any
) -> None:
    server = rotary_server(config())
    client, _ = await _client(server, ws_connect)
    server.process.terminate()
    assert await client.closed() == (3001, "shutdown")
    assert await asyncio.to_thread(server.process.wait, 15) == 0
    assert "shutdown complete" in server.log()


async def test_api_disconnect_closes_the_users_connections(
    rotary_server: Any, ws_connect: Any
) -> None:
    server = rotary_server(config())
    client, _ = await _client(server, ws_connect)
    await _api(server, "disconnect", {"user": "42"})
    assert await client.closed() == (3503, "force disconnect")


async def test_api_subscribe_and_unsubscribe_push_to_the_client(
    rotary_server: Any, ws_connect: Any
) -> None:
    server = rotary_server(config())
    client, _ = await _client(server, ws_connect)
    await _api(server, "subscribe", {"user": "42", "channel": "news"})
    assert await client.push() == {"push": {"channel": "news", "subscribe": {}}}
    await _api(server, "publish", {"channel": "news", "data": {"a": 1}})
    assert await client.push() == {"push": {"channel": "news", "pub": {"data": {"a": 1}}}}
    await _api(server, "unsubscribe", {"user": "42", "channel": "news"})
    assert await client.push() == {
        "push": {"channel": "news", "unsubscribe": {"code": 2000, "reason": "server unsubscribe"}}
    }


async def test_api_refresh_pushes_the_new_expiry(rotary_server: Any, ws_connect: Any) -> None:
    server = rotary_server(config())
    client, _ = await _client(server, ws_connect, exp_in=60)
    expire_at = 4_000_000_000  # far in the future
    await _api(server, "refresh", {"user": "42", "expire_at": expire_at})
    push = await client.push()
    assert push["push"]["refresh"]["expires"] is True


async def test_api_info_counts_clients_users_and_channels(
    rotary_server: Any, ws_connect: Any
) -> None:
    server = rotary_server(config(allow_subscribe_for_client=True))
    client, _ = await _client(server, ws_connect)
    await client.request({"id": 2, "subscribe": {"channel": "a"}})
    info = await _api(server, "info", {})
    [node] = info["result"]["nodes"]
    assert node["num_clients"] == 1 and node["num_users"] == 1
    assert node["num_channels"] == 1 and node["version"] == "5.4.9"
    channels = await _api(server, "channels", {})
    assert channels["result"]["channels"] == {"a": {"num_clients": 1}}


def test_without_an_address_the_server_listens_on_ipv4_and_ipv6(rotary_server: Any) -> None:
    server = rotary_server(address="")
    for host in ("127.0.0.1", "[::1]"):
        with urllib.request.urlopen(f"http://{host}:{server.port}/health", timeout=5) as r:
            assert r.status == 200
    assert f"[::]:{server.port}" in server.log() and f"0.0.0.0:{server.port}" in server.log()


async def test_server_configured_only_by_environment_v6_form(
    rotary_server: Any, ws_connect: Any
) -> None:
    env = {
        "CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY": SECRET,
        "CENTRIFUGO_CHANNEL_NAMESPACES": "chat feed",
        "CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_ALLOW_SUBSCRIBE_FOR_CLIENT": "true",
        "CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_PRESENCE": "true",
        "CENTRIFUGO_UNKNOWN_SETTING": "1",
    }
    server = rotary_server({}, env=env)
    client = await ws_connect(server)
    assert "connect" in await client.request({"id": 1, "connect": {"token": make_token()}})
    assert await client.request({"id": 2, "subscribe": {"channel": "chat:a"}}) == {
        "id": 2,
        "subscribe": {},
    }
    reply = await client.request({"id": 3, "subscribe": {"channel": "feed:a"}})
    assert reply["error"]["code"] == 103
    assert "unknown environment variable CENTRIFUGO_UNKNOWN_SETTING" in server.log()
