"""`latency`: delivery latency under an open-loop publisher, memory and Redis engines.

N subscribers (aiohttp WebSocket clients in this process, connection token checked) hold
one subscription to channel `lat`. A publisher sends R publications per second through the
HTTP API on a fixed schedule (open loop: a slow reply never delays the next send), each
carrying its send time in nanoseconds; every client records receive time − send time. Both
clocks are this process's, so no clock skew enters. Figures: p50 / p99 / p99.9 in ms per
(engine, N, R), and how many deliveries were expected and seen.

Sizes: quick 200 × 20/s for 5 s (memory only); full 1,000 × 20/s and 10,000 × 5/s for 30 s
each, on memory and on Redis (127.0.0.1:6379, own prefix). The clients share one process
and one core: at 10,000 they may be what limits, so read full-size figures as an upper
bound, beside the peers when they are added (the issue asks for bare picows and
python-socketio in the same run).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import orjson

from bench import progress
from bench.common import API_KEY, SECRET, ServerProcess, ServerUnavailable
from bench.servers import ROTARY_STANDARD, start_rotary_with
from bench.tokens import client_tokens

__all__ = ["percentiles", "run"]

_CHANNEL = "lat"
#: Seconds to wait after the last publication for stragglers.
_DRAIN_S = 2.0


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
    engines = ["memory"] if quick else ["memory", "redis"]
    progress.expect(len(loads) * len(engines))
    rows: list[list[Any]] = []
    figures: dict[str, Any] = {}
    for engine in engines:
        for clients, rate in loads:
            progress.note(f"latency: {engine} {clients} x {rate}/s")
            found = _one_case(engine, clients, rate, seconds)
            rows.append([engine, clients, rate, *found])
            key = f"latency_{engine}_{clients}x{rate}"
            figures[f"{key}_p50_ms"], figures[f"{key}_p99_ms"] = found[0], found[1]
            figures[f"{key}_p999_ms"] = found[2]
            progress.step()
    return {
        "figures": figures,
        "table_header": ["engine", "clients", "pub/s", "p50 ms", "p99 ms", "p99.9 ms", "seen"],
        "table": rows,
    }


def _one_case(engine: str, clients: int, rate: int, seconds: float) -> list[Any]:
    config: dict[str, Any] = dict(ROTARY_STANDARD)
    if engine == "redis":
        config |= {"engine": "redis", "redis_prefix": f"bench-lat-{uuid.uuid4().hex[:8]}"}
    try:
        server = start_rotary_with(config)
    except ServerUnavailable as exc:
        return [None, None, None, f"unavailable: {exc}"]
    try:
        latencies, expected = asyncio.run(_measure(server, clients, rate, seconds))
    finally:
        server.stop()
    p50, p99, p999 = (
        None if v is None else round(v * 1000, 2) for v in percentiles(latencies, (50, 99, 99.9))
    )
    return [p50, p99, p999, f"{len(latencies)}/{expected}"]


async def _measure(
    server: ServerProcess, clients: int, rate: int, seconds: float
) -> tuple[list[float], int]:
    latencies: list[float] = []
    limits = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=limits) as session:
        sockets = await _subscribe_all(session, server, clients)
        readers = [asyncio.create_task(_read(ws, latencies)) for ws in sockets]
        sent = await _publish(session, server, rate, seconds)
        await asyncio.sleep(_DRAIN_S)
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return latencies, sent * clients


async def _subscribe_all(
    session: aiohttp.ClientSession, server: ServerProcess, clients: int
) -> list[aiohttp.ClientWebSocketResponse]:
    token = client_tokens(SECRET, 0, (), exp=int(time.time()) + 3600).connect
    connect = orjson.dumps({"id": 1, "connect": {"token": token}})
    subscribe = orjson.dumps({"id": 2, "subscribe": {"channel": _CHANNEL}})
    url = server.url("/connection/websocket")
    semaphore = asyncio.Semaphore(200)

    async def one() -> aiohttp.ClientWebSocketResponse:
        async with semaphore:
            ws = await session.ws_connect(url, max_msg_size=0)
            await ws.send_bytes(connect + b"\n" + subscribe)
            while '"id":2' not in str((await ws.receive()).data):
                pass
            return ws

    return list(await asyncio.gather(*(one() for _ in range(clients))))


async def _read(ws: aiohttp.ClientWebSocketResponse, latencies: list[float]) -> None:
    async for msg in ws:
        now = time.time_ns()
        for line in msg.data.split("\n") if isinstance(msg.data, str) else ():
            if '"pub"' in line:
                sent = orjson.loads(line)["push"]["pub"]["data"]["t"]
                latencies.append((now - sent) / 1e9)
            elif line == "{}":
                await ws.send_str("{}")  # answer the server's ping


async def _publish(
    session: aiohttp.ClientSession, server: ServerProcess, rate: int, seconds: float
) -> int:
    """Publish `rate` per second for `seconds` on a fixed schedule; the number sent."""
    url = server.url("/api/publish", scheme="http")
    headers = {"X-API-Key": API_KEY}
    start = time.monotonic()
    total = int(rate * seconds)
    pending: list[asyncio.Task[Any]] = []
    for n in range(total):
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        body = orjson.dumps({"channel": _CHANNEL, "data": {"t": time.time_ns()}})
        pending.append(asyncio.create_task(session.post(url, data=body, headers=headers)))
    for response in await asyncio.gather(*pending):
        response.release()
    return total
