"""`delta`: fan-out of a slowly changing document, whole against Fossil deltas.

One Rotary server (namespace `doc`: history, recovery, ``allowed_delta_types: ["fossil"]``,
``delta_publish``) serves two rounds in turn, in the same run: N subscribers *without* delta
(the baseline), then N subscribers asking for ``delta: "fossil"``. Each round publishes the
same M versions of a ~2 KB JSON document through the HTTP API, each version changing one
field of the one before, and waits until every client holds every version.

Figures per round: bytes of publication pushes received per delivery (what crossed the
wire, WebSocket framing aside), and server CPU per delivery. Ratios: delta round / whole
round, for both. Every delta client decodes its publications with `rotary.protocol.fossil`
and checks that it ends with the last version (a wrong delta fails the run, not the figure).

The clients run in this process on the load CPUs (aiohttp); they are the same in both rounds,
so their cost does not bias the ratio.
"""

from __future__ import annotations

import asyncio
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
from rotary.protocol import fossil

__all__ = ["document", "run"]

_NAMESPACE = {
    "name": "doc",
    "allowed_delta_types": ["fossil"],
    "delta_publish": True,
    "history_size": 100,
    "history_ttl": "300s",
    "force_recovery": True,
    "allow_subscribe_for_client": True,
}


def _plan(quick: bool) -> tuple[int, int]:
    """(subscribers, publications)."""
    return (50, 20) if quick else (1000, 100)


def document(version: int) -> dict[str, Any]:
    """Version `version` of the document: 40 rows, one of them changed per version."""
    rows = [{"id": i, "name": f"row {i}", "value": 0, "note": "steady " * 3} for i in range(40)]
    for v in range(1, version + 1):
        rows[v % 40]["value"] += 1
    return {"version": version, "rows": rows}


class _Client:
    """One subscriber: counts publication bytes and rebuilds the document it is sent."""

    def __init__(self) -> None:
        self.bytes = 0
        self.count = 0
        self.last: bytes = b""
        self.done = asyncio.Event()
        self.target = 0

    def feed(self, line: bytes) -> None:
        msg = orjson.loads(line)
        pub = msg.get("push", {}).get("pub")
        if pub is None:
            return
        self.bytes += len(line)
        data = pub["data"]
        if isinstance(data, str):  # delta subscription: data is a JSON string
            raw = data.encode()
            self.last = fossil.apply(self.last, raw) if pub.get("delta") else raw
        else:
            self.last = orjson.dumps(data)
        self.count += 1
        if self.count >= self.target:
            self.done.set()


async def _round(server: ServerProcess, *, n: int, m: int, delta: bool) -> dict[str, Any]:
    channel = f"doc:{'delta' if delta else 'whole'}-{int(time.time())}"
    clients = [_Client() for _ in range(n)]
    # No connector limit: every subscriber holds its connection (aiohttp's default is 100).
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        sockets = [await _subscribe(http, server, i, channel, delta) for i in range(n)]
        tasks = [
            asyncio.create_task(serve_lines(ws, c.feed))
            for ws, c in zip(sockets, clients, strict=True)
        ]
        for c in clients:
            c.target = m
        wait_idle(server.pid)
        watch = CpuWatch(server.pid)
        bodies = [orjson.dumps({"channel": channel, "data": document(v)}) for v in range(m)]
        await publish_http(server.url("/api/publish", "http"), {"X-API-Key": API_KEY}, bodies)
        await asyncio.wait_for(asyncio.gather(*(c.done.wait() for c in clients)), 120)
        cpu = watch.stop()
        for ws in sockets:
            await ws.close()
        await asyncio.gather(*tasks, return_exceptions=True)
    expected = orjson.dumps(document(m - 1))
    if any(orjson.loads(c.last) != orjson.loads(expected) for c in clients):
        raise RuntimeError("a client did not rebuild the last version of the document")
    deliveries = n * m
    return {
        "bytes_per_delivery": round(sum(c.bytes for c in clients) / deliveries, 1),
        "server_us_per_delivery": round(cpu["server_cpu_s"] / deliveries * 1e6, 2),
        "server_cpu_s": cpu["server_cpu_s"],
        "foreign_cpu_share": cpu["foreign_share"],
    }


async def _subscribe(
    http: aiohttp.ClientSession, server: ServerProcess, index: int, channel: str, delta: bool
) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(server.url("/connection/websocket"))
    sub: dict[str, Any] = {"channel": channel, **({"delta": "fossil"} if delta else {})}
    reply = await connect_and_subscribe(ws, index, sub)
    if "subscribe" not in reply or reply["subscribe"].get("delta", False) is not delta:
        raise RuntimeError(f"unexpected subscribe reply {reply}")
    return ws


def run(*, quick: bool) -> dict[str, Any]:
    """Both rounds on one server; see the module docstring."""
    n, m = _plan(quick)
    progress.expect(2)
    server = start_rotary_with({**ROTARY_STANDARD, "namespaces": [_NAMESPACE]})
    try:
        rounds: dict[str, dict[str, Any]] = {}
        for name, delta in (("whole", False), ("delta", True)):
            progress.note(f"delta: {name} N={n} M={m}")
            rounds[name] = asyncio.run(_round(server, n=n, m=m, delta=delta))
            progress.step()
    finally:
        server.stop()
    return _result(n, m, rounds)


def _result(n: int, m: int, rounds: dict[str, dict[str, Any]]) -> dict[str, Any]:
    whole, delta = rounds["whole"], rounds["delta"]
    ratios = {
        "delta_wire_bytes_vs_whole": ratio(
            delta["bytes_per_delivery"], whole["bytes_per_delivery"]
        ),
        "delta_server_cpu_vs_whole": ratio(
            delta["server_us_per_delivery"], whole["server_us_per_delivery"]
        ),
    }
    table = [
        [name, n, m, r["bytes_per_delivery"], r["server_us_per_delivery"]]
        for name, r in rounds.items()
    ]
    return {
        "figures": {f"delta_{k}_{f}": v for k, r in rounds.items() for f, v in r.items()},
        "ratios": {k: v for k, v in ratios.items() if v is not None},
        "table_header": [
            "round",
            "subscribers",
            "publications",
            "B/delivery",
            "server µs/delivery",
        ],
        "table": table,
        "json": {"rounds": rounds, "notes": []},
    }
