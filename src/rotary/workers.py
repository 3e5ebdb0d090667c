"""``rotary --workers N``: N node processes sharing one port, and a supervisor over them.

Python runs one core per process, so a machine with N cores serves best with N nodes. Each
worker is an ordinary ``rotary`` process started with the same arguments plus
``--reuse-port``: it binds the port with SO_REUSEPORT, and the kernel spreads new
connections over the workers. They form a cluster through the Redis engine, exactly as
nodes on separate machines do; the memory engine is refused, since its workers would not
see each other's publications, presence or history.

The supervisor (this module, in the parent process) only watches:

* a worker that exits while the supervisor is running is started again, after a pause that
  doubles (up to `_MAX_PAUSE`) while workers keep dying within `_STABLE` seconds of their
  start, so a worker that cannot start does not become a busy loop;
* SIGTERM or SIGINT is passed to every worker, each drains as a single node does
  (disconnect 3001, close the engine) and the supervisor returns once all have exited,
  killing those still running after `_DRAIN` seconds.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType

__all__ = ["supervise"]

_log = logging.getLogger("rotary.workers")

#: A worker that ran at least this long had started fine: its restart needs no pause.
_STABLE = 5.0
_FIRST_PAUSE = 0.5
_MAX_PAUSE = 10.0
#: Seconds the workers get to drain after SIGTERM before they are killed.
_DRAIN = 15.0
_POLL = 0.1


@dataclass
class _Worker:
    slot: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    pause: float = 0.0
    restart_at: float = 0.0
    history: list[int] = field(default_factory=list)


def supervise(argv: Sequence[str], workers: int) -> int:
    """Run `workers` copies of ``python -m rotary *argv --reuse-port`` until SIGTERM or
    SIGINT; return 0 once every worker has exited."""
    stopping: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    pool = [_Worker(slot) for slot in range(workers)]
    command = [sys.executable, "-m", "rotary", *argv, "--reuse-port"]
    try:
        for worker in pool:
            _start(worker, command)
        _log.info("supervising %d workers (pids %s)", workers, _pids(pool))
        while not stopping:
            time.sleep(_POLL)
            for worker in pool:
                _watch(worker, command)
        _log.info("received %s: draining %d workers", signal.Signals(stopping[0]).name, workers)
        return _drain(pool)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _start(worker: _Worker, command: list[str]) -> None:
    worker.process = subprocess.Popen(command)  # noqa: S603 - our own interpreter and module
    worker.started = time.monotonic()
    worker.history.append(worker.process.pid)


def _watch(worker: _Worker, command: list[str]) -> None:
    """Restart `worker` if it exited (after its pause, when it died young)."""
    process = worker.process
    now = time.monotonic()
    if process is not None:
        status = process.poll()
        if status is None:
            return
        young = now - worker.started < _STABLE
        worker.pause = min(max(worker.pause * 2, _FIRST_PAUSE), _MAX_PAUSE) if young else 0.0
        worker.restart_at = now + worker.pause
        worker.process = None
        _log.warning(
            "worker %d (pid %d) exited with %s: restarting in %.1f s",
            worker.slot,
            process.pid,
            status,
            worker.pause,
        )
    if now >= worker.restart_at:
        _start(worker, command)
        _log.info("worker %d restarted (pid %d)", worker.slot, worker.history[-1])


def _drain(pool: list[_Worker]) -> int:
    running = [w.process for w in pool if w.process is not None and w.process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + _DRAIN
    for process in running:
        try:
            process.wait(max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            _log.warning("worker pid %d did not drain in time: killed", process.pid)
            process.kill()
            process.wait()
    _log.info("all workers stopped")
    return 0


def _pids(pool: list[_Worker]) -> str:
    return ", ".join(str(w.process.pid) for w in pool if w.process is not None)
