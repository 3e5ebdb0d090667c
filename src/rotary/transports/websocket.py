"""The WebSocket endpoint (docs/protocol.md "Endpoint and handshake"): the only module that touches
aiohttp's WebSocket API.

The wire format is JSON (text frames) unless the client asks for Protobuf (binary frames,
docs/protobuf.md): query ``format=protobuf`` or ``cf_protocol=protobuf``, or the
``centrifuge-protobuf`` subprotocol offered before ``centrifuge-json``. Origins are checked
against ``allowed_origins`` (403).
Past ``client_connection_limit`` open sessions, or past ``client_connection_rate_limit`` new
connections per second (`rotary.transports.limits`), new upgrades get HTTP 503.
Frames over ``message_size_limit`` close the connection with 1009 (aiohttp does it).
``cf_ws_frame_ping_pong=true`` swaps application pings for WebSocket ping frames.
With ``websocket.compression`` on, a client offering permessage-deflate gets it
(`rotary.transports.deflate`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from aiohttp import WSMsgType, hdrs, web

from rotary.node.node import Node
from rotary.protocol.base import Codec
from rotary.protocol.codec import JSON
from rotary.protocol.codes import Disconnect
from rotary.protocol.protobuf import PROTOBUF
from rotary.transports.deflate import Deflate, DeflateFramer, deflate_offered
from rotary.transports.limits import ConnectionRateLimiter, origin_allowed
from rotary.transports.sockwrite import SocketSend, socket_send

__all__ = [
    "Framers",
    "binary_frame",
    "origin_allowed",
    "read_limit",
    "text_frame",
    "websocket_handler",
]

_log = logging.getLogger("rotary.websocket")

_T = TypeVar("_T", bound="_AiohttpTransport")

_NO_DEFLATE = Deflate()

#: Seconds between WebSocket ping frames in ``cf_ws_frame_ping_pong`` mode.
_FRAME_PING_INTERVAL = 25.0

_JSON_SUBPROTOCOL = "centrifuge-json"
_PROTOBUF_SUBPROTOCOL = "centrifuge-protobuf"


_HEADER_16 = struct.Struct("!BBH").pack
_HEADER_64 = struct.Struct("!BBQ").pack

#: FIN bit and the text or binary opcode: every frame Rotary sends is one whole message.
_FIN_TEXT = 0x81
_FIN_BINARY = 0x82


def text_frame(payload: bytes, first: int = _FIN_TEXT) -> bytes:
    """The bytes of one unmasked, uncompressed, final text frame (RFC 6455 §5.2) of `payload`."""
    size = len(payload)
    if size < 126:
        return bytes((first, size)) + payload
    if size < 65536:
        return _HEADER_16(first, 126, size) + payload
    return _HEADER_64(first, 127, size) + payload


def binary_frame(payload: bytes) -> bytes:
    """As `text_frame`, with the binary opcode (the Protobuf format). Written out rather than
    calling `text_frame`: it runs once per Protobuf subscriber and flush."""
    size = len(payload)
    if size < 126:
        return bytes((_FIN_BINARY, size)) + payload
    if size < 65536:
        return _HEADER_16(_FIN_BINARY, 126, size) + payload
    return _HEADER_64(_FIN_BINARY, 127, size) + payload


class _AiohttpTransport:
    """`rotary.node.outbox.DirectTransport` over an aiohttp WebSocketResponse.

    Data frames are framed here and written straight to the asyncio transport; aiohttp
    itself only writes control frames (pong, ping, close). Both write whole frames
    synchronously on the loop thread, so frames never interleave. Data frames are deflated
    here too when the client negotiated it (`Framers`); control frames never are, so no
    frame needs aiohttp's compressor state.
    """

    __slots__ = ("_close_timeout", "_high_water", "_protocol", "_raw", "_send", "_ws", "frame")

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        *,
        binary: bool,
        close_timeout: float,
    ) -> None:
        self._ws = ws
        #: The wire bytes of one frame of a message (text for JSON, binary for Protobuf).
        self.frame: Callable[[bytes], bytes] = binary_frame if binary else text_frame
        #: Seconds the close handshake may take (``websocket.write_timeout``; 0: no bound).
        self._close_timeout = close_timeout
        self._raw = request.transport
        self._protocol = request.protocol
        self._high_water = self._raw.get_write_buffer_limits()[1] if self._raw else 0
        self._send = socket_send(self._raw)

    def write_frame(self, wire: bytes) -> bool:
        raw = self._raw
        if raw is None or raw.is_closing() or self._ws.closed:
            raise ConnectionResetError("the WebSocket is closing")
        raw.write(wire)
        return raw.get_write_buffer_size() <= self._high_water

    def idle_send(self) -> SocketSend | None:
        """The socket's ``send`` while the WebSocket is open and its transport holds no
        bytes; None otherwise (`rotary.transports.sockwrite`)."""
        send, raw = self._send, self._raw
        if send is None or raw is None:
            return None
        if raw.is_closing() or self._ws.closed or raw.get_write_buffer_size():
            return None
        return send

    async def drain(self) -> None:
        # aiohttp's protocol tracks pause_writing/resume_writing of this very transport;
        # its drain helper returns at once unless writing is paused. It keeps the future
        # it waits on until writing resumes, even when the drain waiting on it was
        # cancelled (a write timeout): the next drain would await that cancelled future
        # and fail at once, so a finished one is dropped first.
        protocol = self._protocol
        waiter = protocol._drain_waiter
        if waiter is not None and waiter.done():
            protocol._drain_waiter = None
        await protocol._drain_helper()

    async def write(self, frame: bytes) -> None:
        if not self.write_frame(self.frame(frame)):
            await self.drain()

    async def close(self, disconnect: Disconnect) -> None:
        """Send the close frame and wait for the peer's answer, at most `close_timeout`
        seconds; a peer that has not taken the close frame by then is aborted.

        The read loop is interrupted at once (aiohttp hands the waiting reader a "closing"
        message), so the session's clean-up never waits for a peer that stopped reading.
        """
        raw = self._raw
        if self._ws.closed or raw is None or raw.is_closing():
            # Nobody left to read a close frame. Asking aiohttp anyway would fail, and it
            # keeps that error on the response: a reference cycle (error → traceback →
            # frame → response) that holds the whole connection's objects until a full
            # garbage collection, which the server's GC settings make rare.
            return
        message = disconnect.reason.encode()[:123]
        # A timer, not a timeout around the awaits: whatever ends those awaits early (an
        # error, a cancellation), a stalled peer's socket is still aborted on time.
        watchdog = (
            asyncio.get_running_loop().call_later(
                self._close_timeout, _abort_if_stuck, raw, self._close_timeout
            )
            if self._close_timeout > 0
            else None
        )
        try:
            # drain=False: waiting for the buffered frames here would keep the reader (and
            # so the clean-up) waiting on a peer that may never read again.
            await self._ws.close(code=disconnect.code, message=message, drain=False)
            # A high-water mark of 0 pauses the protocol until the buffer is empty, so
            # `drain` waits for the close frame itself to reach the kernel.
            raw.set_write_buffer_limits(high=0)
            await self.drain()
        except Exception:  # the peer may already be gone; closing is best effort
            _log.debug("close failed", exc_info=True)
        else:
            if watchdog is not None:
                watchdog.cancel()


class Framers:
    """The transport classes of one endpoint's compressed connections, one per window size.

    The outbox shares framed bytes among transports of one class, so connections whose
    frames differ (compressed or not, window size) must not share a class.
    """

    __slots__ = ("_deflate", "_kinds")

    def __init__(self, deflate: Deflate) -> None:
        self._deflate = deflate
        self._kinds: dict[tuple[type, int], tuple[type, DeflateFramer]] = {}

    def kind(
        self, base: type[_T], ws: web.WebSocketResponse
    ) -> tuple[type[_T], DeflateFramer | None]:
        """The class for a connection of class `base` on `ws`, and its framer (None when the
        client did not negotiate compression)."""
        wbits = int(ws.compress)
        if not self._deflate.enabled or wbits == 0:
            return base, None
        found = self._kinds.get((base, wbits))
        if found is None:
            kind = type(f"{base.__name__}Deflate{wbits}", (base,), {"__slots__": ()})
            found = self._kinds[(base, wbits)] = (kind, DeflateFramer(self._deflate, wbits))
        return found[0], found[1]


def read_limit(request: web.Request, deflate: Deflate, message_size_limit: int) -> int:
    """The largest message aiohttp may read: the decompressed limit when the client offers
    compression and the endpoint has it on (aiohttp has one limit for the wire and the
    inflated sizes), else `message_size_limit`."""
    offered = request.headers.get(hdrs.SEC_WEBSOCKET_EXTENSIONS, "")
    if deflate.enabled and deflate_offered(offered):
        return deflate.read_limit(message_size_limit)
    return message_size_limit


def _abort_if_stuck(raw: asyncio.Transport, timeout: float) -> None:
    """Abort `raw` if its close frame is still not written: asyncio's close would wait for
    the write buffer to empty, and a stalled peer's never does."""
    if raw.get_write_buffer_size() > 0:
        _log.debug("close frame not taken within %.3g s: aborting", timeout)
        raw.abort()


def _codec(request: web.Request) -> tuple[Codec, tuple[str, ...]]:
    """The client's wire format and the subprotocols to answer with.

    The first subprotocol the client offers that Rotary knows wins (it is echoed back);
    without one, the query may ask for Protobuf; else JSON.
    """
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
    for name in offered:
        if name == _PROTOBUF_SUBPROTOCOL:
            return PROTOBUF, (_PROTOBUF_SUBPROTOCOL,)
        if name == _JSON_SUBPROTOCOL:
            return JSON, (_JSON_SUBPROTOCOL,)
    query = request.query
    if "protobuf" in (query.get("format"), query.get("cf_protocol")):
        return PROTOBUF, ()
    return JSON, ()


def _without_blank_subprotocol(request: web.Request) -> web.Request:
    """`request` without its Sec-WebSocket-Protocol header when that header is blank.

    Some clients send the header empty; aiohttp would log a warning per connection that the
    offered protocols do not overlap ours. An empty offer is no offer: Centrifugo ignores it.
    """
    offered = request.headers.get(hdrs.SEC_WEBSOCKET_PROTOCOL)
    if offered is None or offered.strip(" ,\t"):
        return request
    headers = request.headers.copy()
    del headers[hdrs.SEC_WEBSOCKET_PROTOCOL]
    return request.clone(headers=headers)


def websocket_handler(
    node: Node,
    *,
    allowed_origins: Sequence[str],
    message_size_limit: int,
    send_buffer_size: int = 0,
    connection_limit: int = 0,
    connection_rate_limit: int = 0,
    rate_limiter: ConnectionRateLimiter | None = None,
    deflate: Deflate = _NO_DEFLATE,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler serving one WebSocket connection per request.

    Limits of 0 are off; the rate limit takes time from `node.clock`. `rate_limiter`, when
    given, is shared with other endpoints (and `connection_rate_limit` then only names it).
    `send_buffer_size` > 0 fixes each connection's kernel send buffer (SO_SNDBUF).
    `deflate` says whether and how permessage-deflate is offered.
    """
    rate = rate_limiter or ConnectionRateLimiter(connection_rate_limit, node.clock)
    framers = Framers(deflate)

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
        codec, protocols = _codec(request)
        frame_pings = request.query.get("cf_ws_frame_ping_pong") == "true"
        ws = web.WebSocketResponse(
            protocols=protocols,
            heartbeat=_FRAME_PING_INTERVAL if frame_pings else None,
            decode_text=False,
            compress=deflate.enabled,
            max_msg_size=read_limit(request, deflate, message_size_limit),
        )
        if send_buffer_size > 0:
            _fix_send_buffer(request, send_buffer_size)
        await ws.prepare(_without_blank_subprotocol(request))
        try:
            await _serve(node, ws, request, codec=codec, app_pings=not frame_pings, framers=framers)
        finally:
            _forget_close_error(ws)
        return ws

    return handle


def _fix_send_buffer(request: web.Request, size: int) -> None:
    """Set SO_SNDBUF: the kernel then stops autotuning it, and a client that stopped reading
    fills it (and the outbox behind it) after `size` bytes instead of megabytes."""
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is not None:
        with contextlib.suppress(OSError):  # the socket closed under us: nothing to size
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


async def _serve(
    node: Node,
    ws: web.WebSocketResponse,
    request: web.Request,
    *,
    codec: Codec,
    app_pings: bool,
    framers: Framers,
) -> None:
    kind, framer = framers.kind(_AiohttpTransport, ws)
    transport = kind(ws, request, binary=codec.binary, close_timeout=node.write_timeout)
    if framer is not None:
        transport.frame = framer.binary if codec.binary else framer.text
    session = node.new_session(transport, app_pings=app_pings, codec=codec, headers=request.headers)
    # No writer task: the outbox writes this transport directly and starts a task only
    # while it is backed up, or to close it; `run_writer` waits for that close.
    try:
        async for msg in ws:
            if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                await session.handle_frame(_payload(msg.data))
            # Not kept alive while waiting for the next frame (a connect frame is ~0.3 KB).
            del msg
            if session.closed:
                break
    finally:
        await session.cleanup()
        await session.run_writer()


def _forget_close_error(ws: web.WebSocketResponse) -> None:
    """Drop the traceback of the error aiohttp kept while closing `ws`, if any.

    When a peer vanishes without a close frame, aiohttp answers the end of stream by trying
    to send one, fails on the closing transport and keeps that error on the response. Its
    traceback holds the frames that hold the response: a reference cycle that keeps every
    object of the connection (about 55, with its buffers) alive until a full collection,
    which the server's GC settings make rare. Without the traceback and its chained
    end-of-stream error, reference counting frees the connection as the handler returns.
    """
    error = ws.exception()
    if error is not None:
        error.__traceback__ = None
        error.__context__ = None
        error.__cause__ = None


def _payload(data: bytes | str) -> bytes:
    return data if isinstance(data, bytes) else data.encode()
