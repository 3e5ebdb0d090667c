"""`slowconsumers`: what stalled subscribers cost the healthy ones in the same channel.

H healthy subscribers (aiohttp WebSockets in this process, each counting publications) and
channel `crowd`. A round publishes M publications of 4 KB through the HTTP API (a few in
flight) and times until every healthy subscriber has all of them. The healthy subscribers
are first alone for two rounds. Then S stalled subscribers join: raw sockets with a 4 KiB
receive buffer that send their connect and subscribe and never read again; rounds follow
until the server has cut every stalled one (3008 / 3009). Once they are cut, two more
rounds run with the healthy subscribers alone again. The rate "alone" is over the four
rounds before and after, the rate "with stalled" over the rounds until the cut; only the
rounds are timed, not the pauses between them while the clients are counted.

Figures: both rates and their ratio (the issue asks ≥ 0.95); the same per second of server
CPU (`slow_rate_ratio_cpu`, beside `slow_rate_ratio_cpu_if_alike`, what it would be if a
stalled peer cost the server as much as a healthy one until it is cut); the foreign share
of the server CPU in both spans (other processes on a shared machine); how many stalled
clients were cut, after how many rounds, and the largest send queue the kernel held for
one connection meanwhile (/proc/net/tcp); the server's RSS before the stalled ones joined,
at the end of the stalled rounds, and once they were cut and the server settled.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench import progress
from bench.common import API_KEY, SECRET, CpuWatch, ServerProcess, rss_kb
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
    "slow_rate_ratio_cpu",
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
    "ratio per CPU",
    "cut",
    "RSS before KiB",
    "RSS end KiB",
    "RSS settled KiB",
]


#: Rounds of M publications with the healthy subscribers alone, before the stalled ones
#: join and again after they were cut: bracketing the stalled phase in time, so that a
#: neighbour's load that comes or goes during the run weighs on both rates alike.
_ALONE_ROUNDS = 2


@dataclass
class _Span:
    """Rounds of publishing: each round's seconds, the server's CPU seconds over them (not
    the pauses between), and the foreign share of the server CPU weighted by time."""

    seconds: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    foreign_s: float = 0.0

    async def round(
        self, server: ServerProcess, counters: list[_Healthy], m: int, *, already: int
    ) -> None:
        watch = CpuWatch(server.pid)
        self.seconds.append(round(await _phase(server, counters, m, already=already), 3))
        cpu = watch.stop()
        self.cpu_s += cpu["server_cpu_s"]
        self.foreign_s += cpu["foreign_share"] * self.seconds[-1]

    def rate(self, clients: int, m: int) -> int:
        return round(clients * m * len(self.seconds) / sum(self.seconds))

    def per_cpu(self, clients: int, m: int) -> float | None:
        return clients * m * len(self.seconds) / self.cpu_s if self.cpu_s else None

    def foreign_share(self) -> float:
        return round(self.foreign_s / sum(self.seconds), 3)


async def _measure(server: ServerProcess, healthy: int, stalled: int, m: int) -> dict[str, Any]:
    alone, published = _Span(), 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        counters = await _subscribe_all(session, server, healthy)
        progress.note("slowconsumers: healthy alone")
        for _ in range(_ALONE_ROUNDS):
            await alone.round(server, counters, m, already=published)
            published += m
        progress.step()
        rss_before = rss_kb(server.pid)
        peers = [await asyncio.to_thread(_stalled_peer, server.port, i) for i in range(stalled)]
        await _until_clients(server, healthy + stalled)
        progress.note("slowconsumers: with stalled subscribers")
        rounds = await _phase_until_cut(server, counters, m, healthy=healthy, already=published)
        published += m * len(rounds.span.seconds)
        rss_peak = rss_kb(server.pid)
        await asyncio.sleep(2.0)  # let freed buffers go back
        rss_after = rss_kb(server.pid)
        progress.note("slowconsumers: healthy alone again")
        for _ in range(_ALONE_ROUNDS):
            await alone.round(server, counters, m, already=published)
            published += m
        progress.step()
        for counter in counters:
            counter.cancel()
    for peer in peers:
        peer.close()
    return {
        **_rates(alone, rounds.span, healthy, m),
        "slow_cut": stalled - max(0, rounds.left - healthy),
        "slow_rss_before_kb": rss_before,
        "slow_rss_peak_kb": rss_peak,
        "slow_rss_after_kb": rss_after,
        "slow_rounds_to_cut": len(rounds.span.seconds),
        "slow_round_seconds": rounds.span.seconds,
        "slow_alone_round_seconds": alone.seconds,
        "slow_kernel_queued_max_kb": rounds.queued_max >> 10,
        # The per-CPU ratio if a stalled peer cost the server just what a healthy one does
        # until it is cut: every publication written to healthy + stalled sockets.
        "slow_rate_ratio_cpu_if_alike": round(healthy / (healthy + stalled), 3),
    }


def _rates(alone: _Span, together: _Span, healthy: int, m: int) -> dict[str, Any]:
    """Healthy deliveries per second and per server CPU-second in both spans, their ratios
    (the per-CPU one is the cost of the stalled peers to the server itself, whatever the
    rest of the machine did), and each span's server CPU and foreign share."""
    without, with_ = alone.rate(healthy, m), together.rate(healthy, m)
    per_alone, per_with = alone.per_cpu(healthy, m), together.per_cpu(healthy, m)
    return {
        "slow_rate_without": without,
        "slow_rate_with": with_,
        "slow_rate_ratio": round(with_ / without, 3) if without and with_ else None,
        "slow_rate_per_cpu_alone": per_alone and round(per_alone),
        "slow_rate_per_cpu_with": per_with and round(per_with),
        "slow_rate_ratio_cpu": round(per_with / per_alone, 3) if per_alone and per_with else None,
        "slow_server_cpu_s_alone": round(alone.cpu_s, 3),
        "slow_server_cpu_s_with": round(together.cpu_s, 3),
        "slow_foreign_share_alone": alone.foreign_share(),
        "slow_foreign_share_with": together.foreign_share(),
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


@dataclass
class _Rounds:
    """Phase 2: its rounds, the clients left, and the most bytes the kernel held unsent for
    any one connection of the server (sampled after each round)."""

    span: _Span
    left: int
    queued_max: int


async def _phase_until_cut(
    server: ServerProcess, counters: list[_Healthy], m: int, *, healthy: int, already: int
) -> _Rounds:
    """Rounds of `_phase` until only the healthy clients are left (at most `_ROUNDS`): the
    kernel takes up to its send buffer (4 MiB here) of every stalled peer's bytes before
    the server sees a blocked write."""
    span, seen, queued = _Span(), healthy, 0
    for done in range(_ROUNDS):
        await span.round(server, counters, m, already=already + m * done)
        queued = max(queued, _kernel_send_queue_max(server.port))
        seen = await _until_clients(server, healthy, limit_s=1.0)
        if seen == healthy:
            break
    return _Rounds(span=span, left=seen, queued_max=queued)


def _kernel_send_queue_max(port: int) -> int:
    """The largest send queue (bytes written, not yet taken by the peer) of the server's
    connections on `port`, from /proc/net/tcp (0 where it cannot be read)."""
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return 0
    local = f":{port:04X}"
    rows = (line.split() for line in lines)
    queues = [int(row[4].split(":")[0], 16) for row in rows if row[1].endswith(local)]
    return max(queues, default=0)


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
