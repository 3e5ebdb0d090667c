"""The unidirectional WebSocket endpoint (docs/transports.md "Unidirectional transports").

The client sends one connect request, either in the ``cf_connect`` query parameter or as its
first message (a JSON ConnectRequest object), and then only reads: one text frame per push,
``{}`` pings among them. Messages it sends after the connect request are read and ignored.
A connect request that is not a JSON object closes the connection with 3501. When the
session ends, a disconnect push precedes the close frame.

As in Centrifugo, the connection also carries WebSocket ping frames every ``ping_interval``
(25 s when that is off), and a client that has not answered one within ``pong_timeout``
(10 s when that is off) is dropped. With ``uni_websocket.compression`` on, a client offering
permessage-deflate gets it (`rotary.transports.deflate`).

`UniWebSocketOptions` holds Centrifugo's ``uni_websocket`` switches: every message written at
once in one frame (newline-separated), no disconnect push, no close frame at all.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from rotary.node.node import Node
from rotary.node.state import Mode
from rotary.protocol import framing
from rotary.protocol.codec import ProtocolViolation
from rotary.protocol.codes import Disconnect, DisconnectCode
from rotary.transports.deflate import Deflate
from rotary.transports.limits import Admission
from rotary.transports.streaming import Handler
from rotary.transports.websocket import Framers, _AiohttpTransport, read_limit, text_frame

__all__ = ["UniWebSocketOptions", "uni_websocket_handler"]

_log = logging.getLogger("rotary.uni_websocket")


@dataclass(frozen=True, slots=True)
class UniWebSocketOptions:
    """How a unidirectional WebSocket writes (v6 ``uni_websocket.*``).

    `join_messages`: the messages of one write share a text frame, one per line.
    `disconnect_push`: a disconnect push precedes the close frame. `closing_handshake`:
    False drops the connection without a close frame. `write_timeout` bounds each write and
    the close handshake (0: no bound). `deflate`: permessage-deflate.
    """

    join_messages: bool = False
    disconnect_push: bool = True
    closing_handshake: bool = True
    write_timeout: float = 1.0
    deflate: Deflate = field(default_factory=Deflate)


class _UniTransport(_AiohttpTransport):
    """The WebSocket transport sending unidirectional messages in text frames."""

    __slots__ = ("_options",)

    def __init__(
        self, ws: web.WebSocketResponse, request: web.Request, options: UniWebSocketOptions
    ) -> None:
        super().__init__(ws, request, binary=False, close_timeout=options.write_timeout)
        self._options = options
        self.frame = _uni_frames

    async def close(self, disconnect: Disconnect) -> None:
        options = self._options
        closing = disconnect.code != DisconnectCode.CONNECTION_CLOSED.code
        if closing and options.disconnect_push:
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                self.write_frame(self.frame(framing.disconnect_push(disconnect)))
        if options.closing_handshake:
            await super().close(disconnect)
        elif self._raw is not None:
            self._raw.close()  # queued frames still go out; no close frame follows them


class _JoinedUniTransport(_UniTransport):
    """As `_UniTransport`, every batch in one frame (a class of its own: the outbox shares
    framed bytes between transports of one class)."""

    __slots__ = ()

    def __init__(
        self, ws: web.WebSocketResponse, request: web.Request, options: UniWebSocketOptions
    ) -> None:
        super().__init__(ws, request, options)
        self.frame = _joined_frame


def _uni_frames(batch: bytes, text: Callable[[bytes], bytes] = text_frame) -> bytes:
    """One text frame per message of `batch`, each in its unidirectional form, framed by
    `text` (plain or deflated)."""
    return b"".join(text(m) for m in framing.uni_messages(batch))


def _joined_frame(batch: bytes, text: Callable[[bytes], bytes] = text_frame) -> bytes:
    """One text frame holding every message of `batch`, unidirectional, one per line."""
    return text(b"\n".join(framing.uni_messages(batch)))


def uni_websocket_handler(
    node: Node,
    admission: Admission,
    *,
    size_limit: int,
    options: UniWebSocketOptions = UniWebSocketOptions(),
) -> Handler:
    """The aiohttp handler of ``GET /connection/uni_websocket`` (messages over `size_limit`
    bytes close the connection with 1009)."""
    framers = Framers(options.deflate)

    async def handle(request: web.Request) -> web.StreamResponse:
        refused = admission.refusal(request)
        if refused is not None:
            return refused
        command: bytes | None = None
        if "cf_connect" in request.query:
            try:
                command = framing.uni_connect_command(request.query["cf_connect"].encode())
            except ProtocolViolation as exc:
                return web.Response(status=400, text=str(exc))
        ws = web.WebSocketResponse(
            max_msg_size=read_limit(request, options.deflate, size_limit),
            decode_text=False,
            compress=options.deflate.enabled,
            heartbeat=_frame_ping_interval(node),
        )
        _set_pong_timeout(ws, node)
        await ws.prepare(request)
        base = _JoinedUniTransport if options.join_messages else _UniTransport
        kind, framer = framers.kind(base, ws)
        transport = kind(ws, request, options)
        if framer is not None:
            framing_of = _joined_frame if options.join_messages else _uni_frames
            transport.frame = functools.partial(framing_of, text=framer.text)
        session = node.new_session(
            transport,
            mode=Mode.UNIDIRECTIONAL,
            headers=request.headers,
            write_timeout=options.write_timeout,
        )
        try:
            if command is None:
                command = await _first_request(ws)
            if command is None:
                session.disconnect(DisconnectCode.BAD_REQUEST)
            else:
                await session.handle_frame(command)
            async for _ in ws:
                if session.closed:
                    break
        finally:
            await session.cleanup()
            await session.run_writer()
        return ws

    return handle


#: Seconds between WebSocket pings when ``ping_interval`` turns application pings off: a
#: unidirectional client never writes, so only pings can find that it has gone.
_DEFAULT_FRAME_PING_INTERVAL = 25.0


#: Seconds a pong may take when ``pong_timeout`` is off (Centrifugo's default here).
_DEFAULT_FRAME_PONG_TIMEOUT = 10.0


def _frame_ping_interval(node: Node) -> float:
    """Seconds between the WebSocket ping frames of a unidirectional connection."""
    interval = node.settings.ping_interval
    return interval if interval > 0 else _DEFAULT_FRAME_PING_INTERVAL


def _set_pong_timeout(ws: web.WebSocketResponse, node: Node) -> None:
    """Give the client ``pong_timeout`` to answer each ping frame, as Centrifugo does.

    aiohttp allows half of the heartbeat interval and has no parameter for it; its
    attribute is set here (tests/transports/test_uni_websocket_pings.py shows the effect,
    so an aiohttp that renamed it fails there).
    """
    timeout = node.settings.pong_timeout
    ws._pong_heartbeat = timeout if timeout > 0 else _DEFAULT_FRAME_PONG_TIMEOUT


async def _first_request(ws: web.WebSocketResponse) -> bytes | None:
    """The connect command of the client's first message; None when it is not a connect
    request (or the client left)."""
    msg = await ws.receive()
    if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
        return None
    data = msg.data if isinstance(msg.data, bytes) else msg.data.encode()
    try:
        return framing.uni_connect_command(data)
    except ProtocolViolation as exc:
        _log.info("unidirectional WebSocket refused: %s", exc)
        return None
