"""A finished connection is freed by reference counting, not left to the cycle collector.

The server raises gen-0's threshold and rarely runs a full collection (`rotary.server`), so
a connection whose objects form a reference cycle would stay in memory long after the
client left, and a reconnect storm would then run on a heap full of dead connections.
These tests run the real aiohttp endpoint in-process, with the collector switched off, and
check that nothing of a finished connection is left alive.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import os
import struct
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from aiohttp import web

from rotary.config.load import load_config
from rotary.node.client import ClientSession
from rotary.node.node import Node
from rotary.protocol.codes import DisconnectCode
from rotary.server import build_app, build_node

_CONFIG = {"client_insecure": True, "allow_subscribe_for_client": True}


@pytest.fixture
def no_cycle_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.fixture
async def served() -> AsyncIterator[tuple[Node, int]]:
    """A started node behind the real aiohttp app on a free loopback port."""
    config = load_config(None, env={}, overrides=_CONFIG)
    node = build_node(config)
    await node.start()
    runner = web.AppRunner(build_app(config, node), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield node, port
    finally:
        await runner.cleanup()
        await node.close()


def _masked_text(payload: bytes) -> bytes:
    """One final, masked text frame (clients must mask, RFC 6455 §5.3)."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return bytes((0x81, 0x80 | len(payload))) + mask + body


async def _open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /connection/websocket HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def _read_text(reader: asyncio.StreamReader) -> bytes:
    first, size = await reader.readexactly(2)
    assert first == 0x81
    if size == 126:
        (size,) = struct.unpack("!H", await reader.readexactly(2))
    return await reader.readexactly(size)


async def _connected_client(node: Node, port: int) -> tuple[asyncio.StreamWriter, ClientSession]:
    reader, writer = await _open(port)
    writer.write(_masked_text(orjson.dumps({"id": 1, "connect": {}})))
    reply = orjson.loads(await _read_text(reader))
    [session] = node.sessions("", reply["connect"]["client"])
    return writer, session


_KINDS = (ClientSession, web.WebSocketResponse, web.Request)


def _existing() -> set[int]:
    return {id(o) for o in gc.get_objects() if isinstance(o, _KINDS)}


def _new_since(before: set[int]) -> list[weakref.ref[Any]]:
    """Weak references to the connection objects made since `before` was taken."""
    return [
        weakref.ref(o) for o in gc.get_objects() if isinstance(o, _KINDS) and id(o) not in before
    ]


def _alive(refs: list[weakref.ref[Any]]) -> list[str]:
    return [type(o).__name__ for o in (r() for r in refs) if o is not None]


async def _until_gone(node: Node) -> None:
    async with asyncio.timeout(5):
        await node.wait_sessions_gone()
    for _ in range(20):  # let the aiohttp handler and its request task finish
        await asyncio.sleep(0.01)


async def _watched_client(
    node: Node, port: int
) -> tuple[asyncio.StreamWriter, ClientSession, list[weakref.ref[Any]]]:
    """A connected client, its session, and weak references to its connection's objects."""
    before = _existing()
    writer, session = await _connected_client(node, port)
    refs = _new_since(before)
    assert sorted(_alive(refs)) == ["ClientSession", "Request", "WebSocketResponse"]
    return writer, session, refs


async def test_client_vanishing_without_a_close_frame_leaves_no_connection_object_alive(
    served: tuple[Node, int], no_cycle_collector: None
) -> None:
    node, port = served
    writer, session, refs = await _watched_client(node, port)
    del session
    writer.transport.abort()  # TCP reset, no close frame: aiohttp's own close then fails
    await _until_gone(node)
    assert _alive(refs) == []


async def test_client_disconnected_by_the_server_leaves_no_connection_object_alive(
    served: tuple[Node, int], no_cycle_collector: None
) -> None:
    node, port = served
    writer, session, refs = await _watched_client(node, port)
    session.disconnect(DisconnectCode.FORCE_NO_RECONNECT)
    del session
    await _until_gone(node)
    writer.close()
    assert _alive(refs) == []
