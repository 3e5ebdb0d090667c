"""`soak`: many connections churning for a while; does anything leak?

One Rotary server (memory engine, presence on). N clients (aiohttp WebSocket, in this
process) connect and subscribe to one of 50 channels. Then for the run's length, every
second: about N × 10 % / 60 clients disconnect and come back (10 % a minute), a few clients
move to another channel (unsubscribe, subscribe), and 20 publications go out through the
HTTP API. The server's RSS, open descriptors and `info` counts are sampled every 5 s.

Figures: RSS drift after warm-up (the last sample against the first one after 20 % of the
run: ≤ 5 % is the target), and, once every client has left: open descriptors and the
node's clients, users, channels and subscriptions against their values before any client
came (all must return).

Sizes: quick 300 clients for 20 s; full BENCH_SOAK_CLIENTS (2,000) for BENCH_SOAK_SECONDS
(600). The documented run uses as many clients as the open-file limit allows (about
15,000 here): set BENCH_SOAK_CLIENTS.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from typing import Any

import aiohttp
import orjson

from bench import progress
from bench.common import API_KEY, SECRET, ServerProcess, rss_kb
from bench.servers import ROTARY_STANDARD, start_rotary_with
from bench.tokens import client_tokens

__all__ = ["run", "soak"]

_CHANNELS = 50
_SAMPLE_S = 5.0
_PUBLISH_PER_S = 20


def run(*, quick: bool) -> dict[str, Any]:
    """Run the soak; see the module docstring."""
    clients = 300 if quick else int(os.environ.get("BENCH_SOAK_CLIENTS", "2000"))
    seconds = 20.0 if quick else float(os.environ.get("BENCH_SOAK_SECONDS", "600"))
    progress.expect(1)
    progress.note(f"soak: {clients} clients for {seconds:.0f} s")
    result = soak(clients, seconds)
    progress.step()
    return result


def soak(clients: int, seconds: float) -> dict[str, Any]:
    """One soak of `clients` for `seconds` against a fresh server; the scenario's result."""
    server = start_rotary_with({**ROTARY_STANDARD, "presence": True})
    try:
        before = _state(server)
        dropped: Counter[str] = Counter()
        samples = asyncio.run(_soak(server, clients, seconds, dropped))
        after = _settled_state(server, before)
    finally:
        server.stop()
    return _result(clients, seconds, samples, before, after, dropped)


def _state(server: ServerProcess) -> dict[str, int]:
    """Open descriptors and the node's counts, now."""
    info = _api(server, "info")["result"]["nodes"][0]
    counts = {k: int(info[k]) for k in ("num_clients", "num_users", "num_channels", "num_subs")}
    return {"fds": len(os.listdir(f"/proc/{server.pid}/fd")), **counts}


def _settled_state(server: ServerProcess, before: dict[str, int]) -> dict[str, int]:
    """The state once it returned to `before`, or as it is after 10 s."""
    deadline = time.monotonic() + 10
    while True:
        now = _state(server)
        if now == before or time.monotonic() > deadline:
            return now
        time.sleep(0.2)


def _api(server: ServerProcess, method: str, params: dict[str, Any] | None = None) -> Any:
    import urllib.request

    request = urllib.request.Request(
        server.url(f"/api/{method}", scheme="http"),
        data=orjson.dumps(params or {}),
        headers={"X-API-Key": API_KEY},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return orjson.loads(response.read())


class _Client:
    """One soak client: connected, subscribed to one channel, reading until closed.

    A connection the server closes on its own (not by this client's churn) is counted in
    `dropped` by its close code and opened again at the client's next command, so one
    dropped client never ends the soak; the figures say how many there were and why.
    """

    def __init__(self, index: int, dropped: Counter[str]) -> None:
        self.index = index
        self.channel = f"soak{index % _CHANNELS}"
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.reader: asyncio.Task[None] | None = None
        self._ids = 2
        self._dropped = dropped
        self._leaving = False

    async def open(self, session: aiohttp.ClientSession, url: str) -> None:
        """Connect and subscribe; a failure is counted, and the next `move` tries again."""
        token = client_tokens(SECRET, self.index, (), exp=int(time.time()) + 7200).connect
        self._leaving = False
        try:
            self.ws = await session.ws_connect(url, max_msg_size=0)
            await self.ws.send_bytes(orjson.dumps({"id": 1, "connect": {"token": token}}))
            await self.ws.receive()
            await self._send({"subscribe": {"channel": self.channel}})
        except (TimeoutError, aiohttp.ClientError) as exc:
            self._dropped[f"open failed: {type(exc).__name__}"] += 1
            return
        self.reader = asyncio.create_task(self._read())

    async def move(self, session: aiohttp.ClientSession, url: str) -> None:
        if self.ws is None or self.ws.closed:
            await self.open(session, url)
        try:
            await self._send({"unsubscribe": {"channel": self.channel}})
            self.channel = f"soak{random.randrange(_CHANNELS)}"
            await self._send({"subscribe": {"channel": self.channel}})
        except aiohttp.ClientConnectionResetError:
            self._dropped["reset while moving"] += 1

    async def close(self) -> None:
        self._leaving = True
        if self.reader is not None:
            self.reader.cancel()
        if self.ws is not None:
            await self.ws.close()

    async def _send(self, command: dict[str, Any]) -> None:
        self._ids += 1
        assert self.ws is not None
        await self.ws.send_bytes(orjson.dumps({"id": self._ids, **command}))

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.data == "{}":
                await self.ws.send_str("{}")  # answer the server's ping
        if not self._leaving:
            self._dropped[f"closed by the server: {self.ws.close_code}"] += 1


async def _soak(
    server: ServerProcess, count: int, seconds: float, dropped: Counter[str]
) -> list[tuple[float, int]]:
    url = server.url("/connection/websocket")
    samples: list[tuple[float, int]] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        clients = [_Client(i, dropped) for i in range(count)]
        for start in range(0, count, 200):
            await asyncio.gather(*(c.open(session, url) for c in clients[start : start + 200]))
        started = time.monotonic()
        next_sample = started
        while (elapsed := time.monotonic() - started) < seconds:
            if time.monotonic() >= next_sample:
                samples.append((round(elapsed, 1), rss_kb(server.pid)))
                next_sample += _SAMPLE_S
            await _one_second(session, server, url, clients)
        samples.append((round(time.monotonic() - started, 1), rss_kb(server.pid)))
        await asyncio.gather(*(c.close() for c in clients))
    return samples


async def _one_second(
    session: aiohttp.ClientSession, server: ServerProcess, url: str, clients: list[_Client]
) -> None:
    tick = asyncio.create_task(asyncio.sleep(1.0))
    churn = max(1, round(len(clients) * 0.10 / 60))
    for client in random.sample(clients, churn):
        await client.close()
        await client.open(session, url)
    for client in random.sample(clients, churn):
        await client.move(session, url)
    publish = server.url("/api/publish", scheme="http")
    for n in range(_PUBLISH_PER_S):
        body = orjson.dumps({"channel": f"soak{n % _CHANNELS}", "data": {"n": n}})
        async with session.post(publish, data=body, headers={"X-API-Key": API_KEY}) as r:
            await r.read()
    await tick


def _result(
    clients: int,
    seconds: float,
    samples: list[tuple[float, int]],
    before: dict[str, int],
    after: dict[str, int],
    dropped: Counter[str],
) -> dict[str, Any]:
    warm = next((kb for t, kb in samples if t >= seconds * 0.2), samples[0][1])
    drift = round((samples[-1][1] - warm) / warm * 100, 2) if warm else None
    figures: dict[str, Any] = {
        "soak_clients": clients,
        "soak_seconds": seconds,
        "soak_rss_after_warmup_kb": warm,
        "soak_rss_last_kb": samples[-1][1],
        "soak_rss_drift_pct": drift,
        "soak_dropped_by_server": sum(dropped.values()),
    }
    for key in before:
        figures[f"soak_{key}_before"] = before[key]
        figures[f"soak_{key}_after"] = after[key]
    curve = {
        "x": [t for t, _ in samples],
        "y": [kb / 1024 for _, kb in samples],
        "xlabel": "seconds",
        "ylabel": "server RSS (MB)",
    }
    raw = {"samples": samples, "dropped": dict(dropped)}
    return {"figures": figures, "curves": {"soak_rss": curve}, "json": raw}
