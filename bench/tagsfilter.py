"""`tagsfilter`: what tags filters cost the server's fan-out.

One Rotary server (namespace `tf`: ``allow_tags_filter``) serves two rounds in turn, in the
same run, each with N subscribers on one channel and the same M publications of ~100 bytes
through the HTTP API, each tagged ``{"team": "t<i % 8>", "n": "<i>"}``:

- ``plain`` (the baseline): no filter, every subscriber gets every publication;
- ``filtered``: each subscriber sends one of 8 distinct filters (``team in [two teams]`` and
  ``n gte 0``, so a numeric comparison too), which passes a quarter of the publications.

Figures per round: server CPU per publication (the whole fan-out of one publication) and per
delivery. Ratio: filtered / plain per publication — what evaluating the filters adds to,
and what the deliveries not made save from, one publication's fan-out. Each client checks
that it got exactly the publications its filter passes (a wrong one fails the run).
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

__all__ = ["run"]

_NAMESPACE = {"name": "tf", "allow_subscribe_for_client": True, "allow_tags_filter": True}
_TEAMS = 8


def _plan(quick: bool) -> tuple[int, int]:
    """(subscribers, publications)."""
    return (40, 40) if quick else (1000, 200)


def _filter(index: int) -> dict[str, Any]:
    teams = [f"t{index % _TEAMS}", f"t{(index + 1) % _TEAMS}"]
    return {
        "op": "and",
        "nodes": [
            {"key": "team", "cmp": "in", "vals": teams},
            {"key": "n", "cmp": "gte", "val": "0"},
        ],
    }


def _expected(index: int, m: int, filtered: bool) -> list[int]:
    if not filtered:
        return list(range(m))
    teams = {index % _TEAMS, (index + 1) % _TEAMS}
    return [i for i in range(m) if i % _TEAMS in teams]


class _Client:
    def __init__(self, expected: list[int]) -> None:
        self.expected = expected
        self.got: list[int] = []
        self.done = asyncio.Event()
        if not expected:
            self.done.set()

    def feed(self, line: bytes) -> None:
        pub = orjson.loads(line).get("push", {}).get("pub")
        if pub is not None:
            self.got.append(pub["data"]["i"])
            if len(self.got) >= len(self.expected):
                self.done.set()


async def _subscribe(
    http: aiohttp.ClientSession, server: ServerProcess, index: int, sub: dict[str, Any]
) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(server.url("/connection/websocket"))
    reply = await connect_and_subscribe(ws, index, sub)
    if "subscribe" not in reply:
        raise RuntimeError(f"unexpected subscribe reply {reply}")
    return ws


async def _round(server: ServerProcess, *, n: int, m: int, filtered: bool) -> dict[str, Any]:
    channel = f"tf:{'filtered' if filtered else 'plain'}-{int(time.time())}"
    clients = [_Client(_expected(i, m, filtered)) for i in range(n)]
    # No connector limit: every subscriber holds its connection (aiohttp's default is 100).
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        subs = [{"channel": channel, **({"tf": _filter(i)} if filtered else {})} for i in range(n)]
        sockets = [await _subscribe(http, server, i, sub) for i, sub in enumerate(subs)]
        tasks = [
            asyncio.create_task(serve_lines(ws, c.feed))
            for ws, c in zip(sockets, clients, strict=True)
        ]
        wait_idle(server.pid)
        watch = CpuWatch(server.pid)
        bodies = [
            orjson.dumps(
                {
                    "channel": channel,
                    "data": {"i": i, "text": "x" * 80},
                    "tags": {"team": f"t{i % _TEAMS}", "n": str(i)},
                }
            )
            for i in range(m)
        ]
        await publish_http(server.url("/api/publish", "http"), {"X-API-Key": API_KEY}, bodies)
        await asyncio.wait_for(asyncio.gather(*(c.done.wait() for c in clients)), 120)
        cpu = watch.stop()
        for ws in sockets:
            await ws.close()
        await asyncio.gather(*tasks, return_exceptions=True)
    if any(c.got != c.expected for c in clients):
        raise RuntimeError("a client got publications its filter does not pass, or missed one")
    deliveries = sum(len(c.expected) for c in clients)
    return {
        "deliveries": deliveries,
        "server_us_per_publication": round(cpu["server_cpu_s"] / m * 1e6, 1),
        "server_us_per_delivery": round(cpu["server_cpu_s"] / deliveries * 1e6, 2),
        "server_cpu_s": cpu["server_cpu_s"],
        "foreign_cpu_share": cpu["foreign_share"],
    }


def run(*, quick: bool) -> dict[str, Any]:
    """Both rounds on one server; see the module docstring."""
    n, m = _plan(quick)
    progress.expect(2)
    server = start_rotary_with({**ROTARY_STANDARD, "namespaces": [_NAMESPACE]})
    try:
        rounds: dict[str, dict[str, Any]] = {}
        for name, filtered in (("plain", False), ("filtered", True)):
            progress.note(f"tagsfilter: {name} N={n} M={m}")
            rounds[name] = asyncio.run(_round(server, n=n, m=m, filtered=filtered))
            progress.step()
    finally:
        server.stop()
    plain, filtered = rounds["plain"], rounds["filtered"]
    per_pub = ratio(filtered["server_us_per_publication"], plain["server_us_per_publication"])
    return {
        "figures": {f"tagsfilter_{k}_{f}": v for k, r in rounds.items() for f, v in r.items()},
        "ratios": {} if per_pub is None else {"tagsfilter_server_cpu_per_publication": per_pub},
        "table_header": [
            "round",
            "subscribers",
            "publications",
            "deliveries",
            "server µs/publication",
            "server µs/delivery",
        ],
        "table": [
            [
                name,
                n,
                m,
                r["deliveries"],
                r["server_us_per_publication"],
                r["server_us_per_delivery"],
            ]
            for name, r in rounds.items()
        ],
        "json": {"rounds": rounds, "notes": []},
    }
