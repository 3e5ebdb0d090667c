"""Rotary with its cycle collections recorded: the pauses `bench latency` sets beside a tail.

``python -m bench.gcwatch LOG -m rotary ARGS…`` runs ``python -m rotary ARGS…`` with a
`gc.callbacks` hook that appends one line per collection to LOG: CLOCK_MONOTONIC at its end
(one clock for every process on Linux, so the harness can tell which collections fell in a
measuring window), the generation, and the pause in wall and in CPU milliseconds (CPU time
leaves out what other processes took from the server's core meanwhile). `pauses` reads a
span of LOG back.
"""

from __future__ import annotations

import gc
import runpy
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["pauses"]


def pauses(log: Path, start: float, end: float) -> dict[str, Any]:
    """The collections that ended between `start` and `end` (monotonic seconds):
    ``{"count", "cpu_ms", "max_cpu_ms", "max_wall_ms", "by_generation"}``."""
    rows = []
    for line in log.read_text().splitlines() if log.exists() else ():
        at, generation, wall_ms, cpu_ms = line.split()
        if start <= float(at) <= end:
            rows.append((int(generation), float(wall_ms), float(cpu_ms)))
    by_generation = {g: sum(1 for r in rows if r[0] == g) for g in (0, 1, 2)}
    return {
        "count": len(rows),
        "cpu_ms": round(sum(r[2] for r in rows), 2),
        "max_cpu_ms": max((r[2] for r in rows), default=0.0),
        "max_wall_ms": max((r[1] for r in rows), default=0.0),
        "by_generation": by_generation,
    }


def _main() -> None:
    log_path, flag, module = sys.argv[1:4]
    if flag != "-m":
        raise SystemExit("usage: python -m bench.gcwatch LOG -m MODULE [ARGS…]")
    out = open(log_path, "a", buffering=1)  # noqa: SIM115 (open for the process's life)
    began = [0, 0]

    def on_collection(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[:] = [time.perf_counter_ns(), time.thread_time_ns()]
            return
        wall = (time.perf_counter_ns() - began[0]) / 1e6
        cpu = (time.thread_time_ns() - began[1]) / 1e6
        out.write(f"{time.monotonic():.6f} {info['generation']} {wall:.3f} {cpu:.3f}\n")

    gc.callbacks.append(on_collection)
    sys.argv = [module, *sys.argv[4:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _main()
