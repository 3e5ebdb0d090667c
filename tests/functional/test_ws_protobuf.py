"""The Protobuf protocol over a real WebSocket (docs/protobuf.md): how it is selected, binary
frames of varint-prefixed messages both ways, the one-byte ping and pong, bad input, and
channels shared by JSON and Protobuf clients. Messages are written and read with the
official schema (tests/sdk/protobuf_oracle.py), never with Rotary's codec."""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp
import pytest

from tests.functional.conftest import API_KEY, SECRET, ServerHandle, WsClient, make_token
from tests.sdk.protobuf_oracle import decode_replies, delimited, pb

pytestmark = pytest.mark.timeout(30)


def config(**extra: Any) -> dict[str, Any]:
    return {
        "token_hmac_secret_key": SECRET,
        "api_key": API_KEY,
        "allow_subscribe_for_client": True,
        "allow_publish_for_subscriber": True,
        "presence": True,
        "allow_presence_for_subscriber": True,
        **extra,
    }


class PbClient:
    """A raw Protobuf client: Commands out as one binary frame, Replies in as dicts."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.pushes: list[dict[str, Any]] = []
        self.replies: list[dict[str, Any]] = []

    async def send(self, *commands: Any) -> None:
        await self.ws.send_bytes(delimited(*commands))

    async def recv(self, wait: float = 10) -> list[dict[str, Any]]:
        msg = await self.ws.receive(timeout=wait)
        assert msg.type == aiohttp.WSMsgType.BINARY, f"expected binary, got {msg.type} {msg.data}"
        return decode_replies(msg.data)

    async def reply(self, cmd_id: int) -> dict[str, Any]:
        """Read until the reply to `cmd_id`; other replies and pushes on the way are kept."""
        while True:
            for message in self.replies:
                if message.get("id") == cmd_id:
                    self.replies.remove(message)
                    return message
            for message in await self.recv():
                if message.get("id"):
                    self.replies.append(message)
                elif message:
                    self.pushes.append(message)

    async def request(self, command: Any) -> dict[str, Any]:
        await self.send(command)
        return await self.reply(command.id)

    async def push(self) -> dict[str, Any]:
        while not self.pushes:
            self.pushes.extend(m for m in await self.recv() if m)
        return self.pushes.pop(0)

    async def closed(self, wait: float = 20) -> tuple[int, str]:
        while True:
            msg = await self.ws.receive(timeout=wait)
            if msg.type == aiohttp.WSMsgType.BINARY:
                continue
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg
            return int(self.ws.close_code or 0), str(msg.extra or "")


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession() as session:
        yield session


async def open_pb(
    http: aiohttp.ClientSession,
    server: ServerHandle,
    *,
    query: str = "",
    protocols: tuple[str, ...] = ("centrifuge-protobuf",),
) -> PbClient:
    url = server.ws_url + (f"?{query}" if query else "")
    return PbClient(await http.ws_connect(url, protocols=protocols, autoclose=False))


def connect_cmd(cmd_id: int = 1, **claims: Any) -> Any:
    return pb.Command(id=cmd_id, connect=pb.ConnectRequest(token=make_token(**claims)))


async def test_subprotocol_selects_protobuf_and_is_echoed(rotary_server: Any, http: Any) -> None:
    client = await open_pb(http, rotary_server(config()))
    assert client.ws.protocol == "centrifuge-protobuf"
    reply = await client.request(connect_cmd())
    assert reply["connect"]["client"] and reply["connect"]["version"], reply


@pytest.mark.parametrize("query", ["cf_protocol=protobuf", "format=protobuf"])
async def test_query_forms_select_protobuf_without_a_subprotocol(
    rotary_server: Any, http: Any, query: str
) -> None:
    client = await open_pb(http, rotary_server(config()), query=query, protocols=())
    reply = await client.request(connect_cmd())
    assert "connect" in reply, reply


async def test_json_subprotocol_offered_first_keeps_json(rotary_server: Any, http: Any) -> None:
    server = rotary_server(config())
    ws = await http.ws_connect(server.ws_url, protocols=("centrifuge-json", "centrifuge-protobuf"))
    assert ws.protocol == "centrifuge-json"
    reply = await WsClient(ws).request({"id": 1, "connect": {"token": make_token()}})
    assert "connect" in reply


async def test_several_commands_in_one_frame_are_answered_in_order(
    rotary_server: Any, http: Any
) -> None:
    client = await open_pb(http, rotary_server(config()))
    await client.send(
        connect_cmd(1),
        pb.Command(id=2, subscribe=pb.SubscribeRequest(channel="pb-multi")),
        pb.Command(id=3, publish=pb.PublishRequest(channel="pb-multi", data=b"\x00\x01")),
        pb.Command(id=4, presence_stats=pb.PresenceStatsRequest(channel="pb-multi")),
    )
    replies = [await client.reply(n) for n in (1, 2, 3, 4)]
    assert [sorted(set(r) - {"id"}) for r in replies] == [
        ["connect"],
        ["subscribe"],
        ["publish"],
        ["presence_stats"],
    ]
    assert replies[3]["presence_stats"] == {"num_clients": 1, "num_users": 1}
    push = await client.push()
    assert push["push"]["pub"]["data"] == {"base64": base64.b64encode(b"\x00\x01").decode()}


@pytest.mark.parametrize(
    "frame", [b"\x05\x08", b"\x02\x0b\x00", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"]
)
async def test_undecodable_command_closes_3501_and_the_server_lives_on(
    rotary_server: Any, http: Any, frame: bytes
) -> None:
    server = rotary_server(config())
    client = await open_pb(http, server)
    await client.request(connect_cmd())
    await client.ws.send_bytes(frame)
    assert await client.closed() == (3501, "bad request")
    again = await open_pb(http, server)
    assert "connect" in await again.request(connect_cmd())


async def test_ping_is_one_zero_byte_and_a_zero_byte_pong_keeps_the_connection(
    rotary_server: Any, http: Any
) -> None:
    client = await open_pb(http, rotary_server(config(ping_interval="1s", pong_timeout="500ms")))
    reply = await client.request(connect_cmd())
    assert reply["connect"]["ping"] == 1 and reply["connect"]["pong"] is True
    for _ in range(2):  # the second ping proves the first pong was taken
        msg = await client.ws.receive(timeout=5)
        assert (msg.type, msg.data) == (aiohttp.WSMsgType.BINARY, b"\x00")
        await client.ws.send_bytes(b"\x00")


async def test_mixed_channel_json_and_protobuf_subscribers_both_get_publications(
    rotary_server: Any, http: Any, ws_connect: Any
) -> None:
    server = rotary_server(config())
    proto = await open_pb(http, server)
    await proto.request(connect_cmd(sub="p"))
    await proto.request(pb.Command(id=2, subscribe=pb.SubscribeRequest(channel="mixed")))
    text = await ws_connect(server)
    await text.request({"id": 1, "connect": {"token": make_token(sub="j")}})
    await text.request({"id": 2, "subscribe": {"channel": "mixed"}})

    server.api("publish", {"channel": "mixed", "data": {"n": 1}})
    assert (await proto.push())["push"]["pub"]["data"] == {"n": 1}
    assert (await text.push())["push"]["pub"]["data"] == {"n": 1}

    await text.request({"id": 3, "publish": {"channel": "mixed", "data": {"from": "json"}}})
    pub = (await proto.push())["push"]["pub"]
    assert pub["data"] == {"from": "json"} and pub["info"]["user"] == "j"


async def test_bytes_that_are_not_json_reach_protobuf_and_close_json_subscribers_with_3506(
    rotary_server: Any, http: Any, ws_connect: Any
) -> None:
    server = rotary_server(config())
    proto = await open_pb(http, server)
    await proto.request(connect_cmd())
    await proto.request(pb.Command(id=2, subscribe=pb.SubscribeRequest(channel="bin")))
    text = await ws_connect(server)
    await text.request({"id": 1, "connect": {"token": make_token(sub="j")}})
    await text.request({"id": 2, "subscribe": {"channel": "bin"}})

    b64 = base64.b64encode(b"\xffnot json").decode()
    assert "error" not in server.api("publish", {"channel": "bin", "b64data": b64})
    assert (await proto.push())["push"]["pub"]["data"] == {"base64": b64}
    assert await text.closed() == (3506, "inappropriate protocol")

    await proto.request(pb.Command(id=3, publish=pb.PublishRequest(channel="bin", data=b"\x01")))
    assert (await proto.push())["push"]["pub"]["data"] == {"base64": "AQ=="}
    assert "Traceback" not in server.log()


async def test_binary_b64info_of_a_token_reaches_protobuf_presence_as_its_bytes(
    rotary_server: Any, http: Any
) -> None:
    client = await open_pb(http, rotary_server(config()))
    info = base64.b64encode(b"\x00bin").decode()
    await client.request(connect_cmd(sub="u", b64info=info))
    await client.request(pb.Command(id=2, subscribe=pb.SubscribeRequest(channel="who")))
    reply = await client.request(pb.Command(id=3, presence=pb.PresenceRequest(channel="who")))
    [entry] = reply["presence"]["presence"].values()
    assert entry["conn_info"] == {"base64": info}


async def test_json_client_with_the_same_binary_b64info_is_closed_with_3506(
    rotary_server: Any, ws_connect: Any
) -> None:
    text: WsClient = await ws_connect(rotary_server(config()))
    token = make_token(b64info=base64.b64encode(b"\x00bin").decode())
    await text.send(json.dumps({"id": 1, "connect": {"token": token}}))
    assert await text.closed() == (3506, "inappropriate protocol")


async def test_presence_reply_holding_binary_info_closes_the_json_client_asking_with_3506(
    rotary_server: Any, http: Any, ws_connect: Any
) -> None:
    server = rotary_server(config())
    proto = await open_pb(http, server)
    info = base64.b64encode(b"\x00bin").decode()
    await proto.request(connect_cmd(sub="u", b64info=info))
    await proto.request(pb.Command(id=2, subscribe=pb.SubscribeRequest(channel="room")))
    text = await ws_connect(server)
    await text.request({"id": 1, "connect": {"token": make_token(sub="j")}})
    await text.request({"id": 2, "subscribe": {"channel": "room"}})
    await text.send({"id": 3, "presence": {"channel": "room"}})
    assert await text.closed() == (3506, "inappropriate protocol")
    reply = await proto.request(pb.Command(id=3, presence=pb.PresenceRequest(channel="room")))
    users = {entry["user"] for entry in reply["presence"]["presence"].values()}
    assert "u" in users, "the Protobuf client is unaffected"
