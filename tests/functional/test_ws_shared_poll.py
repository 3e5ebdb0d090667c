"""Shared poll subscriptions over a real server and a real backend on loopback: subscribe of
type 4, signed track / untrack, the backend polled through a named proxy, versioned and
versionless channels, removals, refusals; on the memory engine and on Redis.

The backend is a small HTTP server in this process (a thread) that answers the refresh
call from a dictionary of items and records every request.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.functional.cluster_helpers import start_node
from tests.functional.conftest import SECRET, ServerHandle, WsClient, make_token

pytestmark = pytest.mark.timeout(60)

POLL_SECRET = "poll-secret-for-tests"
INTERVAL = "200ms"


class Backend:
    """The app's refresh endpoint: items by key, and the requests it got."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.requests.append(request)
            found = [
                {"key": i["key"], **self.items[i["key"]]}
                for i in request.get("items", [])
                if i["key"] in self.items
            ]
        return {"result": {"items": found}}

    def asked_for(self, channel: str, key: str) -> int:
        """How many requests asked for `key` of `channel`."""
        with self.lock:
            return sum(
                1
                for r in self.requests
                if r["channel"] == channel and any(i["key"] == key for i in r["items"])
            )


@pytest.fixture(scope="module")
def backend() -> Iterator[tuple[Backend, str]]:
    state = Backend()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = {**json.loads(body), "path": self.path}
            answer = json.dumps(state.answer(request)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{http.server_address[1]}/refresh"
    http.shutdown()
    http.server_close()


def config(endpoint: str, engine: str) -> dict[str, Any]:
    group = {"proxy_name": "poll_backend", "refresh_interval": INTERVAL}
    cfg: dict[str, Any] = {
        "client": {"token": {"hmac_secret_key": SECRET}},
        "shared_poll": {"hmac_secret_key": POLL_SECRET},
        "proxies": [{"name": "poll_backend", "endpoint": endpoint, "timeout": "2s"}],
        "channel": {
            "namespaces": [
                {
                    "name": "poll",
                    "subscription_type": "shared_poll",
                    "allow_subscribe_for_client": True,
                    "allowed_delta_types": ["fossil"],
                    "shared_poll": {**group, "mode": "versioned"},
                },
                {
                    "name": "pollvl",
                    "subscription_type": "shared_poll",
                    "allow_subscribe_for_client": True,
                    "shared_poll": group,
                },
            ]
        },
    }
    if engine == "redis":
        prefix = f"rotary-sp21-{uuid.uuid4().hex[:8]}"
        cfg["engine"] = {"type": "redis", "redis": {"address": "127.0.0.1:6379", "prefix": prefix}}
    return cfg


@pytest.fixture(scope="module", params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def server(
    request: pytest.FixtureRequest,
    backend: tuple[Backend, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerHandle]:
    engine = request.param
    handle = start_node(config(backend[1], engine), tmp_path_factory.mktemp(engine), engine)
    yield handle
    handle.stop()


def sign(channel: str, keys: list[str], user: str = "42", ttl: int = 3600) -> str:
    """A track signature as the app's backend makes it."""
    now = int(time.time())
    keys_hash = hashlib.sha256("\x00".join(keys).encode()).hexdigest()
    payload = f"{now}\x00{now + ttl}\x00{user}\x00{channel}\x00{keys_hash}"
    mac = hmac.new(POLL_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return f"{now}:{now + ttl}:{mac}"


def track(cmd_id: int, channel: str, items: dict[str, int], **extra: Any) -> dict[str, Any]:
    batch = {
        "signature": extra.pop("signature", None) or sign(channel, list(items)),
        "items": [{"key": k, "version": v} if v else {"key": k} for k, v in items.items()],
    }
    return {"id": cmd_id, "sub_refresh": {"channel": channel, "type": 1, "track": [batch], **extra}}


_channels = iter(range(1_000_000))


def new_channel(namespace: str = "poll") -> str:
    return f"{namespace}:{uuid.uuid4().hex[:8]}{next(_channels)}"


async def subscribed(server: ServerHandle, ws_connect: Any, channel: str) -> WsClient:
    client: WsClient = await ws_connect(server)
    assert "connect" in await ask(client, {"id": 1, "connect": {"token": make_token()}})
    reply = await ask(client, {"id": 2, "subscribe": {"channel": channel, "type": 4}})
    assert reply["subscribe"]["type"] == 4, reply
    return client


async def ask(client: WsClient, command: dict[str, Any]) -> dict[str, Any]:
    """Send `command` and return its reply; pushes read on the way, including those in the
    reply's own frame (an update may follow a track reply at once), stay in `pushes`."""
    await client.send(command)
    reply = None
    while reply is None:
        for message in await client.recv():
            if message.get("id") == command["id"] and reply is None:
                reply = message
            elif message:
                client.pushes.append(message)
    return reply


async def updates(client: WsClient, count: int) -> list[dict[str, Any]]:
    got = []
    while len(got) < count:
        push = (await client.push())["push"]
        assert push["channel"].startswith("poll"), push
        got.append(push["pub"])
    return got


async def test_tracked_keys_get_their_data_and_version_from_the_backend(
    server: ServerHandle, backend: tuple[Backend, str], ws_connect: Any
) -> None:
    state, _ = backend
    channel = new_channel()
    state.items.update(
        {"a1": {"data": {"v": "a"}, "version": 3}, "b1": {"data": [1], "version": 1}}
    )
    client = await subscribed(server, ws_connect, channel)

    reply = await ask(client, track(3, channel, {"a1": 0, "b1": 0}))

    assert reply["sub_refresh"]["expires"] is True
    assert 3590 <= reply["sub_refresh"]["ttl"] <= 3600
    got = sorted(await updates(client, 2), key=lambda p: p["key"])
    assert got == [
        {"data": {"v": "a"}, "key": "a1", "version": 3},
        {"data": [1], "key": "b1", "version": 1},
    ]


async def test_new_version_is_pushed_and_an_unchanged_one_is_not(
    server: ServerHandle, backend: tuple[Backend, str], ws_connect: Any
) -> None:
    state, _ = backend
    channel = new_channel()
    state.items["k"] = {"data": {"n": 5}, "version": 5}
    client = await subscribed(server, ws_connect, channel)
    await ask(client, track(3, channel, {"k": 5}))  # the client has version 5 already

    asked = state.asked_for(channel, "k")
    for _ in range(200):  # two polls that changed nothing
        if state.asked_for(channel, "k") >= asked + 2:
            break
        await asyncio.sleep(0.05)
    state.items["k"] = {"data": {"n": 6}, "version": 6}

    assert await updates(client, 1) == [{"data": {"n": 6}, "key": "k", "version": 6}]


async def test_removed_item_is_pushed_as_a_removal_and_no_longer_polled(
    server: ServerHandle, backend: tuple[Backend, str], ws_connect: Any
) -> None:
    state, _ = backend
    channel = new_channel()
    state.items["gone"] = {"data": {"x": 1}, "version": 1}
    client = await subscribed(server, ws_connect, channel)
    await ask(client, track(3, channel, {"gone": 0}))
    await updates(client, 1)

    state.items["gone"] = {"data": None, "version": 2, "removed": True}

    assert await updates(client, 1) == [{"key": "gone", "removed": True}]


async def test_versionless_channel_numbers_versions_when_the_data_changes(
    server: ServerHandle, backend: tuple[Backend, str], ws_connect: Any
) -> None:
    state, _ = backend
    channel = new_channel("pollvl")
    state.items["vl"] = {"data": {"text": "one"}}
    client: WsClient = await ws_connect(server)
    await ask(client, {"id": 1, "connect": {"token": make_token()}})
    reply = await ask(client, {"id": 2, "subscribe": {"channel": channel, "type": 4}})
    assert len(reply["subscribe"]["epoch"]) == 8
    await ask(client, track(3, channel, {"vl": 0}))
    (first,) = await updates(client, 1)

    state.items["vl"] = {"data": {"text": "two"}}

    (second,) = await updates(client, 1)
    assert (first["data"], second["data"]) == ({"text": "one"}, {"text": "two"})
    assert 0 < first["version"] < second["version"]


async def test_untracked_key_gets_no_more_updates(
    server: ServerHandle, backend: tuple[Backend, str], ws_connect: Any
) -> None:
    state, _ = backend
    channel = new_channel()
    state.items.update({"u1": {"data": 1, "version": 1}, "u2": {"data": 2, "version": 1}})
    client = await subscribed(server, ws_connect, channel)
    await ask(client, track(3, channel, {"u1": 0, "u2": 0}))
    await updates(client, 2)

    reply = await ask(
        client, {"id": 4, "sub_refresh": {"channel": channel, "type": 2, "untrack": ["u1"]}}
    )
    assert reply == {"id": 4, "sub_refresh": {}}
    state.items.update({"u1": {"data": 10, "version": 2}, "u2": {"data": 20, "version": 2}})

    assert await updates(client, 1) == [{"data": 20, "key": "u2", "version": 2}]


@pytest.mark.parametrize(
    ("signature", "code"),
    [
        ("1:2:not-a-mac", 103),
        (None, 103),  # signed for another user
        ("expired", 109),
    ],
)
async def test_bad_track_signatures_are_refused_and_the_server_goes_on(
    server: ServerHandle, ws_connect: Any, signature: str | None, code: int
) -> None:
    channel = new_channel()
    client = await subscribed(server, ws_connect, channel)
    if signature is None:
        signature = sign(channel, ["k"], user="someone-else")
    elif signature == "expired":
        signature = sign(channel, ["k"], ttl=-60)

    reply = await ask(client, track(3, channel, {"k": 0}, signature=signature))

    assert reply["error"]["code"] == code
    assert (await ask(client, track(4, channel, {"k": 0})))["sub_refresh"]["expires"]


async def test_track_without_a_shared_poll_subscription_is_refused_with_103(
    server: ServerHandle, ws_connect: Any
) -> None:
    channel = new_channel()
    client: WsClient = await ws_connect(server)
    await ask(client, {"id": 1, "connect": {"token": make_token()}})

    reply = await ask(client, track(2, channel, {"k": 0}))

    assert reply["error"]["code"] == 103


async def test_two_clients_on_one_key_cost_one_backend_item_per_poll(
    server: ServerHandle, backend: tuple[Backend, str], ws_connect: Any
) -> None:
    state, _ = backend
    channel = new_channel()
    state.items["shared"] = {"data": {"s": 1}, "version": 1}
    first = await subscribed(server, ws_connect, channel)
    second = await subscribed(server, ws_connect, channel)
    await ask(first, track(3, channel, {"shared": 0}))
    await ask(second, track(3, channel, {"shared": 0}))
    assert (await updates(first, 1))[0]["version"] == 1
    assert (await updates(second, 1))[0]["version"] == 1

    await asyncio.sleep(0.5)  # a few polls with both clients tracking the key
    with state.lock:
        asked = [[i["key"] for i in r["items"]] for r in state.requests if r["channel"] == channel]
    assert len(asked) >= 2
    assert all(keys == ["shared"] for keys in asked)


@pytest.mark.redis
async def test_each_node_of_a_redis_cluster_polls_the_keys_of_its_own_clients_once(
    backend: tuple[Backend, str], ws_connect: Any, tmp_path: Path
) -> None:
    """As in Centrifugo, nodes do not share polling: a key tracked on two nodes is asked by
    each, once per poll whatever the number of its clients there."""
    state, endpoint = backend
    base = config(endpoint, "redis")
    nodes = []
    for name in ("n1", "n2"):
        cfg = json.loads(json.dumps(base))
        cfg["proxies"][0]["endpoint"] = f"{endpoint}/{name}"
        nodes.append(start_node(cfg, tmp_path, name))
    try:
        channel = new_channel()
        state.items["multi"] = {"data": {"m": 1}, "version": 1}
        clients = [await subscribed(node, ws_connect, channel) for node in nodes for _ in range(2)]
        for client in clients:
            await ask(client, track(3, channel, {"multi": 0}))
        for client in clients:
            assert (await updates(client, 1))[0]["version"] == 1
        await asyncio.sleep(0.5)  # a few polls on each node
    finally:
        for node in nodes:
            node.stop()

    with state.lock:
        asked = [(r["path"], r["items"]) for r in state.requests if r["channel"] == channel]
    paths = {path for path, _ in asked}
    assert paths == {"/refresh/n1", "/refresh/n2"}
    assert all([i["key"] for i in items] == ["multi"] for _, items in asked)


async def test_key_nobody_tracks_after_unsubscribe_is_no_longer_polled(
    server: ServerHandle, backend: tuple[Backend, str], ws_connect: Any
) -> None:
    state, _ = backend
    channel = new_channel()
    state.items["bye"] = {"data": 1, "version": 1}
    client = await subscribed(server, ws_connect, channel)
    await ask(client, track(3, channel, {"bye": 0}))
    await updates(client, 1)

    await ask(client, {"id": 4, "unsubscribe": {"channel": channel}})
    await asyncio.sleep(0.5)
    asked = state.asked_for(channel, "bye")
    await asyncio.sleep(0.6)  # three intervals

    assert state.asked_for(channel, "bye") == asked


# ---------------------------------------------------------------------------- Protobuf
# The shared poll fields are newer than the schema of the installed centrifuge-python, so
# these messages are written and read by hand from client.proto's field numbers.


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, value: bytes | int) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def _fields(data: bytes) -> dict[int, list[Any]]:
    """Field number → its values (ints, or bytes of LEN fields)."""
    out: dict[int, list[Any]] = {}
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        if key & 7 == 0:
            value, pos = _read_varint(data, pos)
        else:
            size, pos = _read_varint(data, pos)
            value, pos = data[pos : pos + size], pos + size
        out.setdefault(key >> 3, []).append(value)
    return out


def _replies(frame: bytes) -> list[dict[int, list[Any]]]:
    replies, pos = [], 0
    while pos < len(frame):
        size, pos = _read_varint(frame, pos)
        replies.append(_fields(frame[pos : pos + size]))
        pos += size
    return replies


def _command(cmd_id: int, number: int, body: bytes) -> bytes:
    message = _field(1, cmd_id) + _field(number, body)
    return _varint(len(message)) + message


async def _protobuf_first_push(
    server: ServerHandle, channel: str, key: str
) -> tuple[dict[int, dict[int, list[Any]]], dict[int, list[Any]], dict[int, list[Any]]]:
    """Connect over Protobuf, subscribe to `channel`, track `key`; the replies by id, the
    first push and its publication."""
    batch = _field(1, sign(channel, [key]).encode()) + _field(2, _field(1, key.encode()))
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(server.ws_url, protocols=("centrifuge-protobuf",))
        await ws.send_bytes(_command(1, 4, _field(1, make_token().encode())))
        await ws.send_bytes(_command(2, 5, _field(1, channel.encode()) + _field(15, 4)))
        await ws.send_bytes(
            _command(3, 15, _field(1, channel.encode()) + _field(3, 1) + _field(4, batch))
        )
        seen: list[dict[int, list[Any]]] = []
        while not any(4 in r for r in seen):  # the first push
            seen += _replies((await ws.receive(timeout=10)).data)
        await ws.close()
    by_id = {r[1][0]: r for r in seen if 1 in r}
    push = _fields(next(r for r in seen if 4 in r)[4][0])
    return by_id, push, _fields(push[4][0])


async def test_protobuf_client_tracks_keys_and_gets_keyed_publications(
    server: ServerHandle, backend: tuple[Backend, str]
) -> None:
    state, _ = backend
    channel = new_channel()
    state.items["pb"] = {"data": {"p": 1}, "version": 4}

    by_id, push, pub = await _protobuf_first_push(server, channel, "pb")

    subscribe = _fields(by_id[2][6][0])
    assert subscribe[15] == [4]
    assert _fields(by_id[3][15][0])[1] == [1]  # expires
    assert push[2] == [channel.encode()]
    assert (json.loads(pub[4][0]), pub[11], pub[16]) == ({"p": 1}, [b"pb"], [4])


# ---------------------------------------------------------------------------- b64data


async def test_b64data_item_reaches_a_protobuf_client_as_its_bytes(
    server: ServerHandle, backend: tuple[Backend, str]
) -> None:
    state, _ = backend
    channel = new_channel()
    state.items["bin"] = {"b64data": base64.b64encode(b"\x00\x01\xff").decode(), "version": 2}

    _, _, pub = await _protobuf_first_push(server, channel, "bin")

    assert (pub[4], pub[11], pub[16]) == ([b"\x00\x01\xff"], [b"bin"], [2])


async def test_b64data_item_reaches_a_json_client_as_its_json_value_and_no_data_as_none(
    server: ServerHandle, backend: tuple[Backend, str], ws_connect: Any
) -> None:
    state, _ = backend
    channel = new_channel()
    state.items["bj"] = {"b64data": base64.b64encode(b'{"b": 1}').decode(), "version": 1}
    state.items["nodata"] = {"version": 1}
    client = await subscribed(server, ws_connect, channel)

    await ask(client, track(3, channel, {"bj": 0, "nodata": 0}))

    assert sorted(await updates(client, 2), key=lambda p: p["key"]) == [
        {"data": {"b": 1}, "key": "bj", "version": 1},
        {"key": "nodata", "version": 1},  # as Centrifugo: no data, no "data" (not null)
    ]


async def test_answer_with_bad_b64data_is_dropped_and_the_next_good_one_goes_out(
    server: ServerHandle, backend: tuple[Backend, str], ws_connect: Any
) -> None:
    state, _ = backend
    channel = new_channel()
    state.items["badb64"] = {"b64data": "not base64!", "version": 1}
    client = await subscribed(server, ws_connect, channel)
    await ask(client, track(3, channel, {"badb64": 0}))
    for _ in range(200):  # the bad answer came (and was dropped) before the good one
        if state.asked_for(channel, "badb64"):
            break
        await asyncio.sleep(0.05)

    state.items["badb64"] = {"data": {"ok": True}, "version": 2}

    assert await updates(client, 1) == [{"data": {"ok": True}, "key": "badb64", "version": 2}]
