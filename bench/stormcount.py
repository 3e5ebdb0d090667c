"""`stormcount`: the storm's server work counted in instructions, immune to the machine's noise.

On a shared machine of two cores the same storm's wall time moves by a fifth or more from one
run to the next (a fixed loop on an idle CPU varies twofold), so a time ratio of a few per
cent needs many rounds to resolve. This scenario runs the very storms of `bench.storm` (same
clients, tokens, channels and server configurations, on the same load workers) against
servers running under valgrind's callgrind, and reads how many instructions each server
executed from just before the first client connects until the last one is subscribed. The
count repeats within 1 % whatever else the machine does (two full counts: within 0.7 %).

Rounds: one Rotary server with tokens checked (a cold storm, then the warm storm with the
same tokens), one with checks off (two storms: the first is the baseline the time ratios
use, the second is like for like with the warm storm) and python-socketio + PyJWT. Each
figure is instructions per client; after each storm the clients leave and the clean-up
is counted apart (not in the ratios, as the timed storm does not include it either).

What a count is not: time. It leaves out the kernel (system calls, loopback TCP), cache
misses and waiting; two code paths with the same count can differ in time (uvloop ran a
quarter fewer instructions than asyncio's loop for Rotary, yet was not faster). Read the
ratios as "how much more work", beside the storm's time ratios. Under valgrind the server
runs ~50x slower, so reads gather more data at once than in the timed storm, and the
servers' periodic timers (pings, presence updates) are set to an hour: a storm of seconds
lasts minutes there, and timers firing within it would be counted as storm work (at 5,000
clients with the usual intervals a checks-off client counted 1.37 million instructions
against 0.94 million at 500 clients with the timers out of the way).

Needs valgrind (``valgrind`` and ``callgrind_control`` on PATH); without it the scenario
reports that and measures nothing. Servers start with instrumentation off (imports under
callgrind would take half a minute) and it is switched on before the first storm.
`BENCH_COUNT_CLIENTS` sets N (500 full, 100 with `quick`). `BENCH_CALLGRIND_DIR` keeps the
callgrind dumps there (one ``<server>.cg.<k>`` per storm and clean-up, in play order) for
``callgrind_annotate`` or `bench.cgroups`; without it they go with a temporary directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import progress
from bench.clients import OpenSpec
from bench.common import ServerProcess, start_rotary, wait_idle
from bench.results import rounded
from bench.servers import (
    ROTARY_CHECKED,
    ROTARY_INSECURE,
    start_all,
    start_socketio,
    stop_all,
    ws_path,
)
from bench.storm import storm_ratios, storm_specs
from bench.worker import LoadPool, shared_pool

__all__ = ["CallgrindCounter", "callgrind_wrapper", "read_total", "run"]

#: Valgrind runs Python ~50x slower: start-up (instrumentation off) takes ~6 s alone.
_READY_TIMEOUT = 180.0
#: Periodic server timers, in seconds, under valgrind: an hour, so that none fires during a
#: count (a storm of a second or two takes minutes there; Rotary's pings every 25 s and
#: presence updates, and socket.io's pings, would otherwise be counted as storm work).
_QUIET_INTERVAL = 3600
_ROTARY_TIMERS = ("ping_interval", "client_presence_update_interval")
_CONTROL_TIMEOUT = 120.0

_LABELS = {
    "rotary_checked": "Rotary, tokens checked (cold cache)",
    "rotary_warm": "Rotary, same tokens again (warm cache)",
    "rotary_insecure": "Rotary, token checks off",
    "rotary_insecure_again": "Rotary, token checks off, again (same server)",
    "socketio": "python-socketio + PyJWT",
}
#: Per server: the storms played on it, in order.
_PLAN = {
    "checked": ("rotary_checked", "rotary_warm"),
    "insecure": ("rotary_insecure", "rotary_insecure_again"),
    "socketio": ("socketio",),
}


def read_total(path: Path) -> int:
    """The instruction total of one callgrind dump (its ``summary:`` or ``totals:`` line)."""
    for line in path.read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        if key in ("summary", "totals"):
            return int(value.split()[0])
    raise ValueError(f"{path}: no summary line (not a callgrind dump?)")


class CallgrindCounter:
    """Drives the callgrind of one running process: switch on, zero, dump and read.

    `pid` runs under `callgrind_wrapper(out)`; each dump lands in a new ``<out>.<k>`` file,
    which `dump` finds and reads. The process must wake up now and then (an event loop's
    timers do): callgrind answers a request when the process next runs.
    """

    def __init__(self, pid: int, out: Path) -> None:
        self._pid = str(pid)
        self._out = out

    def _control(self, *args: str) -> None:
        done = subprocess.run(
            ["callgrind_control", *args, self._pid],
            capture_output=True,
            text=True,
            timeout=_CONTROL_TIMEOUT,
            check=False,
        )
        # It exits with 0 even when it found no such process: only its "OK." tells.
        if done.returncode != 0 or "OK." not in done.stdout:
            said = (done.stdout + done.stderr).strip()
            raise RuntimeError(f"callgrind_control {' '.join(args)} {self._pid}: {said}")

    def instrument(self) -> None:
        """Start counting (the server was started with instrumentation off)."""
        self._control("-i", "on")

    def zero(self) -> None:
        self._control("-z")

    def dump(self) -> int:
        """Instructions since the last `zero` (or dump): dump them and read the new file."""
        before = set(self._out.parent.glob(f"{self._out.name}.*"))
        self._control("-d")
        deadline = time.monotonic() + _CONTROL_TIMEOUT
        while time.monotonic() < deadline:
            new = set(self._out.parent.glob(f"{self._out.name}.*")) - before
            if new:
                path = max(new, key=lambda p: p.stat().st_mtime)
                time.sleep(0.2)  # callgrind_control returns once the file is written
                return read_total(path)
            time.sleep(0.1)
        raise RuntimeError("callgrind wrote no dump file")


def callgrind_wrapper(out: Path) -> list[str]:
    """The command to put before the interpreter: callgrind, instrumentation off at start."""
    return [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
    ]


def _missing_tools() -> str | None:
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            return f"{tool} not found: install valgrind to count instructions"
    return None


def run(*, quick: bool) -> dict[str, Any]:
    """Count; see the module docstring. Returns the harness result dict."""
    missing = _missing_tools()
    if missing is not None:
        return {"figures": {}, "ratios": {}, "json": {"notes": [missing]}}
    n = int(os.environ.get("BENCH_COUNT_CLIENTS", "100" if quick else "500"))
    specs = storm_specs(n, exp=int(time.time()) + 3600, timeout=600.0)
    progress.expect(sum(len(keys) for keys in _PLAN.values()))
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as tmp:
        keep = os.environ.get("BENCH_CALLGRIND_DIR")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
        counts, notes = _count_all(shared_pool(), specs, Path(keep or tmp))
    return _result(n, counts, notes)


def _count_all(
    pool: LoadPool, specs: dict[str, OpenSpec], tmp: Path
) -> tuple[dict[str, dict[str, int]], list[str]]:
    """Start the three servers under callgrind, then play each one's storms in turn."""
    env = {"PYTHONHASHSEED": "0"}  # the same dict layouts every run
    outs = {name: tmp / f"{name}.cg" for name in _PLAN}
    more: dict[str, Any] = {"ready_timeout": _READY_TIMEOUT, "env": env}
    peer_env = {**env, "BENCH_PING_INTERVAL": str(_QUIET_INTERVAL)}
    quiet = {key: f"{_QUIET_INTERVAL}s" for key in _ROTARY_TIMERS}
    starters: dict[str, Callable[[], ServerProcess]] = {
        "checked": lambda: start_rotary(
            {**ROTARY_CHECKED, **quiet}, wrapper=callgrind_wrapper(outs["checked"]), **more
        ),
        "insecure": lambda: start_rotary(
            {**ROTARY_INSECURE, **quiet}, wrapper=callgrind_wrapper(outs["insecure"]), **more
        ),
        "socketio": lambda: start_socketio(
            wrapper=callgrind_wrapper(outs["socketio"]), **{**more, "env": peer_env}
        ),
    }
    progress.note("stormcount: starting servers under valgrind")
    servers = start_all(starters)
    counts: dict[str, dict[str, int]] = {}
    notes: list[str] = []
    try:
        for name, keys in _PLAN.items():
            server = servers[name]
            if not isinstance(server, ServerProcess):
                notes.append(f"{name} not available: {server}")
                continue
            counter = CallgrindCounter(server.pid, outs[name])
            counter.instrument()
            for key in keys:
                progress.note(f"stormcount: {_LABELS[key]}")
                counts[key] = _count_storm(pool, specs[name], server, counter, notes)
                progress.step()
    finally:
        stop_all(servers)
    return counts, notes


def _count_storm(
    pool: LoadPool,
    spec: OpenSpec,
    server: ServerProcess,
    counter: CallgrindCounter,
    notes: list[str],
) -> dict[str, int]:
    """One storm: ``{"storm", "cleanup", "ready", "failures"}`` (instructions, clients)."""
    spec = replace(spec, url=server.url(ws_path(spec.kind)))
    wait_idle(server.pid, limit_s=60.0)
    counter.zero()
    out = pool.open(spec)
    storm = counter.dump()
    pool.broadcast({"op": "close"})
    if wait_idle(server.pid, limit_s=120.0) >= 120.0:
        notes.append(f"{server.name}: clean-up still running after 120 s; count cut short")
    cleanup = counter.dump()
    return {
        "storm": storm,
        "cleanup": cleanup,
        "ready": len(out["ready_at"]),
        "failures": len(out["failures"]),
    }


def _result(n: int, counts: dict[str, dict[str, int]], notes: list[str]) -> dict[str, Any]:
    per: dict[str, float | None] = {
        k: c["storm"] / n for k, c in counts.items() if c["failures"] == 0
    }
    for key, c in counts.items():
        if c["failures"]:
            notes.append(f"{key}: {c['failures']} of {n} clients failed; not counted")
    figures: dict[str, Any] = {"stormcount_clients": n}
    table = []
    for key, c in counts.items():
        storm_k = rounded(c["storm"] / n / 1000, 1)
        cleanup_k = rounded(c["cleanup"] / n / 1000, 1)
        figures[f"stormcount_{key}_kinstr_per_client"] = storm_k
        figures[f"stormcount_{key}_cleanup_kinstr_per_client"] = cleanup_k
        table.append([_LABELS[key], n, c["ready"], c["failures"], storm_k, cleanup_k])
    ratios = storm_ratios(per, prefix="stormcount")
    return {
        "figures": figures,
        "ratios": {k: v for k, v in ratios.items() if v is not None},
        "table_header": [
            "storm (server under callgrind)",
            "clients",
            "subscribed",
            "failed",
            "k instr/client",
            "clean-up k instr/client",
        ],
        "table": table,
        "json": {"notes": notes, "instructions": counts},
    }
