"""Map subscriptions over Protobuf and with fossil delta, on a real server with the memory and
the Redis map broker: state pages and live changes for Protobuf clients, JSON and Protobuf
subscribers of one map channel, and per-key deltas decoded by centrifuge-python's own
Fossil decoder. Protobuf messages are written and read with the official schema extended
with the map fields (tests/sdk/protobuf_map_oracle.py), never with Rotary's codec."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from centrifuge.fossil import apply_delta

from tests.functional.cluster_helpers import SHARED_REDIS, shared_redis_or_skip, start_node
from tests.functional.conftest import API_KEY, SECRET, ServerHandle, WsClient, make_token
from tests.sdk.protobuf_map_oracle import decode_map_replies, map_delimited, mpb
from tests.sdk.protobuf_oracle import split_frame, to_plain

pytestmark = pytest.mark.timeout(60)

#: Long, similar values: the deltas between them are shorter than the data.
V1, V2, V3 = ({"text": "x" * 120 + tail} for tail in ("one", "two", "three"))


def _config(engine: str) -> dict[str, Any]:
    game = {
        "name": "game",
        "subscription_type": "map",
        "allow_subscribe_for_client": True,
        "allowed_delta_types": ["fossil"],
        "map": {"mode": "persistent", "allow_publish_for_client": True, "min_page_size": 1},
    }
    config: dict[str, Any] = {
        "token_hmac_secret_key": SECRET,
        "api_key": API_KEY,
        "namespaces": [game],
    }
    if engine == "redis":
        config |= {
            "engine": "redis",
            "redis_address": SHARED_REDIS,
            "redis_prefix": f"rotary-mapspb-{uuid.uuid4().hex[:10]}",
            "map_broker_type": "redis",
            "map_broker_redis_address": SHARED_REDIS,
            "map_broker_redis_prefix": f"rotary-mapspb-{uuid.uuid4().hex[:10]}",
        }
    return config


@pytest.fixture(scope="module", params=["memory", "redis"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerHandle]:
    """One server per map broker for the module (each test uses channels of its own)."""
    if request.param == "redis":
        shared_redis_or_skip()
    handle = start_node(_config(request.param), tmp_path_factory.mktemp("mapspb"), "node")
    yield handle
    handle.stop()


class PbMapClient:
    """A raw Protobuf client speaking the map fields: Commands out, Replies in as dicts."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0
        self.pushes: list[dict[str, Any]] = []
        #: Publication pushes as messages (data as bytes), in order.
        self.raw: list[Any] = []

    async def request(self, **command: Any) -> dict[str, Any]:
        """Send one Command (``subscribe=mpb.SubscribeRequest(…)``…) and return its reply."""
        self.next_id += 1
        await self.ws.send_bytes(map_delimited(mpb.Command(id=self.next_id, **command)))
        reply = None
        while reply is None:
            for message in await self._recv():  # a frame may hold pushes after the reply
                if message.get("id") == self.next_id:
                    reply = message
                elif message:
                    self.pushes.append(message)
        return reply

    async def pub(self) -> dict[str, Any]:
        """The next publication push's ``pub``, as the JSON protocol would show it."""
        return to_plain(await self.raw_pub())

    async def raw_pub(self) -> Any:
        """The next publication push as a message, its data as bytes."""
        while not self.raw:
            await self._recv()
        return self.raw.pop(0).push.pub

    async def _recv(self) -> list[dict[str, Any]]:
        """The messages of the next frame; its pushes are also kept whole in `raw`."""
        msg = await self.ws.receive(timeout=10)
        assert msg.type == aiohttp.WSMsgType.BINARY, f"expected binary, got {msg.type} {msg.data}"
        for data in split_frame(msg.data):
            reply = mpb.Reply()
            reply.ParseFromString(data)
            if reply.HasField("push") and reply.push.HasField("pub"):
                self.raw.append(reply)
        return [m for m in decode_map_replies(msg.data) if "pub" not in m.get("push", {})]


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession() as session:
        yield session


async def _pb(http: aiohttp.ClientSession, server: ServerHandle) -> PbMapClient:
    ws = await http.ws_connect(server.ws_url, protocols=("centrifuge-protobuf",), autoclose=False)
    client = PbMapClient(ws)
    reply = await client.request(connect=mpb.ConnectRequest(token=make_token()))
    assert "connect" in reply, reply
    return client


async def _json(http: aiohttp.ClientSession, server: ServerHandle) -> WsClient:
    client = WsClient(await http.ws_connect(server.ws_url, autoclose=False))
    assert "connect" in await client.request({"id": 1, "connect": {"token": make_token()}})
    return client


def _publish(server: ServerHandle, channel: str, key: str, data: Any, **extra: Any) -> Any:
    reply = server.api("map_publish", {"channel": channel, "key": key, "data": data, **extra})
    return reply["result"]


def _data(pub: dict[str, Any]) -> Any:
    """What a Protobuf publication's data holds (the oracle shows JSON data as its value)."""
    return pub.get("data")


async def test_protobuf_client_walks_state_pages_then_gets_live_writes_and_removals(
    server: ServerHandle, http: aiohttp.ClientSession
) -> None:
    for key, value in (("a", 1), ("b", 2), ("c", 3)):
        _publish(server, "game:pages", key, {"v": value})
    client = await _pb(http, server)

    first = await client.request(
        subscribe=mpb.SubscribeRequest(channel="game:pages", type=1, phase=2, limit=2)
    )
    page = first["subscribe"]
    assert (page["type"], page["phase"], page["cursor"], page["offset"]) == (1, 2, "b", 3)
    assert [(e["key"], e["data"]) for e in page["state"]] == [("a", {"v": 1}), ("b", {"v": 2})]
    second = await client.request(
        subscribe=mpb.SubscribeRequest(
            channel="game:pages", type=1, phase=2, limit=2, cursor="b",
            epoch=page["epoch"], offset=page["offset"],
        )
    )  # fmt: skip
    live = second["subscribe"]
    assert "phase" not in live and live["recoverable"] is True
    assert [(e["key"], e["data"]) for e in live["state"]] == [("c", {"v": 3})]

    _publish(server, "game:pages", "d", {"v": 4})
    server.api("map_remove", {"channel": "game:pages", "key": "a"})

    write, removal = await client.pub(), await client.pub()
    assert (write["key"], write["data"], write["offset"]) == ("d", {"v": 4}, 4)
    assert (removal["key"], removal["removed"], removal["offset"]) == ("a", True, 5)


async def test_json_and_protobuf_subscribers_of_one_map_channel_get_each_change(
    server: ServerHandle, http: aiohttp.ClientSession
) -> None:
    pb_client, json_client = await _pb(http, server), await _json(http, server)
    await pb_client.request(subscribe=mpb.SubscribeRequest(channel="game:mixed", type=1, phase=2))
    body = {"channel": "game:mixed", "type": 1, "phase": 2}
    assert "subscribe" in await json_client.request({"id": 2, "subscribe": body})

    written = await pb_client.request(
        publish=mpb.PublishRequest(channel="game:mixed", type=1, key="seat", data=b'{"n":1}')
    )
    assert "publish" in written, written

    pb_pub, json_pub = await pb_client.pub(), (await json_client.push())["push"]["pub"]
    assert (
        (pb_pub["key"], pb_pub["data"]) == (json_pub["key"], json_pub["data"]) == ("seat", {"n": 1})
    )
    assert pb_pub["info"]["client"] == json_pub["info"]["client"]

    server.api("map_publish", {"channel": "game:mixed", "key": "raw", "b64data": "/wA="})

    assert (await pb_client.raw_pub()).data == b"\xff\x00"
    assert (await json_client.closed())[0] == 3506  # JSON cannot carry those bytes


async def test_fossil_deltas_go_per_key_and_decode_to_the_data_in_both_formats(
    server: ServerHandle, http: aiohttp.ClientSession
) -> None:
    channel = "game:delta"
    _publish(server, channel, "a", V1)
    pb_client, json_client = await _pb(http, server), await _json(http, server)
    pb_sub = await pb_client.request(
        subscribe=mpb.SubscribeRequest(channel=channel, type=1, phase=2, delta="fossil")
    )
    body = {"channel": channel, "type": 1, "phase": 2, "delta": "fossil"}
    json_sub = (await json_client.request({"id": 2, "subscribe": body}))["subscribe"]
    assert pb_sub["subscribe"]["delta"] is json_sub["delta"] is True
    # Over JSON a delta subscription gets every data as a string: the JSON text.
    assert json.loads(json_sub["state"][0]["data"]) == V1

    _publish(server, channel, "a", V2, delta=True)  # over the state's value: a delta
    _publish(server, channel, "b", V1, delta=True)  # a new key: whole
    _publish(server, channel, "a", V3)  # published without delta: whole

    held = {"a": _compact(V1)}
    for expected_key, expected, is_delta in (("a", V2, True), ("b", V1, False), ("a", V3, False)):
        pb_pub = await pb_client.raw_pub()
        json_pub = (await json_client.push())["push"]["pub"]
        assert pb_pub.key == json_pub["key"] == expected_key
        assert pb_pub.delta is bool(json_pub.get("delta")) is is_delta
        pb_data = bytes(pb_pub.data)
        json_data = json_pub["data"].encode()
        if is_delta:
            pb_data = bytes(apply_delta(held[expected_key], pb_data))
            json_data = bytes(apply_delta(held[expected_key], json_data))
        assert json.loads(pb_data) == json.loads(json_data) == expected
        held[expected_key] = pb_data


async def test_catch_up_after_a_resubscribe_starts_each_key_whole_then_chains_deltas(
    server: ServerHandle, http: aiohttp.ClientSession
) -> None:
    channel = "game:recover"
    first = _publish(server, channel, "a", V1, delta=True)
    client = await _pb(http, server)
    await client.request(
        subscribe=mpb.SubscribeRequest(channel=channel, type=1, phase=2, delta="fossil")
    )
    await client.request(unsubscribe=mpb.UnsubscribeRequest(channel=channel))
    _publish(server, channel, "a", V2, delta=True)
    _publish(server, channel, "a", V3, delta=True)

    reply = await client.request(
        subscribe=mpb.SubscribeRequest(
            channel=channel, type=1, phase=1, recover=True, delta="fossil",
            epoch=first["epoch"], offset=first["offset"],
        )
    )  # fmt: skip

    live = reply["subscribe"]
    assert (live["recovered"], live["delta"], live["offset"]) == (True, True, 3)
    whole, delta = live["publications"]
    assert (whole["key"], whole.get("delta"), whole["data"]) == ("a", None, V2)
    assert delta["delta"] is True
    patch = base64.b64decode(delta["data"]["base64"])  # the oracle shows non-JSON bytes so
    assert json.loads(bytes(apply_delta(_compact(V2), patch))) == V3


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
