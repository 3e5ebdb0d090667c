"""Load clients on picows: many WebSocket connections on one event loop, C-speed framing.

Three WebSocket dialects, one life cycle (open the WebSocket, authenticate, join channels, then
count publications):

- `RotaryClient` speaks Centrifugo client protocol v2 in JSON: connect (with a token when
  given), then every subscribe in one frame, as the SDKs batch them; pings are answered.
  `RotaryProtobufClient` does the same in the Protobuf format (binary frames of
  varint-prefixed messages, written and read here by hand).
- `SocketIOClient` speaks Engine.IO 4 / Socket.IO 5 directly over the WebSocket transport:
  CONNECT with `{"token": …}` as auth, then one `join` event carrying the channel tokens,
  acknowledged by the server.
- `BareClient` is ready as soon as the WebSocket is open; every text frame is one delivery.

Kinds ``http_stream`` and ``sse`` open Rotary's streaming clients instead
(`bench.streamclients`), with the same life cycle.

`open_clients` opens a batch with a bound on concurrent TCP/WebSocket handshakes (the
listen backlog of the servers is 128; bursting past it measures SYN retransmits, not the
server) and returns when every client is ready or failed. Connections are made by the event
loop's own `create_connection` (uvloop's, in C), not by aiofastnet, which picows picks
when it is installed: opening 5,000 bare WebSockets took the load worker about a fifth less
CPU that way (1.6–1.9 s against 2.1–2.6 s, same run, same servers).
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import orjson
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from bench.histogram import Histogram
from bench.streamclients import STREAM_KINDS, open_stream_client
from bench.tokens import client_tokens

__all__ = [
    "BareClient",
    "OpenResult",
    "OpenSpec",
    "RotaryClient",
    "RotaryProtobufClient",
    "SocketIOClient",
    "Tally",
    "open_clients",
]


#: A timed publication's payload ends with ``"t_ns":<time.monotonic_ns() at its sending>}``.
_STAMP = b'"t_ns":'


class Tally:
    """Publications counted across every client of a worker, with the time a target is hit,
    and (when armed for it) the latency of every timed publication.

    Timing costs the receiver about a microsecond and a half per publication: the latency in
    nanoseconds is appended to a flat array, and turned into a `Histogram` (a logarithm per
    sample) only by `histogram`, after the measuring window. The receivers share one CPU, and
    whatever they spend per message delays every message behind it in the same burst.
    """

    def __init__(self) -> None:
        self.total = 0
        self.target: int | None = None
        self.t_done: float | None = None
        self.done = asyncio.Event()
        #: Receive − send of each timed publication, in ns (None: not timing).
        self.latency: array[int] | None = None

    def reset(self, target: int, *, latency: bool = False) -> None:
        """Zero the count; `done` is set when `target` publications have arrived. With
        `latency`, a fresh array takes receive − send time of each timed publication."""
        self.total, self.target, self.t_done = 0, target, None
        self.latency = array("q") if latency else None
        self.done = asyncio.Event()
        if target == 0:
            self._finish()

    def add(self, n: int, frame: bytes = b"") -> None:
        """Count `n` publications received in `frame` (needed only when timing)."""
        self.total += n
        samples = self.latency
        if samples is not None and frame:
            # CLOCK_MONOTONIC is one clock for every process on Linux: the publisher's.
            now = time.monotonic_ns()
            at = frame.find(_STAMP)
            while at >= 0:
                at += len(_STAMP)
                end = frame.find(b"}", at)
                samples.append(now - int(frame[at:end]))
                at = frame.find(_STAMP, end)
        if self.target is not None and self.t_done is None and self.total >= self.target:
            self._finish()

    def histogram(self) -> Histogram | None:
        """The timed publications' latencies as a `Histogram` (None when not timing)."""
        if self.latency is None:
            return None
        hist = Histogram()
        for ns in self.latency:
            hist.add_ns(ns)
        return hist

    def _finish(self) -> None:
        self.t_done = time.monotonic()
        self.done.set()


class _Client(WSListener):  # type: ignore[misc]
    """Common state: the transport, a `ready` future, the per-client publication count."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.transport: WSTransport | None = None
        self.ready: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.received = 0
        #: Set once the connection is gone, with the close code the server sent (if any).
        self.closed = False
        self.close_code: int | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.closed = True
        self._fail("connection closed")

    def begin(self) -> None:
        """Start the dialect's handshake (after the WebSocket is open)."""

    def _send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.send(WSMsgType.TEXT, data)

    def _count(self, n: int, frame: bytes = b"") -> None:
        self.received += n
        self.tally.add(n, frame)

    @property
    def _timing(self) -> bool:
        """Whether publications are being timed (their payload is then worth fetching)."""
        return self.tally.latency is not None

    def _succeed(self) -> None:
        if not self.ready.done():
            self.ready.set_result(time.monotonic())

    def _fail(self, why: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(why))

    def _closing(self, frame: WSFrame) -> None:
        code = frame.get_close_code()
        self.close_code = int(getattr(code, "value", code))
        self._fail(f"close frame {frame.get_close_code()} {frame.get_close_message()!r}")
        if self.transport is not None:
            self.transport.disconnect()


class RotaryClient(_Client):
    """Centrifugo protocol v2 (JSON) client: connect, subscribe to `channels`, count pubs."""

    def __init__(
        self, tally: Tally, *, token: str, channels: tuple[str, ...], sub_tokens: tuple[str, ...]
    ) -> None:
        super().__init__(tally)
        self._token, self._channels, self._sub_tokens = token, channels, sub_tokens
        self._pending: set[int] = set()
        self._last_id = len(channels) + 1

    def begin(self) -> None:
        connect = {"token": self._token} if self._token else {}
        self._send(orjson.dumps({"id": 1, "connect": connect}))

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.CLOSE:
            self._closing(frame)
            return
        data = frame.get_payload_as_bytes()
        if self.ready.done():
            # Fan-out fast path: count publications without decoding them.
            pubs = data.count(b'"pub":')
            if pubs:
                self._count(pubs, data)
            if b"{}" in data and b"{}" in data.split(b"\n"):
                self._send(b"{}")
            return
        for line in data.split(b"\n"):
            self._line(orjson.loads(line))

    def _line(self, msg: dict[str, object]) -> None:
        if not msg:
            self._send(b"{}")  # server ping
        elif "error" in msg:
            self._fail(f"error reply {msg['error']}")
        elif msg.get("id") == 1:
            self._subscribe_all()
        elif msg.get("id") in self._pending:
            self._pending.discard(msg["id"])  # type: ignore[arg-type]
            if not self._pending:
                self._succeed()
        elif "push" in msg and "pub" in msg["push"]:  # type: ignore[operator]
            self._count(1)

    def send_commands(self, *commands: dict[str, object]) -> None:
        """Send `commands` in one frame, each with a fresh id; their replies are not read
        (what the connection gets once ready is only counted)."""
        lines = []
        for command in commands:
            self._last_id += 1
            lines.append(orjson.dumps({"id": self._last_id, **command}))
        self._send(b"\n".join(lines))

    def _subscribe_all(self) -> None:
        commands = []
        for n, channel in enumerate(self._channels):
            req: dict[str, object] = {"channel": channel}
            if self._sub_tokens:
                req["token"] = self._sub_tokens[n]
            commands.append(orjson.dumps({"id": n + 2, "subscribe": req}))
            self._pending.add(n + 2)
        if not commands:
            self._succeed()
            return
        self._send(b"\n".join(commands))


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _len_field(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + _varint(len(body)) + body


def _pb_command(cmd_id: int, request_tag: int, request: bytes) -> bytes:
    """One varint-prefixed Command: id (field 1), then the request message."""
    body = b"\x08" + _varint(cmd_id) + _len_field(request_tag, request)
    return _varint(len(body)) + body


def _pb_messages(frame: bytes) -> list[bytes]:
    """The varint-prefixed messages of a frame."""
    out, pos = [], 0
    while pos < len(frame):
        size = shift = 0
        while True:
            byte = frame[pos]
            pos += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        out.append(frame[pos : pos + size])
        pos += size
    return out


#: Field tags (number << 3 | 2) of Command.connect and Command.subscribe, of the string
#: fields 1 and 2 of their requests, and of Reply.error and Reply.push.
_CONNECT, _SUBSCRIBE, _FIELD1, _FIELD2 = 0x22, 0x2A, 0x0A, 0x12
_REPLY_ERROR, _REPLY_PUSH = 0x12, 0x22


class RotaryProtobufClient(_Client):
    """`RotaryClient` in the Protobuf format: the same commands, binary frames.

    Every push counts as a publication: the channels of the benchmarks carry nothing else.
    """

    def __init__(
        self, tally: Tally, *, token: str, channels: tuple[str, ...], sub_tokens: tuple[str, ...]
    ) -> None:
        super().__init__(tally)
        self._token, self._channels, self._sub_tokens = token, channels, sub_tokens
        self._pending: set[int] = set()

    def _send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.send(WSMsgType.BINARY, data)

    def begin(self) -> None:
        connect = _len_field(_FIELD1, self._token.encode()) if self._token else b""
        self._send(_pb_command(1, _CONNECT, connect))

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.CLOSE:
            self._closing(frame)
            return
        for message in _pb_messages(frame.get_payload_as_bytes()):
            self._message(message)

    def _message(self, message: bytes) -> None:
        if not message:
            self._send(b"\x00")  # server ping: the empty message
        elif message[0] == _REPLY_PUSH:
            self._count(1, message)
        elif message[0] == 0x08:
            self._reply(message)

    def _reply(self, message: bytes) -> None:
        cmd_id, pos, shift = 0, 1, 0
        while True:
            byte = message[pos]
            pos += 1
            cmd_id |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        if pos < len(message) and message[pos] == _REPLY_ERROR:
            self._fail(f"error reply {message[pos:]!r}")
        elif cmd_id == 1:
            self._subscribe_all()
        elif cmd_id in self._pending:
            self._pending.discard(cmd_id)
            if not self._pending:
                self._succeed()

    def _subscribe_all(self) -> None:
        commands = []
        for n, channel in enumerate(self._channels):
            req = _len_field(_FIELD1, channel.encode())
            if self._sub_tokens:
                req += _len_field(_FIELD2, self._sub_tokens[n].encode())
            commands.append(_pb_command(n + 2, _SUBSCRIBE, req))
            self._pending.add(n + 2)
        if not commands:
            self._succeed()
            return
        self._send(b"".join(commands))


class SocketIOClient(_Client):
    """Engine.IO 4 / Socket.IO 5 over WebSocket: CONNECT with auth, `join` with tokens."""

    def __init__(self, tally: Tally, *, token: str, sub_tokens: tuple[str, ...]) -> None:
        super().__init__(tally)
        self._token, self._sub_tokens = token, sub_tokens

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.CLOSE:
            self._closing(frame)
            return
        data = frame.get_payload_as_bytes()
        if data == b"2":
            self._send(b"3")  # Engine.IO ping → pong
        elif data.startswith(b"42"):
            self._count(1, data)
        elif data.startswith(b"0"):
            self._send(b"40" + orjson.dumps({"token": self._token}))
        elif data.startswith(b"40"):
            join = ["join", {"tokens": list(self._sub_tokens)}]
            self._send(b"421" + orjson.dumps(join))
        elif data.startswith(b"431"):
            ack = orjson.loads(data[3:])
            self._succeed() if ack and ack[0] == "ok" else self._fail(f"join refused {ack}")
        elif data.startswith(b"44"):
            self._fail(f"connect refused {data[:200]!r}")


class BareClient(_Client):
    """A plain WebSocket: ready once open; every text frame counts as one delivery."""

    def begin(self) -> None:
        self._succeed()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.TEXT:
            self._count(1, frame.get_payload_as_bytes() if self._timing else b"")
        elif frame.msg_type is WSMsgType.CLOSE:
            self._closing(frame)


@dataclass(frozen=True, slots=True)
class OpenSpec:
    """A batch of clients to open: indices `start`..`start+count-1` of one dialect.

    `channels` are templates formatted with `i=<index>`. With `secret`, each client gets a
    connection token and one subscription token per channel (expiring at `exp`).
    """

    kind: str
    url: str
    start: int
    count: int
    channels: tuple[str, ...] = ()
    secret: str = ""
    exp: int = 0
    max_inflight: int = 100
    timeout: float = 60.0
    #: Bytes of ``info`` in each connection token (0: none).
    info_size: int = 0
    #: Send ``Cookie: user=u<index>`` with the upgrade request (proxy storms: no tokens).
    cookie: bool = False


@dataclass(frozen=True, slots=True)
class OpenResult:
    """When the batch started, which clients became ready and when, and why others failed."""

    t_start: float
    ready_at: list[float]
    failures: list[str]
    #: This process's CPU seconds from `t_start` on (token signing before it is not counted).
    cpu_s: float = 0.0


def _factory(spec: OpenSpec, index: int, tally: Tally) -> Callable[[], _Client]:
    channels = tuple(c.format(i=index) for c in spec.channels)
    tokens = None
    if spec.secret:
        tokens = client_tokens(spec.secret, index, channels, exp=spec.exp, info_size=spec.info_size)
    token = tokens.connect if tokens else ""
    subs = tokens.subscribe if tokens else ()
    if spec.kind == "rotary":
        return lambda: RotaryClient(tally, token=token, channels=channels, sub_tokens=subs)
    if spec.kind == "rotary-protobuf":
        return lambda: RotaryProtobufClient(tally, token=token, channels=channels, sub_tokens=subs)
    if spec.kind == "socketio":
        return lambda: SocketIOClient(tally, token=token, sub_tokens=subs)
    if spec.kind == "bare":
        return lambda: BareClient(tally)
    raise ValueError(f"unknown client kind {spec.kind!r}")


def _headers(spec: OpenSpec, index: int) -> dict[str, str] | None:
    return {"Cookie": f"user=u{index}"} if spec.cookie else None


async def _open_one(
    url: str,
    factory: Callable[[], _Client],
    gate: asyncio.Semaphore,
    out: list[_Client],
    headers: dict[str, str] | None = None,
) -> float:
    async with gate:
        _, client = await ws_connect(
            factory,
            url,
            websocket_handshake_timeout=30,
            use_aiofastnet=False,
            extra_headers=headers,
        )
    out.append(client)
    client.begin()
    return await client.ready


async def _stream_opener(
    spec: OpenSpec, index: int, tally: Tally, gate: asyncio.Semaphore, out: list[Any]
) -> float:
    """Open one HTTP-streaming or SSE client (`bench.streamclients`); `spec.url` is the
    server's ``http://host:port``."""
    channels = tuple(c.format(i=index) for c in spec.channels)
    token = client_tokens(spec.secret, index, (), exp=spec.exp).connect if spec.secret else ""
    async with gate:
        client = await open_stream_client(
            spec.kind, spec.url, tally, token=token, channels=channels
        )
    out.append(client)
    return await client.ready


async def open_clients(spec: OpenSpec, tally: Tally, out: list[_Client]) -> OpenResult:
    """Open `spec.count` clients at once; append each opened client to `out`.

    Token signing happens before the clock starts. Bounded by `spec.timeout` seconds.
    """
    gate = asyncio.Semaphore(spec.max_inflight)
    stream = spec.kind in STREAM_KINDS
    factories = [] if stream else [_factory(spec, spec.start + n, tally) for n in range(spec.count)]
    cpu_start = time.process_time()
    t_start = time.monotonic()
    openers: list[Coroutine[Any, Any, float]]
    if stream:
        indices = range(spec.start, spec.start + spec.count)
        openers = [_stream_opener(spec, i, tally, gate, out) for i in indices]
    else:
        headers = [_headers(spec, spec.start + n) for n in range(spec.count)]
        openers = [
            _open_one(spec.url, f, gate, out, h) for f, h in zip(factories, headers, strict=True)
        ]
    tasks = [asyncio.ensure_future(opener) for opener in openers]
    await asyncio.wait(tasks, timeout=spec.timeout)
    ready_at: list[float] = []
    failures: list[str] = []
    for task in tasks:
        if not task.done():
            task.cancel()
            failures.append("timeout")
        elif task.exception() is not None:
            failures.append(repr(task.exception())[:200])
        else:
            ready_at.append(task.result() - t_start)
    return OpenResult(t_start, sorted(ready_at), failures, time.process_time() - cpu_start)
