"""permessage-deflate on the WebSocket endpoints (docs/transports.md "Compression"), on a real
server: aiohttp's client and centrifuge-js (Node's ws) offering the extension, and a raw
client that sees each frame's RSV1 bit (set on compressed messages).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from tests.functional.cluster_helpers import start_node
from tests.functional.conftest import API_KEY, SECRET, ServerHandle, make_token
from tests.sdk.harness import open_driver

_DEFLATE = {
    "compression": True,
    "compression_min_size": 64,
    "compression_level": 1,
    "message_size_limit": 1024,
    "decompressed_message_size_limit": 4096,
}

CONFIG: dict[str, Any] = {
    "token_hmac_secret_key": SECRET,
    "http_api": {"key": API_KEY},
    "channel": {"without_namespace": {"allow_subscribe_for_client": True}},
    "websocket": _DEFLATE,
    "uni_websocket": {"enabled": True, **_DEFLATE},
}

_OFFER = "permessage-deflate; client_max_window_bits"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    handle = start_node(CONFIG, tmp_path_factory.mktemp("deflate"), "deflate")
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class _RawClient:
    """A WebSocket client on asyncio streams that reports, per frame, whether RSV1 is set."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.headers: dict[str, str] = {}

    @classmethod
    async def open(cls, port: int, path: str, offer: str | None = _OFFER) -> _RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        extension = f"Sec-WebSocket-Extensions: {offer}\r\n" if offer else ""
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{extension}\r\n".encode()
        )
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        assert head.startswith("HTTP/1.1 101"), head
        client = cls(reader, writer)
        for line in head.split("\r\n")[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                client.headers[name.strip().lower()] = value.strip()
        return client

    def send(self, payload: bytes, *, compress: bool = False) -> None:
        """One masked text frame; deflated (RSV1) when `compress`."""
        first = 0x81
        if compress:
            deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
            payload = (deflater.compress(payload) + deflater.flush(zlib.Z_SYNC_FLUSH))[:-4]
            first |= 0x40
        mask = os.urandom(4)
        size = len(payload)
        header = (
            struct.pack("!BB", first, 0x80 | size)
            if size < 126
            else struct.pack("!BBH", first, 0x80 | 126, size)
        )
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(header + mask + body)

    async def frame(self) -> tuple[bool, int, bytes]:
        """The next frame: (RSV1 set, opcode, payload inflated when compressed)."""
        first, second = await asyncio.wait_for(self.reader.readexactly(2), 10)
        size = second & 0x7F
        if size == 126:
            size = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif size == 127:
            size = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        payload = await self.reader.readexactly(size)
        compressed = bool(first & 0x40)
        if compressed:
            payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
        return compressed, first & 0x0F, payload

    async def message(self) -> tuple[bool, dict[str, Any]]:
        """The next data frame that is not an empty ping: (compressed, message)."""
        while True:
            compressed, opcode, payload = await self.frame()
            if opcode == 0x1 and payload.strip() != b"{}":
                return compressed, json.loads(payload)

    def close(self) -> None:
        self.writer.close()


def _channel() -> str:
    return f"deflate-{uuid.uuid4().hex[:8]}"


def _ws_url(server: ServerHandle, path: str = "websocket") -> str:
    return server.http_url.replace("http", "ws", 1) + f"/connection/{path}"


async def test_a_client_offering_deflate_gets_it_and_reads_every_message(
    server: ServerHandle, http: aiohttp.ClientSession
) -> None:
    channel = _channel()
    async with http.ws_connect(_ws_url(server), compress=15) as ws:
        assert ws.compress == 15
        await ws.send_str(json.dumps({"id": 1, "connect": {"token": make_token("a")}}))
        assert "connect" in json.loads(await ws.receive_str(timeout=10))
        await ws.send_str(json.dumps({"id": 2, "subscribe": {"channel": channel}}))
        assert "subscribe" in json.loads(await ws.receive_str(timeout=10))
        datas = [{"n": 1}, {"text": "x" * 3000}]
        for data in datas:
            server.api("publish", {"channel": channel, "data": data})
        got = [json.loads(await ws.receive_str(timeout=10))["push"]["pub"]["data"] for _ in datas]
        assert got == datas


async def test_only_messages_above_the_minimum_size_are_compressed(server: ServerHandle) -> None:
    channel = _channel()
    client = await _RawClient.open(server.port, "/connection/websocket")
    try:
        assert client.headers["sec-websocket-extensions"].startswith("permessage-deflate")
        client.send(json.dumps({"id": 1, "connect": {"token": make_token("b")}}).encode())
        await client.message()
        client.send(json.dumps({"id": 2, "subscribe": {"channel": channel}}).encode())
        await client.message()
        server.api("publish", {"channel": channel, "data": {}})
        small, pub = await client.message()
        assert (small, pub["push"]["pub"]["data"]) == (False, {})
        server.api("publish", {"channel": channel, "data": {"text": "y" * 200}})
        large, pub = await client.message()
        assert (large, pub["push"]["pub"]["data"]) == (True, {"text": "y" * 200})
    finally:
        client.close()


async def test_a_client_that_does_not_offer_deflate_gets_plain_frames(
    server: ServerHandle,
) -> None:
    client = await _RawClient.open(server.port, "/connection/websocket", offer=None)
    try:
        assert "sec-websocket-extensions" not in client.headers
        client.send(json.dumps({"id": 1, "connect": {"token": make_token("c" * 300)}}).encode())
        compressed, reply = await client.message()
        assert (compressed, reply["connect"]["client"] != "") == (False, True)
    finally:
        client.close()


async def test_a_compressed_command_is_inflated_and_handled(server: ServerHandle) -> None:
    client = await _RawClient.open(server.port, "/connection/websocket")
    try:
        # 2 KB inflated: over message_size_limit (1 KB), within the decompressed limit.
        token = make_token("d", padding="p" * 1900)
        client.send(json.dumps({"id": 1, "connect": {"token": token}}).encode(), compress=True)
        _, reply = await client.message()
        assert reply["id"] == 1 and "connect" in reply
    finally:
        client.close()


@pytest.mark.parametrize("path", ["websocket", "uni_websocket"])
async def test_a_message_inflating_past_the_decompressed_limit_closes_with_1009(
    server: ServerHandle, path: str
) -> None:
    client = await _RawClient.open(server.port, f"/connection/{path}")
    try:
        client.send(b'{"id":1,"connect":{"data":"' + b"z" * 8000 + b'"}}', compress=True)
        while True:
            _, opcode, payload = await client.frame()
            if opcode == 0x8:
                break
        assert struct.unpack("!H", payload[:2])[0] == 1009
    finally:
        client.close()


async def test_the_unidirectional_websocket_compresses_large_pushes_for_a_client_offering_it(
    server: ServerHandle,
) -> None:
    channel = _channel()
    client = await _RawClient.open(server.port, "/connection/uni_websocket")
    try:
        token = make_token("e", channels=[channel])
        client.send(json.dumps({"token": token}).encode())
        await client.message()
        server.api("publish", {"channel": channel, "data": {"n": 1}})
        server.api("publish", {"channel": channel, "data": {"text": "w" * 500}})
        small, first = await client.message()
        large, second = await client.message()
        assert (small, first["pub"]["data"]) == (False, {"n": 1})
        assert (large, second["pub"]["data"]) == (True, {"text": "w" * 500})
    finally:
        client.close()


async def test_the_unidirectional_websocket_works_with_aiohttps_compressing_client(
    server: ServerHandle, http: aiohttp.ClientSession
) -> None:
    channel = _channel()
    async with http.ws_connect(_ws_url(server, "uni_websocket"), compress=15) as ws:
        assert ws.compress == 15
        await ws.send_str(json.dumps({"token": make_token("f", channels=[channel])}))
        assert "connect" in json.loads(await ws.receive_str(timeout=10))
        server.api("publish", {"channel": channel, "data": {"text": "v" * 2000}})
        push = json.loads(await ws.receive_str(timeout=10))
        assert push["pub"]["data"] == {"text": "v" * 2000}


async def test_without_compression_configured_an_offer_is_declined(
    rotary_server: Any,
) -> None:
    handle = rotary_server()
    client = await _RawClient.open(handle.port, "/connection/websocket")
    try:
        assert "sec-websocket-extensions" not in client.headers
        client.send(json.dumps({"id": 1, "connect": {"token": make_token("g" * 300)}}).encode())
        compressed, reply = await client.message()
        assert (compressed, "connect" in reply) == (False, True)
    finally:
        client.close()


@pytest.mark.sdk
@pytest.mark.timeout(40)
async def test_centrifuge_js_negotiates_deflate_and_receives_large_publications(
    server: ServerHandle,
) -> None:
    channel = _channel()
    async with open_driver("js") as sdk:
        await sdk.connect(server.ws_url, token=make_token("js"))
        opened = await sdk.wait_for(lambda e: e["ev"] == "ws_open")
        assert opened["extensions"].startswith("permessage-deflate"), sdk.dump()
        await sdk.wait_for(lambda e: e["ev"] == "connected")
        await sdk.subscribe(channel)
        await sdk.wait_for(lambda e: e["ev"] == "sub_subscribed" and e["channel"] == channel)
        for data in ({"n": 1}, {"text": "u" * 3000}):
            server.api("publish", {"channel": channel, "data": data})
            await sdk.wait_for(lambda e, d=data: e["ev"] == "publication" and e["data"] == d)
