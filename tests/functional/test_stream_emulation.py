"""HTTP-streaming and SSE with emulation (docs/transports.md), driven by plain HTTP clients the
way centrifuge-js drives them: commands in the request, replies on the stream, later commands
through POST /emulation; and what the endpoints answer to bad input and to browsers.

One matrix runs over both bidirectional transports (`http_stream`, `sse`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from tests.functional.cluster_helpers import start_node
from tests.functional.conftest import API_KEY, SECRET, ServerHandle, make_token
from tests.functional.streams import BIDIRECTIONAL, Stream, open_stream

GOOD_ORIGIN = "https://app.example"
CONFIG: dict[str, Any] = {
    "token_hmac_secret_key": SECRET,
    "api_key": API_KEY,
    "http_stream": {"enabled": True},
    "sse": True,
    "emulation_max_request_body_size": 4096,
    "allow_subscribe_for_client": True,
    "allow_publish_for_subscriber": True,
    "allow_history_for_subscriber": True,
    "allowed_origins": [GOOD_ORIGIN],
    "history_size": 10,
    "history_ttl": "60s",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    handle = start_node(CONFIG, tmp_path_factory.mktemp("emulation"), "emulation")
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _connect(user: str) -> dict[str, Any]:
    return {"id": 1, "connect": {"token": make_token(user)}}


async def _emulate(
    http: aiohttp.ClientSession, server: ServerHandle, connect: dict[str, Any], *commands: Any
) -> int:
    data = "\n".join(json.dumps(c) for c in commands)
    body = {"session": connect["session"], "node": connect["node"], "data": data}
    async with http.post(f"{server.http_url}/emulation", json=body) as resp:
        return resp.status


async def _reply(stream: Stream, cmd_id: int) -> dict[str, Any]:
    while True:
        message = await stream.next()
        if message.get("id") == cmd_id:
            return message


@pytest.mark.parametrize("kind", BIDIRECTIONAL)
async def test_commands_through_emulation_are_answered_on_the_stream(
    server: ServerHandle, http: aiohttp.ClientSession, kind: str
) -> None:
    user, channel = f"u-{uuid.uuid4().hex[:8]}", f"room-{uuid.uuid4().hex[:8]}"
    stream = await open_stream(http, kind, server.http_url, [_connect(user)])
    connect = (await _reply(stream, 1))["connect"]
    assert connect["session"] and connect["node"] and connect["pong"] is True
    subscribe = {"id": 2, "subscribe": {"channel": channel}}
    assert await _emulate(http, server, connect, subscribe) == 204
    assert "subscribe" in await _reply(stream, 2)
    publish = {"id": 3, "publish": {"channel": channel, "data": {"n": 1}}}
    history = {"id": 4, "history": {"channel": channel, "limit": 10}}
    assert await _emulate(http, server, connect, publish, history) == 204
    pushes = [await stream.next() for _ in range(3)]
    pubs = [m["push"]["pub"] for m in pushes if "push" in m]
    assert [(p["data"], p["offset"], p["info"]["user"]) for p in pubs] == [({"n": 1}, 1, user)]
    assert any(m.get("id") == 3 for m in pushes)
    assert any(m.get("id") == 4 and m["history"]["publications"] for m in pushes)
    await stream.close()


@pytest.mark.parametrize("kind", BIDIRECTIONAL)
async def test_a_disconnect_ends_the_stream_after_a_disconnect_push(
    server: ServerHandle, http: aiohttp.ClientSession, kind: str
) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    stream = await open_stream(http, kind, server.http_url, [_connect(user)])
    assert "connect" in await _reply(stream, 1)
    server.api("disconnect", {"user": user})
    disconnect = {"push": {"disconnect": {"code": 3503, "reason": "force disconnect"}}}
    assert await stream.next() == disconnect
    assert await stream.ended() == []


@pytest.mark.parametrize("kind", BIDIRECTIONAL)
async def test_an_expired_connect_token_is_an_error_reply_on_the_stream(
    server: ServerHandle, http: aiohttp.ClientSession, kind: str
) -> None:
    connect = {"id": 1, "connect": {"token": make_token("u", exp_in=-60)}}
    stream = await open_stream(http, kind, server.http_url, [connect])
    assert await _reply(stream, 1) == {"id": 1, "error": {"code": 109, "message": "token expired"}}
    await stream.close()


async def test_emulation_for_an_unknown_session_or_node_is_404(
    server: ServerHandle, http: aiohttp.ClientSession
) -> None:
    stream = await open_stream(http, "http_stream", server.http_url, [_connect("u")])
    connect = (await _reply(stream, 1))["connect"]
    ping = {}
    assert await _emulate(http, server, {**connect, "session": "nope"}, ping) == 404
    assert await _emulate(http, server, {**connect, "node": "no-such-node"}, ping) == 404
    assert await _emulate(http, server, connect, ping) == 204
    await stream.close()


@pytest.mark.parametrize(
    ("method", "body", "status"),
    [
        ("POST", b"{not json", 400),
        ("POST", b'{"session": "s", "node": "n", "data": {"id": 1}}', 400),
        ("POST", b'{"session": "s", "node": "n", "data": "' + b"x" * 5000 + b'"}', 413),
        ("GET", b"", 405),
    ],
    ids=["bad-json", "data-not-a-string", "over-the-size-limit", "wrong-method"],
)
async def test_bad_emulation_requests_get_a_clear_http_error(
    server: ServerHandle, http: aiohttp.ClientSession, method: str, body: bytes, status: int
) -> None:
    url, json_type = f"{server.http_url}/emulation", {"Content-Type": "application/json"}
    async with http.request(method, url, data=body, headers=json_type) as resp:
        assert resp.status == status, await resp.text()
    async with http.get(f"{server.http_url}/health") as resp:
        assert resp.status == 200


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/connection/sse", 400),
        ("/connection/sse?cf_connect=%7Bbad", 400),
        ("/connection/sse?cf_connect=%7B%22id%22%3A%22x%22%7D", 400),
    ],
    ids=["no-cf-connect", "bad-json", "bad-command"],
)
async def test_a_bad_cf_connect_is_refused_before_the_stream_opens(
    server: ServerHandle, http: aiohttp.ClientSession, path: str, status: int
) -> None:
    async with http.get(f"{server.http_url}{path}") as resp:
        assert resp.status == status
        assert resp.content_type == "text/plain"


async def test_malformed_protobuf_requests_get_400(
    server: ServerHandle, http: aiohttp.ClientSession
) -> None:
    protobuf = {"Content-Type": "application/octet-stream"}
    for path in ("/connection/http_stream", "/emulation"):
        # A length prefix promising more bytes than follow.
        async with http.post(f"{server.http_url}{path}", data=b"\x0a", headers=protobuf) as resp:
            assert resp.status == 400


async def test_browsers_of_allowed_origins_get_cors_answers_and_others_403(
    server: ServerHandle, http: aiohttp.ClientSession
) -> None:
    preflight = {
        "Origin": GOOD_ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    for path in ("/emulation", "/connection/http_stream"):
        async with http.options(f"{server.http_url}{path}", headers=preflight) as resp:
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == GOOD_ORIGIN
            assert resp.headers["Access-Control-Allow-Credentials"] == "true"
            assert resp.headers["Access-Control-Allow-Headers"] == "content-type"
            assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    stream = await open_stream(
        http, "sse", server.http_url, [_connect("u")], headers={"Origin": GOOD_ORIGIN}
    )
    assert stream.response.headers["Access-Control-Allow-Origin"] == GOOD_ORIGIN
    await stream.close()
    evil = {**preflight, "Origin": "https://evil.example"}
    async with http.options(f"{server.http_url}/emulation", headers=evil) as resp:
        assert resp.status == 403
    body = json.dumps([_connect("u")][0])
    url = f"{server.http_url}/connection/http_stream"
    async with http.post(url, data=body, headers={"Origin": "https://evil.example"}) as resp:
        assert resp.status == 403
