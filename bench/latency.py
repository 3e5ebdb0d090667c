"""`latency`: delivery latency under an open-loop publisher: Rotary (memory and Redis
engines) beside Centrifugo v6.9.1, a bare picows broadcast and python-socketio, in the same
run.

N subscribers hold one subscription to channel `lat` (Rotary and Centrifugo: connection
token checked; python-socketio: connection and room tokens checked, room `$lat`; picows: no
protocol, every connection gets everything), each answering the server's pings, one process
per load CPU (BENCH_WORKERS says otherwise). Receivers: for Rotary, Centrifugo and picows
the Go program of `bench.goreceivers` (bench/goload), for python-socketio `bench fanout`'s
picows clients on the load workers (`bench.worker`; Engine.IO is not worth porting).
BENCH_LATENCY_RECEIVERS=python puts every target on the Python clients. The receivers share
the load CPU and handle a publication's burst of N messages one after another, so their
cost per message adds to the latency of every message behind it: the Go receivers spend
about half what the Python ones do (docs/benchmarks.md). Without Go the run falls back
to the Python clients and says so in the `receivers` column. A publisher in the parent
process sends R publications per second on a fixed schedule (open loop: a slow reply never
delays the next send), each carrying ``"t_ns"``, its send time on CLOCK_MONOTONIC (one
clock for every process on Linux): Rotary and Centrifugo through the HTTP API,
python-socketio through its `POST /publish`, picows over its publish WebSocket. Each receiver
process files receive − send of every publication in a histogram of 1 %-wide buckets
(`bench.histogram`); the parent merges them. Figures per (target, N, R): p50 / p99 / p99.9
in ms, publications lost (never seen within 2 s of the last send), the server's share of
its CPU, the receivers' share of theirs (near 1, the receivers were what limited), the
share of the server's CPU that other processes took (a shared machine: read the percentiles
with it), and for Rotary the cycle collections that ended in the window with the longest
one's CPU time (`bench.gcwatch`: a pause stops the fan-out of the publication in flight).

Sizes: quick 200 × 20/s for 5 s per target; full 1,000 × 20/s and 10,000 × 5/s for 30 s
each. Targets: `rotary-memory`, `rotary-redis` (127.0.0.1:6379, own prefix),
`rotary-2-workers` (``rotary --workers 2`` on that Redis; unlike every other target its
workers may run on every CPU, the receivers' CPU included, and its CPU figures are the two
workers' summed, over every CPU; no foreign share), `centrifugo`
(`make centrifugo`; the same clients and HTTP API publisher drive it unchanged; one core,
pinned like Rotary), `picows`, `socketio`. BENCH_LATENCY_TARGETS (comma-separated),
BENCH_LATENCY_LOADS (``1000x20,10000x5``) and BENCH_LATENCY_SECONDS narrow or reshape a
run, e.g. to compare two targets at one load.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import orjson

from bench import progress
from bench.clients import OpenSpec
from bench.common import API_KEY, SECRET, CpuWatch, ServerProcess, ServerUnavailable, wait_idle
from bench.gcwatch import pauses
from bench.goreceivers import DIALECTS, GoReceivers, built_binary
from bench.histogram import Histogram
from bench.servers import ROTARY_STANDARD, start_peer, start_rotary_with, ws_path
from bench.worker import shared_pool
from bench.workers import children, start_workers

__all__ = [
    "TARGETS",
    "Case",
    "Receivers",
    "Window",
    "one_case",
    "percentiles",
    "publish_timed",
    "receivers_for",
    "run",
    "subscribe",
    "timed_window",
]

_CHANNEL = "lat"
_ROOM = "$lat"
#: Seconds to wait after the last publication for stragglers.
_DRAIN_S = 2.0
TARGETS = ("rotary-memory", "rotary-redis", "rotary-2-workers", "centrifugo", "picows", "socketio")
#: `rotary --workers 2` (Redis engine): its workers may run on every CPU of the machine.
_WORKERS_TARGET = "rotary-2-workers"


def percentiles(samples: list[float], points: tuple[float, ...]) -> list[float | None]:
    """The nearest-rank percentiles `points` (0–100) of `samples`, None when empty."""
    if not samples:
        return [None for _ in points]
    ordered = sorted(samples)
    top = len(ordered) - 1
    return [ordered[min(top, round(p / 100 * top))] for p in points]


@dataclass(frozen=True, slots=True)
class Case:
    """One (target, N, R) measurement: percentiles in ms (None when nothing arrived),
    deliveries seen of expected, and CPU shares over the publishing span."""

    p50_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    seen: int
    expected: int
    server_cpu: float | None = None
    load_cpu: float | None = None
    #: The share of the server's CPU that went to other processes (a shared machine).
    foreign_cpu: float | None = None
    #: Rotary's cycle collections in the window (`bench.gcwatch.pauses`); None for peers.
    gc: dict[str, Any] | None = None
    #: Why each publication the server refused or dropped failed.
    failed: list[str] = field(default_factory=list)
    note: str = ""
    #: What received: ``go``, ``python``, or ``python`` with why Go was not used.
    receivers: str = "python"
    #: The server's user and system CPU per delivery seen, in µs (what one delivery costs
    #: the server in its own code and in the kernel: its send, and on loopback the
    #: receiving side's TCP processing and wake-up too).
    server_us: tuple[float, float] | None = None

    @property
    def lost(self) -> int:
        return self.expected - self.seen

    def row(self) -> list[Any]:
        seen = self.note or f"{self.seen}/{self.expected}"
        if self.failed:
            seen += f" ({len(self.failed)} publications failed: {self.failed[0]})"
        cpu = [self.server_cpu, self.load_cpu, self.foreign_cpu]
        gc = f"{self.gc['count']}, {self.gc['max_cpu_ms']:g}" if self.gc else None
        per = f"{self.server_us[0]:.1f} + {self.server_us[1]:.1f}" if self.server_us else None
        return [self.p50_ms, self.p99_ms, self.p999_ms, seen, *cpu, per, gc, self.receivers]


def _plan(quick: bool) -> tuple[list[tuple[int, int]], float, tuple[str, ...]]:
    """(loads as (clients, pub/s), seconds per case, targets), from the size and the env."""
    loads = [(200, 20)] if quick else [(1000, 20), (10_000, 5)]
    if wanted := os.environ.get("BENCH_LATENCY_LOADS"):
        loads = [(int(n), int(r)) for n, r in (pair.split("x") for pair in wanted.split(","))]
    seconds = float(os.environ.get("BENCH_LATENCY_SECONDS", "5" if quick else "30"))
    targets = TARGETS
    if chosen := os.environ.get("BENCH_LATENCY_TARGETS"):
        targets = tuple(t.strip() for t in chosen.split(",") if t.strip())
    return loads, seconds, targets


def run(*, quick: bool) -> dict[str, Any]:
    """Measure every case; see the module docstring."""
    loads, seconds, targets = _plan(quick)
    progress.expect(len(loads) * len(targets))
    rows: list[list[Any]] = []
    figures: dict[str, Any] = {}
    for clients, rate in loads:
        for target in targets:
            progress.note(f"latency: {target} {clients} x {rate}/s")
            try:
                found = one_case(target, clients, rate, seconds)
            except (aiohttp.ClientError, OSError, RuntimeError, TimeoutError) as exc:
                found = Case(None, None, None, 0, 0, note=f"failed: {exc!r}"[:200])
            rows.append([target, clients, rate, *found.row()])
            key = f"latency_{target.replace('-', '_')}_{clients}x{rate}"
            figures[f"{key}_p50_ms"], figures[f"{key}_p99_ms"] = found.p50_ms, found.p99_ms
            figures[f"{key}_p999_ms"] = found.p999_ms
            figures[f"{key}_lost"] = found.lost if not found.note else None
            figures[f"{key}_failed_publications"] = len(found.failed)
            figures[f"{key}_receivers"] = found.receivers
            if found.server_us is not None:
                user, system = found.server_us
                figures[f"{key}_server_user_us"] = round(user, 2)
                figures[f"{key}_server_sys_us"] = round(system, 2)
            if found.gc is not None:
                figures[f"{key}_gc_pauses"] = found.gc["count"]
                figures[f"{key}_gc_max_cpu_ms"] = found.gc["max_cpu_ms"]
            progress.step()
        figures |= _ratios(figures, clients, rate)
    header = ["target", "clients", "pub/s", "p50 ms", "p99 ms", "p99.9 ms", "seen"]
    return {
        "figures": figures,
        "table_header": [
            *header,
            "server CPU",
            "load CPU",
            "foreign CPU",
            "server µs/delivery, user + sys",
            "GCs, max CPU ms",
            "receivers",
        ],
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
    """The dialect of a target's clients and publisher: Centrifugo speaks Rotary's."""
    if target.startswith("rotary") or target == "centrifugo":
        return "rotary"
    return "bare" if target == "picows" else target


def _start(target: str) -> ServerProcess:
    if not target.startswith("rotary"):
        return start_peer(target)
    config: dict[str, Any] = dict(ROTARY_STANDARD)
    if target in {"rotary-redis", _WORKERS_TARGET}:
        config |= {"engine": "redis", "redis_prefix": f"bench-lat-{uuid.uuid4().hex[:8]}"}
    if extra := os.environ.get("BENCH_LATENCY_ROTARY_CONFIG"):
        config |= orjson.loads(extra)  # an experiment's settings on top of the standard ones
    if target == _WORKERS_TARGET:
        return _start_two_workers(config)
    gc_log = Path(tempfile.mkstemp(prefix="bench-latency-gc-", suffix=".log")[1])
    return start_rotary_with(config, gc_log=gc_log)


def _start_two_workers(config: dict[str, Any]) -> ServerProcess:
    """``rotary --workers 2``, the supervisor and both workers free to run on every CPU
    (the receivers' too: a machine of two CPUs has no third for them); the workers' pids
    in ``extra["workers"]``."""
    server = start_workers(config, 2)
    workers = children(server.pid)
    for pid in (server.pid, *workers):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, _every_cpu())
    server.extra["workers"] = workers
    return server


def _every_cpu() -> set[int]:
    return set(range(os.cpu_count() or 1))


class Receivers(Protocol):
    """What holds the subscribers and times their publications: `LoadPool` (Python
    clients) or `GoReceivers`."""

    @property
    def size(self) -> int: ...

    def open(self, spec: OpenSpec, *, group: str = "") -> dict[str, Any]: ...

    def broadcast(self, msg: dict[str, Any]) -> list[dict[str, Any]]: ...


def receivers_for(target: str) -> tuple[Receivers, str]:
    """The receivers for `target` and their label (see the module docstring): Go unless
    BENCH_LATENCY_RECEIVERS=python or the target is python-socketio; the Python clients,
    labelled with the reason, when the Go program cannot be built."""
    wanted = os.environ.get("BENCH_LATENCY_RECEIVERS", "go")
    if wanted not in {"go", "python"}:
        raise ValueError(f"BENCH_LATENCY_RECEIVERS is go or python, not {wanted!r}")
    if wanted == "python" or _client_kind(target) not in DIALECTS:
        return shared_pool(), "python"
    if problem := _go_problem():
        progress.note(f"latency: Python receivers for {target}: {problem}")
        return shared_pool(), f"python (no Go receivers: {problem})"
    return GoReceivers(), "go"


@functools.cache
def _go_problem() -> str:
    """Why the Go receivers cannot be built ('' when they can); asked once per run."""
    try:
        built_binary()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return " ".join(str(exc).split())[:160]
    return ""


def one_case(
    target: str, clients: int, rate: int, seconds: float, *, pool: Receivers | None = None
) -> Case:
    """Start `target`, subscribe `clients` on `pool` (else `receivers_for(target)`), publish
    `rate` timed publications a second for `seconds`, and merge what the receivers measured."""
    if pool is None:
        pool, label = receivers_for(target)
    else:
        label = "go" if isinstance(pool, GoReceivers) else "python"
    try:
        server = _start(target)
    except ServerUnavailable as exc:
        pool.broadcast({"op": "close", "group": target})
        return Case(None, None, None, 0, 0, note=f"unavailable: {exc}"[:200], receivers=label)
    try:
        case = _measure(pool, server, target, clients=clients, timing=(rate, seconds))
        return replace(case, receivers=label)
    finally:
        pool.broadcast({"op": "close", "group": target})
        server.stop()


def _measure(
    pool: Receivers, server: ServerProcess, target: str, *, clients: int, timing: tuple[int, float]
) -> Case:
    kind = _client_kind(target)
    subscribe(pool, server, kind, clients=clients, group=target)
    workers: list[int] = server.extra.get("workers", [])
    for pid in workers or [server.pid]:
        wait_idle(pid)  # the subscribe storm is over before the clock starts
    watch = CpuWatch(*workers, cpus=_every_cpu()) if workers else CpuWatch(server.pid)
    window = timed_window(pool, server, kind, group=target, timing=(*timing, _DRAIN_S))
    cpu = watch.stop()
    p50, p99, p999 = window.ms((50, 99, 99.9))
    gc_log = server.extra.get("gc_log")
    gc = pauses(gc_log, window.start, window.end) if gc_log else None
    seen = window.histogram.count
    per = None
    if seen:
        per = (cpu["server_user_s"] / seen * 1e6, cpu["server_sys_s"] / seen * 1e6)
    return Case(
        p50,
        p99,
        p999,
        seen=seen,
        expected=window.expected,
        server_cpu=cpu["server_share"],
        load_cpu=window.load_cpu,
        # The workers share their CPUs with the receivers: "foreign" would be mostly theirs.
        foreign_cpu=None if workers else cpu["foreign_share"],
        gc=gc,
        failed=window.failed,
        server_us=per,
    )


@dataclass(frozen=True, slots=True)
class Window:
    """What the receivers measured over one `timed_window`."""

    histogram: Histogram
    sent: int
    expected: int
    #: The receiver processes' mean share of their CPU over the window (near 1: they limited).
    load_cpu: float
    #: When the first publication went out and when the last delivery came or the wait
    #: ended (monotonic seconds).
    start: float
    end: float
    #: Why each publication that failed did (its deliveries count as lost).
    failed: list[str]

    def ms(self, points: tuple[float, ...]) -> list[float | None]:
        """Percentiles `points` of the latency in ms (2 decimals), None when empty."""
        return [
            None if v is None else round(v * 1000, 2) for v in self.histogram.percentiles(points)
        ]


def timed_window(
    pool: Receivers,
    server: ServerProcess,
    kind: str,
    *,
    group: str,
    timing: tuple[int, float, float],
) -> Window:
    """Time every publication `group`'s subscribers receive while `rate` timed publications
    a second go to `server` for `seconds`, then for at most `drain` seconds more (until
    every subscriber holds every one). `timing`: (rate, seconds, drain)."""
    rate, seconds, drain = timing
    sent = int(rate * seconds)
    pool.broadcast({"op": "arm", "per_client": sent, "group": group, "latency": True})
    t0 = time.monotonic()
    failed = asyncio.run(publish_timed(server, kind, rate, seconds))
    replies = pool.broadcast({"op": "wait", "timeout": drain, "group": group})
    end = time.monotonic()
    wall = end - t0
    merged = Histogram()
    for reply in replies:
        merged.merge(reply["latency"] or {})
    load = sum(r["cpu_s"] for r in replies) / wall / pool.size
    expected = sum(r["target"] for r in replies)
    return Window(merged, sent, expected, round(load, 2), t0, end, failed)


def subscribe(
    pool: Receivers, server: ServerProcess, kind: str, *, clients: int, group: str
) -> None:
    """Open `clients` subscribers of `server` speaking `kind` (``rotary``, ``socketio`` or
    ``bare``) in the load group `group`; RuntimeError when any fails."""
    channels = {"rotary": (_CHANNEL,), "socketio": (_ROOM,)}.get(kind, ())
    path = ws_path("picows" if kind == "bare" else kind)
    spec = OpenSpec(kind, server.url(path), 0, clients, channels, SECRET, int(time.time()) + 3600)
    opened = pool.open(spec, group=group)
    if opened["failures"]:
        first = opened["failures"][0]
        raise RuntimeError(f"{len(opened['failures'])} of {clients} did not open: {first}")


async def publish_timed(server: ServerProcess, kind: str, rate: int, seconds: float) -> list[str]:
    """Publish `rate` timed publications a second for `seconds` to `server` the way `kind`
    (``rotary``, ``socketio`` or ``bare``) takes them; why each publication that failed did
    (the others go on: a failed publication is lost to every subscriber)."""
    async with aiohttp.ClientSession() as session:
        if kind == "bare":
            async with session.ws_connect(server.url("/publish")) as ws:
                # Text frames: the bare broadcast relays them as they are.
                return await _open_loop(lambda: ws.send_str(_stamped().decode()), rate, seconds)
        if kind == "socketio":
            url, headers = server.url("/publish", scheme="http"), {}
        else:
            url, headers = server.url("/api/publish", scheme="http"), {"X-API-Key": API_KEY}
        target = {"room": _ROOM} if kind == "socketio" else {"channel": _CHANNEL}

        async def post() -> None:
            body = orjson.dumps({**target, "data": {"t_ns": time.monotonic_ns()}})
            async with session.post(url, data=body, headers=headers) as response:
                reply = await response.read()
            if response.status != 200 or b'"error"' in reply:
                raise RuntimeError(f"refused: {response.status} {reply[:100]!r}")

        return await _open_loop(post, rate, seconds)


def _stamped() -> bytes:
    return orjson.dumps({"t_ns": time.monotonic_ns()})


async def _open_loop(send: Callable[[], Any], rate: int, seconds: float) -> list[str]:
    """Call `send` `rate` times per second for `seconds` on a fixed schedule, never waiting
    for one to finish before starting the next; what each failed call raised."""
    start = time.monotonic()
    total = int(rate * seconds)
    pending: list[asyncio.Task[Any]] = []
    for n in range(total):
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.append(asyncio.ensure_future(send()))
    outcomes = await asyncio.gather(*pending, return_exceptions=True)
    return [repr(o)[:120] for o in outcomes if isinstance(o, BaseException)]
