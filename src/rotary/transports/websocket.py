"""The WebSocket endpoint (spec §1.1): the only module that touches aiohttp's WebSocket API.

JSON protocol only: a client asking for protobuf (query ``format=protobuf`` /
``cf_protocol=protobuf``, or only the ``centrifuge-protobuf`` subprotocol) is refused with
HTTP 400 before the upgrade. Origins are checked against ``allowed_origins`` (403).
Past ``client_connection_limit`` open sessions, or past ``client_connection_rate_limit`` new
connections per second (`rotary.transports.limits`), new upgrades get HTTP 503.
Frames over ``message_size_limit`` close the connection with 1009 (aiohttp does it).
``cf_ws_frame_ping_pong=true`` swaps application pings for WebSocket ping frames.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import WSMsgType, web

from rotary.node.node import Node
from rotary.protocol.codes import Disconnect
from rotary.transports.limits import ConnectionRateLimiter

__all__ = ["origin_allowed", "websocket_handler"]

_log = logging.getLogger("rotary.websocket")

#: Seconds between WebSocket ping frames in ``cf_ws_frame_ping_pong`` mode.
_FRAME_PING_INTERVAL = 25.0

_JSON_SUBPROTOCOL = "centrifuge-json"
_PROTOBUF_SUBPROTOCOL = "centrifuge-protobuf"


def origin_allowed(origin: str | None, allowed: Sequence[str]) -> bool:
    """Spec §1.1: no list → only requests without Origin; ``*`` → all; else glob patterns."""
    if origin is None:
        return True
    if not allowed:
        return False
    origin = origin.lower()
    return any(p == "*" or fnmatch.fnmatchcase(origin, p.lower()) for p in allowed)


class _AiohttpTransport:
    """`rotary.node.outbox.Transport` over an aiohttp WebSocketResponse (text frames)."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws

    async def write(self, frame: bytes) -> None:
        await self._ws.send_frame(frame, WSMsgType.TEXT)

    async def close(self, disconnect: Disconnect) -> None:
        try:
            await self._ws.close(code=disconnect.code, message=disconnect.reason.encode()[:123])
        except Exception:  # the peer may already be gone; closing is best effort
            _log.debug("close failed", exc_info=True)


def _wants_protobuf(request: web.Request) -> bool:
    query = request.query
    if "protobuf" in (query.get("format"), query.get("cf_protocol")):
        return True
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
    return _PROTOBUF_SUBPROTOCOL in offered and _JSON_SUBPROTOCOL not in offered


def websocket_handler(
    node: Node,
    *,
    allowed_origins: Sequence[str],
    message_size_limit: int,
    connection_limit: int = 0,
    connection_rate_limit: int = 0,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler serving one WebSocket connection per request.

    Limits of 0 are off; the rate limit takes time from `node.clock`.
    """
    rate = ConnectionRateLimiter(connection_rate_limit, node.clock)

    async def handle(request: web.Request) -> web.StreamResponse:
        if not origin_allowed(request.headers.get("Origin"), allowed_origins):
            _log.info("websocket refused: origin %r not allowed", request.headers.get("Origin"))
            return web.Response(status=403, text="origin not allowed")
        if connection_limit > 0 and node.num_sessions >= connection_limit:
            _log.info("websocket refused: connection limit %d reached", connection_limit)
            return web.Response(status=503, text="connection limit reached")
        if not rate.allow():
            _log.info(
                "websocket refused: more than %d connections per second", connection_rate_limit
            )
            return web.Response(status=503, text="connection rate limit reached")
        if _wants_protobuf(request):
            return web.Response(status=400, text="protobuf protocol is not supported")
        frame_pings = request.query.get("cf_ws_frame_ping_pong") == "true"
        ws = web.WebSocketResponse(
            protocols=(_JSON_SUBPROTOCOL,),
            max_msg_size=message_size_limit,
            heartbeat=_FRAME_PING_INTERVAL if frame_pings else None,
            decode_text=False,
        )
        await ws.prepare(request)
        await _serve(node, ws, app_pings=not frame_pings)
        return ws

    return handle


async def _serve(node: Node, ws: web.WebSocketResponse, *, app_pings: bool) -> None:
    session = node.new_session(_AiohttpTransport(ws), app_pings=app_pings)
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(session.run_writer())
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    data = msg.data if isinstance(msg.data, bytes) else msg.data.encode()
                    await session.handle_frame(data)
                if session.closed:
                    break
        finally:
            await session.cleanup()
