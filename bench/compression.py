"""`compression`: what permessage-deflate costs the server's fan-out.

One Rotary server with ``websocket.compression`` on (level 1, no minimum size) serves two
rounds in turn, in the same run, each with N subscribers on one channel and the same M
publications through the HTTP API (about 100 bytes, and about 1 KB, of JSON text):

- ``plain`` (the baseline): the clients do not offer permessage-deflate, frames go as is;
- ``deflate``: the clients offer it (aiohttp's client, ``compress=15``), every push is
  deflated.

Figures per round and size: server CPU per delivery. Ratio: deflate / plain per delivery.
Rotary deflates a publication once per fan-out, not once per subscriber
(`rotary.transports.deflate`), so the cost per delivery should stay close to the baseline.
Each client checks that it got every publication, in order, inflated intact.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import aiohttp
import orjson

from bench import progress
from bench.common import API_KEY, CpuWatch, ServerProcess, wait_idle
from bench.fanout import publish_http
from bench.results import ratio
from bench.servers import ROTARY_STANDARD, start_rotary_with
from bench.textclients import connect_and_subscribe, serve_lines

__all__ = ["run"]

_WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "price",
    "order",
    "user",
    "room",
    "status",
    "update",
    "ready",
    "total",
]
#: Approximate bytes of JSON text per publication, per size class.
_SIZES = {"100b": 100, "1kb": 1000}


def _plan(quick: bool) -> tuple[int, int]:
    """(subscribers, publications per size)."""
    return (20, 20) if quick else (500, 200)


def _data(i: int, size: int) -> dict[str, Any]:
    """A publication of about `size` bytes of JSON: words, numbers, as a chat or a ticker."""
    rng = random.Random(i * 7919 + size)
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < size - 30:
        words.append(rng.choice(_WORDS) if rng.random() < 0.8 else str(rng.randint(0, 99999)))
    return {"i": i, "text": " ".join(words)}


class _Client:
    def __init__(self, m: int) -> None:
        self.m = m
        self.got: list[int] = []
        self.done = asyncio.Event()

    def feed(self, line: bytes) -> None:
        pub = orjson.loads(line).get("push", {}).get("pub")
        if pub is not None:
            self.got.append(pub["data"]["i"])
            if len(self.got) >= self.m:
                self.done.set()


async def _subscribe(
    http: aiohttp.ClientSession, server: ServerProcess, index: int, channel: str, *, deflate: bool
) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(server.url("/connection/websocket"), compress=15 if deflate else 0)
    if bool(ws.compress) != deflate:
        raise RuntimeError(f"compression negotiated: {ws.compress}, wanted {deflate}")
    reply = await connect_and_subscribe(ws, index, {"channel": channel})
    if "subscribe" not in reply:
        raise RuntimeError(f"unexpected subscribe reply {reply}")
    return ws


async def _round(
    server: ServerProcess, *, n: int, m: int, size: int, deflate: bool
) -> dict[str, Any]:
    channel = f"deflate-{size}-{deflate}-{time.monotonic_ns()}"
    clients = [_Client(m) for _ in range(n)]
    # No connector limit: aiohttp's default of 100 would hold back the 101st subscriber.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        sockets = [await _subscribe(http, server, i, channel, deflate=deflate) for i in range(n)]
        tasks = [
            asyncio.create_task(serve_lines(ws, c.feed))
            for ws, c in zip(sockets, clients, strict=True)
        ]
        bodies = [orjson.dumps({"channel": channel, "data": _data(i, size)}) for i in range(m)]
        wait_idle(server.pid)
        watch = CpuWatch(server.pid)
        await publish_http(server.url("/api/publish", "http"), {"X-API-Key": API_KEY}, bodies)
        await asyncio.wait_for(asyncio.gather(*(c.done.wait() for c in clients)), 120)
        cpu = watch.stop()
        for ws in sockets:
            await ws.close()
        await asyncio.gather(*tasks, return_exceptions=True)
    if any(c.got != list(range(m)) for c in clients):
        raise RuntimeError("a client missed a publication or got one out of order")
    deliveries = n * m
    return {
        "deliveries": deliveries,
        "server_us_per_delivery": round(cpu["server_cpu_s"] / deliveries * 1e6, 2),
        "server_cpu_s": cpu["server_cpu_s"],
        "foreign_cpu_share": cpu["foreign_share"],
    }


def run(*, quick: bool) -> dict[str, Any]:
    """Every round on one server; see the module docstring."""
    n, m = _plan(quick)
    progress.expect(2 * len(_SIZES))
    config = {**ROTARY_STANDARD, "websocket_compression": True}
    server = start_rotary_with(config)
    try:
        rounds: dict[str, dict[str, Any]] = {}
        for label, size in _SIZES.items():
            for name, deflate in (("plain", False), ("deflate", True)):
                progress.note(f"compression: {name} {label} N={n} M={m}")
                rounds[f"{name}_{label}"] = asyncio.run(
                    _round(server, n=n, m=m, size=size, deflate=deflate)
                )
                progress.step()
    finally:
        server.stop()
    figures = {
        f"compression_{key}_server_us_per_delivery": r["server_us_per_delivery"]
        for key, r in rounds.items()
    }
    ratios = {
        f"compression_server_cpu_per_delivery_{label}": ratio(
            rounds[f"deflate_{label}"]["server_us_per_delivery"],
            rounds[f"plain_{label}"]["server_us_per_delivery"],
        )
        for label in _SIZES
    }
    table = [
        [key, r["deliveries"], r["server_us_per_delivery"], r["foreign_cpu_share"]]
        for key, r in rounds.items()
    ]
    return {
        "figures": figures,
        "ratios": ratios,
        "table_header": ["round", "deliveries", "server µs/delivery", "foreign CPU share"],
        "table": table,
        "json": {"subscribers": n, "publications": m, "rounds": rounds},
    }
