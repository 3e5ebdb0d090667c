"""The WebSocket endpoint and session life cycle over a real server (docs/protocol.md "Endpoint and
handshake"–docs/protocol.md "Connection life cycle")."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.functional.conftest import API_KEY, SECRET, make_token


def config(**extra: Any) -> dict[str, Any]:
    return {"token_hmac_secret_key": SECRET, "api_key": API_KEY, **extra}


async def _connect(client: Any, **claims: Any) -> dict[str, Any]:
    reply = await client.request({"id": 1, "connect": {"token": make_token(**claims)}})
    assert "connect" in reply, reply
    return dict(reply["connect"])


async def test_browser_origin_is_refused_with_403_by_default(rotary_server: Any) -> None:
    server = rotary_server(config())
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await http.ws_connect(server.ws_url, headers={"Origin": "https://evil.example"})
    assert info.value.status == 403


async def test_allowed_origin_pattern_is_accepted(rotary_server: Any, ws_connect: Any) -> None:
    server = rotary_server(config(allowed_origins=["https://*.example.com"]))
    client = await ws_connect(server, headers={"Origin": "https://app.example.com"})
    await _connect(client)


async def test_message_over_the_size_limit_closes_1009(rotary_server: Any, ws_connect: Any) -> None:
    client = await ws_connect(rotary_server(config(websocket_message_size_limit=1024)))
    await client.send("x" * 2000)
    code, _ = await client.closed()
    assert code == 1009


async def test_no_connect_within_stale_delay_closes_3502(
    rotary_server: Any, ws_connect: Any
) -> None:
    client = await ws_connect(rotary_server(config(client_stale_close_delay="500ms")))
    assert await client.closed() == (3502, "stale")


async def test_command_before_connect_closes_3501(rotary_server: Any, ws_connect: Any) -> None:
    client = await ws_connect(rotary_server(config()))
    await client.send({"id": 1, "subscribe": {"channel": "a"}})
    assert await client.closed() == (3501, "bad request")


async def test_blank_line_in_a_frame_closes_3501(rotary_server: Any, ws_connect: Any) -> None:
    client = await ws_connect(rotary_server(config()))
    await _connect(client)
    await client.send('{"id":2,"rpc":{}}\n\n{"id":3,"rpc":{}}')
    assert await client.closed() == (3501, "bad request")


async def test_second_connect_closes_3501(rotary_server: Any, ws_connect: Any) -> None:
    client = await ws_connect(rotary_server(config()))
    await _connect(client)
    await client.send({"id": 2, "connect": {"token": make_token()}})
    assert await client.closed() == (3501, "bad request")


async def test_legacy_ping_command_closes_3501(rotary_server: Any, ws_connect: Any) -> None:
    client = await ws_connect(rotary_server(config()))
    await _connect(client)
    await client.send({"id": 2, "ping": {}})
    assert await client.closed() == (3501, "bad request")


async def test_send_command_closes_3508(rotary_server: Any, ws_connect: Any) -> None:
    client = await ws_connect(rotary_server(config()))
    await _connect(client)
    await client.send({"send": {"data": {"hello": 1}}})
    assert await client.closed() == (3508, "not available")


async def test_frame_ping_pong_mode_omits_application_ping(
    rotary_server: Any, ws_connect: Any
) -> None:
    client = await ws_connect(rotary_server(config()), query="cf_ws_frame_ping_pong=true")
    result = await _connect(client)
    assert "ping" not in result and "pong" not in result


async def test_several_commands_in_one_frame_are_answered_in_order(
    rotary_server: Any, ws_connect: Any
) -> None:
    cfg = config(allow_subscribe_for_client=True)
    client = await ws_connect(rotary_server(cfg))
    await _connect(client)
    await client.send(
        {"id": 2, "subscribe": {"channel": "a"}},
        {"id": 3, "subscribe": {"channel": "b"}},
        {"id": 4, "unsubscribe": {"channel": "a"}},
    )
    messages: list[dict[str, Any]] = []
    while len(messages) < 3:
        messages += await client.recv()
    assert messages == [
        {"id": 2, "subscribe": {}},
        {"id": 3, "subscribe": {}},
        {"id": 4, "unsubscribe": {}},
    ]


async def test_connection_limit_per_user_closes_3504(rotary_server: Any, ws_connect: Any) -> None:
    server = rotary_server(config(client_user_connection_limit=1))
    first = await ws_connect(server)
    await _connect(first)
    second = await ws_connect(server)
    await second.send({"id": 1, "connect": {"token": make_token()}})
    assert await second.closed() == (3504, "connection limit")


async def test_token_channels_over_the_limit_close_3505(
    rotary_server: Any, ws_connect: Any
) -> None:
    client = await ws_connect(rotary_server(config(client_channel_limit=1)))
    await client.send({"id": 1, "connect": {"token": make_token(channels=["a", "b"])}})
    assert await client.closed() == (3505, "channel limit")


async def test_anonymous_token_is_refused_with_3507_when_disallowed(
    rotary_server: Any, ws_connect: Any
) -> None:
    client = await ws_connect(rotary_server(config(disallow_anonymous_connection_tokens=True)))
    await client.send({"id": 1, "connect": {"token": make_token("")}})
    assert await client.closed() == (3507, "permission denied")


async def test_expire_at_in_the_past_gets_error_110(rotary_server: Any, ws_connect: Any) -> None:
    client = await ws_connect(rotary_server(config()))
    token = make_token(expire_at=1000)
    reply = await client.request({"id": 1, "connect": {"token": token}})
    assert reply == {"id": 1, "error": {"code": 110, "message": "expired"}}


async def test_server_side_channels_and_personal_channel_come_in_connect_result(
    rotary_server: Any, ws_connect: Any
) -> None:
    server = rotary_server(config(user_subscribe_to_personal=True))
    client = await ws_connect(server)
    result = await _connect(client, channels=["news"])
    assert set(result["subs"]) == {"news", "#42"}
    server.api("publish", {"channel": "#42", "data": {"dm": 1}})
    assert await client.push() == {"push": {"channel": "#42", "pub": {"data": {"dm": 1}}}}


async def test_presence_history_and_rpc_are_108_when_not_available(
    rotary_server: Any, ws_connect: Any
) -> None:
    client = await ws_connect(rotary_server(config(client_insecure=True)))
    await _connect(client)
    for cmd_id, method in enumerate(("presence", "presence_stats", "history"), start=2):
        reply = await client.request({"id": cmd_id, method: {"channel": "a"}})
        assert reply["error"] == {"code": 108, "message": "not available"}
    rpc = await client.request({"id": 9, "rpc": {"method": "anything"}})
    assert rpc["error"]["code"] == 108


async def test_rpc_ping_answers_when_enabled(rotary_server: Any, ws_connect: Any) -> None:
    client = await ws_connect(rotary_server(config(rpc_ping=True)))
    await _connect(client)
    assert await client.request({"id": 2, "rpc": {"method": "ping"}}) == {"id": 2, "rpc": {}}


async def test_publish_needs_permission(rotary_server: Any, ws_connect: Any) -> None:
    client = await ws_connect(rotary_server(config()))
    await _connect(client)
    reply = await client.request({"id": 2, "publish": {"channel": "a", "data": {}}})
    assert reply["error"] == {"code": 103, "message": "permission denied"}


async def test_history_limits_and_errors(rotary_server: Any, ws_connect: Any) -> None:
    cfg = config(history_size=10, history_ttl="60s", allow_history_for_client=True)
    server = rotary_server(cfg)
    client = await ws_connect(server)
    await _connect(client)
    for n in range(3):
        server.api("publish", {"channel": "h", "data": {"n": n}})
    top = await client.request({"id": 2, "history": {"channel": "h"}})
    assert top["history"]["publications"] == [] and top["history"]["offset"] == 3
    epoch = top["history"]["epoch"]
    everything = await client.request({"id": 3, "history": {"channel": "h", "limit": -1}})
    assert [p["offset"] for p in everything["history"]["publications"]] == [1, 2, 3]
    since = {"offset": 1, "epoch": "other"}
    wrong = await client.request({"id": 4, "history": {"channel": "h", "since": since}})
    assert wrong["error"] == {"code": 112, "message": "unrecoverable position"}
    reverse = {"channel": "h", "reverse": True, "since": {"offset": 0, "epoch": epoch}}
    bad = await client.request({"id": 5, "history": reverse})
    assert bad["error"]["code"] == 107


async def test_join_and_leave_pushes_reach_subscribers_who_ask(
    rotary_server: Any, ws_connect: Any
) -> None:
    cfg = config(
        allow_subscribe_for_client=True,
        presence=True,
        join_leave=True,
        allow_presence_for_client=True,
    )
    server = rotary_server(cfg)
    watcher = await ws_connect(server)
    await _connect(watcher, sub="1")
    await watcher.request({"id": 2, "subscribe": {"channel": "room", "join_leave": True}})
    joiner = await ws_connect(server)
    joined = await _connect(joiner, sub="2", info={"n": "two"})
    await joiner.request({"id": 2, "subscribe": {"channel": "room"}})
    await joiner.request({"id": 3, "unsubscribe": {"channel": "room"}})
    pushes = []
    while len(pushes) < 3:
        pushes.append((await watcher.push())["push"])
    info = {"user": "2", "client": joined["client"], "conn_info": {"n": "two"}}
    assert {"channel": "room", "join": {"info": info}} in pushes
    assert pushes[-1] == {"channel": "room", "leave": {"info": info}}


async def test_blank_subprotocol_header_is_accepted_without_a_warning(
    rotary_server: Any, ws_connect: Any
) -> None:
    server = rotary_server(config())
    for blank in ("", " ", ","):
        client = await ws_connect(server, headers={"Sec-WebSocket-Protocol": blank})
        await _connect(client)
    other = await ws_connect(server, headers={"Sec-WebSocket-Protocol": "chat"})
    await _connect(other)
    log = server.log()
    assert log.count("overlap") == 1, log
