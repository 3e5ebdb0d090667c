"""`slowconsumers`: what stalled subscribers cost the healthy ones in the same channel.

H healthy subscribers (aiohttp WebSockets in this process, each counting publications) and
channel `crowd`. Phase 1 publishes M publications of 4 KB through the HTTP API (a few in
flight) and times until every healthy subscriber has all of them: deliveries/s. Then S
stalled subscribers join: raw sockets with a 4 KiB receive buffer that send their connect
and subscribe and never read again. Phase 2 publishes rounds of M more the same way until
the server has cut every stalled one (3008 / 3009), timed over all its rounds (not the
pauses between them, while the clients are counted). Figures: both rates and their ratio
(the issue asks ≥ 0.95), how many stalled clients were cut, and the server's RSS before the
stalled ones joined, at the end of phase 2, and once they were cut and the server settled.

Sizes: quick 200 healthy, 20 stalled, 300 publications; full 1,000 healthy, 100 stalled,
1,000 publications. The healthy clients share this process: at the full size they may be
what limits the rate, equally in both phases.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import time
from typing import Any

import aiohttp
import orjson

from bench import progress
from bench.common import API_KEY, SECRET, ServerProcess, rss_kb
from bench.fanout import publish_http
from bench.servers import ROTARY_STANDARD, start_rotary_with
from bench.tokens import client_tokens

__all__ = ["run"]

_CHANNEL = "crowd"
_PAYLOAD = "x" * 4000
#: Rounds of M publications at most while waiting for the stalled peers to be cut.
_ROUNDS = 12
_CONFIG: dict[str, Any] = {
    **ROTARY_STANDARD,
    "client_queue_max_size": 64 << 10,
    "websocket_write_timeout": "500ms",
    # Stalled peers never answer pings: only the slow-consumer limits should cut them.
    "ping_interval": "300s",
}


def run(*, quick: bool) -> dict[str, Any]:
    """Measure once; see the module docstring."""
    healthy, stalled, publications = (200, 20, 300) if quick else (1000, 100, 1000)
    progress.expect(2)
    server = start_rotary_with(_CONFIG)
    try:
        figures = asyncio.run(_measure(server, healthy, stalled, publications))
    finally:
        server.stop()
    table = [[healthy, stalled, publications, *(figures[k] for k in _COLUMNS)]]
    return {"figures": figures, "table_header": _HEADER, "table": table}


_COLUMNS = (
    "slow_rate_without",
    "slow_rate_with",
    "slow_rate_ratio",
    "slow_cut",
    "slow_rss_before_kb",
    "slow_rss_peak_kb",
    "slow_rss_after_kb",
)
_HEADER = [
    "healthy",
    "stalled",
    "pubs",
    "deliv/s alone",
    "deliv/s with stalled",
    "ratio",
    "cut",
    "RSS before KiB",
    "RSS end KiB",
    "RSS settled KiB",
]


async def _measure(server: ServerProcess, healthy: int, stalled: int, m: int) -> dict[str, Any]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        counters = await _subscribe_all(session, server, healthy)
        progress.note("slowconsumers: healthy alone")
        alone = round(healthy * m / await _phase(server, counters, m, already=0))
        progress.step()
        rss_before = rss_kb(server.pid)
        peers = [await asyncio.to_thread(_stalled_peer, server.port, i) for i in range(stalled)]
        await _until_clients(server, healthy + stalled)
        progress.note("slowconsumers: with stalled subscribers")
        together, left = await _phase_until_cut(server, counters, m, healthy=healthy)
        rss_peak = rss_kb(server.pid)
        await asyncio.sleep(2.0)  # let freed buffers go back
        progress.step()
        rss_after = rss_kb(server.pid)
        for counter in counters:
            counter.cancel()
    for peer in peers:
        peer.close()
    return {
        "slow_rate_without": alone,
        "slow_rate_with": together,
        "slow_rate_ratio": round(together / alone, 3) if alone and together else None,
        "slow_cut": stalled - max(0, left - healthy),
        "slow_rss_before_kb": rss_before,
        "slow_rss_peak_kb": rss_peak,
        "slow_rss_after_kb": rss_after,
    }


class _Healthy:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws, self.count = ws, 0
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            self.count += str(message.data).count('"pub":')

    def cancel(self) -> None:
        self.task.cancel()


async def _subscribe_all(
    session: aiohttp.ClientSession, server: ServerProcess, count: int
) -> list[_Healthy]:
    gate = asyncio.Semaphore(100)
    url = server.url("/connection/websocket")

    async def one(index: int) -> _Healthy:
        async with gate:
            ws = await session.ws_connect(url, max_msg_size=0)
            await ws.send_bytes(_commands(index))
            while '"id":2' not in str((await ws.receive()).data):
                pass
            return _Healthy(ws)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


def _commands(index: int) -> bytes:
    token = client_tokens(SECRET, index, (), exp=int(time.time()) + 3600).connect
    connect = orjson.dumps({"id": 1, "connect": {"token": token}})
    return connect + b"\n" + orjson.dumps({"id": 2, "subscribe": {"channel": _CHANNEL}})


async def _phase(server: ServerProcess, counters: list[_Healthy], m: int, *, already: int) -> float:
    """Publish `m` and wait until every healthy subscriber has them; the seconds taken."""
    bodies = [orjson.dumps({"channel": _CHANNEL, "data": {"b": _PAYLOAD}})] * m
    start = time.monotonic()
    await publish_http(server.url("/api/publish", "http"), {"X-API-Key": API_KEY}, bodies)
    # Polled: a thousand reader tasks, one check every 10 ms is cheaper than an event each.
    while any(c.count < already + m for c in counters):  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def _phase_until_cut(
    server: ServerProcess, counters: list[_Healthy], m: int, *, healthy: int
) -> tuple[int, int]:
    """Rounds of `_phase` until only the healthy clients are left (at most `_ROUNDS`): the
    kernel takes up to its send buffer (4 MiB here) of every stalled peer's bytes before
    the server sees a blocked write. The overall deliveries/s, and the clients left."""
    spent, seen = 0.0, healthy
    for done in range(1, _ROUNDS + 1):
        spent += await _phase(server, counters, m, already=m * done)
        seen = await _until_clients(server, healthy, limit_s=1.0)
        if seen == healthy:
            break
    return round(len(counters) * m * done / spent), seen


async def _until_clients(server: ServerProcess, count: int, limit_s: float = 30.0) -> int:
    """Wait until the node counts `count` clients (or `limit_s`); the count last seen."""
    url = server.url("/api/info", "http")
    deadline = time.monotonic() + limit_s
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.post(url, data=b"{}", headers={"X-API-Key": API_KEY}) as resp:
                seen = int((await resp.json())["result"]["nodes"][0]["num_clients"])
            if seen == count or time.monotonic() > deadline:
                return seen
            await asyncio.sleep(0.1)


def _stalled_peer(port: int, index: int) -> socket.socket:
    """A WebSocket that sends connect and subscribe, then never reads (a 4 KiB receive
    buffer, set before connecting so the advertised window is small from the start)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /connection/websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    sock.sendall(_masked_text(_commands(100_000 + index)))
    return sock


def _masked_text(payload: bytes) -> bytes:
    """One masked text frame (clients must mask); payloads here stay under 64 KiB."""
    mask = os.urandom(4)
    size = len(payload)
    head = (
        struct.pack("!BB", 0x81, 0x80 | size)
        if size < 126
        else struct.pack("!BBH", 0x81, 0x80 | 126, size)
    )
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
