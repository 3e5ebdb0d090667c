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
import contextlib
import gc
import os
import struct
import weakref
from asyncio import selector_events
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
from tests.functional.conftest import SECRET, free_port, make_token

_CONFIG = {"client_insecure": True, "allow_subscribe_for_client": True}


@pytest.fixture
def no_cycle_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextlib.asynccontextmanager
async def _serving(overrides: dict[str, Any]) -> AsyncIterator[tuple[Node, int]]:
    """A started node behind the real aiohttp app on a free loopback port."""
    config = load_config(None, env={}, overrides=overrides)
    node = build_node(config)
    await node.start()
    runner = web.AppRunner(build_app(config, node), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield node, runner.addresses[0][1]
    finally:
        await runner.cleanup()
        await node.close()


@pytest.fixture
async def served() -> AsyncIterator[tuple[Node, int]]:
    async with _serving(_CONFIG) as both:
        yield both


def _masked_text(payload: bytes) -> bytes:
    """One final, masked text frame (clients must mask, RFC 6455 §5.3)."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    if len(payload) < 126:
        return bytes((0x81, 0x80 | len(payload))) + mask + body
    assert len(payload) < 65536
    return struct.pack("!BBH", 0x81, 0x80 | 126, len(payload)) + mask + body


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


_CHECKED = {"token_hmac_secret_key": SECRET}
_FORGED = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.AAAA"


async def test_clients_refused_at_connect_leave_no_connection_object_alive(
    no_cycle_collector: None,
) -> None:
    # A storm of bad tokens must leave nothing behind: refusals raise and chain exceptions,
    # and an exception kept anywhere keeps the frames (and sessions) of its traceback.
    async with _serving(_CHECKED) as (node, port):
        refs = []
        for _ in range(3):
            before = _existing()
            reader, writer = await _open(port)
            writer.write(_masked_text(orjson.dumps({"id": 1, "connect": {"token": _FORGED}})))
            await reader.readexactly(2)  # the refusal
            refs += _new_since(before)
            writer.transport.abort()
            await _until_gone(node)
        assert len(refs) == 9
        assert _alive(refs) == []


@pytest.mark.parametrize(
    ("command", "answer"),
    [
        ({"subscribe": {"channel": "$private", "token": _FORGED}}, 0x81),  # error 103
        ({"refresh": {"token": _FORGED}}, 0x88),  # close frame, 3500
    ],
    ids=["subscribe", "refresh"],
)
async def test_client_refused_a_token_after_connect_leaves_no_connection_object_alive(
    command: dict[str, Any], answer: int, no_cycle_collector: None
) -> None:
    async with _serving(_CHECKED) as (node, port):
        before = _existing()
        reader, writer = await _open(port)
        writer.write(_masked_text(orjson.dumps({"id": 1, "connect": {"token": make_token()}})))
        assert "connect" in orjson.loads(await _read_text(reader))
        refs = _new_since(before)
        writer.write(_masked_text(orjson.dumps({"id": 2, **command})))
        first, _ = await reader.readexactly(2)
        assert first == answer
        writer.transport.abort()
        await _until_gone(node)
        assert _alive(refs) == []


async def test_clients_refused_by_an_unreachable_connect_proxy_leave_no_connection_object_alive(
    no_cycle_collector: None,
) -> None:
    # The proxy's failure path raises and chains exceptions (the HTTP client's among them).
    proxied = {"proxy_connect_endpoint": f"http://127.0.0.1:{free_port()}/connect"}
    async with _serving({**_CHECKED, **proxied}) as (node, port):
        refs = []
        for _ in range(3):
            before = _existing()
            reader, writer = await _open(port)
            writer.write(_masked_text(orjson.dumps({"id": 1, "connect": {}})))
            assert b'"code":100' in await _read_text(reader)
            refs += _new_since(before)
            writer.transport.abort()
            await _until_gone(node)
        assert len(refs) == 9
        assert _alive(refs) == []


def _socket_transports() -> list[asyncio.Transport]:
    return [o for o in gc.get_objects() if isinstance(o, selector_events._SelectorSocketTransport)]


@pytest.mark.parametrize("leaving", ["close", "abort"])
async def test_connections_that_ended_leave_no_socket_transport_to_the_cycle_collector(
    served: tuple[Node, int], no_cycle_collector: None, leaving: str
) -> None:
    # Each connection that ended used to keep its asyncio socket transport (with its socket
    # object and address tuples, about 1 KB) in a reference cycle, which a server that
    # rarely runs a full collection kept for good: RSS grew with every reconnect.
    node, port = served
    before = {id(t) for t in _socket_transports()}
    writers = [(await _connected_client(node, port))[0] for _ in range(3)]
    made = [weakref.ref(t) for t in _socket_transports() if id(t) not in before]
    assert len(made) == 6  # the clients' ends and the server's
    for writer in writers:
        writer.close() if leaving == "close" else writer.transport.abort()
    del writers, writer
    await _until_gone(node)
    assert [t for t in (r() for r in made) if t is not None] == []
