"""Unidirectional transports (docs/transports.md) with plain HTTP and WebSocket clients: one
connect request, then only pushes in Centrifugo's unidirectional shapes, on a real server.

One behaviour matrix runs over every way in: `uni_http_stream` (POST), `uni_sse` (GET with
``cf_connect``, and POST) and `uni_websocket` (connect request as the first message).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from tests.functional.cluster_helpers import start_node
from tests.functional.conftest import API_KEY, SECRET, ServerHandle, make_token
from tests.functional.streams import UNIDIRECTIONAL, open_stream

CONFIG: dict[str, Any] = {
    "token_hmac_secret_key": SECRET,
    "api_key": API_KEY,
    "uni_http_stream": True,
    "uni_sse": {"enabled": True},
    "uni_websocket": True,
    "allow_subscribe_for_client": True,
    "user_subscribe_to_personal": True,
    "ping_interval": "1s",
    "pong_timeout": "0s",
    "client_expired_close_delay": "1s",
    "namespaces": [
        {"name": "dialog", "allow_user_limited_channels": True},
        {"name": "hist", "history_size": 10, "history_ttl": "300s", "force_recovery": True},
        {"name": "room", "presence": True},
    ],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    handle = start_node(CONFIG, tmp_path_factory.mktemp("uni"), "uni")
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


@pytest.mark.parametrize("kind", UNIDIRECTIONAL)
async def test_connect_push_then_publications_of_every_server_side_channel(
    server: ServerHandle, http: aiohttp.ClientSession, kind: str
) -> None:
    user = _user()
    news, limited = f"news-{user}", f"dialog:talk#{user},other"
    token = make_token(user, subs={news: {}, limited: {}})
    stream = await open_stream(http, kind, server.http_url, {"token": token})
    connect = (await stream.next())["connect"]
    personal = f"#{user}"
    assert set(connect["subs"]) == {news, limited, personal}
    assert connect["session"] and "node" not in connect and "pong" not in connect
    assert connect["ping"] == 1
    for channel in (news, limited, personal):
        server.api("publish", {"channel": channel, "data": {"to": channel}})
        assert await stream.next() == {"channel": channel, "pub": {"data": {"to": channel}}}
    await stream.close()


@pytest.mark.parametrize("kind", UNIDIRECTIONAL)
async def test_pings_are_empty_objects_and_need_no_answer(
    server: ServerHandle, http: aiohttp.ClientSession, kind: str
) -> None:
    stream = await open_stream(http, kind, server.http_url, {"token": make_token(_user())})
    assert "connect" in await stream.next()
    # Pings every second, no pong timeout for unidirectional clients: three pings in a row.
    assert [await stream.next(pings=True) for _ in range(3)] == [{}, {}, {}]
    await stream.close()


@pytest.mark.parametrize("kind", UNIDIRECTIONAL)
async def test_server_disconnect_is_a_disconnect_push_then_the_end_of_the_stream(
    server: ServerHandle, http: aiohttp.ClientSession, kind: str
) -> None:
    user = _user()
    stream = await open_stream(http, kind, server.http_url, {"token": make_token(user)})
    assert "connect" in await stream.next()
    server.api("disconnect", {"user": user})
    assert await stream.next() == {"disconnect": {"code": 3503, "reason": "force disconnect"}}
    assert await stream.ended() == []
    if kind == "uni_websocket":
        assert stream.close_code == 3503


@pytest.mark.parametrize("kind", UNIDIRECTIONAL)
@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"exp_in": -60}, {"code": 3005, "reason": "connection expired"}),
        ({"exp_in": 60, "forged": True}, {"code": 3500, "reason": "invalid token"}),
    ],
    ids=["expired-token-3005", "bad-signature-3500"],
)
async def test_a_refused_connect_token_is_a_disconnect_push(
    server: ServerHandle,
    http: aiohttp.ClientSession,
    kind: str,
    claims: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    token = make_token(_user(), exp_in=claims["exp_in"])
    if claims.get("forged"):
        token = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    stream = await open_stream(http, kind, server.http_url, {"token": token})
    assert await stream.next() == {"disconnect": expected}
    assert await stream.ended() == []


async def test_server_side_subscribe_by_session_reaches_only_that_connection(
    server: ServerHandle, http: aiohttp.ClientSession
) -> None:
    user = _user()
    one = await open_stream(http, "uni_http_stream", server.http_url, {"token": make_token(user)})
    two = await open_stream(http, "uni_sse_get", server.http_url, {"token": make_token(user)})
    session = (await one.next())["connect"]["session"]
    assert "connect" in await two.next()
    channel = f"extra-{user}"
    server.api("subscribe", {"user": user, "channel": channel, "session": session})
    subscribed = await one.next()
    assert subscribed["channel"] == channel and "subscribe" in subscribed
    server.api("publish", {"channel": channel, "data": {"n": 1}})
    server.api("publish", {"channel": f"#{user}", "data": {"n": 2}})
    assert await one.next() == {"channel": channel, "pub": {"data": {"n": 1}}}
    # The other connection of the same user was not subscribed: its next push is the second.
    assert await two.next() == {"channel": f"#{user}", "pub": {"data": {"n": 2}}}
    await one.close()
    await two.close()


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("uni_http_stream", b"{not json", 400),
        ("uni_http_stream", b"[1, 2]", 400),
        ("uni_sse", b'"a string"', 400),
        ("uni_http_stream", b'{"token": "' + b"x" * 70_000 + b'"}', 413),
    ],
    ids=["bad-json", "not-an-object", "sse-not-an-object", "over-the-size-limit"],
)
async def test_bad_connect_requests_get_a_clear_http_error(
    server: ServerHandle, http: aiohttp.ClientSession, path: str, body: bytes, status: int
) -> None:
    async with http.post(f"{server.http_url}/connection/{path}", data=body) as resp:
        assert resp.status == status, await resp.text()
    async with http.get(f"{server.http_url}/connection/uni_sse?cf_connect=%7Bbad") as resp:
        assert resp.status == 400
    async with http.put(f"{server.http_url}/connection/uni_http_stream", data=b"{}") as resp:
        assert resp.status == 405
    async with http.get(f"{server.http_url}/health") as resp:
        assert resp.status == 200


async def test_a_unidirectional_websocket_whose_first_message_is_not_a_connect_request_gets_3501(
    server: ServerHandle, http: aiohttp.ClientSession
) -> None:
    ws_url = server.http_url.replace("http", "ws", 1) + "/connection/uni_websocket"
    async with http.ws_connect(ws_url) as ws:
        await ws.send_str("[not a connect request")
        push = await ws.receive(timeout=10)
        assert push.json() == {"disconnect": {"code": 3501, "reason": "bad request"}}
        closing = await ws.receive(timeout=10)
        assert closing.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 3501


async def test_a_unidirectional_websocket_takes_its_connect_request_in_the_query(
    server: ServerHandle, http: aiohttp.ClientSession
) -> None:
    ws_url = server.http_url.replace("http", "ws", 1) + "/connection/uni_websocket"
    token = make_token(_user())
    async with http.ws_connect(ws_url, params={"cf_connect": f'{{"token":"{token}"}}'}) as ws:
        first = await ws.receive(timeout=10)
        assert "connect" in first.json()


@pytest.mark.parametrize("kind", UNIDIRECTIONAL)
async def test_a_reconnecting_client_recovers_what_it_missed_through_its_connect_request(
    server: ServerHandle, http: aiohttp.ClientSession, kind: str
) -> None:
    user = _user()
    channel = f"hist:feed-{user}"
    token = make_token(user, subs={channel: {}})
    first = await open_stream(http, kind, server.http_url, {"token": token})
    position = (await first.next())["connect"]["subs"][channel]
    assert position["recoverable"] is True
    server.api("publish", {"channel": channel, "data": {"n": 1}})
    seen = await first.next()
    assert seen["pub"]["data"] == {"n": 1}
    await first.close()
    for n in (2, 3):  # published while the client is away
        server.api("publish", {"channel": channel, "data": {"n": n}})
    since = {"recover": True, "offset": seen["pub"]["offset"], "epoch": position["epoch"]}
    again = await open_stream(
        http, kind, server.http_url, {"token": token, "subs": {channel: since}}
    )
    recovered = (await again.next())["connect"]["subs"][channel]
    assert recovered["recovered"] is True
    assert [p["data"] for p in recovered["publications"]] == [{"n": 2}, {"n": 3}]
    server.api("publish", {"channel": channel, "data": {"n": 4}})
    assert (await again.next())["pub"]["data"] == {"n": 4}
    await again.close()


@pytest.mark.parametrize("kind", UNIDIRECTIONAL)
async def test_a_unidirectional_client_shows_in_presence_with_its_token_info(
    server: ServerHandle, http: aiohttp.ClientSession, kind: str
) -> None:
    user = _user()
    channel = f"room:hall-{user}"
    token = make_token(user, subs={channel: {}}, info={"name": user})
    stream = await open_stream(http, kind, server.http_url, {"token": token})
    client = (await stream.next())["connect"]["client"]
    presence = server.api("presence", {"channel": channel})["result"]["presence"]
    assert presence == {client: {"client": client, "user": user, "conn_info": {"name": user}}}
    await stream.close()


@pytest.mark.parametrize("kind", UNIDIRECTIONAL)
async def test_a_token_expiring_on_a_live_connection_ends_it_with_3005(
    server: ServerHandle, http: aiohttp.ClientSession, kind: str
) -> None:
    # A unidirectional client cannot refresh: once its token expires (plus the close
    # delay), the connection ends and the client reconnects with a new token.
    token = make_token(_user(), exp_in=1)
    stream = await open_stream(http, kind, server.http_url, {"token": token})
    connect = (await stream.next())["connect"]
    assert connect["expires"] is True and connect["ttl"] <= 1
    expired = {"disconnect": {"code": 3005, "reason": "connection expired"}}
    assert await stream.next(wait=10) == expired
    assert await stream.ended() == []
