"""The differential runner's streaming connections: HTTP-streaming, SSE, and the uni transports.

A `Stream` is one bidirectional connection over HTTP-streaming or SSE: its first frame of
commands opens the stream (the request body, or SSE's ``cf_connect`` query parameter), and
later frames go through ``POST /emulation`` with the session and node its connect reply
named. A `UniStream` is one unidirectional connection (uni_http_stream, uni_sse,
uni_websocket) opened with a connect request; it only receives.

`receive` gives the messages that arrived, as decoded dicts, or None once the connection is
over; `close` then holds what the client saw last: a bidirectional stream's disconnect push
as ``(code, reason)`` (the WebSocket's close frame on the other transports), a
uni_websocket's close frame, or ``(0, "stream ended")`` when a stream just ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.parse
from typing import Any

import aiohttp

from tests.compat import wire
from tests.sdk.protobuf_oracle import pb

__all__ = ["UNI_TRANSPORTS", "Stream", "UniStream"]

UNI_TRANSPORTS = ("uni_http_stream", "uni_sse", "uni_websocket")
_ENDED = (0, "stream ended")


class Stream:
    """One HTTP-streaming or SSE connection with emulation (see the module docstring)."""

    def __init__(
        self, session: aiohttp.ClientSession, base: str, transport: str, protobuf: bool
    ) -> None:
        self.session = session
        self.base = base
        self.transport = transport
        self.protobuf = protobuf
        self.close: tuple[int, str] | None = None
        self.emulation_statuses: list[int] = []
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._response: aiohttp.ClientResponse | None = None
        self._ids: dict[str, str] = {}  # session and node, from the connect reply

    async def send(self, frame: str | bytes) -> None:
        """Open the stream with `frame`, or post `frame` through the emulation endpoint."""
        if self._reader is None:
            self._reader = asyncio.create_task(self._read_stream(frame))
            return
        if self.protobuf:
            assert isinstance(frame, bytes)
            body: bytes = pb.EmulationRequest(data=frame, **self._ids).SerializeToString()
            headers = {"Content-Type": "application/octet-stream"}
        else:
            body = json.dumps({**self._ids, "data": frame}).encode()
            headers = {"Content-Type": "application/json"}
        async with self.session.post(f"{self.base}/emulation", data=body, headers=headers) as r:
            await r.read()
            self.emulation_statuses.append(r.status)

    async def receive(self, wait: float) -> list[dict[str, Any]] | None:
        """The next message (as a one-item list), or None once the stream is over."""
        if self.close is not None and self._queue.empty():
            return None
        message = await asyncio.wait_for(self._queue.get(), wait)
        return None if message is None else [message]

    async def end(self) -> None:
        """Leave: stop reading and drop the response."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._response is not None:
            self._response.close()

    async def _read_stream(self, frame: str | bytes) -> None:
        try:
            self._response = await self._request(frame)
            if self._response.status != 200:
                text = (await self._response.text()).strip()
                self.close = (self._response.status, text)
            else:
                async for message in self._messages(self._response):
                    self._take(message)
        except aiohttp.ClientPayloadError:
            pass  # the server cut the stream: observed as its end
        finally:
            if self.close is None:
                self.close = _ENDED
            self._queue.put_nowait(None)

    async def _request(self, frame: str | bytes) -> aiohttp.ClientResponse:
        data = frame.encode() if isinstance(frame, str) else frame
        if self.transport == "sse":
            query = urllib.parse.urlencode({"cf_connect": data.decode()})
            return await self.session.get(f"{self.base}/connection/sse?{query}")
        kind = "application/octet-stream" if self.protobuf else "application/json"
        url = f"{self.base}/connection/http_stream"
        return await self.session.post(url, data=data, headers={"Content-Type": kind})

    async def _messages(self, response: aiohttp.ClientResponse) -> Any:
        sse = self.transport in ("sse", "uni_sse")
        if self.protobuf:
            async for message in _protobuf_messages(response):
                yield message
            return
        async for line in response.content:
            text = line.decode().strip()
            if sse:
                if not text.startswith("data:"):
                    continue  # the opening empty line, comments
                text = text[5:].strip()
            if text:
                yield json.loads(text)

    def _take(self, message: dict[str, Any]) -> None:
        connect = message.get("connect")
        if isinstance(connect, dict):
            self._ids = {k: connect[k] for k in ("session", "node") if k in connect}
        disconnect = message.get("push", {}).get("disconnect") if "id" not in message else None
        if isinstance(disconnect, dict):
            # The stream's way of saying what a WebSocket says in its close frame.
            self.close = (int(disconnect.get("code", 0)), str(disconnect.get("reason", "")))
            return
        self._queue.put_nowait(message)


async def _protobuf_messages(response: aiohttp.ClientResponse) -> Any:
    """Each varint-prefixed Reply of a Protobuf stream, decoded, as it completes."""
    buffer = b""
    async for chunk in response.content.iter_any():
        buffer += chunk
        while (size := _complete(buffer)) is not None:
            head, buffer = buffer[:size], buffer[size:]
            for message in wire.decode(head):
                yield message


def _complete(buffer: bytes) -> int | None:
    """The length of the first whole prefixed message of `buffer` (prefix included), if any."""
    size = shift = pos = 0
    while pos < len(buffer):
        byte = buffer[pos]
        pos += 1
        size |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return pos + size if len(buffer) >= pos + size else None
    return None


class UniStream(Stream):
    """One unidirectional connection: opened with a connect request, then only read."""

    def __init__(self, session: aiohttp.ClientSession, base: str, transport: str) -> None:
        super().__init__(session, base, transport, protobuf=False)
        self.opened = False
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    async def open(self, request: dict[str, Any]) -> int:
        """Open with connect `request`; the HTTP status (101 for an upgraded WebSocket)."""
        text = json.dumps(request)
        url = f"{self.base}/connection/{self.transport}"
        if self.transport == "uni_websocket":
            ws_url = url.replace("http", "ws", 1)
            try:
                self._ws = await self.session.ws_connect(ws_url, autoclose=False)
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status
            await self._ws.send_str(text)
            self._reader = asyncio.create_task(self._read_ws(self._ws))
            self.opened = True
            return 101
        if self.transport == "uni_sse":
            query = urllib.parse.urlencode({"cf_connect": text})
            response = await self.session.get(f"{url}?{query}")
        else:
            response = await self.session.post(url, data=text.encode())
        self._response = response
        if response.status != 200:
            await response.read()
            response.close()
            return response.status
        self._reader = asyncio.create_task(self._read_uni(response))
        self.opened = True
        return 200

    async def send(self, frame: str | bytes) -> None:
        raise TypeError("a unidirectional connection does not send commands")

    async def end(self) -> None:
        await super().end()
        if self._ws is not None:
            await self._ws.close()

    async def _read_uni(self, response: aiohttp.ClientResponse) -> None:
        try:
            async for message in self._messages(response):
                self._queue.put_nowait(message)  # a disconnect push is a message here
        except aiohttp.ClientPayloadError:
            pass
        finally:
            self.close = _ENDED
            self._queue.put_nowait(None)

    async def _read_ws(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        reason = ""
        try:
            while True:
                msg = await ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    reason = str(msg.extra or "") if msg.type == aiohttp.WSMsgType.CLOSE else ""
                    break
                for message in wire.decode(msg.data):
                    self._queue.put_nowait(message)
        finally:
            self.close = (int(ws.close_code or 0), reason)
            self._queue.put_nowait(None)
