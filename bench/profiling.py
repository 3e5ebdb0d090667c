"""Sample a running server with py-spy (cProfile is the fallback, see `fanout`).

`spy_on(pid, path)` records collapsed stacks (py-spy ``--format raw``, not pausing the
target) while its block runs; `summarize(path)` turns them into the functions holding the
most samples, both as the leaf (own time) and anywhere on the stack (inclusive).
"""

from __future__ import annotations

import collections
import contextlib
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["pyspy_path", "spy_on", "summarize"]


def pyspy_path() -> str | None:
    """The py-spy executable next to this interpreter, or on PATH; None when absent."""
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def spy_on(pid: int, out: Path, *, rate: int = 200) -> Iterator[None]:
    """Record `pid` with py-spy for the duration of the block (stopped with SIGINT)."""
    exe = pyspy_path()
    if exe is None:
        raise FileNotFoundError("py-spy is not installed")
    argv = [exe, "record", "--pid", str(pid), "--format", "raw", "--nonblocking"]
    argv += ["--rate", str(rate), "-o", str(out)]
    spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)  # py-spy needs a moment to attach before the work starts
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait(5)


def summarize(path: Path, *, limit: int = 20) -> dict[str, list[str]]:
    """Top functions by own samples, and Rotary functions by inclusive samples.

    Returns ``{"own": [...], "inclusive": [...], "samples": [total]}``, lines "share% function".
    """
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    # Inclusive counts only for Rotary's own frames: asyncio resumes coroutines from the
    # event loop, so the generic frames above them say nothing about where time goes.
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        raw = stack.split(";")
        total += count
        own[_short(raw[-1])] += count
        for frame in {_short(f) for f in raw if "rotary/" in f}:
            inclusive[frame] += count
    if total == 0:
        return {"own": [], "inclusive": [], "samples": []}

    def lines(counter: collections.Counter[str]) -> list[str]:
        return [f"{100 * c / total:5.1f}%  {f}" for f, c in counter.most_common(limit)]

    return {"own": lines(own), "inclusive": lines(inclusive), "samples": [str(total)]}


def _short(frame: str) -> str:
    """``func (path/to/module.py:12)`` → ``func (module.py:12)``; drop the process label."""
    name, _, where = frame.partition(" (")
    if not where:
        return frame
    path = where.rstrip(")")
    parts = Path(path).parts
    short = "/".join(parts[parts.index("rotary") :]) if "rotary" in parts else Path(path).name
    return f"{name} ({short})"
