"""Plain HTTP and WebSocket clients of the streaming transports (tests/functional/test_stream*.py).

`open_stream(session, kind, base_url, body)` connects the way a client without any SDK does
(`fetch` with a streamed body, `EventSource`, a bare WebSocket) and returns a `Stream` whose
`next()` gives the decoded messages one by one and whose `ended()` waits for the end.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from typing import Any

import aiohttp

__all__ = ["BIDIRECTIONAL", "UNIDIRECTIONAL", "Stream", "open_stream"]

#: Unidirectional ways in: (endpoint, how the connect request travels).
UNIDIRECTIONAL = ("uni_http_stream", "uni_sse_get", "uni_sse_post", "uni_websocket")
#: Bidirectional (emulated) ways in.
BIDIRECTIONAL = ("http_stream", "sse")


class Stream:
    """Messages of one streaming response or unidirectional WebSocket, decoded."""

    def __init__(self, kind: str, response: Any = None, ws: Any = None) -> None:
        self.kind = kind
        self.response = response
        self.ws = ws
        self._buffer = b""
        self._messages: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.close_code: int | None = None

    async def next(self, wait: float = 10, *, pings: bool = False) -> dict[str, Any]:
        """The next message (``{}`` pings skipped unless `pings`); AssertionError at the end."""
        async with asyncio.timeout(wait):
            while True:
                while self._messages:
                    message = self._messages.pop(0)
                    if message or pings:
                        return message
                if not await self._read():
                    raise AssertionError(f"{self.kind}: stream ended; got {self.raw!r}")

    async def ended(self, wait: float = 10) -> list[dict[str, Any]]:
        """Every message left (pings skipped) once the stream has ended."""
        async with asyncio.timeout(wait):
            while await self._read():
                pass
        left = [m for m in self._messages if m]
        self._messages.clear()
        return left

    async def _read(self) -> bool:
        if self.ws is not None:
            return await self._read_ws()
        chunk = await self.response.content.readany()
        if not chunk:
            return False
        self.raw.append(chunk)
        self._buffer += chunk
        self._split()
        return True

    async def _read_ws(self) -> bool:
        msg = await self.ws.receive()
        if msg.type != aiohttp.WSMsgType.TEXT:
            self.close_code = self.ws.close_code
            return False
        self.raw.append(msg.data.encode())
        assert "\n" not in msg.data, f"one message per frame, got {msg.data!r}"
        self._messages.append(json.loads(msg.data))
        return True

    def _split(self) -> None:
        sse = self.kind.startswith(("sse", "uni_sse"))
        separator = b"\n\n" if sse else b"\n"
        while separator in self._buffer:
            item, self._buffer = self._buffer.split(separator, 1)
            item = item.strip(b"\r\n")
            if not item:
                continue
            if sse:
                assert item.startswith(b"data: "), item
                item = item[len(b"data: ") :]
            self._messages.append(json.loads(item))

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.response is not None:
            self.response.close()


async def open_stream(
    session: aiohttp.ClientSession,
    kind: str,
    base_url: str,
    body: dict[str, Any] | list[dict[str, Any]],
    *,
    headers: dict[str, str] | None = None,
) -> Stream:
    """Connect with `body`: a connect request (unidirectional kinds) or commands (others)."""
    text = "\n".join(json.dumps(c) for c in body) if isinstance(body, list) else json.dumps(body)
    headers = headers or {}
    if kind == "uni_websocket":
        ws_url = base_url.replace("http", "ws", 1) + "/connection/uni_websocket"
        ws = await session.ws_connect(ws_url, headers=headers)
        await ws.send_str(text)
        return Stream(kind, ws=ws)
    if kind in ("sse", "uni_sse_get"):
        path = "sse" if kind == "sse" else "uni_sse"
        query = urllib.parse.urlencode({"cf_connect": text})
        response = await session.get(f"{base_url}/connection/{path}?{query}", headers=headers)
    else:
        path = {"uni_sse_post": "uni_sse"}.get(kind, kind)
        response = await session.post(f"{base_url}/connection/{path}", data=text, headers=headers)
    assert response.status == 200, (response.status, await response.text())
    return Stream(kind, response=response)
