"""`slowloris`: many sockets that never finish an HTTP request, beside healthy subscribers.

The attack (`attack`, run in a process of its own with
``python -m bench.slowloris PORT COUNT GIVE_UP_S``, so that its sockets count against its
own open-file limit, not the server's or the harness's) opens COUNT TCP connections to the
server, at most 100 connecting at a time (the listen backlog is 128), in three kinds taken
in turn:

- ``silent``: sends nothing;
- ``half-upgrade``: sends the first lines of a WebSocket upgrade and stops;
- ``trickle``: sends an upgrade's request line, then one header byte every 0.5 s for ever
  (slowloris).

None of them ever completes a request, so the server must drop each once
``http_idle_timeout`` has passed since it accepted it. Every socket records how long it
lived from the moment its connect returned to the moment the server closed it (or None if
still open after GIVE_UP_S). The process prints ``open <peak>`` once every socket has
connected and, at the end, one JSON object (`AttackResult`).

The scenario (`run`): H healthy subscribers (aiohttp WebSockets in the harness) on channel
`loris` receive publications sent by an open-loop publisher at R per second, each carrying
its send time; p50 / p99 delivery latency first with no attack, then for the same number
of seconds while every attacking socket is held. Figures: both latencies and their ratios
(attack / alone), how many attackers were dropped, the longest and shortest lifetime
against the idle timeout, the peak of sockets open at once, and the server's open
descriptors at that peak, the server's share of its CPU in each window, and the attack
process's CPU seconds in the attacked window (it shares the load CPU with the healthy
clients, so what it takes may show as latency of theirs). Sizes: quick 500 sockets, 100
healthy, idle timeout 3 s; full 10,000 sockets, 200 healthy, idle timeout 30 s (opening
10,000 sockets can take longer than the default 10 s on a busy machine, and they are to be
held all at once). The latency windows last half the idle timeout, at most 5 s.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
import orjson

from bench import progress
from bench.common import API_KEY, REPO, SECRET, ServerProcess, cpu_seconds, raise_fd_limit
from bench.latency import percentiles
from bench.servers import ROTARY_STANDARD, start_rotary_with
from bench.tokens import client_tokens

__all__ = ["KINDS", "AttackResult", "attack", "attack_result", "run", "start_attack"]

KINDS = ("silent", "half-upgrade", "trickle")
_CONNECTING = 100
_TRICKLE_EVERY_S = 0.5
_CHANNEL = "loris"
_RATE = 20


@dataclass
class AttackResult:
    """What the attack saw. `lifetimes[i]` belongs to socket i (kind ``KINDS[i % 3]``):
    seconds from connected to closed by the server, None if it was still open at the end,
    or -1.0 if it never connected. `answered` counts sockets that received any byte."""

    lifetimes: list[float | None]
    peak_open: int
    answered: int


class _Peer(asyncio.Protocol):
    """One attacking socket: notes when the server closes it, ignores whatever it sends."""

    def __init__(self, closed: asyncio.Future[float]) -> None:
        self.closed = closed
        self.transport: asyncio.Transport | None = None
        self.opened = 0.0
        self.answered = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport, self.opened = transport, time.monotonic()

    def data_received(self, data: bytes) -> None:
        self.answered = True

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(time.monotonic())


def _opening(kind: str, port: int) -> bytes:
    if kind == "silent":
        return b""
    head = f"GET /connection/websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    if kind == "trickle":
        return (head + "X-Slow: ").encode()
    return (head + "Upgrade: websocket\r\nConnection: Upgrade\r\n").encode()


async def attack(port: int, count: int, *, give_up_s: float) -> AttackResult:
    """Open `count` sockets and wait (at most `give_up_s` after the last one connected)
    until the server has closed them all. Prints ``open <peak>`` once all have connected."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(_CONNECTING)
    peers: list[_Peer | None] = [None] * count
    open_now = peak = settled = 0
    connected = asyncio.Event()

    async def one(index: int) -> None:
        nonlocal open_now, peak, settled
        peer = _Peer(loop.create_future())
        async with gate:
            try:
                await loop.create_connection(lambda: peer, "127.0.0.1", port)
            except OSError:
                return
            finally:
                settled += 1
                if settled == count:
                    connected.set()
        peers[index] = peer
        assert peer.transport is not None
        peer.transport.write(_opening(KINDS[index % len(KINDS)], port))
        open_now += 1
        peak = max(peak, open_now)
        await peer.closed
        open_now -= 1

    tasks = [asyncio.create_task(one(i)) for i in range(count)]
    trickler = asyncio.create_task(_trickle(peers))
    await connected.wait()
    print(f"open {peak}", flush=True)
    await asyncio.wait(tasks, timeout=give_up_s)
    trickler.cancel()
    return _result(peers, peak)


async def _trickle(peers: list[_Peer | None]) -> None:
    """One header byte to every open ``trickle`` socket every 0.5 s."""
    while True:
        await asyncio.sleep(_TRICKLE_EVERY_S)
        for index in range(2, len(peers), len(KINDS)):
            peer = peers[index]
            if peer is not None and peer.transport is not None and not peer.closed.done():
                peer.transport.write(b"a")


def _result(peers: list[_Peer | None], peak: int) -> AttackResult:
    lifetimes: list[float | None] = []
    for peer in peers:
        if peer is None:
            lifetimes.append(-1.0)
        elif peer.closed.done():
            lifetimes.append(round(peer.closed.result() - peer.opened, 3))
        else:
            lifetimes.append(None)
            assert peer.transport is not None
            peer.transport.abort()
    answered = sum(1 for p in peers if p is not None and p.answered)
    return AttackResult(lifetimes=lifetimes, peak_open=peak, answered=answered)


async def start_attack(port: int, count: int, *, give_up_s: float) -> asyncio.subprocess.Process:
    """`attack` in a child process (stdout piped); returns once it printed ``open``."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.slowloris",
        str(port),
        str(count),
        str(give_up_s),
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    assert child.stdout is not None
    line = await child.stdout.readline()
    if not line.startswith(b"open "):
        await child.wait()
        raise RuntimeError(f"the attack process ended early ({child.returncode})")
    return child


async def attack_result(child: asyncio.subprocess.Process) -> AttackResult:
    """The `AttackResult` the child prints at its end."""
    out, _ = await child.communicate()
    return AttackResult(**json.loads(out.decode().strip().splitlines()[-1]))


def run(*, quick: bool) -> dict[str, Any]:
    """Measure once; see the module docstring."""
    # 200 healthy at the full size: 1,000 × 20/s would saturate the harness's one CPU,
    # which then measures itself rather than the server.
    # The full size's idle timeout is 30 s, not the default 10 s: opening 10,000 sockets
    # takes seconds on a busy machine, and all of them must be held at once.
    sockets, healthy, idle = (500, 100, 3.0) if quick else (10_000, 200, 30.0)
    progress.expect(2)
    server = start_rotary_with({**ROTARY_STANDARD, "http_idle_timeout": f"{idle}s"})
    try:
        figures = asyncio.run(_measure(server, sockets, healthy, idle))
    finally:
        server.stop()
    table = [[sockets, healthy, idle, *(figures[k] for k in _COLUMNS)]]
    return {"figures": figures, "table_header": _HEADER, "table": table}


_COLUMNS = (
    "loris_p50_alone_ms",
    "loris_p99_alone_ms",
    "loris_p50_attack_ms",
    "loris_p99_attack_ms",
    "loris_server_cpu_share_alone",
    "loris_server_cpu_share_attack",
    "loris_dropped",
    "loris_peak_open",
    "loris_server_fds_peak",
    "loris_lifetime_min_s",
    "loris_lifetime_max_s",
)
_HEADER = [
    "sockets",
    "healthy",
    "idle s",
    "p50 ms alone",
    "p99 ms alone",
    "p50 ms attack",
    "p99 ms attack",
    "server CPU alone",
    "server CPU attack",
    "dropped",
    "peak open",
    "server fds",
    "min life s",
    "max life s",
]


async def _measure(
    server: ServerProcess, sockets: int, healthy: int, idle: float
) -> dict[str, Any]:
    window = min(idle / 2, 5.0)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        latencies: list[float] = []
        readers = await _subscribe_all(session, server, healthy, latencies)
        progress.note("slowloris: healthy alone")
        alone, cpu_alone = await _window(session, server, latencies, window)
        progress.step()
        progress.note(f"slowloris: {sockets} attacking sockets")
        child = await start_attack(server.port, sockets, give_up_s=idle * 3)
        fds = len(os.listdir(f"/proc/{server.pid}/fd"))
        attacker_cpu = cpu_seconds(child.pid)
        attacked, cpu_attacked = await _window(session, server, latencies, window)
        attacker_cpu = cpu_seconds(child.pid) - attacker_cpu
        result = await attack_result(child)
        progress.step()
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    shares = {
        "loris_server_cpu_share_alone": cpu_alone,
        "loris_server_cpu_share_attack": cpu_attacked,
        "loris_attacker_cpu_s_in_window": round(attacker_cpu, 2),
    }
    return _figures(alone, attacked, result, fds) | shares


async def _window(
    session: aiohttp.ClientSession, server: ServerProcess, latencies: list[float], seconds: float
) -> tuple[list[float], float]:
    """`_latencies`, and the server's share of a CPU meanwhile."""
    cpu, wall = cpu_seconds(server.pid), time.monotonic()
    found = await _latencies(session, server, latencies, seconds)
    share = (cpu_seconds(server.pid) - cpu) / (time.monotonic() - wall)
    return found, round(share, 3)


def _figures(
    alone: list[float], attacked: list[float], result: AttackResult, fds: int
) -> dict[str, Any]:
    lived = [t for t in result.lifetimes if t is not None and t >= 0]
    out: dict[str, Any] = {}
    for name, samples in (("alone", alone), ("attack", attacked)):
        p50, p99 = percentiles(samples, (50, 99))
        out[f"loris_p50_{name}_ms"] = None if p50 is None else round(p50 * 1000, 2)
        out[f"loris_p99_{name}_ms"] = None if p99 is None else round(p99 * 1000, 2)
    for point in ("p50", "p99"):
        a, b = out[f"loris_{point}_alone_ms"], out[f"loris_{point}_attack_ms"]
        out[f"loris_{point}_attack_over_alone"] = round(b / a, 2) if a and b else None
    return out | {
        "loris_dropped": len(lived),
        "loris_not_dropped": sum(1 for t in result.lifetimes if t is None),
        "loris_peak_open": result.peak_open,
        "loris_server_fds_peak": fds,
        "loris_lifetime_min_s": min(lived, default=None),
        "loris_lifetime_max_s": max(lived, default=None),
    }


async def _subscribe_all(
    session: aiohttp.ClientSession, server: ServerProcess, count: int, latencies: list[float]
) -> list[asyncio.Task[None]]:
    gate = asyncio.Semaphore(100)
    exp = int(time.time()) + 3600

    async def one(index: int) -> asyncio.Task[None]:
        async with gate:
            ws = await session.ws_connect(server.url("/connection/websocket"))
            token = client_tokens(SECRET, index, (), exp=exp).connect
            await ws.send_str(
                orjson.dumps({"id": 1, "connect": {"token": token}}).decode()
                + "\n"
                + orjson.dumps({"id": 2, "subscribe": {"channel": _CHANNEL}}).decode()
            )
            while '"id":2' not in str((await ws.receive()).data):
                pass
            return asyncio.create_task(_read(ws, latencies))

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def _read(ws: aiohttp.ClientWebSocketResponse, latencies: list[float]) -> None:
    async for msg in ws:
        now = time.time_ns()
        for line in msg.data.split("\n") if isinstance(msg.data, str) else ():
            if '"pub"' in line:
                latencies.append((now - orjson.loads(line)["push"]["pub"]["data"]["t"]) / 1e9)
            elif line == "{}":
                await ws.send_str("{}")
    await ws.close()


async def _latencies(
    session: aiohttp.ClientSession, server: ServerProcess, latencies: list[float], seconds: float
) -> list[float]:
    """Publish at `_RATE` per second for `seconds`, wait a moment; the latencies seen."""
    first = len(latencies)
    url, headers = server.url("/api/publish", "http"), {"X-API-Key": API_KEY}
    sends = []
    start = time.monotonic()
    for n in range(int(_RATE * seconds)):
        await asyncio.sleep(max(0.0, start + n / _RATE - time.monotonic()))
        body = orjson.dumps({"channel": _CHANNEL, "data": {"t": time.time_ns()}})
        sends.append(asyncio.create_task(_post(session, url, headers, body)))
    await asyncio.gather(*sends)
    await asyncio.sleep(1.0)
    return latencies[first:]


async def _post(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], body: bytes
) -> None:
    async with session.post(url, data=body, headers=headers) as response:
        await response.read()


def _main(argv: list[str]) -> None:
    port, count, give_up_s = int(argv[0]), int(argv[1]), float(argv[2])
    raise_fd_limit(count + 100)
    result = asyncio.run(attack(port, count, give_up_s=give_up_s))
    print(json.dumps(asdict(result)), flush=True)


if __name__ == "__main__":
    _main(sys.argv[1:])
