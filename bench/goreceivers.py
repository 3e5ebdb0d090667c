"""Latency receivers in Go (bench/goload), with the surface of `bench.worker.LoadPool` that
`bench.latency` uses: ``open(spec)``, ``broadcast({"op": "arm" | "wait" | "close"})``,
``size``.

Why Go: a publication to N subscribers reaches the load CPU as a burst of N messages that
the receivers handle one after another, so whatever a receiver spends per message delays
every message behind it in the burst. The Python receivers (kernel, uvloop, picows, a
Python callback) cost about as much per message as the server spends per delivery, enough
to set the p99 themselves; the Go program (one epoll loop, one read() per message) spends
about half as much, most of it in the kernel (docs/benchmarks.md).

The program is built once into ``~/.cache/rotary/bin`` under a name carrying a digest of
its sources (go.mod, go.sum, the ``.go`` files), with ``go build`` the first time it is
wanted; builds of other sources are removed once a day old. Clients are split over one
process per load CPU (BENCH_WORKERS overrides the count, as for the Python workers), each
pinned to its CPU and run with GOMAXPROCS=1. Tokens are signed here (`bench.tokens`); the
Go side does no cryptography. Dialects: ``rotary`` (Centrifugo protocol v2, JSON) and
``bare``; Socket.IO stays on the Python clients.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import orjson

from bench.clients import OpenSpec
from bench.common import load_cpus
from bench.gobuild import BIN_DIR, GoMissingError, build_cached, go_tool
from bench.tokens import client_tokens
from bench.worker import worker_count

__all__ = ["DIALECTS", "GO_DIR", "GoMissingError", "GoReceivers", "built_binary"]

GO_DIR = Path(__file__).parent / "goload"
#: The client kinds (`bench.clients`) the Go program speaks.
DIALECTS = ("rotary", "bare")
_PREFIX = "rotary-goload-"
#: A cold build may download the WebSocket module first.
_BUILD_TIMEOUT = 600.0
#: Seconds a command's answer may take beyond its own timeout.
_SLACK = 60.0


def built_binary() -> Path:
    """The program built from the current sources, built first when missing.

    Raises GoMissingError without Go, RuntimeError (with Go's output) when the build fails.
    """
    return build_cached(
        GO_DIR,
        BIN_DIR,
        _PREFIX,
        go=go_tool(),
        needed_by="the Go latency receivers",
        timeout=_BUILD_TIMEOUT,
    )


class _Process:
    """One running receiver program: a JSON line in, a JSON line out."""

    def __init__(self, binary: Path, cpu: int) -> None:
        self.log: IO[bytes] = tempfile.TemporaryFile(prefix="bench-goload-")  # noqa: SIM115 (closed by end)
        self.proc = subprocess.Popen(
            [str(binary)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env={**os.environ, "GOMAXPROCS": "1"},
            # Pinned before exec, so that every thread the Go runtime starts inherits it.
            preexec_fn=lambda: _pin(cpu),
        )

    def send(self, msg: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(orjson.dumps(msg) + b"\n")
        self.proc.stdin.flush()

    def answer(self, timeout: float) -> dict[str, Any]:
        """The next line the program prints, within `timeout` seconds."""
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            raise RuntimeError(f"Go receivers did not answer: {self._stderr()}")
        reply: dict[str, Any] = orjson.loads(line)
        return reply

    def _stderr(self) -> str:
        self.log.seek(0)
        return self.log.read()[-400:].decode(errors="replace") or "(no output)"

    def end(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()


def _pin(cpu: int) -> None:
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {cpu})


class GoReceivers:
    """Subscribers held by the Go program, one process per load CPU.

    Opened once (`open`), then timed any number of times (`broadcast` of ``arm`` then
    ``wait``), then closed (`broadcast` of ``close``, or `shutdown`), which ends the
    processes. Groups are ignored: one instance serves one server.
    """

    def __init__(self, processes: int | None = None) -> None:
        self._binary = built_binary()
        self.size = processes or worker_count()
        self._procs: list[_Process] = []

    def open(self, spec: OpenSpec, *, group: str = "") -> dict[str, Any]:
        """Open `spec.count` clients of kind ``rotary`` (connection token when
        `spec.secret`, one channel) or ``bare``, split over the processes.

        Returns ``{"elapsed", "ready", "failures"}`` as `LoadPool.open` does (one entry per
        failed client; each process keeps the first few reasons).
        """
        if spec.kind not in DIALECTS or len(spec.channels) > 1:
            raise ValueError(f"the Go receivers do not speak {spec.kind} {spec.channels}")
        cpus = sorted(load_cpus())
        jobs = _jobs(spec, self.size)
        t0 = time.monotonic()
        for k, job in enumerate(jobs):
            proc = _Process(self._binary, cpus[k % len(cpus)])
            self._procs.append(proc)
            proc.send(job)
        replies = [p.answer(spec.timeout + _SLACK) for p in self._procs]
        failures: list[str] = []
        for r in replies:  # one entry per failed client, as LoadPool gives
            failures += r["failures"] + ["(reason not kept)"] * (r["failed"] - len(r["failures"]))
        return {
            "elapsed": time.monotonic() - t0,
            "ready": sum(r["ready"] for r in replies),
            "failures": failures,
        }

    def broadcast(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        """Send `msg` (``arm``, ``wait`` or ``close``; other keys ignored) to every
        process; their answers, with ``wait``'s latency buckets keyed by int."""
        command = {k: v for k, v in msg.items() if k in {"op", "per_client", "timeout"}}
        try:
            for proc in self._procs:
                proc.send(command)
            wait = float(msg.get("timeout", 0.0)) + _SLACK
            replies = [p.answer(wait) for p in self._procs]
        finally:
            if msg["op"] == "close":
                self.shutdown()  # whether or not they answered
        for reply in replies:
            if "latency" in reply:
                reply["latency"] = {int(k): n for k, n in reply["latency"].items()}
        return replies

    def shutdown(self) -> None:
        """End every process (closing stdin ends one that is still holding clients)."""
        for proc in self._procs:
            proc.end()
        self._procs = []


def _jobs(spec: OpenSpec, parts: int) -> list[dict[str, Any]]:
    """`spec`'s clients, split into `parts` jobs for the program (tokens signed here)."""
    clients = []
    for index in range(spec.start, spec.start + spec.count):
        token = client_tokens(spec.secret, index, (), exp=spec.exp).connect if spec.secret else ""
        clients.append({"url": spec.url, "connect_token": token})
    base = {
        "dialect": spec.kind,
        "channel": spec.channels[0] if spec.channels else "",
        "max_inflight": spec.max_inflight,
        "timeout": spec.timeout,
    }
    return [{**base, "clients": clients[k::parts]} for k in range(parts)]


def _main() -> int:
    """Build ahead of a test run (``make go-receivers``); without Go print a note (an error
    under CI=true, where nothing may be skipped)."""
    started = time.monotonic()
    try:
        binary = built_binary()
    except GoMissingError as exc:
        in_ci = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
        print(f"{'error' if in_ci else 'note'}: {exc}", file=sys.stderr)
        return 1 if in_ci else 0
    print(f"{binary} ready in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
