"""`proxystorm`: the storm of `bench storm` with the proxy instead of tokens; what it costs.

N clients connect and subscribe to two channels at once, on two fresh Rotary servers per
round: one checking tokens (a connection token and two subscription tokens per client, as
the storm's "tokens checked" run: cold verified-token cache), one asking a proxy backend on
loopback instead (connect with a ``Cookie: user=u<i>`` header and no token, both subscribes
through the subscribe proxy: three HTTP round trips per client). The backend
(`bench.peers.proxy_backend`, aiohttp) does the least work a backend can; it runs as its own
process on the server CPUs, so the time ratio includes its share of the machine, and the
server-CPU ratio counts Rotary alone.

Ratios: ``proxystorm_proxied_over_tokens`` (time) and ``…_cpu`` (Rotary's CPU seconds),
medians over `BENCH_PROXYSTORM_REPEATS` rounds (1 with ``--quick``, else 5).
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import Any

from bench import progress
from bench.clients import OpenSpec
from bench.common import SECRET, CpuWatch, ServerProcess, wait_idle
from bench.results import ratio, rounded
from bench.servers import (
    ROTARY_CHECKED,
    start_all,
    start_proxy_backend,
    start_rotary_with,
    stop_all,
    ws_path,
)
from bench.worker import LoadPool, shared_pool

__all__ = ["proxied_config", "run"]

_LABELS = {"tokens": "Rotary, tokens checked (cold cache)", "proxied": "Rotary, proxy backend"}


def proxied_config(backend: str) -> dict[str, Any]:
    """Rotary with the connect and subscribe proxies at `backend`, the cookie passed on."""
    return {
        **ROTARY_CHECKED,
        "proxy_connect_endpoint": f"{backend}/connect",
        "proxy_subscribe_endpoint": f"{backend}/subscribe",
        "proxy_http_headers": ["Cookie"],
        "namespaces": [{"name": "px", "proxy_subscribe": True}],
    }


def run(*, quick: bool) -> dict[str, Any]:
    """Run the scenario; see the module docstring. Returns the harness result dict."""
    n = 500 if quick else 5000
    repeats = max(1, int(os.environ.get("BENCH_PROXYSTORM_REPEATS", "1" if quick else "5")))
    timeout = 30.0 if quick else 120.0
    specs = {
        "tokens": OpenSpec("rotary", "", 0, n, ("$lobby", "$u{i}"), SECRET,
                           int(time.time()) + 3600, timeout=timeout),
        "proxied": OpenSpec("rotary", "", 0, n, ("px:lobby", "px:u{i}"), timeout=timeout,
                            cookie=True),
    }  # fmt: skip
    progress.expect(2 * repeats)
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in _LABELS}
    pool = shared_pool()
    for k in range(repeats):
        _one_round(pool, specs, runs, proxied_first=k % 2 == 1)
    return _result(n, {key: _median(outs) for key, outs in runs.items() if outs})


def _one_round(
    pool: LoadPool,
    specs: dict[str, OpenSpec],
    runs: dict[str, list[dict[str, Any]]],
    *,
    proxied_first: bool,
) -> None:
    progress.note("proxystorm: starting servers")
    backend = start_proxy_backend()
    try:
        servers = start_all(
            {
                "tokens": lambda: start_rotary_with(ROTARY_CHECKED),
                "proxied": lambda: start_rotary_with(
                    proxied_config(backend.url("", scheme="http"))
                ),
            }
        )
        try:
            for key in reversed(_LABELS) if proxied_first else _LABELS:
                progress.note(f"proxystorm: {_LABELS[key]}")
                server = servers[key]
                if not isinstance(server, ServerProcess):
                    raise RuntimeError(f"{key} server did not start: {server}")
                runs[key].append(_storm(pool, specs[key], server))
                progress.step()
        finally:
            stop_all(servers)
    finally:
        backend.stop()


def _storm(pool: LoadPool, spec: OpenSpec, server: ServerProcess) -> dict[str, Any]:
    spec = replace(spec, url=server.url(ws_path("rotary")))
    watch = CpuWatch(server.pid)
    try:
        out = pool.open(spec)
        out |= watch.stop()
    finally:
        pool.broadcast({"op": "close"})
        wait_idle(server.pid)
    out["complete"] = not out["failures"]
    return out


def _median(outs: list[dict[str, Any]]) -> dict[str, Any]:
    complete = sorted((o for o in outs if o["complete"]), key=lambda o: o["elapsed"])
    if not complete:
        return outs[0]
    cpus = sorted(o["server_cpu_s"] for o in complete)
    return {
        **complete[len(complete) // 2],
        "server_cpu_s": cpus[len(cpus) // 2],
        "all_seconds": [round(o["elapsed"], 3) for o in outs],
    }


def _result(n: int, runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    secs = {k: (r["elapsed"] if r["complete"] else None) for k, r in runs.items()}
    cpu = {k: (r["server_cpu_s"] if r["complete"] else None) for k, r in runs.items()}
    figures: dict[str, Any] = {"proxystorm_clients": n}
    table = []
    for key, r in runs.items():
        figures[f"proxystorm_{key}_s"] = rounded(secs[key])
        figures[f"proxystorm_{key}_server_cpu_s"] = cpu[key]
        figures[f"proxystorm_{key}_failures"] = len(r["failures"])
        figures[f"proxystorm_{key}_rounds_s"] = r.get("all_seconds")
        table.append(
            [_LABELS[key], n, r["ready"], rounded(secs[key]), cpu[key], len(r["failures"])]
        )
    ratios = {
        "proxystorm_proxied_over_tokens": ratio(secs.get("proxied"), secs.get("tokens")),
        "proxystorm_proxied_over_tokens_cpu": ratio(cpu.get("proxied"), cpu.get("tokens")),
    }
    return {
        "figures": figures,
        "ratios": {k: v for k, v in ratios.items() if v is not None},
        "table_header": ["run", "clients", "subscribed", "seconds", "server CPU s", "failed"],
        "table": table,
        "json": {"failures": {k: r["failures"][:5] for k, r in runs.items()}},
    }
