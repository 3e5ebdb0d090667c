"""`latency`: delivery latency under an open-loop publisher: Rotary (memory and Redis
engines) beside Centrifugo v6.9.1, a bare picows broadcast and python-socketio, in the same
run.

N subscribers (aiohttp WebSocket clients in this process) hold one subscription to channel
`lat` (Rotary: connection token checked; python-socketio: connection and room tokens
checked, room `$lat`; picows: no protocol, every connection gets everything). A publisher
sends R publications per second on a fixed schedule (open loop: a slow reply never delays
the next send), each carrying its send time in nanoseconds: Rotary through its HTTP API,
python-socketio through its `POST /publish`, picows over its publish WebSocket. Every client
records receive time − send time; both clocks are this process's, so no clock skew enters.
Figures: p50 / p99 / p99.9 in ms per (target, N, R), and deliveries seen of expected.

Sizes: quick 200 × 20/s for 5 s per target; full 1,000 × 20/s and 10,000 × 5/s for 30 s
each. Targets: `rotary-memory`, `rotary-redis` (127.0.0.1:6379, own prefix), `centrifugo`
(`make centrifugo`; the Rotary clients and HTTP API publisher drive it unchanged; one core,
pinned like Rotary), `picows`, `socketio`. The clients share one process and one core: at
10,000 they may be what limits, so read full-size figures as an upper bound, and compare
targets rather than absolutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

from bench import progress
from bench.common import API_KEY, SECRET, ServerProcess, ServerUnavailable
from bench.servers import ROTARY_STANDARD, start_peer, start_rotary_with, ws_path
from bench.tokens import client_tokens

__all__ = ["TARGETS", "percentiles", "run"]

_CHANNEL = "lat"
_ROOM = "$lat"
#: Seconds to wait after the last publication for stragglers.
_DRAIN_S = 2.0
TARGETS = ("rotary-memory", "rotary-redis", "centrifugo", "picows", "socketio")
Latencies = list[float]


def percentiles(samples: list[float], points: tuple[float, ...]) -> list[float | None]:
    """The nearest-rank percentiles `points` (0–100) of `samples`, None when empty."""
    if not samples:
        return [None for _ in points]
    ordered = sorted(samples)
    top = len(ordered) - 1
    return [ordered[min(top, round(p / 100 * top))] for p in points]


def run(*, quick: bool) -> dict[str, Any]:
    """Measure every case; see the module docstring."""
    seconds = 5.0 if quick else 30.0
    loads = [(200, 20)] if quick else [(1000, 20), (10_000, 5)]
    progress.expect(len(loads) * len(TARGETS))
    rows: list[list[Any]] = []
    figures: dict[str, Any] = {}
    for clients, rate in loads:
        for target in TARGETS:
            progress.note(f"latency: {target} {clients} x {rate}/s")
            try:
                found = _one_case(target, clients, rate, seconds)
            except (aiohttp.ClientError, OSError) as exc:  # one case's failure is a result
                found = [None, None, None, f"failed: {exc!r}"]
            rows.append([target, clients, rate, *found])
            key = f"latency_{target.replace('-', '_')}_{clients}x{rate}"
            figures[f"{key}_p50_ms"], figures[f"{key}_p99_ms"] = found[0], found[1]
            figures[f"{key}_p999_ms"] = found[2]
            progress.step()
        figures |= _ratios(figures, clients, rate)
    return {
        "figures": figures,
        "table_header": ["target", "clients", "pub/s", "p50 ms", "p99 ms", "p99.9 ms", "seen"],
        "table": rows,
    }


def _ratios(figures: dict[str, Any], clients: int, rate: int) -> dict[str, Any]:
    """Rotary's (memory engine) p50 and p99 over each peer's, at one load."""
    out: dict[str, Any] = {}
    for peer in ("centrifugo", "picows", "socketio"):
        for point in ("p50", "p99"):
            mine = figures.get(f"latency_rotary_memory_{clients}x{rate}_{point}_ms")
            theirs = figures.get(f"latency_{peer}_{clients}x{rate}_{point}_ms")
            name = f"latency_rotary_over_{peer}_{clients}x{rate}_{point}"
            out[name] = round(mine / theirs, 2) if mine and theirs else None
    return out


def _client_kind(target: str) -> str:
    """The clients and publisher a target takes: Centrifugo speaks Rotary's protocol and API."""
    return "rotary" if target.startswith("rotary") or target == "centrifugo" else target


def _start(target: str) -> ServerProcess:
    if not target.startswith("rotary"):
        return start_peer(target)
    config: dict[str, Any] = dict(ROTARY_STANDARD)
    if target == "rotary-redis":
        config |= {"engine": "redis", "redis_prefix": f"bench-lat-{uuid.uuid4().hex[:8]}"}
    return start_rotary_with(config)


def _one_case(target: str, clients: int, rate: int, seconds: float) -> list[Any]:
    try:
        server = _start(target)
    except ServerUnavailable as exc:
        return [None, None, None, f"unavailable: {exc}"]
    try:
        latencies, expected = asyncio.run(_measure(server, target, clients, rate, seconds))
    finally:
        server.stop()
    p50, p99, p999 = (
        None if v is None else round(v * 1000, 2) for v in percentiles(latencies, (50, 99, 99.9))
    )
    return [p50, p99, p999, f"{len(latencies)}/{expected}"]


async def _measure(
    server: ServerProcess, target: str, clients: int, rate: int, seconds: float
) -> tuple[Latencies, int]:
    latencies: Latencies = []
    kind = _client_kind(target)
    limits = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=limits) as session:
        sockets = await _subscribe_all(session, server, kind, clients)
        read = _READERS[kind]
        readers = [asyncio.create_task(read(ws, latencies)) for ws in sockets]
        sent = await _PUBLISHERS[kind](session, server, rate, seconds)
        await asyncio.sleep(_DRAIN_S)
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return latencies, sent * clients


Socket = aiohttp.ClientWebSocketResponse


async def _subscribe_all(
    session: aiohttp.ClientSession, server: ServerProcess, kind: str, clients: int
) -> list[Socket]:
    exp = int(time.time()) + 3600
    url = server.url(ws_path(kind))
    semaphore = asyncio.Semaphore(200)

    async def one(index: int) -> Socket:
        async with semaphore:
            ws = await session.ws_connect(url, max_msg_size=0)
            await _HANDSHAKES[kind](ws, index, exp)
            return ws

    return list(await asyncio.gather(*(one(i) for i in range(clients))))


async def _rotary_handshake(ws: Socket, index: int, exp: int) -> None:
    token = client_tokens(SECRET, index, (), exp=exp).connect
    connect = orjson.dumps({"id": 1, "connect": {"token": token}})
    subscribe = orjson.dumps({"id": 2, "subscribe": {"channel": _CHANNEL}})
    await ws.send_bytes(connect + b"\n" + subscribe)
    while '"id":2' not in str((await ws.receive()).data):
        pass


async def _socketio_handshake(ws: Socket, index: int, exp: int) -> None:
    """Engine.IO open, Socket.IO CONNECT with the token, then `join` the room (acked)."""
    tokens = client_tokens(SECRET, index, (_ROOM,), exp=exp)
    await ws.receive()  # the Engine.IO open packet "0{...}"
    await ws.send_str("40" + orjson.dumps({"token": tokens.connect}).decode())
    while not str((await ws.receive()).data).startswith("40"):
        pass
    join = orjson.dumps(["join", {"tokens": list(tokens.subscribe)}]).decode()
    await ws.send_str("421" + join)
    while not str((await ws.receive()).data).startswith("431"):
        pass


async def _no_handshake(ws: Socket, index: int, exp: int) -> None:
    """The bare broadcast delivers to every open connection."""


async def _read_rotary(ws: Socket, latencies: Latencies) -> None:
    async for msg in ws:
        now = time.time_ns()
        for line in msg.data.split("\n") if isinstance(msg.data, str) else ():
            if '"pub"' in line:
                sent = orjson.loads(line)["push"]["pub"]["data"]["t"]
                latencies.append((now - sent) / 1e9)
            elif line == "{}":
                with contextlib.suppress(aiohttp.ClientConnectionResetError):
                    await ws.send_str("{}")  # answer the server's ping (if it still listens)


async def _read_bare(ws: Socket, latencies: Latencies) -> None:
    async for msg in ws:
        now = time.time_ns()
        if isinstance(msg.data, str):
            latencies.append((now - orjson.loads(msg.data)["t"]) / 1e9)


async def _read_socketio(ws: Socket, latencies: Latencies) -> None:
    async for msg in ws:
        now = time.time_ns()
        data = msg.data if isinstance(msg.data, str) else ""
        if data.startswith("42"):
            latencies.append((now - orjson.loads(data[2:])[1]["t"]) / 1e9)
        elif data == "2":
            await ws.send_str("3")  # Engine.IO ping → pong


async def _publish_rotary(
    session: aiohttp.ClientSession, server: ServerProcess, rate: int, seconds: float
) -> int:
    url, headers = server.url("/api/publish", scheme="http"), {"X-API-Key": API_KEY}

    async def send() -> None:
        body = orjson.dumps({"channel": _CHANNEL, "data": {"t": time.time_ns()}})
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()

    return await _open_loop(send, rate, seconds)


async def _publish_socketio(
    session: aiohttp.ClientSession, server: ServerProcess, rate: int, seconds: float
) -> int:
    url = server.url("/publish", scheme="http")

    async def send() -> None:
        body = orjson.dumps({"room": _ROOM, "data": {"t": time.time_ns()}})
        async with session.post(url, data=body) as response:
            await response.read()

    return await _open_loop(send, rate, seconds)


async def _publish_picows(
    session: aiohttp.ClientSession, server: ServerProcess, rate: int, seconds: float
) -> int:
    async with session.ws_connect(server.url("/publish")) as ws:

        async def send() -> None:
            await ws.send_str(orjson.dumps({"t": time.time_ns()}).decode())  # text: relayed as is

        return await _open_loop(send, rate, seconds)


async def _open_loop(send: Callable[[], Any], rate: int, seconds: float) -> int:
    """Call `send` `rate` times per second for `seconds` on a fixed schedule, never waiting
    for one to finish before starting the next; the number sent."""
    start = time.monotonic()
    total = int(rate * seconds)
    pending: list[asyncio.Task[Any]] = []
    for n in range(total):
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.append(asyncio.create_task(send()))
    await asyncio.gather(*pending)
    return total


_HANDSHAKES = {
    "rotary": _rotary_handshake,
    "socketio": _socketio_handshake,
    "picows": _no_handshake,
}
_READERS = {"rotary": _read_rotary, "socketio": _read_socketio, "picows": _read_bare}
_PUBLISHERS = {"rotary": _publish_rotary, "socketio": _publish_socketio, "picows": _publish_picows}
