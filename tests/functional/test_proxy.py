"""Centrifugo's HTTP proxy against a real backend: the example apps (FastAPI under uvicorn,
Django under its server), their proxy endpoints deciding with the session cookie Rotary passes
on; centrifuge-js as the client.

A backend that is down or slow gives a temporary error 100 (the SDK retries) and never lets
a client in; when the backend comes back, the client gets in on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.functional.backend_apps import APPS, app_url, start_app
from tests.functional.conftest import (
    SECRET,
    ServerHandle,
    WsClient,
    default_config,
    free_port,
    make_token,
)
from tests.sdk.harness import JsSdkDriver, frames, open_driver

pytestmark = [pytest.mark.sdk, pytest.mark.slow]

CHANNEL = "chat:team"


def proxy_config(base: str, **extra: Any) -> dict[str, Any]:
    """A v5 config whose proxies all point at the example app at `base`."""
    config = default_config()
    for kind in ("connect", "refresh", "subscribe", "publish", "sub_refresh", "rpc"):
        config[f"proxy_{kind}_endpoint"] = f"{base}/proxy/{kind}"
    config["proxy_http_headers"] = ["Cookie"]
    config["namespaces"] = [
        {"name": "chat", "proxy_subscribe": True, "proxy_publish": True, "proxy_sub_refresh": True}
    ]
    return {**config, **extra}


def _connect(driver: JsSdkDriver, server: ServerHandle, cookie: str) -> None:
    options = {"minReconnectDelay": 200, "maxReconnectDelay": 500}
    driver._send({"op": "connect", "url": server.ws_url, "cookie": cookie, "options": options})


def _subscribe(driver: JsSdkDriver, channel: str) -> None:
    options = {"minResubscribeDelay": 200, "maxResubscribeDelay": 500}
    driver._send({"op": "subscribe", "channel": channel, "options": options})


async def _call(driver: JsSdkDriver, op: str, **fields: Any) -> dict[str, Any]:
    driver._req += 1
    req = driver._req
    driver._send({"op": op, "req": req, **fields})
    reply: dict[str, Any] = await driver.wait_for(lambda e: e["ev"] == "reply" and e["req"] == req)
    return reply


@pytest.mark.parametrize("kind", APPS)
async def test_session_cookie_connects_subscribes_publishes_and_calls_rpc_through_the_proxy(
    kind: str, rotary_server: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    with start_app(kind, secret=SECRET, tmp_path=tmp_path) as app:
        server = rotary_server(proxy_config(app.url))
        async with open_driver("js") as driver:
            assert isinstance(driver, JsSdkDriver)
            _connect(driver, server, app.login("alice"))
            await driver.wait_for(lambda e: e["ev"] == "connected")
            _subscribe(driver, CHANNEL)
            await driver.wait_for(lambda e: e["ev"] == "sub_subscribed")
            assert (await _call(driver, "publish", channel=CHANNEL, data={"n": 1}))["result"] == {}
            got = await driver.wait_for(lambda e: e["ev"] == "publication")
            assert got["data"] == {"n": 1}
            answer = await _call(driver, "rpc", method="whoami", data={"x": 2})
            assert answer["result"] == {"user": "alice", "echo": {"x": 2}}
            missing = await _call(driver, "rpc", method="nope", data={})
            assert missing["error"]["code"] == 104
            connect = next(m for m in frames(driver.events, "out") if "connect" in m)
            assert "token" not in connect["connect"]


@pytest.mark.parametrize("kind", APPS)
async def test_non_member_is_refused_by_the_subscribe_and_publish_proxies_with_103(
    kind: str, rotary_server: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    with start_app(kind, secret=SECRET, tmp_path=tmp_path) as app:
        server = rotary_server(proxy_config(app.url))
        async with open_driver("js") as driver:
            assert isinstance(driver, JsSdkDriver)
            _connect(driver, server, app.login("mallory"))
            await driver.wait_for(lambda e: e["ev"] == "connected")
            _subscribe(driver, CHANNEL)
            refused = await driver.wait_for(lambda e: e["ev"] == "sub_unsubscribed")
            assert refused["code"] == 103
            assert not driver.find(lambda e: e["ev"] == "sub_subscribed")


@pytest.mark.parametrize("kind", APPS)
async def test_no_session_is_disconnected_with_the_backends_code(
    kind: str, rotary_server: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    with start_app(kind, secret=SECRET, tmp_path=tmp_path) as app:
        server = rotary_server(proxy_config(app.url))
        async with open_driver("js") as driver:
            assert isinstance(driver, JsSdkDriver)
            _connect(driver, server, "sessionid=not-a-session")
            gone = await driver.wait_for(lambda e: e["ev"] == "disconnected")
            assert (gone["code"], gone["reason"]) == (4501, "unauthorized")
            assert not driver.find(lambda e: e["ev"] == "connected")


async def test_backend_down_gives_temporary_error_100_then_the_client_gets_in_when_it_is_back(
    rotary_server: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    port = free_port()
    server = rotary_server(proxy_config(app_url(port)))
    async with open_driver("js") as driver:
        assert isinstance(driver, JsSdkDriver)
        _connect(driver, server, "sessionid=whatever")
        # Refused, and retried: the SDK stays "connecting" and sends connect again.
        await driver.wait_for(lambda e: e["ev"] == "error" and e["code"] == 100)
        start = len(driver.events)
        await driver.wait_for(lambda e: e["ev"] == "error" and e["code"] == 100, start=start)
        errors = [m["error"] for m in frames(driver.events, "in") if "error" in m]
        assert errors and all(e == {"code": 100, "message": "internal server error",
                                    "temporary": True} for e in errors)  # fmt: skip
        assert not driver.find(lambda e: e["ev"] in ("connected", "disconnected"))
        with start_app("fastapi", secret=SECRET, tmp_path=tmp_path, port=port) as app:
            driver._send({"op": "disconnect"})  # log in, then connect again with the cookie
            _connect(driver, server, app.login("bob"))
            await driver.wait_for(lambda e: e["ev"] == "connected", within=15)


async def test_slow_backend_times_out_with_temporary_error_100(
    rotary_server: Callable[..., ServerHandle], ws_connect: Any
) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.json_response({"result": {"user": "late"}})

    app = web.Application()
    app.router.add_post("/proxy/connect", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        server = rotary_server(proxy_config(app_url(port), proxy_connect_timeout="300ms"))
        client = await ws_connect(server)
        reply = await client.request({"id": 1, "connect": {}})
        assert reply["error"] == {
            "code": 100,
            "message": "internal server error",
            "temporary": True,
        }
        assert "proxy failed" in server.log() and "no answer within 0.3s" in server.log()
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"error": {"code": 4000, "message": "go away", "temporary": True}},
         {"error": {"code": 4000, "message": "go away", "temporary": True}, "outcome": "error"}),
        ({"disconnect": {"code": 4503, "reason": "banned"}},
         {"close": [4503, "banned"], "outcome": "disconnect"}),
        ({"result": {"user": 42}}, {"error": {"code": 100, "message": "internal server error",
                                              "temporary": True}, "outcome": "failure"}),
        ({}, {"close": [3501, "bad request"], "outcome": "ok"}),
        ("not json", {"error": {"code": 100, "message": "internal server error",
                                "temporary": True}, "outcome": "failure"}),
    ],
)  # fmt: skip
async def test_backend_answers_map_onto_the_protocol_as_in_centrifugo(
    answer: Any,
    expected: dict[str, Any],
    rotary_server: Callable[..., ServerHandle],
    ws_connect: Any,
) -> None:
    async def backend(request: web.Request) -> web.Response:
        if isinstance(answer, str):
            return web.Response(text=answer)
        return web.json_response(answer)

    app = web.Application()
    app.router.add_post("/proxy/connect", backend)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        server = rotary_server(proxy_config(app_url(port), prometheus=True))
        client = await ws_connect(server)
        await client.send({"id": 1, "connect": {}})
        if "close" in expected:
            assert list(await client.closed()) == expected["close"]
        else:
            assert (await client.reply(1))["error"] == expected["error"]
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{server.http_url}/metrics") as response,
        ):
            scraped = await response.text()
        counted = f'rotary_proxy_calls_total{{kind="connect",outcome="{expected["outcome"]}"}} 1.0'
        assert counted in scraped
    finally:
        await runner.cleanup()


async def test_refresh_proxy_extends_the_connection_until_the_session_ends(
    rotary_server: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    env = {"PROXY_TTL": "1"}
    with start_app("fastapi", secret=SECRET, tmp_path=tmp_path, env=env) as app:
        config = proxy_config(app.url, client_presence_update_interval="1s")
        server = rotary_server(config)
        async with open_driver("js") as driver:
            assert isinstance(driver, JsSdkDriver)
            cookie = app.login("alice")
            _connect(driver, server, cookie)
            await driver.wait_for(lambda e: e["ev"] == "connected")
            _subscribe(driver, CHANNEL)
            await driver.wait_for(lambda e: e["ev"] == "sub_subscribed")
            start = len(driver.events)
            await asyncio.sleep(2.5)  # both expire and are refreshed by the server at least once
            assert "POST /proxy/refresh" in app.log()
            assert "POST /proxy/sub_refresh" in app.log()
            lost = ("disconnected", "connecting", "sub_subscribing", "sub_unsubscribed")
            assert not driver.find(lambda e: e["ev"] in lost, start=start)
            connect_reply = next(m for m in frames(driver.events, "in") if "connect" in m)
            assert "expires" not in connect_reply["connect"]  # the server refreshes, not the SDK
            app.post("/logout", {}, cookie=cookie)
            gone = await driver.wait_for(lambda e: e["ev"] == "disconnected", within=10)
            assert gone["code"] == 4501  # expired (3005), reconnected, refused: no session
            assert driver.find(lambda e: e["ev"] == "connecting" and e["code"] == 3005)


async def test_subscribe_publish_and_rpc_with_the_backend_down_get_100_and_change_nothing(
    rotary_server: Callable[..., ServerHandle], ws_connect: Any
) -> None:
    config = proxy_config(app_url(free_port()))
    # The namespace would let anyone in without its proxies: the proxies decide all the same.
    config["namespaces"][0].update(
        allow_subscribe_for_client=True,
        allow_publish_for_client=True,
        history_size=10,
        history_ttl="60s",
    )
    server = rotary_server(config)
    client = await ws_connect(server)
    token = make_token("alice")
    assert "connect" in await client.request({"id": 1, "connect": {"token": token}})
    temporary = {"code": 100, "message": "internal server error", "temporary": True}
    sub = await client.request({"id": 2, "subscribe": {"channel": CHANNEL}})
    assert sub["error"] == temporary
    server.api("publish", {"channel": CHANNEL, "data": {"from": "api"}})
    pub = await client.request({"id": 3, "publish": {"channel": CHANNEL, "data": {"n": 1}}})
    assert pub["error"] == temporary
    rpc = await client.request({"id": 4, "rpc": {"method": "whoami", "data": {}}})
    assert rpc["error"] == temporary
    history = server.api("history", {"channel": CHANNEL, "limit": 10})
    assert [p["data"] for p in history["result"]["publications"]] == [{"from": "api"}]
    with pytest.raises(TimeoutError):  # not subscribed: the API's publication never came
        await client.push(wait=0.5)


async def test_a_burst_of_connects_waits_on_the_backend_only_not_on_a_connection_pool(
    rotary_server: Callable[..., ServerHandle],
) -> None:
    # The backend answers nobody until 150 connect calls are in flight at once. Calls queued
    # behind a capped pool of HTTP connections (aiohttp's default is 100) never get there, so
    # every one of them would time out; uncapped, all 150 arrive and are answered together.
    burst = 150
    arrived = 0
    everyone_here = asyncio.Event()

    async def slowish(request: web.Request) -> web.Response:
        nonlocal arrived
        arrived += 1
        if arrived >= burst:
            everyone_here.set()
        await everyone_here.wait()
        return web.json_response({"result": {"user": "u"}})

    app = web.Application()
    app.router.add_post("/proxy/connect", slowish)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=512).start()
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    try:
        server = rotary_server(proxy_config(app_url(port), proxy_connect_timeout="8s"))
        sockets = await asyncio.gather(*(session.ws_connect(server.ws_url) for _ in range(burst)))
        clients = [WsClient(ws) for ws in sockets]
        replies = await asyncio.gather(*(c.request({"id": 1, "connect": {}}) for c in clients))
        errors = [r for r in replies if "error" in r]
        assert not errors, errors[:3]
    finally:
        await session.close()
        await runner.cleanup()
