"""The map_publish and map_remove proxies against a real HTTP backend (aiohttp on loopback):
a client's key write or removal in a namespace with ``map.publish_proxy_enabled`` /
``map.remove_proxy_enabled`` is POSTed to the backend, which decides, and may replace the
key and data and set the write's options, as in Centrifugo."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.functional.conftest import ServerHandle, default_config, free_port, make_token

Answer = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class Backend:
    """The backend: `answers[kind]` makes the answer to each request, kept in `requests`."""

    url: str
    answers: dict[str, Answer] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    found = Backend(f"http://127.0.0.1:{free_port()}")

    async def handle(request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        body = await request.json()
        found.requests.append((kind, body, request.headers.get("Content-Type", "")))
        return web.json_response(found.answers.get(kind, lambda b: {"result": {}})(body))

    app = web.Application()
    app.router.add_post("/proxy/{kind}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = int(found.url.rsplit(":", 1)[1])
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield found
    await runner.cleanup()


def map_config(backend: Backend, **map_options: Any) -> dict[str, Any]:
    """A map namespace ``game`` whose client writes and removals go to `backend`; no
    ``allow_*`` option: the proxy alone decides."""
    game = {
        "name": "game",
        "subscription_type": "map",
        "allow_subscribe_for_client": True,
        "map": {
            "mode": "recoverable",
            "key_ttl": "60s",
            "publish_proxy_enabled": True,
            "remove_proxy_enabled": True,
            **map_options,
        },
    }
    proxy = {
        kind: {"endpoint": f"{backend.url}/proxy/{kind}"} for kind in ("map_publish", "map_remove")
    }
    return {
        **default_config(),
        "prometheus": True,
        "channel": {"namespaces": [game], "proxy": proxy},
    }


async def _client(server: ServerHandle, ws_connect: Any, user: str = "alice") -> Any:
    client = await ws_connect(server)
    assert "connect" in await client.request({"id": 1, "connect": {"token": make_token(user)}})
    return client


async def _watch(server: ServerHandle, ws_connect: Any, channel: str) -> Any:
    watcher = await _client(server, ws_connect, "watcher")
    body = {"channel": channel, "type": 1, "phase": 2}
    assert "subscribe" in await watcher.request({"id": 2, "subscribe": body})
    return watcher


def _write(n: int, channel: str, key: str, data: Any = None, *, removed: bool = False) -> dict:
    body: dict[str, Any] = {"channel": channel, "type": 1, "key": key}
    if removed:
        body["removed"] = True
    else:
        body["data"] = data
    return {"id": n, "publish": body}


async def test_the_map_publish_proxy_decides_and_may_replace_key_data_and_tags(
    rotary_server: Callable[..., ServerHandle], ws_connect: Any, backend: Backend
) -> None:
    backend.answers["map_publish"] = lambda b: {
        "result": {
            "key": f"seat-{b['key']}",
            "data": {"by": b["user"], **b["data"]},
            "tags": {"t": "1"},
        }
    }
    server = rotary_server(map_config(backend))
    watcher = await _watch(server, ws_connect, "game:1")
    writer = await _client(server, ws_connect)

    reply = await writer.request(_write(3, "game:1", "3", {"n": 1}))
    pub = (await watcher.push())["push"]["pub"]

    assert reply == {"id": 3, "publish": {}}
    assert (pub["key"], pub["data"], pub["tags"]) == ("seat-3", {"by": "alice", "n": 1}, {"t": "1"})
    kind, sent, content_type = backend.requests[0]
    assert (kind, content_type) == ("map_publish", "application/json")
    assert {k: sent[k] for k in ("user", "channel", "key", "data", "encoding", "protocol")} == {
        "user": "alice",
        "channel": "game:1",
        "key": "3",
        "data": {"n": 1},
        "encoding": "json",
        "protocol": "json",
    }
    assert sent["client"] and sent["transport"] == "websocket"


async def test_the_backends_error_refuses_the_write_and_nothing_changes(
    rotary_server: Callable[..., ServerHandle], ws_connect: Any, backend: Backend
) -> None:
    backend.answers["map_publish"] = lambda b: {"error": {"code": 4003, "message": "not yours"}}
    server = rotary_server(map_config(backend))
    writer = await _client(server, ws_connect)

    reply = await writer.request(_write(3, "game:2", "k", {"n": 1}))

    assert reply["error"] == {"code": 4003, "message": "not yours"}
    assert server.api("map_stats", {"channel": "game:2"})["result"] == {"num_keys": 0}


async def test_the_map_publish_proxys_key_mode_and_idempotency_key_apply_to_the_write(
    rotary_server: Callable[..., ServerHandle], ws_connect: Any, backend: Backend
) -> None:
    backend.answers["map_publish"] = lambda b: {"result": {"key_mode": "if_new"}}
    server = rotary_server(map_config(backend))
    writer = await _client(server, ws_connect)

    first = await writer.request(_write(3, "game:3", "k", {"n": 1}))
    second = await writer.request(_write(4, "game:3", "k", {"n": 2}))
    state = server.api("map_read_state", {"channel": "game:3", "limit": -1})["result"]

    assert first["publish"] == second["publish"] == {}
    assert [(e["key"], e["data"]) for e in state["entries"]] == [("k", {"n": 1})]


async def test_the_map_remove_proxy_decides_and_may_replace_the_key(
    rotary_server: Callable[..., ServerHandle], ws_connect: Any, backend: Backend
) -> None:
    backend.answers["map_remove"] = lambda b: {"result": {"key": b["key"].upper()}}
    server = rotary_server(map_config(backend))
    server.api("map_publish", {"channel": "game:4", "key": "K", "data": 1})
    watcher = await _watch(server, ws_connect, "game:4")
    writer = await _client(server, ws_connect)

    reply = await writer.request(_write(3, "game:4", "k", removed=True))
    pub = (await watcher.push())["push"]["pub"]

    assert reply == {"id": 3, "publish": {}}
    assert (pub["key"], pub["removed"]) == ("K", True)
    kind, sent, _ = backend.requests[-1]
    assert (kind, sent["channel"], sent["key"], "data" in sent) == (
        "map_remove",
        "game:4",
        "k",
        False,
    )


async def test_without_the_remove_switch_a_removal_needs_the_allow_options(
    rotary_server: Callable[..., ServerHandle], ws_connect: Any, backend: Backend
) -> None:
    server = rotary_server(map_config(backend, remove_proxy_enabled=False))
    server.api("map_publish", {"channel": "game:5", "key": "k", "data": 1})
    writer = await _client(server, ws_connect)

    reply = await writer.request(_write(3, "game:5", "k", removed=True))

    assert reply["error"]["code"] == 103
    assert [kind for kind, _, _ in backend.requests] == []


async def test_map_proxy_calls_are_counted_by_kind_and_outcome(
    rotary_server: Callable[..., ServerHandle], ws_connect: Any, backend: Backend
) -> None:
    backend.answers["map_remove"] = lambda b: {"disconnect": {"code": 4500, "reason": "bye"}}
    server = rotary_server(map_config(backend))
    writer = await _client(server, ws_connect)
    await writer.request(_write(3, "game:6", "k", {"n": 1}))
    await writer.send(_write(4, "game:6", "k", removed=True))

    assert list(await writer.closed()) == [4500, "bye"]
    async with aiohttp.ClientSession() as http, http.get(f"{server.http_url}/metrics") as got:
        scraped = await got.text()
    assert 'rotary_proxy_calls_total{kind="map_publish",outcome="ok"} 1.0' in scraped
    assert 'rotary_proxy_calls_total{kind="map_remove",outcome="disconnect"} 1.0' in scraped
