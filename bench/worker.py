"""Load worker processes: each runs one event loop holding many clients, driven over a pipe.

The parent (`LoadPool`) sends small dict commands; a worker answers each with a dict:

- ``{"op": "open", "spec": OpenSpec}`` → open a batch of clients (kept open afterwards);
  answers ``{"t_start", "ready_at", "failures", "cpu_s"}`` (`cpu_s` from the start of the
  clock, after token signing; times from `time.monotonic`,
  one clock for every process on Linux, so the parent can compare workers).
- ``{"op": "arm", "per_client": M}`` → zero the publication count; the worker notes when
  every open client could have received M (the total reaches clients × M). With
  ``"latency": True`` the clients also time every publication whose payload carries its
  send time (`bench.clients.Tally`).
- ``{"op": "wait", "timeout": s}`` → wait (bounded) for that moment; answers ``{"t_done",
  "total", "target", "short_clients", "cpu_s", "latency"}`` (`cpu_s`: worker CPU since
  `arm`; `latency`: the `bench.histogram.Histogram` buckets when timing, else None).
- ``{"op": "close"}`` → disconnect every client; ``{"op": "exit"}`` ends the process.
- ``{"op": "call", "fn": "module:function", "kwargs": {...}}`` → await that coroutine
  function in the worker and answer what it returns (a dict): a scenario with a load of
  its own shape (`bench.soak`) keeps its client logic in its module and still runs it
  spread over the workers.

Every command but ``exit`` takes an optional ``"group"``: clients opened under different
group names are counted separately (so two servers' subscribers can stay connected while
deliveries alternate between them); ``close`` without a group closes every group.

Workers pin themselves to the load CPUs, raise their fd limit and run on uvloop when it is
installed.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from bench.clients import OpenSpec, Tally, open_clients
from bench.common import load_cpus, raise_fd_limit

__all__ = ["LoadPool", "close_shared_pool", "shared_pool", "worker_count"]

_REPLY_TIMEOUT = 180.0


def worker_count() -> int:
    """How many load processes: BENCH_WORKERS, else one per load CPU."""
    wanted = os.environ.get("BENCH_WORKERS")
    return max(1, int(wanted)) if wanted else len(load_cpus())


class _Group:
    """Clients opened under one name, with their own publication tally."""

    def __init__(self) -> None:
        self.tally = Tally()
        self.clients: list[Any] = []
        self.cpu_mark = 0.0

    def live(self) -> list[Any]:
        return [c for c in self.clients if c.ready.done() and not c.ready.exception()]


class _Worker:
    def __init__(self) -> None:
        self.groups: dict[str, _Group] = {}

    def _group(self, msg: dict[str, Any]) -> _Group:
        return self.groups.setdefault(msg.get("group", ""), _Group())

    async def handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        op = msg["op"]
        if op == "open":
            group = self._group(msg)
            res = await open_clients(msg["spec"], group.tally, group.clients)
            return {
                "t_start": res.t_start,
                "ready_at": res.ready_at,
                "failures": res.failures,
                "cpu_s": res.cpu_s,
            }
        if op == "arm":
            return self._arm(self._group(msg), msg["per_client"], msg.get("latency", False))
        if op == "wait":
            return await self._wait(self._group(msg), within=msg["timeout"])
        if op == "close":
            names = [msg["group"]] if "group" in msg else list(self.groups)
            return {"closed": sum([await self._close(self.groups.pop(n, _Group())) for n in names])}
        if op == "call":
            module, name = msg["fn"].split(":")
            result: dict[str, Any] = await getattr(importlib.import_module(module), name)(
                **msg["kwargs"]
            )
            return result
        raise ValueError(f"unknown op {op!r}")

    def _arm(self, group: _Group, per_client: int, latency: bool) -> dict[str, Any]:
        live = group.live()
        for c in live:
            c.received = 0
        group.tally.reset(len(live) * per_client, latency=latency)
        group.cpu_mark = time.process_time()
        return {"armed": len(live)}

    async def _wait(self, group: _Group, *, within: float) -> dict[str, Any]:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(group.tally.done.wait(), within)
        target = group.tally.target or 0
        live = group.live()
        per_client = target // len(live) if live else 0
        cpu_s = time.process_time() - group.cpu_mark  # before the histogram is made
        hist = group.tally.histogram()
        return {
            "t_done": group.tally.t_done,
            "total": group.tally.total,
            "target": target,
            "short_clients": sum(1 for c in live if c.received < per_client),
            "cpu_s": cpu_s,
            "latency": None if hist is None else hist.buckets,
        }

    async def _close(self, group: _Group) -> int:
        clients = [c for c in group.clients if c is not None]
        for c in clients:
            if c.transport is not None:
                c.transport.disconnect()
        waits = [c.transport.wait_disconnected() for c in clients if c.transport is not None]
        if waits:
            await asyncio.wait([asyncio.ensure_future(w) for w in waits], timeout=20)
        return len(clients)


async def _serve(conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    loop.add_reader(conn.fileno(), lambda: inbox.put_nowait(conn.recv()))
    worker = _Worker()
    while True:
        msg = await inbox.get()
        if msg["op"] == "exit":
            await worker.handle({"op": "close"})
            return
        try:
            reply = await worker.handle(msg)
        except Exception as exc:  # reported to the parent, which raises it
            reply = {"error": repr(exc)}
        conn.send(reply)


def _worker_main(conn: Connection, cpus: set[int]) -> None:
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, cpus)
    raise_fd_limit()
    # uvloop (when installed) keeps the load generator well below the servers it drives.
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve(conn))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    if os.environ.get("BENCH_LOAD_LOOP") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


class LoadPool:
    """`n` worker processes (spawned, pinned to the load CPUs), used as a context manager."""

    def __init__(self, n: int | None = None) -> None:
        ctx = mp.get_context("spawn")
        cpus = sorted(load_cpus())
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        for k in range(n or worker_count()):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(child, {cpus[k % len(cpus)]}))
            proc.daemon = True
            proc.start()
            self._conns.append(parent)
            self._procs.append(proc)

    def __enter__(self) -> LoadPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @property
    def size(self) -> int:
        return len(self._conns)

    def send(self, msgs: list[dict[str, Any]]) -> None:
        """Send one command to each worker (`msgs[k]` to worker k) without waiting."""
        for conn, msg in zip(self._conns, msgs, strict=True):
            conn.send(msg)

    def collect(self, timeout: float = _REPLY_TIMEOUT) -> list[dict[str, Any]]:
        """Each worker's answer to the last command, in worker order; raises on errors.

        Waits at most `timeout` seconds for each answer (TimeoutError).
        """
        replies = []
        for conn in self._conns:
            if not conn.poll(timeout):
                raise TimeoutError("load worker did not answer")
            reply = conn.recv()
            if "error" in reply:
                raise RuntimeError(f"load worker failed: {reply['error']}")
            replies.append(reply)
        return replies

    def call(
        self, msgs: list[dict[str, Any]], timeout: float = _REPLY_TIMEOUT
    ) -> list[dict[str, Any]]:
        self.send(msgs)
        return self.collect(timeout)

    def broadcast(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        return self.call([msg] * self.size)

    def open(self, spec: OpenSpec, *, group: str = "") -> dict[str, Any]:
        """Open `spec.count` clients split across the workers; merge their answers.

        Returns ``{"elapsed", "ready", "failures", "ready_at", "load_cpu_s"}``; `elapsed`
        runs from the earliest start to the last client ready.
        """
        shares = _split(spec.count, self.size)
        msgs, start = [], spec.start
        for share in shares:
            part = _with(spec, start=start, count=share)
            msgs.append({"op": "open", "spec": part, "group": group})
            start += share
        # A worker answers once its clients are all in or `spec.timeout` has passed.
        replies = self.call(msgs, max(_REPLY_TIMEOUT, spec.timeout + 60.0))
        t0 = min(r["t_start"] for r in replies)
        ready_at = sorted(r["t_start"] - t0 + x for r in replies for x in r["ready_at"])
        failures = [f for r in replies for f in r["failures"]]
        return {
            "load_cpu_s": round(sum(r["cpu_s"] for r in replies), 3),
            "elapsed": ready_at[-1] if ready_at else float("nan"),
            "ready": len(ready_at),
            "failures": failures,
            "ready_at": ready_at,
        }

    def spread(self, fn: str, total: int, **kwargs: Any) -> None:
        """Start ``{"op": "call"}`` of `fn` on every worker without waiting, each given its
        share of `total` items as ``start`` and ``count`` (besides `kwargs`); `collect`
        gathers the answers."""
        msgs, start = [], 0
        for share in _split(total, self.size):
            call = {**kwargs, "start": start, "count": share}
            msgs.append({"op": "call", "fn": fn, "kwargs": call})
            start += share
        self.send(msgs)

    def shutdown(self) -> None:
        """Ask every worker to exit; terminate the ones that do not within 10 s."""
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.send({"op": "exit"})
        for proc in self._procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
        self._conns, self._procs = [], []


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if k < extra else 0) for k in range(parts)]


def _with(spec: OpenSpec, *, start: int, count: int) -> OpenSpec:
    from dataclasses import replace

    return replace(spec, start=start, count=count)


_shared: LoadPool | None = None


def shared_pool() -> LoadPool:
    """One pool for the whole invocation (spawning workers costs about a second each time).

    Scenarios borrow it and never shut it down; `close_shared_pool` (also run at exit) does.
    """
    global _shared
    if _shared is None:
        _shared = LoadPool()
        atexit.register(close_shared_pool)
    return _shared


def close_shared_pool() -> None:
    global _shared
    if _shared is not None:
        _shared.shutdown()
        _shared = None
