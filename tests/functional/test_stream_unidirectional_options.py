"""Centrifugo's options of the unidirectional transports (docs/transports.md "Options of the
unidirectional transports"), on real servers: connect errors as HTTP answers, connect errors
as chosen disconnects, joined frames, no disconnect push, no closing handshake.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from tests.functional.cluster_helpers import start_node
from tests.functional.conftest import API_KEY, SECRET, ServerHandle, make_token
from tests.functional.streams import open_stream

_CODE_TO_HTTP = {
    "enabled": True,
    "transforms": [
        {"code": 109, "to": {"status_code": 401, "body": "get a new token"}},
        {"code": 3500, "to": {"status_code": 403}},
    ],
}

CONFIG: dict[str, Any] = {
    "token_hmac_secret_key": SECRET,
    "http_api": {"key": API_KEY},
    "client": {
        "connect_code_to_unidirectional_disconnect": {
            "enabled": True,
            "transforms": [{"code": 109, "to": {"code": 4501, "reason": "renew the token"}}],
        },
    },
    "uni_http_stream": {"enabled": True, "connect_code_to_http_response": _CODE_TO_HTTP},
    "uni_sse": {"enabled": True, "connect_code_to_http_response": _CODE_TO_HTTP},
    "uni_websocket": {
        "enabled": True,
        "join_push_messages": True,
        "disable_disconnect_push": True,
        "write_timeout": "2s",
        # Accepted for compatibility, without effect.
        "read_buffer_size": 4096,
    },
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    handle = start_node(CONFIG, tmp_path_factory.mktemp("uniopts"), "uniopts")
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def plain_close_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    config = {
        "token_hmac_secret_key": SECRET,
        "api_key": API_KEY,
        "uni_websocket": True,
        "uni_websocket_disable_closing_handshake": True,
        "ping_interval": "1s",
        "pong_timeout": "500ms",
    }
    handle = start_node(config, tmp_path_factory.mktemp("uniclose"), "uniclose")
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def ping_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """Pings every 2 s, pongs due within 1.8 s: a pong 1.4 s late is in time (it would not
    be within half of the ping interval)."""
    config = {
        "token_hmac_secret_key": SECRET,
        "api_key": API_KEY,
        "uni_websocket": True,
        "ping_interval": "2s",
        "pong_timeout": "1800ms",
    }
    handle = start_node(config, tmp_path_factory.mktemp("uniping"), "uniping")
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _user() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


def _ws_url(server: ServerHandle) -> str:
    return server.http_url.replace("http", "ws", 1) + "/connection/uni_websocket"


async def _post_connect(
    http: aiohttp.ClientSession, server: ServerHandle, path: str, token: str
) -> tuple[int, str]:
    url = f"{server.http_url}/connection/{path}"
    async with http.post(url, data=json.dumps({"token": token})) as resp:
        return resp.status, await resp.text()


@pytest.mark.parametrize("path", ["uni_http_stream", "uni_sse"])
async def test_an_expired_token_is_answered_with_the_configured_status_and_body(
    server: ServerHandle, http: aiohttp.ClientSession, path: str
) -> None:
    status, body = await _post_connect(http, server, path, make_token(_user(), exp_in=-60))
    assert (status, body) == (401, "get a new token")


@pytest.mark.parametrize("path", ["uni_http_stream", "uni_sse"])
async def test_an_empty_configured_body_carries_the_refusals_own_reason(
    server: ServerHandle, http: aiohttp.ClientSession, path: str
) -> None:
    forged = make_token(_user())[:-4] + "AAAA"
    assert await _post_connect(http, server, path, forged) == (403, "invalid token")


async def test_a_refusal_code_without_a_transform_is_answered_500(
    server: ServerHandle, http: aiohttp.ClientSession
) -> None:
    # No token and no anonymous connections: disconnect 3501, a code not listed.
    async with http.post(f"{server.http_url}/connection/uni_sse", data=b"{}") as resp:
        assert (resp.status, await resp.text()) == (500, "Internal Server Error")


@pytest.mark.parametrize("kind", ["uni_http_stream", "uni_sse_get"])
async def test_with_http_answers_on_a_good_connect_still_streams(
    server: ServerHandle, http: aiohttp.ClientSession, kind: str
) -> None:
    user = _user()
    stream = await open_stream(http, kind, server.http_url, {"token": make_token(user)})
    assert "connect" in await stream.next()
    server.api("disconnect", {"user": user})
    assert await stream.next() == {"disconnect": {"code": 3503, "reason": "force disconnect"}}
    assert await stream.ended() == []


async def test_a_connect_error_code_becomes_the_configured_disconnect(
    server: ServerHandle, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(_ws_url(server)) as ws:
        await ws.send_str(json.dumps({"token": make_token(_user(), exp_in=-60)}))
        closing = await ws.receive(timeout=10)
        # disable_disconnect_push: the close frame alone says why.
        assert closing.type == aiohttp.WSMsgType.CLOSE
        assert (ws.close_code, closing.extra) == (4501, "renew the token")


async def test_joined_push_messages_share_frames_one_message_per_line(
    server: ServerHandle, http: aiohttp.ClientSession
) -> None:
    user = _user()
    channel = f"news-{user}"
    async with http.ws_connect(_ws_url(server)) as ws:
        await ws.send_str(json.dumps({"token": make_token(user, channels=[channel])}))
        connect = json.loads((await ws.receive(timeout=10)).data)
        assert channel in connect["connect"]["subs"]
        commands = [{"publish": {"channel": channel, "data": {"n": n}}} for n in range(20)]
        server.api("batch", {"commands": commands})
        frames: list[str] = []
        lines: list[dict[str, Any]] = []
        while len(lines) < 20:
            frame = (await ws.receive(timeout=10)).data
            frames.append(frame)
            lines += [json.loads(line) for line in frame.split("\n")]
        assert [m["pub"]["data"]["n"] for m in lines] == list(range(20))
        assert len(frames) < 20, "publications written at once must share frames"


async def test_without_disconnect_push_a_server_disconnect_is_the_close_frame_alone(
    server: ServerHandle, http: aiohttp.ClientSession
) -> None:
    user = _user()
    async with http.ws_connect(_ws_url(server)) as ws:
        await ws.send_str(json.dumps({"token": make_token(user)}))
        assert "connect" in json.loads((await ws.receive(timeout=10)).data)
        server.api("disconnect", {"user": user})
        closing = await ws.receive(timeout=10)
        assert closing.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 3503


async def test_without_closing_handshake_the_connection_just_ends_after_the_push(
    plain_close_server: ServerHandle, http: aiohttp.ClientSession
) -> None:
    user = _user()
    async with http.ws_connect(_ws_url(plain_close_server)) as ws:
        await ws.send_str(json.dumps({"token": make_token(user)}))
        assert "connect" in json.loads((await ws.receive(timeout=10)).data)
        plain_close_server.api("disconnect", {"user": user})
        push = await ws.receive(timeout=10)
        assert json.loads(push.data) == {"disconnect": {"code": 3503, "reason": "force disconnect"}}
        end = await ws.receive(timeout=10)
        assert end.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        assert ws.close_code != 3503  # no close frame carried the code


async def test_websocket_pings_go_out_and_a_client_that_never_answers_them_is_dropped(
    plain_close_server: ServerHandle, http: aiohttp.ClientSession
) -> None:
    seen: list[aiohttp.WSMsgType] = []
    async with http.ws_connect(_ws_url(plain_close_server), autoping=False) as ws:
        await ws.send_str(json.dumps({"token": make_token(_user())}))
        while True:
            msg = await ws.receive(timeout=10)
            seen.append(msg.type)
            if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                break
    assert aiohttp.WSMsgType.PING in seen, seen


async def test_a_pong_within_pong_timeout_keeps_the_connection(
    ping_server: ServerHandle, http: aiohttp.ClientSession
) -> None:
    user = _user()
    channel = f"pings-{user}"
    async with http.ws_connect(_ws_url(ping_server), autoping=False) as ws:
        await ws.send_str(json.dumps({"token": make_token(user, channels=[channel])}))
        ping = await ws.receive(timeout=10)
        while ping.type != aiohttp.WSMsgType.PING:
            ping = await ws.receive(timeout=10)
        await asyncio.sleep(1.4)
        await ws.pong(ping.data)
        ping_server.api("publish", {"channel": channel, "data": {"alive": True}})
        msg = await ws.receive(timeout=10)
        while msg.type == aiohttp.WSMsgType.TEXT and msg.data == "{}":
            msg = await ws.receive(timeout=10)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        assert json.loads(msg.data)["pub"]["data"] == {"alive": True}
