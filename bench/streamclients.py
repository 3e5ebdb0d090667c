"""Load clients of Rotary's HTTP-streaming and SSE endpoints (docs/transports.md), for `fanout`.

Each client is a plain asyncio protocol on its own TCP connection: it sends one HTTP/1.1
request carrying its connect command, whose ``subs`` asks for the channels (the server
subscribes them at connect, so no emulation request is needed to subscribe), then counts
publications in the streamed body without decoding it. Server pings (``{}``) are answered
through the emulation endpoint, as centrifuge-js does.

The clients offer what the load worker expects of a picows client: a `ready` future, a
`received` count, and a `transport` with ``disconnect()`` and ``wait_disconnected()``.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from typing import Any, cast

import orjson

__all__ = ["STREAM_KINDS", "StreamClient", "open_stream_client"]

#: Client kinds of this module → the endpoint path they connect to.
STREAM_KINDS = {"http_stream": "/connection/http_stream", "sse": "/connection/sse"}

_PUB = b'"pub":'
_CONNECT_REPLY = b'{"id":1,"connect":'
#: What a server ping looks like in each body (alone, or after another message).
_PINGS = {"http_stream": (b"\n{}\n", b"\r\n{}\n"), "sse": (b"data: {}\n",)}


class _Handle:
    """The picows-like face of a stream client's transport, for the load worker."""

    def __init__(self, client: StreamClient) -> None:
        self._client = client

    def disconnect(self) -> None:
        if self._client.raw is not None:
            self._client.raw.close()

    async def wait_disconnected(self) -> None:
        await self._client.closed


class StreamClient(asyncio.Protocol):
    """One HTTP-streaming or SSE client; counts publications into `tally`."""

    def __init__(self, kind: str, tally: Any, request: bytes, emulation_url: str) -> None:
        self.kind = kind
        self.tally = tally
        self.request = request
        self.emulation_url = emulation_url
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[float] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.received = 0
        self.raw: asyncio.Transport | None = None
        self.transport = _Handle(self)
        self._head = b""
        self._tail = b""
        self._connect: dict[str, Any] = {}
        self._pongs: set[asyncio.Future[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have asyncio.Transport's methods without being its subclass.
        self.raw = cast(asyncio.Transport, transport)
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"stream closed before connect: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.ready.done():
            self._count(data)
            return
        self._head += data
        if b"\r\n\r\n" not in self._head:
            return
        if not self._head.startswith(b"HTTP/1.1 200"):
            self.ready.set_exception(ConnectionError(self._head[:200].decode(errors="replace")))
            return
        start = self._head.find(_CONNECT_REPLY)
        if start >= 0 and b"\n" in self._head[start:]:
            self._on_connected(self._head, start)
        elif b'"error":' in self._head:
            self.ready.set_exception(ConnectionError(self._head[-200:].decode(errors="replace")))

    def _on_connected(self, head: bytes, start: int) -> None:
        line = head[start:].split(b"\n", 1)[0]
        self._connect = orjson.loads(line)["connect"]
        self.ready.set_result(time.monotonic())
        self._count(head[start + len(line) :])

    def _count(self, data: bytes) -> None:
        # A marker may straddle two reads: look at the end of the previous one too (shorter
        # than a marker, so nothing is counted twice).
        window = self._tail + data
        self._tail = window[-(len(_PUB) - 1) :]
        pubs = window.count(_PUB)
        if pubs:
            self.received += pubs
            self.tally.add(pubs)
        if any(ping in window for ping in _PINGS[self.kind]):
            task = asyncio.ensure_future(self._pong())
            self._pongs.add(task)
            task.add_done_callback(self._pongs.discard)

    async def _pong(self) -> None:
        """Answer a ping through the emulation endpoint (one short request)."""
        url = urllib.parse.urlsplit(self.emulation_url)
        body = orjson.dumps(
            {"session": self._connect["session"], "node": self._connect["node"], "data": "{}"}
        )
        request = (
            f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        writer.write(request)
        await reader.read()
        writer.close()


def _request(kind: str, host: str, connect: bytes) -> bytes:
    path = STREAM_KINDS[kind]
    if kind == "sse":
        query = urllib.parse.urlencode({"cf_connect": connect.decode()})
        return f"GET {path}?{query} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(connect)}\r\n\r\n"
    )
    return head.encode() + connect


async def open_stream_client(
    kind: str, base_url: str, tally: Any, *, token: str, channels: tuple[str, ...]
) -> StreamClient:
    """Open one client of `kind` against the server at `base_url` (``http://host:port``)."""
    url = urllib.parse.urlsplit(base_url)
    connect: dict[str, Any] = {"subs": {ch: {} for ch in channels}}
    if token:
        connect["token"] = token
    command = orjson.dumps({"id": 1, "connect": connect})
    request = _request(kind, url.netloc, command)
    loop = asyncio.get_running_loop()
    emulation = f"{base_url}/emulation"
    _, client = await loop.create_connection(
        lambda: StreamClient(kind, tally, request, emulation), url.hostname, url.port
    )
    return client
