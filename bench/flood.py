"""`flood`: healthy subscribers' delivery latency while other clients flood commands.

One Rotary node (memory engine, connection tokens checked) per limit setting:

- ``limited``: `client_command_rate_limit` 20/s (burst 20) and `client_error_limit` 100 per
  minute, so a flooder gets error 111 past its burst and 3509 once it spent its budget;
- ``unlimited``: the same node without those limits (the default), for comparison.

On each, N healthy subscribers of channel `lat` (`bench latency`'s picows clients on the load
worker processes) receive R publications per second from an open-loop
publisher through the HTTP API, each carrying its send time; each receiver records receive −
send. That runs in windows: with one flooder and with ten, each right after a window with
none (its baseline).
A flooder is a client that publishes to channel `flood` (nobody listens there) in frames of
50 commands, sending the next frame as soon as the 50 replies are in. Once the server cuts
it with 3509, a flooder either stays away (what the SDKs do after 3509: a buggy client) or,
in the ``reconnecting`` windows of the limited node, connects again at once with the same
token (a hostile client). The flooders run in a process of their own
at lower priority (nice 10) on the load CPUs, so that they take from the healthy clients'
CPU only what it leaves idle; the server runs on the server CPU as in every scenario.

Figures per (setting, flooders): the healthy clients' p50 / p99 in ms, deliveries seen of
expected, the server's CPU share, and what the flooders did (commands sent, replies, errors
111, cuts with 3509, connects). Ratios: each window's p50 and p99 over the baseline window
just before it (the issue's target: at most 2 with the limit on).

Sizes: quick 100 healthy × 20/s for 2 s a window; full 1,000 × 20/s for 20 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import multiprocessing as mp
import os
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
import orjson

from bench import progress
from bench.common import SECRET, CpuWatch, ServerProcess, load_cpus
from bench.latency import subscribe, timed_window
from bench.results import ratio
from bench.servers import ROTARY_STANDARD, start_all, start_rotary_with, stop_all
from bench.tokens import client_tokens
from bench.worker import LoadPool, shared_pool

__all__ = ["LIMITS", "FloodStats", "flood_main", "measure_node", "run", "summarize"]

#: The limits of the ``limited`` node (v5 flat keys).
LIMITS: dict[str, Any] = {
    "client_command_rate_limit": 20,
    "client_command_rate_burst": 20,
    "client_error_limit": 100,
    "client_error_limit_interval": "60s",
}
_NODE = {**ROTARY_STANDARD, "allow_publish_for_client": True}
_SETTINGS = {"limited": {**_NODE, **LIMITS}, "unlimited": _NODE}
_BATCH = 50
#: Windows per node: (flooders, whether they connect again after being cut).
#: A baseline window (no flooder) comes before each flooded one, so that each ratio compares
#: windows seconds apart: the load of a shared machine drifts over a run.
_WINDOWS = {
    "limited": (
        *((0, False), (1, False), (0, False), (10, False)),
        *((0, False), (1, True), (0, False), (10, True)),
    ),
    "unlimited": ((0, False), (1, False), (0, False), (10, False)),
}
_DRAIN_S = 1.0
#: The load group of the healthy subscribers.
_GROUP = "flood-healthy"
#: Flooder user ids start here, away from the healthy clients' u0…uN.
_FLOODER_BASE = 1_000_000


@dataclass
class FloodStats:
    """What a set of flooders did over one window."""

    sent: int = 0
    replies: int = 0
    errors_111: int = 0
    other_errors: int = 0
    cut_3509: int = 0
    other_closes: int = 0
    connects: int = 0
    close_codes: dict[str, int] = field(default_factory=dict)


def run(*, quick: bool) -> dict[str, Any]:
    """Both settings, three windows each; see the module docstring."""
    clients, rate, seconds = (100, 20, 2.0) if quick else (1000, 20, 20.0)
    progress.expect(len(_SETTINGS))
    progress.note("flood: starting servers")
    servers = start_all(
        {name: functools.partial(start_rotary_with, cfg) for name, cfg in _SETTINGS.items()}
    )
    windows: dict[str, list[dict[str, Any]]] = {}
    notes: list[str] = []
    try:
        for name in _SETTINGS:
            server = servers[name]
            if not isinstance(server, ServerProcess):
                notes.append(f"{name} not measured: {server}")
                continue
            progress.note(f"flood: {name} node, {clients} healthy x {rate}/s")
            windows[name] = measure_node(
                server,
                clients=clients,
                rate=rate,
                seconds=seconds,
                plan=_WINDOWS[name],
                drain=0.5 if quick else _DRAIN_S,
            )
            progress.step()
    finally:
        stop_all(servers)
    return summarize(clients, rate, seconds, windows, notes)


def measure_node(
    server: ServerProcess,
    *,
    clients: int,
    rate: int,
    seconds: float,
    plan: tuple[tuple[int, bool], ...],
    drain: float = _DRAIN_S,
) -> list[dict[str, Any]]:
    """One window per (flooders, reconnecting) of `plan` on `server`; each window's figures.

    A window publishes for `seconds`, then waits `drain` seconds for the last deliveries.
    """
    timing = (rate, seconds, drain)
    pool = shared_pool()
    subscribe(pool, server, "rotary", clients=clients, group=_GROUP)
    try:
        out = []
        for flooders, again in plan:
            found = _window(pool, server, (flooders, again), timing=timing)
            out.append({"flooders": flooders, "reconnecting": again, **found})
        return out
    finally:
        pool.broadcast({"op": "close", "group": _GROUP})


def _window(
    pool: LoadPool,
    server: ServerProcess,
    flooding: tuple[int, bool],
    *,
    timing: tuple[int, float, float],
) -> dict[str, Any]:
    """Publish for `seconds` at `rate` while `flooding` (flooders, reconnecting), wait
    at most `drain`; the healthy clients' latencies over that span. `timing`: (rate,
    seconds, drain).
    """
    flooders, again = flooding
    flood = (
        _FloodProcess.start(server.url("/connection/websocket"), flooders, again)
        if flooders
        else None
    )
    try:
        watch = CpuWatch(server.pid)
        window = timed_window(pool, server, "rotary", group=_GROUP, timing=timing)
        cpu = watch.stop()
    finally:
        stats = flood.stop() if flood else FloodStats()
    p50, p99 = window.ms((50, 99))
    return {
        "expected": window.expected,
        "seen": window.histogram.count,
        "p50_ms": p50,
        "p99_ms": p99,
        "server_cpu_share": cpu["server_share"],
        "foreign_cpu_share": cpu["foreign_share"],
        "flood": stats.__dict__,
    }


class _FloodProcess:
    """A spawned process holding the flooders; `stop` ends them and returns their stats."""

    def __init__(self, conn: Connection, process: Any) -> None:
        self._conn, self._process = conn, process

    @classmethod
    def start(cls, url: str, count: int, again: bool) -> _FloodProcess:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        process = ctx.Process(target=flood_main, args=(child, url, count, again), daemon=True)
        process.start()
        ready = _receive(parent, 60.0)
        if ready != "ready":  # every flooder has connected once, else why not
            process.kill()
            raise RuntimeError(f"flooders did not start: {ready!r}")
        return cls(parent, process)

    def stop(self) -> FloodStats:
        self._conn.send("stop")
        reply = _receive(self._conn, 30.0)
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
        if not isinstance(reply, dict) or "error" in reply:
            raise RuntimeError(f"flooders failed: {reply!r}")
        return FloodStats(**reply)


def _receive(conn: Connection, timeout: float) -> object:
    """The next message on `conn`, or a string saying why there is none."""
    if not conn.poll(timeout):
        return f"no answer within {timeout:.0f} s"
    try:
        message: object = conn.recv()
    except EOFError:
        return "the flooders' process exited"
    return message


def flood_main(conn: Connection, url: str, count: int, again: bool) -> None:
    """The flooders' process: lower priority, on the load CPUs, until the parent says stop."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, load_cpus())
    with contextlib.suppress(OSError):
        os.nice(10)
    try:
        conn.send(asyncio.run(_flood(conn, url, count, again)).__dict__)
    except Exception as exc:  # reported to the parent, which raises it
        conn.send({"error": repr(exc)})


async def _flood(conn: Connection, url: str, count: int, again: bool) -> FloodStats:
    stats = FloodStats()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_stop() -> None:
        loop.remove_reader(conn.fileno())  # "stop" stays unread: do not fire again
        stop.set()

    loop.add_reader(conn.fileno(), on_stop)
    connected = [asyncio.Event() for _ in range(count)]
    async with aiohttp.ClientSession() as session:
        tasks = [
            asyncio.create_task(
                _flooder(session, url, _FLOODER_BASE + k, (stop, connected[k]), stats, again)
            )
            for k in range(count)
        ]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in connected)), 30)
        conn.send("ready")
        await stop.wait()
        await asyncio.wait(tasks, timeout=10)
        for task in tasks:
            task.cancel()
    return stats


def _frame() -> bytes:
    """One frame of `_BATCH` publish commands (ids 2…), built once."""
    commands = (
        orjson.dumps({"id": 2 + k, "publish": {"channel": "flood", "data": {"n": k}}})
        for k in range(_BATCH)
    )
    return b"\n".join(commands)


_FRAME = _frame()


async def _flooder(
    session: aiohttp.ClientSession,
    url: str,
    index: int,
    events: tuple[asyncio.Event, asyncio.Event],
    stats: FloodStats,
    again: bool,
) -> None:
    """Connect, flood until cut; connect again when `again`; until `stop` is set.

    `events` is (stop, connected): `connected` is set after the first connect reply.
    """
    stop, connected = events
    token = client_tokens(SECRET, index, (), exp=int(time.time()) + 3600).connect
    connect = orjson.dumps({"id": 1, "connect": {"token": token}})
    while not stop.is_set():
        try:
            async with session.ws_connect(url, max_msg_size=0) as ws:
                await ws.send_bytes(connect)
                await ws.receive(timeout=10)
                stats.connects += 1
                connected.set()
                while not stop.is_set() and await _one_batch(ws, stats):
                    pass
                _count_close(ws.close_code, stats)
        except (aiohttp.ClientError, TimeoutError) as exc:
            # A refused or timed-out connection: note it, and come back (a flooder insists).
            name = type(exc).__name__
            stats.close_codes[name] = stats.close_codes.get(name, 0) + 1
            await asyncio.sleep(0.1)
        if not again:
            await stop.wait()


async def _one_batch(ws: aiohttp.ClientWebSocketResponse, stats: FloodStats) -> bool:
    """Send one frame of commands and read their replies; False once the server cut us."""
    await ws.send_bytes(_FRAME)
    stats.sent += _BATCH
    pending = _BATCH
    while pending > 0:
        msg = await ws.receive(timeout=10)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            return False
        for line in msg.data.split("\n"):
            if line == "{}":
                await ws.send_str("{}")  # the server's ping
            elif '"id"' in line:
                pending -= 1
                _count_reply(line, stats)
    return True


def _count_reply(line: str, stats: FloodStats) -> None:
    stats.replies += 1
    if '"error"' not in line:
        return
    if '"code":111' in line:
        stats.errors_111 += 1
    else:
        stats.other_errors += 1


def _count_close(code: int | None, stats: FloodStats) -> None:
    if code == 3509:
        stats.cut_3509 += 1
    elif code is not None:
        stats.other_closes += 1
    stats.close_codes[str(code)] = stats.close_codes.get(str(code), 0) + 1


def summarize(
    clients: int,
    rate: int,
    seconds: float,
    windows: dict[str, list[dict[str, Any]]],
    notes: list[str],
) -> dict[str, Any]:
    """The harness result of `windows` (``{node: measure_node's windows}``): p50 / p99 per
    window (baselines: the first one's), and as ratios each flooded window's over the
    baseline window (no flooder) last before it on the same node."""
    figures: dict[str, Any] = {
        "flood_healthy_clients": clients,
        "flood_rate": rate,
        "flood_seconds": seconds,
    }
    ratios: dict[str, float] = {}
    table = []
    for name, found in windows.items():
        base = found[0]
        for w in found:
            again = "_reconnecting" if w["reconnecting"] else ""
            key = f"flood_{name}_{w['flooders']}{again}"
            table.append(_row(name, w))
            if not w["flooders"]:
                base = w
                figures.setdefault(f"{key}_p50_ms", w["p50_ms"])
                figures.setdefault(f"{key}_p99_ms", w["p99_ms"])
                continue
            figures |= {f"{key}_p50_ms": w["p50_ms"], f"{key}_p99_ms": w["p99_ms"]}
            for point in ("p50", "p99"):
                value = ratio(w[f"{point}_ms"], base[f"{point}_ms"])
                if value is not None:
                    ratios[f"{key}_over_0_{point}"] = value
    return {
        "figures": figures,
        "ratios": ratios,
        "table_header": [
            "node",
            "flooders",
            "p50 ms",
            "p99 ms",
            "seen",
            "server CPU",
            "foreign CPU",
            "flood sent",
            "111",
            "3509",
            "connects",
        ],
        "table": table,
        "json": {"windows": windows, "limits": LIMITS, "notes": notes},
    }


def _row(name: str, w: dict[str, Any]) -> list[Any]:
    f = w["flood"]
    return [
        f"{name}, reconnecting" if w["reconnecting"] else name,
        w["flooders"],
        w["p50_ms"],
        w["p99_ms"],
        f"{w['seen']}/{w['expected']}",
        w["server_cpu_share"],
        w["foreign_cpu_share"],
        f["sent"],
        f["errors_111"],
        f["cut_3509"],
        f["connects"],
    ]
