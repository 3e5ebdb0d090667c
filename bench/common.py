"""Process plumbing shared by every scenario: CPU pinning, fd limits, ports, server processes.

The machine is split in two: servers run on CPU 0, the harness and its load workers on the
other CPUs (on a one-CPU machine nothing is pinned). Every server is a child process started
with `start_server` and stopped by `ServerProcess.stop`, which callers put in a `finally`.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "API_KEY",
    "REPO",
    "SECRET",
    "CpuWatch",
    "ServerProcess",
    "ServerUnavailable",
    "cpu_seconds",
    "cpu_split",
    "free_port",
    "load_cpus",
    "pin_self_to_load",
    "raise_fd_limit",
    "rss_kb",
    "server_cpus",
    "start_rotary",
    "start_server",
    "wait_idle",
]

REPO = Path(__file__).resolve().parent.parent
SECRET = "bench-hmac-secret-0123456789abcdef0123456789"
API_KEY = "bench-api-key"
_STARTUP_TIMEOUT = 20.0


class ServerUnavailable(RuntimeError):
    """A server process exited or never became ready; the message says why."""


def server_cpus() -> set[int]:
    """CPUs the servers under test run on: CPU 0 when the machine has two or more."""
    return {0} if (os.cpu_count() or 1) >= 2 else set(range(os.cpu_count() or 1))


def load_cpus() -> set[int]:
    """CPUs for the harness and its load workers: every CPU except the servers' one."""
    every = set(range(os.cpu_count() or 1))
    rest = every - server_cpus()
    return rest or every


def pin_self_to_load() -> None:
    """Move the calling process onto the load CPUs (no-op where affinity is unsupported)."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, load_cpus())


def raise_fd_limit(wanted: int = 65536) -> int:
    """Raise RLIMIT_NOFILE's soft limit towards `wanted` (capped at the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (each server gets a fresh one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kb(pid: int) -> int:
    """Resident set size of `pid` in KiB, from /proc/<pid>/status VmRSS."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ServerUnavailable(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds consumed so far by `pid` (from /proc/<pid>/stat)."""
    return sum(cpu_split(pid))


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds consumed so far by `pid` (from /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _cpu_busy_seconds(cpus: set[int]) -> float:
    """Busy (non-idle, non-iowait) seconds of `cpus` since boot, from /proc/stat."""
    busy = 0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            ticks = [int(v) for v in values[:8]]
            busy += sum(ticks) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK")


class CpuWatch:
    """CPU use of a server process and of everyone else on the server CPUs, over a span.

    `foreign_share` is the fraction of the span during which the server CPUs ran something
    other than the server (other processes on a shared machine); it tells how much a
    wall-clock figure was disturbed.
    """

    def __init__(self, pid: int, *more: int, cpus: set[int] | None = None) -> None:
        """Watch `pid` (and the processes `more`, summed: `rotary --workers`' workers) on
        `cpus` (the server CPUs unless given)."""
        self._pids = (pid, *more)
        self._cpus = cpus or server_cpus()
        self._t0 = time.monotonic()
        self._split0 = self._split()
        self._busy0 = _cpu_busy_seconds(self._cpus)

    def _split(self) -> tuple[float, float]:
        splits = [cpu_split(pid) for pid in self._pids]
        return sum(user for user, _ in splits), sum(system for _, system in splits)

    def stop(self) -> dict[str, float]:
        """``{"server_cpu_s", "server_share", "foreign_share", "server_user_s",
        "server_sys_s"}`` since construction."""
        wall = max(time.monotonic() - self._t0, 1e-9)
        (user0, system0), (user1, system1) = self._split0, self._split()
        user, system = user1 - user0, system1 - system0
        proc = user + system
        busy = _cpu_busy_seconds(self._cpus) - self._busy0
        ncpu = len(self._cpus)
        return {
            "server_cpu_s": round(proc, 3),
            "server_share": round(proc / wall / ncpu, 3),
            "foreign_share": round(max(0.0, busy - proc) / wall / ncpu, 3),
            "server_user_s": round(user, 3),
            "server_sys_s": round(system, 3),
        }


def wait_idle(pid: int, *, quiet_s: float = 0.3, limit_s: float = 15.0) -> float:
    """Wait until `pid` burns (almost) no CPU for `quiet_s`; return the seconds waited.

    Used after closing a batch of clients, so the server's clean-up of the previous batch
    is not billed to the next measurement. Bounded by `limit_s`.
    """
    start = time.monotonic()
    last = cpu_seconds(pid)
    while time.monotonic() - start < limit_s:
        time.sleep(quiet_s)
        now = cpu_seconds(pid)
        if now - last < 0.02 * quiet_s + 0.011:  # 2 % of a CPU, plus one clock tick
            break
        last = now
    return time.monotonic() - start


@dataclass
class ServerProcess:
    """A server child process pinned to the server CPUs, listening on 127.0.0.1:`port`."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self, path: str, scheme: str = "ws") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def log_tail(self, chars: int = 1500) -> str:
        """The end of what the process printed (for error messages)."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, *, sig: int = signal.SIGTERM) -> None:
        """Stop the process (given signal, SIGKILL after 10 s). Safe to call twice."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_server(
    name: str,
    argv: Sequence[str],
    *,
    port: int,
    health_path: str | None = "/health",
    env: dict[str, str] | None = None,
    ready_timeout: float = _STARTUP_TIMEOUT,
    pin: bool = True,
) -> ServerProcess:
    """Start `argv` as a child; return once it is ready, pinned to the server CPUs (unless
    `pin` is False: a multi-threaded server measured on every CPU).

    Ready means GET `health_path` answers 200, or (with `health_path=None`) the port accepts
    TCP connections. Raises `ServerUnavailable` (after stopping the child) when the process
    exits or is not ready within `ready_timeout` seconds (20 by default).
    """
    log = Path(tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")[1])
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(argv), stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=full_env
        )
    server = ServerProcess(name, port, proc, log)
    try:
        _wait_ready(server, health_path, ready_timeout)
    except BaseException:
        server.stop(sig=signal.SIGKILL)
        raise
    # Pinned once ready: start-up (imports) may use every CPU, the measured work only CPU 0.
    if pin:
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setaffinity(proc.pid, server_cpus())
    return server


def _wait_ready(server: ServerProcess, health_path: str | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerUnavailable(
                f"{server.name} exited with {server.process.returncode}: {server.log_tail(400)}"
            )
        if _answers(server.port, health_path):
            return
        time.sleep(0.05)
    raise ServerUnavailable(f"{server.name} not ready within {timeout:.0f} s")


def _answers(port: int, health_path: str | None) -> bool:
    if health_path is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False
    try:
        url = f"http://127.0.0.1:{port}{health_path}"
        with urllib.request.urlopen(url, timeout=0.5) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def start_rotary(
    config: dict[str, Any],
    *,
    profile_to: Path | None = None,
    wrapper: Sequence[str] = (),
    ready_timeout: float = _STARTUP_TIMEOUT,
    env: dict[str, str] | None = None,
    gc_log: Path | None = None,
) -> ServerProcess:
    """Start `python -m rotary -c CONFIG --port P --address 127.0.0.1` with `config`.

    `config` holds Centrifugo v5 flat keys. With `profile_to`, the server runs under
    cProfile and writes its stats there when stopped with SIGINT; with `gc_log`, under
    `bench.gcwatch`, which records every cycle collection there. `wrapper` is put before
    the interpreter (``valgrind …``; give it a longer `ready_timeout`); `env` is added to
    the environment.
    """
    port = free_port()
    fd, cfg_path = tempfile.mkstemp(prefix="bench-rotary-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(config, f)
    runner = ["-m", "cProfile", "-o", str(profile_to)] if profile_to else []
    if gc_log:
        runner = ["-m", "bench.gcwatch", str(gc_log)]
    argv = [*wrapper, sys.executable, *runner, "-m", "rotary", "-c", cfg_path]
    argv += ["--port", str(port), "--address", "127.0.0.1"]
    # BENCH_ROTARY_SRC: measure another tree (e.g. a `git archive` of a commit) instead of
    # the working tree the editable install points at.
    src = os.environ.get("BENCH_ROTARY_SRC")
    full_env = {**(env or {}), **({"PYTHONPATH": src} if src else {})}
    server = start_server("rotary", argv, port=port, env=full_env, ready_timeout=ready_timeout)
    server.extra["config_path"] = cfg_path
    if gc_log:
        server.extra["gc_log"] = gc_log
    return server
