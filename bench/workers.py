"""`workers`: one Rotary process against `rotary --workers 2`, storm and fan-out, same run.

Setups, each started fresh every round and measured one at a time:

- ``memory_1``: one process, in-memory engine (the reference: no Redis on the path);
- ``redis_1``: one process on the Redis engine;
- ``redis_2``: ``rotary --workers 2`` on the same Redis: a supervisor and two worker
  processes sharing the port with SO_REUSEPORT, so the kernel spreads the clients over them.

Redis is a private ``redis-server`` on a free port without persistence (the shared 6379 is
never touched). Per setup and round:

1. **storm**: N clients connect and subscribe to two private channels, tokens checked, on
   the fresh server (the `storm` scenario's "tokens checked" clients); the time from the
   first attempt to the last subscribe reply, and the Rotary processes' CPU seconds;
2. **fan-out**: N subscribers of channel `news` receive M publications of ~100 bytes sent
   through POST /api/publish (fanout's publisher, 8 in flight); deliveries per second from
   the first publication until every client holds every message.

CPU layout: every server process (the workers, the supervisor and redis-server) runs on the
server CPUs and the load generator on the others, as in every scenario. On a machine with
two CPUs that puts both workers on one core: the figure then shows what splitting one node
in two over Redis costs, and that the kernel spreads the clients, not a speed-up.
BENCH_WORKERS_SERVER_CPUS (e.g. ``0,1,2``) chooses the server CPUs on a larger machine; keep
them apart from the load CPUs (the JSON notes an overlap).

Sizes: quick 500 clients, 40 publications, one round; full 5,000 clients, 50 publications,
three rounds in rotating order, medians reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import progress
from bench.clients import OpenSpec
from bench.cluster import _start_redis
from bench.common import (
    API_KEY,
    ServerProcess,
    ServerUnavailable,
    _cpu_busy_seconds,
    cpu_seconds,
    free_port,
    load_cpus,
    rss_kb,
    server_cpus,
    start_server,
    wait_idle,
)
from bench.fanout import _open, _publish
from bench.results import ratio, rounded
from bench.servers import ROTARY_STANDARD, start_all, start_rotary_with, stop_all, ws_path
from bench.storm import storm_specs
from bench.worker import LoadPool, shared_pool

__all__ = ["SETUPS", "Setup", "children", "measure_round", "run", "start_workers", "summarize"]

_LABELS = {
    "memory_1": "one process, memory engine",
    "redis_1": "one process, Redis engine",
    "redis_2": "rotary --workers 2, Redis engine",
}
#: Seconds to wait for every worker to show up in `info` (node info goes out every 3 s).
_CLUSTER_TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class Setup:
    """One server layout: engine ``memory`` or ``redis`` and the number of node processes."""

    name: str
    engine: str
    workers: int


SETUPS = (
    Setup("memory_1", "memory", 1),
    Setup("redis_1", "redis", 1),
    Setup("redis_2", "redis", 2),
)


@dataclass
class _Node:
    """A running setup: the process clients reach (`front`) and the processes doing the work."""

    front: ServerProcess
    pids: list[int] = field(default_factory=list)

    def url(self, path: str, scheme: str = "ws") -> str:
        return self.front.url(path, scheme)

    def cpu(self) -> float:
        """CPU seconds used so far by every working process (workers, not the supervisor)."""
        return sum(_cpu_or_zero(p) for p in self.pids)

    def wait_idle(self) -> None:
        for pid in self.pids:
            wait_idle(pid)


def run(*, quick: bool) -> dict[str, Any]:
    """Every setup, every round; see the module docstring."""
    n, m = (500, 40) if quick else (5000, 50)
    rounds = 1 if quick else 3
    progress.expect(len(SETUPS) * rounds)
    notes = _layout_notes()
    progress.note("workers: starting redis-server")
    redis = _start_redis()
    runs: dict[str, list[dict[str, Any]]] = {s.name: [] for s in SETUPS}
    try:
        if isinstance(redis, ServerUnavailable):
            notes.append(f"Redis setups not measured: {redis}")
        else:
            _pin([redis.pid], _server_side())
        for k in range(rounds):
            order = SETUPS[k % len(SETUPS) :] + SETUPS[: k % len(SETUPS)]
            found = measure_round(shared_pool(), order, redis=redis, n=n, m=m, notes=notes)
            for name, outcome in found.items():
                runs[name].append(outcome)
    finally:
        if isinstance(redis, ServerProcess):
            redis.stop()
    return summarize(n, m, runs, notes)


def measure_round(
    pool: LoadPool,
    setups: tuple[Setup, ...],
    *,
    redis: ServerProcess | ServerUnavailable,
    n: int,
    m: int,
    notes: list[str],
) -> dict[str, dict[str, Any]]:
    """Start `setups` fresh, then storm and fan-out each in turn; ``{setup name: figures}``.

    A setup that cannot start (no Redis, a worker missing) is left out and noted.
    """
    wanted = [s for s in setups if s.engine == "memory" or isinstance(redis, ServerProcess)]
    address = f"127.0.0.1:{redis.port}" if isinstance(redis, ServerProcess) else ""
    progress.note("workers: starting servers")
    started = start_all({s.name: _starter(s, address) for s in wanted})
    out: dict[str, dict[str, Any]] = {}
    try:
        for setup in wanted:
            node = started[setup.name]
            if not isinstance(node, ServerProcess):
                notes.append(f"{setup.name} not started: {node}")
                progress.step()
                continue
            out[setup.name] = _measure_setup(pool, node, setup, redis=redis, n=n, m=m, notes=notes)
            progress.step()
    finally:
        stop_all(started)
    return out


def _starter(setup: Setup, address: str) -> Callable[[], ServerProcess]:
    config: dict[str, Any] = dict(ROTARY_STANDARD)
    if setup.engine == "redis":
        prefix = f"bench-workers-{uuid.uuid4().hex[:8]}"
        config |= {"engine": "redis", "redis_address": address, "redis_prefix": prefix}
    if setup.workers == 1:
        return lambda: start_rotary_with(config)
    return lambda: start_workers(config, setup.workers)


def start_workers(config: dict[str, Any], workers: int) -> ServerProcess:
    """``rotary --workers N``, ready once every worker is a node of the cluster."""
    port = free_port()
    fd, cfg_path = tempfile.mkstemp(prefix="bench-rotary-workers-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(config, f)
    argv = [sys.executable, "-m", "rotary", "-c", cfg_path, "--port", str(port)]
    argv += ["--address", "127.0.0.1", "--workers", str(workers)]
    try:
        server = start_server("rotary-workers", argv, port=port)
    except ServerUnavailable:
        # start_server kills a supervisor that was not ready with SIGKILL, which leaves its
        # workers running: find them by the config file only this start used.
        _kill_started_with(cfg_path)
        raise
    try:
        _wait_nodes(server, workers)
    except BaseException:
        server.stop()  # SIGTERM: the supervisor stops its workers
        raise
    server.extra["config_path"] = cfg_path
    return server


def _kill_started_with(cfg_path: str) -> None:
    """SIGKILL every process whose command line names `cfg_path` (a fresh temporary file)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if cfg_path.encode() in (entry / "cmdline").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)


def _wait_nodes(server: ServerProcess, workers: int) -> None:
    deadline = time.monotonic() + _CLUSTER_TIMEOUT
    while time.monotonic() < deadline:
        if len(children(server.pid)) == workers and len(_info_nodes(server)) == workers:
            return
        time.sleep(0.2)
    raise ServerUnavailable(f"{workers} workers not all in the cluster: {server.log_tail(400)}")


def _info_nodes(server: ServerProcess) -> list[dict[str, Any]]:
    request = urllib.request.Request(
        server.url("/api/info", scheme="http"),
        data=b"{}",
        headers={"X-API-Key": API_KEY},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            nodes: list[dict[str, Any]] = json.loads(response.read())["result"]["nodes"]
            return nodes
    except (OSError, KeyError, ValueError):
        return []


def children(pid: int) -> list[int]:
    """Process ids of `pid`'s children (Linux; empty where /proc does not say)."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _measure_setup(
    pool: LoadPool,
    server: ServerProcess,
    setup: Setup,
    *,
    redis: ServerProcess | ServerUnavailable,
    n: int,
    m: int,
    notes: list[str],
) -> dict[str, Any]:
    pids = children(server.pid) if setup.workers > 1 else [server.pid]
    _pin([server.pid, *pids], _server_side())
    node = _Node(server, pids)
    redis_pid = redis.pid if isinstance(redis, ServerProcess) and setup.engine == "redis" else None
    idle_rss_kb = [_rss_or_zero(p) for p in pids]
    progress.note(f"workers: {setup.name} storm of {n}")
    storm = _storm(pool, node, n=n, redis_pid=redis_pid)
    progress.note(f"workers: {setup.name} fan-out {n} x {m}")
    try:
        fanout = _fanout(pool, node, n=n, m=m, redis_pid=redis_pid)
    except (RuntimeError, TimeoutError) as exc:
        notes.append(f"{setup.name} fan-out not measured: {exc}")
        fanout = {}
    return {
        "workers": setup.workers,
        "engine": setup.engine,
        "idle_rss_kb": idle_rss_kb,
        "storm": storm,
        "fanout": fanout,
    }


def _storm(pool: LoadPool, node: _Node, *, n: int, redis_pid: int | None) -> dict[str, Any]:
    """The checked storm on `node`; the clients each worker held at its end."""
    spec: OpenSpec = storm_specs(n, exp=int(time.time()) + 3600, timeout=60.0)["checked"]
    spec = replace(spec, url=node.url(ws_path("rotary")))
    fds_before = [_fd_count(p) for p in node.pids]
    meter = _Meter(node, redis_pid)
    try:
        opened = pool.open(spec)
        used = meter.stop()
        held = [_fd_count(p) - b for p, b in zip(node.pids, fds_before, strict=True)]
    finally:
        pool.broadcast({"op": "close"})
        node.wait_idle()
    complete = not opened["failures"]
    return {
        "clients": n,
        "ready": opened["ready"],
        "failures": len(opened["failures"]),
        "complete": complete,
        "seconds": rounded(opened["elapsed"], 3) if complete else None,
        **used,
        "clients_per_worker": held,
    }


def _fanout(
    pool: LoadPool, node: _Node, *, n: int, m: int, redis_pid: int | None
) -> dict[str, Any]:
    """N subscribers of `news`, M publications through the HTTP API, every delivery awaited."""
    try:
        _open(pool, node.front, "rotary", n=n, exp=int(time.time()) + 3600)
        node.wait_idle()
        pool.broadcast({"op": "arm", "per_client": m, "group": "rotary"})
        meter = _Meter(node, redis_pid)
        t0 = time.monotonic()
        asyncio.run(_publish("rotary", node.front, m))
        replies = pool.broadcast(
            {"op": "wait", "timeout": max(60.0, n * m / 2000), "group": "rotary"}
        )
        used = meter.stop()
    finally:
        pool.broadcast({"op": "close"})
        node.wait_idle()
    done = [r["t_done"] for r in replies]
    complete = all(t is not None for t in done)
    elapsed = max(done) - t0 if complete else None
    cpu = used["server_cpu_s"] or 0.0
    return {
        "subscribers": n,
        "publications": m,
        "deliveries": sum(r["total"] for r in replies),
        "complete": complete,
        "seconds": rounded(elapsed, 4),
        "deliveries_per_s": round(n * m / elapsed) if elapsed else None,
        "deliveries_per_server_cpu_s": round(n * m / cpu) if complete and cpu > 0 else None,
        **used,
    }


class _Meter:
    """CPU seconds of a setup's processes and of Redis over a span, and the share of the
    server CPUs that went to anything else (other processes on a shared machine)."""

    def __init__(self, node: _Node, redis_pid: int | None) -> None:
        self._node, self._redis = node, redis_pid
        self._t0 = time.monotonic()
        self._ours0, self._redis0 = node.cpu(), _cpu_or_zero(redis_pid)
        self._busy0 = _cpu_busy_seconds(_server_side())

    def stop(self) -> dict[str, float | None]:
        """``{"server_cpu_s", "redis_cpu_s", "foreign_cpu_share"}`` since construction."""
        wall = max(time.monotonic() - self._t0, 1e-9)
        ours = self._node.cpu() - self._ours0
        redis = _cpu_or_zero(self._redis) - self._redis0
        busy = _cpu_busy_seconds(_server_side()) - self._busy0
        foreign = max(0.0, busy - ours - redis) / wall / len(_server_side())
        return {
            "server_cpu_s": round(ours, 3),
            "redis_cpu_s": round(redis, 3) if self._redis else None,
            "foreign_cpu_share": round(foreign, 3),
        }


def _fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def _rss_or_zero(pid: int) -> int:
    try:
        return rss_kb(pid)
    except (OSError, ServerUnavailable):
        return 0


def _cpu_or_zero(pid: int | None) -> float:
    """`cpu_seconds(pid)`, 0 for no process or one that has gone."""
    if pid is None:
        return 0.0
    try:
        return cpu_seconds(pid)
    except OSError:
        return 0.0


def _server_side() -> set[int]:
    """The server CPUs: BENCH_WORKERS_SERVER_CPUS (``0,1``) when set, else bench's usual."""
    wanted = os.environ.get("BENCH_WORKERS_SERVER_CPUS", "")
    chosen = {int(c) for c in wanted.split(",") if c.strip()}
    return chosen or server_cpus()


def _pin(pids: list[int], cpus: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setaffinity(pid, cpus)


def _layout_notes() -> list[str]:
    servers, load = _server_side(), load_cpus()
    notes = [f"server processes on CPUs {sorted(servers)}, load generator on {sorted(load)}"]
    if servers & load:
        notes.append(f"server and load CPUs overlap on {sorted(servers & load)}")
    if len(servers) < 2:
        notes.append("both workers share one CPU: the 2-worker figures show the cost of the split")
    return notes


def _median_of(outcomes: list[dict[str, Any]], part: str, key: str) -> float | None:
    values = [o[part][key] for o in outcomes if o.get(part, {}).get(key) is not None]
    return round(statistics.median(values), 3) if values else None


def summarize(
    n: int, m: int, runs: dict[str, list[dict[str, Any]]], notes: list[str]
) -> dict[str, Any]:
    """The harness result of `runs` (``{setup name: [measure_round outcome, ...]}``):
    medians per setup, the ratios, and every round under ``json``."""
    figures: dict[str, Any] = {"workers_clients": n, "workers_publications": m}
    table = []
    for name, outcomes in runs.items():
        if not outcomes:
            continue
        row = {
            "storm_s": _median_of(outcomes, "storm", "seconds"),
            "storm_cpu_s": _median_of(outcomes, "storm", "server_cpu_s"),
            "fanout_deliveries_per_s": _median_of(outcomes, "fanout", "deliveries_per_s"),
            "fanout_deliveries_per_cpu_s": _median_of(
                outcomes, "fanout", "deliveries_per_server_cpu_s"
            ),
            "fanout_redis_cpu_s": _median_of(outcomes, "fanout", "redis_cpu_s"),
            "fanout_foreign_cpu_share": _median_of(outcomes, "fanout", "foreign_cpu_share"),
        }
        figures |= {f"workers_{name}_{k}": v for k, v in row.items()}
        spread = outcomes[-1]["storm"]["clients_per_worker"]
        figures[f"workers_{name}_clients_per_worker"] = spread
        figures[f"workers_{name}_idle_rss_kb_per_worker"] = outcomes[-1]["idle_rss_kb"]
        table.append([_LABELS[name], *row.values(), "/".join(str(c) for c in spread)])
    return {
        "figures": figures,
        "ratios": _ratios(figures),
        "table_header": [
            "setup",
            "storm s",
            "storm CPU s",
            "fan-out deliveries/s",
            "per server CPU-s",
            "Redis CPU s",
            "foreign CPU",
            "clients per worker",
        ],
        "table": table,
        "json": {"runs": runs, "notes": notes},
    }


def _ratios(figures: dict[str, Any]) -> dict[str, float]:
    def of(name: str, key: str) -> float | None:
        value: float | None = figures.get(f"workers_{name}_{key}")
        return value

    pairs = {
        "workers_fanout_2_over_1": ("redis_2", "redis_1", "fanout_deliveries_per_s"),
        "workers_fanout_2_over_1_cpu": ("redis_2", "redis_1", "fanout_deliveries_per_cpu_s"),
        "workers_storm_2_over_1": ("redis_2", "redis_1", "storm_s"),
        "workers_storm_2_over_1_cpu": ("redis_2", "redis_1", "storm_cpu_s"),
        "workers_fanout_redis_over_memory": ("redis_1", "memory_1", "fanout_deliveries_per_s"),
        "workers_storm_redis_over_memory": ("redis_1", "memory_1", "storm_s"),
    }
    found = {k: ratio(of(top, key), of(bottom, key)) for k, (top, bottom, key) in pairs.items()}
    return {k: v for k, v in found.items() if v is not None}
