"""`cluster`: two Rotary nodes over Redis; publications through one, deliveries on the other.

The measurement is fanout's (bench/fanout.py `_measure`): N subscribers on channel `news`,
M publications of ~100 bytes through POST /api/publish (8 in flight), the clock running
from the first publication until every client holds every message. Here the subscribers
connect to node B while the publications go to node A, so every message crosses Redis
PUB/SUB (Lua publish with history on A's side, one PUB/SUB delivery to B, fan-out on B).

Measured in the same run, on the same CPU budget (every server process — both nodes and the
private redis-server — pinned to the server CPU, the load on the others):

- ``single_memory``: one node, in-memory engine (the fanout scenario's Rotary figure);
- ``single_redis``: one node on the same Redis (publish and deliver on the same node);
- ``cluster``: node A publishes, node B delivers.

"per server CPU-s" counts the delivering node's CPU only (for the cluster: node B), so the
ratio of wall-clock deliveries/s is the honest comparison. Redis is a private
``redis-server`` on a free port without persistence (the shared 6379 is never touched);
without the binary the scenario reports that and measures the single node only.
"""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import dataclass
from typing import Any

from bench import progress
from bench.common import ServerProcess, ServerUnavailable, free_port, start_server
from bench.fanout import _measure, _plan
from bench.results import ratio
from bench.servers import ROTARY_STANDARD, start_all, start_rotary_with, stop_all
from bench.worker import shared_pool

__all__ = ["run"]

_SETUPS = ("single_memory", "single_redis", "cluster")
_LABELS = {
    "single_memory": "one node, memory engine",
    "single_redis": "one node, Redis engine",
    "cluster": "two nodes over Redis (publish A, deliver B)",
}


@dataclass
class _Split:
    """Looks like one `ServerProcess` to fanout's `_measure`: WebSocket clients go to
    `deliver`, HTTP publications to `publish`; CPU is watched on `deliver`."""

    publish: ServerProcess
    deliver: ServerProcess

    @property
    def pid(self) -> int:
        return self.deliver.pid

    def url(self, path: str, scheme: str = "ws") -> str:
        return (self.deliver if scheme == "ws" else self.publish).url(path, scheme)


def run(*, quick: bool) -> dict[str, Any]:
    """Measure every setup at every size; see the module docstring."""
    plan = _plan(quick)
    progress.expect(len(_SETUPS) * len(plan))
    exp = int(time.time()) + 3600
    repeats = 1 if quick else 3
    notes: list[str] = []
    results: dict[str, dict[int, dict[str, Any]]] = {}
    progress.note("cluster: starting redis-server")
    redis = _start_redis()
    try:
        if isinstance(redis, ServerUnavailable):
            notes.append(f"Redis setups not measured: {redis}")
        for setup in _SETUPS:
            if setup != "single_memory" and isinstance(redis, ServerUnavailable):
                progress.step()
                continue
            address = "" if isinstance(redis, ServerUnavailable) else f"127.0.0.1:{redis.port}"
            _measure_setup(setup, address, plan, exp, repeats, results, notes)
    finally:
        if isinstance(redis, ServerProcess):
            redis.stop()
    return _result(plan, results, notes)


def _start_redis() -> ServerProcess | ServerUnavailable:
    binary = shutil.which("redis-server")
    if binary is None:
        return ServerUnavailable("redis-server is not installed")
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    try:
        return start_server("redis", [*argv, "no"], port=port, health_path=None)
    except ServerUnavailable as exc:
        return exc


def _config(setup: str, address: str) -> dict[str, Any]:
    if setup == "single_memory":
        return ROTARY_STANDARD
    prefix = f"bench-{setup}-{uuid.uuid4().hex[:8]}"
    return {**ROTARY_STANDARD, "engine": "redis", "redis_address": address, "redis_prefix": prefix}


def _measure_setup(
    setup: str,
    address: str,
    plan: list[tuple[int, int]],
    exp: int,
    repeats: int,
    results: dict[str, dict[int, dict[str, Any]]],
    notes: list[str],
) -> None:
    """Start the setup's nodes, run every size, stop them (nothing else runs meanwhile)."""
    progress.note(f"cluster: starting {setup}")
    cfg = _config(setup, address)
    names = ("a", "b") if setup == "cluster" else ("a",)
    servers = start_all({n: (lambda: start_rotary_with(cfg)) for n in names})
    try:
        nodes = [s for s in servers.values() if isinstance(s, ServerProcess)]
        if len(nodes) != len(names):
            notes.append(f"{setup} not measured: {list(servers.values())}")
            return
        target: Any = _Split(publish=nodes[0], deliver=nodes[-1])
        results[setup] = {}
        for n, m in plan:
            progress.note(f"cluster: {setup} N={n}")
            try:
                results[setup][n] = _measure(
                    shared_pool(), target, "rotary", n=n, m=m, exp=exp, repeats=repeats
                )
            except (RuntimeError, TimeoutError) as exc:
                notes.append(f"{setup} N={n} not measured: {exc}")
            progress.step()
    finally:
        stop_all(servers)


def _result(
    plan: list[tuple[int, int]],
    results: dict[str, dict[int, dict[str, Any]]],
    notes: list[str],
) -> dict[str, Any]:
    n_big = plan[-1][0]

    def rate(setup: str) -> float | None:
        return results.get(setup, {}).get(n_big, {}).get("deliveries_per_s")

    figures: dict[str, Any] = {}
    table = []
    for setup, by_n in results.items():
        for n, r in by_n.items():
            figures[f"cluster_{setup}_{n}_deliveries_per_s"] = r["deliveries_per_s"]
            table.append(
                [
                    _LABELS[setup],
                    n,
                    r["publications"],
                    r["deliveries"],
                    r["complete"],
                    r["seconds"],
                    r["deliveries_per_s"],
                    r["deliveries_per_server_cpu_s"],
                    r["foreign_cpu_share"],
                ]
            )
    ratios = {
        "cluster_over_single_memory": ratio(rate("cluster"), rate("single_memory")),
        "cluster_over_single_redis": ratio(rate("cluster"), rate("single_redis")),
        "single_redis_over_single_memory": ratio(rate("single_redis"), rate("single_memory")),
    }
    return {
        "figures": figures,
        "ratios": {k: v for k, v in ratios.items() if v is not None},
        "table_header": [
            "setup",
            "subscribers",
            "pubs",
            "delivered",
            "complete",
            "seconds",
            "deliveries/s",
            "per delivering-node CPU-s",
            "foreign CPU0",
        ],
        "table": table,
        "json": {
            "runs": {k: {str(n): r for n, r in v.items()} for k, v in results.items()},
            "notes": notes,
            "ratio_at_subscribers": n_big,
        },
    }
