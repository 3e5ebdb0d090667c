"""Rotary's storm or fan-out under cProfile, server in this process, grouped by function group.

`python -m bench.stormprofile [CLIENTS] [checked|insecure|checked_protobuf]` serves Rotary
(the storm's configuration, `rotary.server.serve`) on a thread of this process and
profiles only that thread while the load workers open the storm's clients (connect and
two subscribes each); start-up and clean-up are left out.
`python -m bench.stormprofile fanout [SUBSCRIBERS]`
profiles instead the delivery of `bench.fanout`'s publications (HTTP API, ~100 bytes each)
to that many subscribers of one channel, opened before profiling starts. It prints the
share of own time per function group (`bench.nodecount.GROUPS`: node, hub, outbox, JSON,
token verify, aiohttp, asyncio…), the Python calls per client or delivery by group
(deterministic, unlike the times) and the top functions.

Own times under cProfile are inflated by the profiler and moved by the machine's other work:
read the shares and the call counts, and take totals from `bench.stormcount`.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import pstats
import sys
import threading
import time
from dataclasses import replace
from typing import Any

import orjson

from bench.clients import OpenSpec
from bench.common import API_KEY, SECRET, free_port
from bench.fanout import payload, publish_http
from bench.nodecount import charge_builtins
from bench.servers import ROTARY_CHECKED, ROTARY_INSECURE, ROTARY_STANDARD, ws_path
from bench.storm import storm_specs
from bench.worker import shared_pool
from rotary.config.load import load_config
from rotary.server import serve

__all__ = ["profile_fanout", "profile_storm"]

#: Publications of the profiled fan-out.
_PUBLICATIONS = 20


class _Served:
    """Rotary serving `config` on a daemon thread's event loop until `stop`."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self.port = free_port()
        overrides = {**overrides, "port": self.port, "address": "127.0.0.1"}
        self._config = load_config(None, env={}, overrides=overrides)
        self._ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("Rotary did not start")

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop, started = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve(self._config, started=started, stop=self._stop))
        await started.wait()
        self._ready.set()
        await task

    def call(self, fn: Any) -> None:
        """Run `fn` on the server's thread and wait for it."""
        assert self.loop is not None
        done = threading.Event()
        self.loop.call_soon_threadsafe(lambda: (fn(), done.set()))
        done.wait(30)

    def stop(self) -> None:
        assert self.loop is not None and self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


def profile_storm(n: int, variant: str = "insecure", *, limit: int = 40) -> dict[str, Any]:
    """Profile one storm of `n` clients on a fresh server; see the module docstring."""
    spec = storm_specs(n, exp=int(time.time()) + 3600, timeout=120.0)[variant]
    server = _Served(ROTARY_CHECKED if variant.startswith("checked") else ROTARY_INSECURE)
    spec = replace(spec, url=f"ws://127.0.0.1:{server.port}{ws_path(spec.kind)}")
    pool = shared_pool()
    prof = cProfile.Profile()
    try:
        server.call(prof.enable)
        out = pool.open(spec)
        server.call(prof.disable)
        pool.broadcast({"op": "close"})
    finally:
        server.stop()
    if out["failures"]:
        raise RuntimeError(f"{len(out['failures'])} of {n} clients failed")
    return _grouped(pstats.Stats(prof), n, limit)


def profile_fanout(n: int, *, limit: int = 40) -> dict[str, Any]:
    """Profile the delivery of `_PUBLICATIONS` publications to `n` subscribers."""
    server = _Served(ROTARY_STANDARD)
    url = f"ws://127.0.0.1:{server.port}{ws_path('rotary')}"
    spec = OpenSpec("rotary", url, 0, n, ("news",), SECRET, int(time.time()) + 3600)
    pool = shared_pool()
    prof = cProfile.Profile()
    bodies = [orjson.dumps({"channel": "news", "data": payload(s)}) for s in range(_PUBLICATIONS)]
    api = f"http://127.0.0.1:{server.port}/api/publish"
    try:
        if pool.open(spec, group="profile")["failures"]:
            raise RuntimeError("subscribers failed to open")
        pool.broadcast({"op": "arm", "per_client": _PUBLICATIONS, "group": "profile"})
        server.call(prof.enable)
        asyncio.run(publish_http(api, {"X-API-Key": API_KEY}, bodies))
        replies = pool.broadcast({"op": "wait", "timeout": 120.0, "group": "profile"})
        server.call(prof.disable)
        pool.broadcast({"op": "close"})
    finally:
        server.stop()
    delivered = sum(r["total"] for r in replies)
    if delivered != n * _PUBLICATIONS:
        raise RuntimeError(f"{delivered} of {n * _PUBLICATIONS} deliveries arrived")
    return _grouped(pstats.Stats(prof), delivered, limit)


def _grouped(stats: pstats.Stats, n: int, limit: int) -> dict[str, Any]:
    groups = charge_builtins(stats)
    waiting = groups.pop("waiting (epoll)", (0.0, 0))[0]
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    rows = [
        (tottime, count, f"{file.split('/')[-1]}:{line}({func})")
        for (file, line, func), (_cc, count, tottime, _cum, _callers) in raw.items()
        if "select.epoll" not in func
    ]
    total = sum(t for t, _c in groups.values()) or 1.0
    rows.sort(reverse=True)
    by_time = sorted(groups.items(), key=lambda kv: -kv[1][0])
    return {
        "own_share_by_group": {k: round(100 * t / total, 1) for k, (t, _c) in by_time},
        "calls_per_unit_by_group": {k: round(c / n, 1) for k, (_t, c) in by_time},
        "calls_per_unit": round(sum(c for _t, c in groups.values()) / n, 1),
        "waiting_s": round(waiting, 3),
        "busy_s": round(total, 3),
        "top": [f"{100 * t / total:5.1f}% {c / n:6.2f}/unit {f}" for t, c, f in rows[:limit]],
    }


def main(argv: list[str]) -> int:
    numbers = [int(a) for a in argv if a.isdigit()]
    if "fanout" in argv:
        result = profile_fanout(numbers[0] if numbers else 1000)
    else:
        named = [a for a in argv if a in ("checked", "insecure", "checked_protobuf")]
        variant = named[0] if named else "insecure"
        result = profile_storm(numbers[0] if numbers else 500, variant)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
