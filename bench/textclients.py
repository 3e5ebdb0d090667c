"""JSON WebSocket subscribers in the harness process, for the per-delivery cost scenarios.

`delta`, `tagsfilter` and `compression` each hold N aiohttp clients that connect with a
token, subscribe once, and hand every pushed line to their own tally; these are the two
steps they share.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

from bench.common import SECRET
from bench.tokens import client_tokens

__all__ = ["connect_and_subscribe", "serve_lines"]


async def connect_and_subscribe(
    ws: aiohttp.ClientWebSocketResponse, index: int, subscribe: dict[str, Any]
) -> dict[str, Any]:
    """Connect as user `index` (a fresh token) and send `subscribe`; return the subscribe
    reply (the caller checks it: what counts as success differs per scenario)."""
    token = client_tokens(SECRET, index, (), exp=int(time.time()) + 3600).connect
    await ws.send_str(orjson.dumps({"id": 1, "connect": {"token": token}}).decode())
    await ws.receive()
    await ws.send_str(orjson.dumps({"id": 2, "subscribe": subscribe}).decode())
    reply: dict[str, Any] = orjson.loads((await ws.receive()).data)
    return reply


async def serve_lines(ws: aiohttp.ClientWebSocketResponse, feed: Callable[[bytes], None]) -> None:
    """Answer the server's pings and pass every other line of every text frame to `feed`,
    until the connection ends."""
    async for msg in ws:
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
        for line in msg.data.encode().split(b"\n"):
            if line == b"{}":
                await ws.send_str("{}")  # pong
            elif line:
                feed(line)
