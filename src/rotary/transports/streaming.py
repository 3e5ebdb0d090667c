"""The HTTP-streaming and SSE endpoints, bidirectional (with emulation) and unidirectional
(docs/transports.md).

Each request opens one session whose replies and pushes stream in the response body until
the session ends, when a disconnect push is written (unless the client itself went away) and
the body ends. The request carries the first commands: the body of a POST, or the
``cf_connect`` query parameter of an SSE GET. An emulated client sends later commands through
the emulation endpoint (`emulation_handler`).

What the endpoints answer before streaming: 403 for an Origin outside ``allowed_origins``,
503 past the connection limits, 405 for another method, 413 for a body over the endpoint's
``max_request_body_size``, 400 for commands (or a connect request) that are not valid JSON
(or Protobuf, from a client sending ``Content-Type: application/octet-stream`` to the
HTTP-streaming or emulation endpoint). Browsers get CORS headers for allowed origins, and an
answer to their preflight requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import ClassVar

from aiohttp import web

from rotary.node.emulation import Outcome
from rotary.node.node import Node
from rotary.node.state import Mode
from rotary.protocol import framing
from rotary.protocol.base import Codec
from rotary.protocol.codec import JSON, ProtocolViolation
from rotary.protocol.codes import CodeTransform, Disconnect, DisconnectCode
from rotary.protocol.protobuf import PROTOBUF
from rotary.transports.limits import Admission
from rotary.transports.sockwrite import SocketSend, socket_send

__all__ = [
    "emulation_handler",
    "http_stream_handler",
    "sse_handler",
    "uni_http_stream_handler",
    "uni_sse_handler",
]

_log = logging.getLogger("rotary.streaming")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Seconds between checks that a streaming client is still there (aiohttp tells a handler
#: nothing when its client goes away; an idle stream would otherwise notice at its next ping).
_PEER_CHECK_INTERVAL = 1.0

_NO_CACHE = {
    "Cache-Control": "private, no-cache, no-store, must-revalidate, max-age=0",
    "Pragma": "no-cache",
    "Expire": "0",
    # Proxies such as nginx must pass every message on at once.
    "X-Accel-Buffering": "no",
}
_EVENT_STREAM = "text/event-stream; charset=utf-8"
_CONNECT_PARAM = "cf_connect"
#: The content type of Protobuf clients' requests and streams (HTTP-streaming, emulation).
_PROTOBUF = "application/octet-stream"


class _StreamTransport:
    """`rotary.node.outbox.DirectTransport` over a streaming aiohttp response.

    Messages are framed by the subclass's `_payload` (newline-delimited JSON, length-prefixed
    Protobuf, SSE events, the unidirectional forms: one class each, since the outbox shares
    framed bytes between transports of one class), wrapped in an HTTP/1.1 chunk when the
    response is chunked, and written straight to the asyncio transport once the headers are
    out. `closed` is set once the stream has ended.
    """

    __slots__ = (
        "_chunked",
        "_held",
        "_high_water",
        "_protocol",
        "_raw",
        "_response",
        "_send",
        "closed",
    )

    content_type: ClassVar[str]
    #: The wire format of the sessions this transport carries.
    codec: ClassVar[Codec] = JSON

    def __init__(
        self,
        request: web.Request,
        response: web.StreamResponse,
        chunked: bool,
        *,
        held: bool = False,
    ) -> None:
        self._response = response
        self._chunked = chunked
        #: `held`: frames wait here, unwritten, until `release` (the headers are not out yet).
        self._held: list[bytes] | None = [] if held else None
        self._raw = request.transport
        self._protocol = request.protocol
        self._high_water = self._raw.get_write_buffer_limits()[1] if self._raw else 0
        self._send = socket_send(self._raw)
        self.closed = asyncio.Event()

    def frame(self, message: bytes) -> bytes:
        payload = self._payload(message)
        if self._chunked:
            return b"%x\r\n%b\r\n" % (len(payload), payload)
        return payload

    def _payload(self, batch: bytes) -> bytes:
        """The body bytes carrying `batch` (framing of the subclass)."""
        raise NotImplementedError

    def write_frame(self, wire: bytes) -> bool:
        raw = self._raw
        if raw is None or raw.is_closing() or self.closed.is_set():
            raise ConnectionResetError("the stream is closing")
        if self._held is not None:
            self._held.append(wire)
            return True
        raw.write(wire)
        return raw.get_write_buffer_size() <= self._high_water

    def idle_send(self) -> SocketSend | None:
        """The socket's ``send`` while the stream is open, its headers are out and its
        transport holds no bytes; None otherwise (`rotary.transports.sockwrite`)."""
        send, raw = self._send, self._raw
        if send is None or raw is None or self._held is not None:
            return None
        if raw.is_closing() or self.closed.is_set() or raw.get_write_buffer_size():
            return None
        return send

    def release(self) -> None:
        """Write the held frames, and write directly from now on (the headers are out)."""
        held, self._held = self._held, None
        for wire in held or ():
            self.write_frame(wire)

    async def drain(self) -> None:
        # aiohttp's protocol tracks pause_writing/resume_writing of this very transport.
        await self._protocol._drain_helper()

    async def write(self, frame: bytes) -> None:
        if not self.write_frame(self.frame(frame)):
            await self.drain()

    async def close(self, disconnect: Disconnect) -> None:
        if self._held is not None:
            # No stream was opened: the handler answers the request in plain HTTP instead.
            self.closed.set()
            return
        try:
            if disconnect.code != DisconnectCode.CONNECTION_CLOSED.code:
                self.write_frame(self.frame(framing.disconnect_push(disconnect, self.codec)))
            await self._response.write_eof()
        except ConnectionResetError:
            pass  # the client is gone already: there is no stream left to end
        except Exception:  # ending the stream is best effort; say why it failed
            _log.debug("ending a stream failed", exc_info=True)
        finally:
            self.closed.set()

    def peer_gone(self) -> bool:
        raw = self._raw
        return raw is None or raw.is_closing()

    async def wait_closed(self) -> None:
        """Return once the stream has ended or its client has gone away."""
        while not self.closed.is_set() and not self.peer_gone():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_PEER_CHECK_INTERVAL):
                    await self.closed.wait()


class _Ndjson(_StreamTransport):
    __slots__ = ()

    def _payload(self, batch: bytes) -> bytes:
        return framing.ndjson(batch)

    content_type = "application/x-ndjson"


class _ProtobufNdjson(_StreamTransport):
    """HTTP-streaming in Protobuf: every message already carries its varint length."""

    __slots__ = ()
    content_type = _PROTOBUF
    codec = PROTOBUF

    def _payload(self, batch: bytes) -> bytes:
        return batch


class _Sse(_StreamTransport):
    __slots__ = ()

    def _payload(self, batch: bytes) -> bytes:
        return framing.sse(batch)

    content_type = _EVENT_STREAM


class _UniNdjson(_StreamTransport):
    __slots__ = ()

    def _payload(self, batch: bytes) -> bytes:
        return framing.uni_ndjson(batch)

    content_type = "application/x-ndjson"


class _UniSse(_StreamTransport):
    __slots__ = ()

    def _payload(self, batch: bytes) -> bytes:
        return framing.uni_sse(batch)

    content_type = _EVENT_STREAM


# ---------------------------------------------------------------------------- the endpoints


def http_stream_handler(node: Node, admission: Admission, *, size_limit: int) -> Handler:
    """``POST /connection/http_stream``: the body holds commands (a connect first), the
    response streams newline-delimited replies and pushes; with ``Content-Type:
    application/octet-stream`` both are Protobuf, length-prefixed."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.method == "OPTIONS":
            return _preflight(request, admission)
        if request.method != "POST":
            return _answer(request, admission, 405, "use POST")
        body = await _read_body(request, size_limit)
        if isinstance(body, web.Response):
            return body
        kind = _ProtobufNdjson if _protobuf(request) else _Ndjson
        return await _bidirectional(request, admission, body, kind)

    return handle


def sse_handler(node: Node, admission: Admission, *, size_limit: int) -> Handler:
    """``GET /connection/sse?cf_connect=<commands>`` (or a POST with them as the body): the
    response is an event stream of replies and pushes, one ``data:`` event each."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            commands = request.query.get(_CONNECT_PARAM, "").encode()
            if not commands:
                return _answer(request, admission, 400, f"{_CONNECT_PARAM} is required")
        elif request.method == "POST":
            body = await _read_body(request, size_limit)
            if isinstance(body, web.Response):
                return body
            commands = body
        else:
            return _answer(request, admission, 405, "use GET or POST")
        return await _bidirectional(request, admission, commands, _Sse)

    return handle


def uni_http_stream_handler(
    node: Node,
    admission: Admission,
    *,
    size_limit: int,
    code_to_http: tuple[CodeTransform, ...] | None = None,
) -> Handler:
    """``POST /connection/uni_http_stream``: the body is a connect request; the response
    streams pushes, newline-delimited. With `code_to_http`, a failed connect is answered
    with an HTTP status instead (`_refusal_answer`)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.method == "OPTIONS":
            return _preflight(request, admission)
        if request.method != "POST":
            return _answer(request, admission, 405, "use POST")
        body = await _read_body(request, size_limit)
        if isinstance(body, web.Response):
            return body
        return await _unidirectional(request, admission, body, _UniNdjson, code_to_http)

    return handle


def uni_sse_handler(
    node: Node,
    admission: Admission,
    *,
    size_limit: int,
    code_to_http: tuple[CodeTransform, ...] | None = None,
) -> Handler:
    """``GET /connection/uni_sse?cf_connect=<connect request>`` (optional: none is ``{}``) or
    a POST with the connect request as the body: an event stream of pushes. With
    `code_to_http`, a failed connect is answered with an HTTP status instead."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            body = request.query.get(_CONNECT_PARAM, "").encode()
        elif request.method == "POST":
            read = await _read_body(request, size_limit)
            if isinstance(read, web.Response):
                return read
            body = read
        else:
            return _answer(request, admission, 405, "use GET or POST")
        return await _unidirectional(request, admission, body, _UniSse, code_to_http)

    return handle


def emulation_handler(node: Node, admission: Admission, *, size_limit: int) -> Handler:
    """``POST /emulation`` with ``{"session", "node", "data"}``: runs the commands on that
    session (on whichever node holds it) and answers 204 once they ran; replies arrive on the
    session's stream. 404 for an unknown session or node, 504 when the node holding the
    session does not answer in time."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.method == "OPTIONS":
            return _preflight(request, admission)
        if request.method != "POST":
            return _answer(request, admission, 405, "use POST")
        refused = admission.origin_refusal(request)
        if refused is not None:
            return refused
        body = await _read_body(request, size_limit)
        if isinstance(body, web.Response):
            return body
        decode = (
            framing.decode_protobuf_emulation if _protobuf(request) else framing.decode_emulation
        )
        try:
            req = decode(body)
        except ProtocolViolation as exc:
            return _answer(request, admission, 400, str(exc))
        outcome = await node.emulation.deliver(req.node, req.session, req.data)
        return _answer(request, admission, *_OUTCOME_ANSWERS[outcome])

    return handle


_OUTCOME_ANSWERS: dict[Outcome, tuple[int, str]] = {
    Outcome.DONE: (204, ""),
    Outcome.NO_SESSION: (404, "session not found"),
    Outcome.NO_NODE: (404, "node not found"),
    Outcome.TIMEOUT: (504, "the node holding the session did not answer"),
}


# ---------------------------------------------------------------------------- shared steps


async def _bidirectional(
    request: web.Request, admission: Admission, commands: bytes, kind: type[_StreamTransport]
) -> web.StreamResponse:
    try:
        kind.codec.decode_frame(commands)  # refused here with 400, before a stream opens
    except ProtocolViolation as exc:
        return _answer(request, admission, 400, f"malformed commands: {exc}")
    return await _serve(request, admission, commands, kind, Mode.EMULATED)


async def _unidirectional(
    request: web.Request,
    admission: Admission,
    body: bytes,
    kind: type[_StreamTransport],
    code_to_http: tuple[CodeTransform, ...] | None,
) -> web.StreamResponse:
    try:
        command = framing.uni_connect_command(body)
    except ProtocolViolation as exc:
        return _answer(request, admission, 400, str(exc))
    if code_to_http is None:
        return await _serve(request, admission, command, kind, Mode.UNIDIRECTIONAL)
    return await _serve_after_connect(request, admission, command, kind, code_to_http)


async def _serve(
    request: web.Request,
    admission: Admission,
    commands: bytes,
    kind: type[_StreamTransport],
    mode: Mode,
) -> web.StreamResponse:
    """Open the stream, run `commands` on a new session, stream until either side ends."""
    refused = admission.refusal(request)
    if refused is not None:
        return refused
    response = _stream_response(request, admission, kind)
    writer = await response.prepare(request)
    transport = kind(request, response, chunked=bool(getattr(writer, "chunked", False)))
    await _send_headers(response, writer, kind.content_type)
    session = admission.node.new_session(
        transport, mode=mode, codec=kind.codec, headers=request.headers
    )
    try:
        await session.handle_frame(commands)
        await transport.wait_closed()
    finally:
        await session.cleanup()
        await session.run_writer()
    return response


async def _serve_after_connect(
    request: web.Request,
    admission: Admission,
    command: bytes,
    kind: type[_StreamTransport],
    code_to_http: tuple[CodeTransform, ...],
) -> web.StreamResponse:
    """As `_serve` for a unidirectional connect, but the stream opens only once the connect
    succeeded; a failed one gets the HTTP answer `code_to_http` gives its code."""
    refused = admission.refusal(request)
    if refused is not None:
        return refused
    response = _stream_response(request, admission, kind)
    # aiohttp chunks every HTTP/1.1 response of unknown length; held frames are framed so.
    transport = kind(request, response, chunked=request.version >= (1, 1), held=True)
    session = admission.node.new_session(
        transport, mode=Mode.UNIDIRECTIONAL, codec=kind.codec, headers=request.headers
    )
    try:
        await session.handle_frame(command)
        if session.closed:
            return _refusal_answer(request, admission, session.connect_refusal, code_to_http)
        writer = await response.prepare(request)
        await _send_headers(response, writer, kind.content_type)
        transport.release()
        await transport.wait_closed()
    finally:
        await session.cleanup()
        await session.run_writer()
    return response


def _stream_response(
    request: web.Request, admission: Admission, kind: type[_StreamTransport]
) -> web.StreamResponse:
    headers = {**_NO_CACHE, **_cors(request, admission), "Content-Type": kind.content_type}
    return web.StreamResponse(headers=headers)


def _refusal_answer(
    request: web.Request,
    admission: Admission,
    refusal: tuple[int, str] | None,
    transforms: tuple[CodeTransform, ...],
) -> web.Response:
    """The HTTP answer to a refused connect: the first transform for its code (an empty body
    carries the error's own message), else 500, as Centrifugo answers."""
    code, text = refusal if refusal is not None else (0, "")
    for t in transforms:
        if t.code == code:
            return _answer(request, admission, t.to_code, t.to_text or text)
    return _answer(request, admission, 500, "Internal Server Error")


async def _send_headers(response: web.StreamResponse, writer: object, kind: str) -> None:
    """Put the headers on the wire now (aiohttp holds them back for the first body bytes),
    so that the session may write the body directly."""
    # An SSE stream starts with an empty line, as Centrifugo's does; an NDJSON one cannot
    # (an empty line is no message), so aiohttp's writer is told to send its headers.
    if kind == _EVENT_STREAM:
        await response.write(b"\r\n")
        return
    send = getattr(writer, "send_headers", None)
    if send is not None:
        send()
    else:  # an aiohttp without it: an empty chunk cannot be written, so flush with a newline
        await response.write(b"\n")


async def _read_body(request: web.Request, limit: int) -> bytes | web.Response:
    """The request body, or 413 once it exceeds `limit` bytes (read no further)."""
    if (request.content_length or 0) > limit:
        return web.Response(status=413, text=f"request body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > limit:
            return web.Response(status=413, text=f"request body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _protobuf(request: web.Request) -> bool:
    """Whether a Protobuf client sent the request (by its declared content type only:
    aiohttp reports a missing Content-Type as application/octet-stream too)."""
    declared = request.headers.get("Content-Type", "")
    return declared.split(";", 1)[0].strip().lower() == _PROTOBUF


def _cors(request: web.Request, admission: Admission) -> dict[str, str]:
    """CORS headers for a request from an allowed browser origin (none without Origin)."""
    origin = request.headers.get("Origin")
    if origin is None or admission.origin_refusal(request) is not None:
        return {}
    headers = {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true"}
    wanted = request.headers.get("Access-Control-Request-Headers", "")
    if wanted and wanted != "null":
        headers["Access-Control-Allow-Headers"] = wanted
    return headers


def _preflight(request: web.Request, admission: Admission) -> web.Response:
    """A browser's preflight: 204 with what it may send (403 for an origin not allowed)."""
    refused = admission.origin_refusal(request)
    if refused is not None:
        return refused
    headers = {
        **_cors(request, admission),
        "Access-Control-Max-Age": "300",
        "Access-Control-Allow-Methods": "POST, OPTIONS",
    }
    return web.Response(status=204, headers=headers)


def _answer(request: web.Request, admission: Admission, status: int, text: str) -> web.Response:
    """A plain answer carrying the request's CORS headers, so a browser can read it."""
    if status == 204:
        return web.Response(status=204, headers=_cors(request, admission))
    return web.Response(status=status, text=text, headers=_cors(request, admission))
