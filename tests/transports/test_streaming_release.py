"""A finished HTTP-streaming or SSE connection is freed by reference counting, as a WebSocket
connection is (tests/transports/test_websocket_release.py, whose helpers these tests share):
with the cycle collector off, nothing of the connection outlives it."""

from __future__ import annotations

import asyncio
import gc
import urllib.parse
import weakref
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiohttp import web

from rotary.node.client import ClientSession
from rotary.node.node import Node
from rotary.protocol.codes import DisconnectCode
from tests.transports.test_websocket_release import _alive, _serving, _until_gone

_CONFIG = {"client_insecure": True, "http_stream": True, "sse": True, "uni_sse": True}
_KINDS = (ClientSession, web.StreamResponse, web.Request)
_CONNECT = orjson.dumps({"id": 1, "connect": {}}).decode()


@pytest.fixture
def no_cycle_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _request(kind: str, port: int) -> bytes:
    host = f"Host: 127.0.0.1:{port}\r\n"
    if kind == "http_stream":
        head = f"POST /connection/http_stream HTTP/1.1\r\n{host}Content-Length: {len(_CONNECT)}"
        return f"{head}\r\n\r\n{_CONNECT}".encode()
    path = "sse" if kind == "sse" else "uni_sse"
    query = urllib.parse.urlencode({"cf_connect": _CONNECT if kind == "sse" else "{}"})
    return f"GET /connection/{path}?{query} HTTP/1.1\r\n{host}\r\n".encode()


async def _watched(
    node: Node, port: int, kind: str
) -> tuple[asyncio.StreamWriter, ClientSession, list[weakref.ref[Any]]]:
    before = {id(o) for o in gc.get_objects() if isinstance(o, _KINDS)}
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_request(kind, port))
    await reader.readuntil(b'"client":"')
    client = (await reader.readuntil(b'"'))[:-1].decode()
    [session] = node.sessions("", client)
    refs = [
        weakref.ref(o) for o in gc.get_objects() if isinstance(o, _KINDS) and id(o) not in before
    ]
    assert sorted(_alive(refs)) == ["ClientSession", "Request", "StreamResponse"]
    return writer, session, refs


@pytest.mark.parametrize("kind", ["http_stream", "sse", "uni_sse"])
async def test_a_streaming_client_that_vanishes_leaves_no_connection_object_alive(
    no_cycle_collector: None, kind: str
) -> None:
    async with _serving(_CONFIG) as (node, port):
        writer, session, refs = await _watched(node, port, kind)
        del session
        writer.transport.abort()
        await _until_gone(node)
        assert _alive(refs) == []


@pytest.mark.parametrize("kind", ["http_stream", "sse", "uni_sse"])
async def test_a_stream_ended_by_the_server_leaves_no_connection_object_alive(
    no_cycle_collector: None, kind: str
) -> None:
    async with _serving(_CONFIG) as (node, port):
        writer, session, refs = await _watched(node, port, kind)
        session.disconnect(DisconnectCode.FORCE_NO_RECONNECT)
        del session
        await _until_gone(node)
        # The stream has ended but the HTTP connection is kept alive for another request;
        # aiohttp lets go of the last request once the client closes it.
        writer.close()
        await writer.wait_closed()
        for _ in range(50):
            if not _alive(refs):
                break
            await asyncio.sleep(0.01)
        assert _alive(refs) == []
