"""`storm`: N clients connect and subscribe to two channels at once; time until all are in.

Rotary three times in one invocation: tokens checked on a fresh server (cold verified-token
cache), the same storm again on the same server with the same tokens (warm cache), and a
server with token checks off (`client_insecure`, public channels). Then python-socketio
doing the equivalent PyJWT checks (connect token in the connect handler, two channel tokens
in a `join` event, two `enter_room`). Clients: connection token + one subscription token per
`$`-private channel (`$lobby`, shared by all, and `$u<i>`, the client's own).
"""

from __future__ import annotations

import time
from typing import Any

from bench import progress
from bench.clients import OpenSpec
from bench.common import SECRET, ServerProcess, ServerUnavailable
from bench.results import cumulative_curve, ratio, rounded
from bench.servers import (
    ROTARY_CHECKED,
    ROTARY_INSECURE,
    start_rotary_with,
    start_socketio,
    ws_path,
)
from bench.worker import LoadPool

__all__ = ["run"]

_PRIVATE = ("$lobby", "$u{i}")
_PUBLIC = ("lobby", "u{i}")


def run(*, quick: bool) -> dict[str, Any]:
    """Run the storm; see the module docstring. Returns the harness result dict."""
    n = 500 if quick else 5000
    timeout = 30.0 if quick else 120.0
    exp = int(time.time()) + 3600
    progress.expect(4)
    runs: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    with LoadPool() as pool:
        checked = OpenSpec("rotary", "", 0, n, _PRIVATE, SECRET, exp, timeout=timeout)
        insecure = OpenSpec("rotary", "", 0, n, _PUBLIC, timeout=timeout)
        socketio = OpenSpec("socketio", "", 0, n, _PRIVATE, SECRET, exp, timeout=timeout)
        try:
            runs |= _rotary_checked(pool, checked)
            progress.step("storm: rotary insecure")
            runs["rotary_insecure"] = _one_server(pool, insecure, lambda: _rotary(ROTARY_INSECURE))
        except ServerUnavailable as exc:
            notes.append(f"rotary not available: {exc}")
            progress.step()
        progress.step("storm: python-socketio")
        runs["socketio"] = _one_server(pool, socketio, start_socketio)
        progress.step()
    return _result(n, runs, notes)


def _rotary(config: dict[str, Any]) -> ServerProcess:
    return start_rotary_with(config)


def _rotary_checked(pool: LoadPool, spec: OpenSpec) -> dict[str, dict[str, Any]]:
    """Cold then warm storm against one checked server (same tokens both times)."""
    progress.note("storm: rotary checked (cold)")
    server = _rotary(ROTARY_CHECKED)
    try:
        spec = _at(spec, server)
        cold = _storm(pool, spec)
        progress.step("storm: rotary checked (warm)")
        warm = _storm(pool, spec)
    finally:
        server.stop()
    return {"rotary_checked": cold, "rotary_warm": warm}


def _one_server(pool: LoadPool, spec: OpenSpec, start: Any) -> dict[str, Any]:
    server = start()
    try:
        return _storm(pool, _at(spec, server))
    finally:
        server.stop()


def _at(spec: OpenSpec, server: ServerProcess) -> OpenSpec:
    from dataclasses import replace

    return replace(spec, url=server.url(ws_path(spec.kind)))


def _storm(pool: LoadPool, spec: OpenSpec) -> dict[str, Any]:
    """One storm; clients are closed afterwards (and the server given a moment to settle)."""
    try:
        out = pool.open(spec)
    finally:
        pool.broadcast({"op": "close"})
        time.sleep(0.5)
    out["complete"] = not out["failures"]
    return out


_LABELS = {
    "rotary_checked": "Rotary, tokens checked (cold cache)",
    "rotary_warm": "Rotary, same tokens again (warm cache)",
    "rotary_insecure": "Rotary, token checks off",
    "socketio": "python-socketio + PyJWT",
}


def _result(n: int, runs: dict[str, dict[str, Any]], notes: list[str]) -> dict[str, Any]:
    secs = {k: (r["elapsed"] if r["complete"] else None) for k, r in runs.items()}
    figures: dict[str, Any] = {"storm_clients": n}
    table = []
    for key, r in runs.items():
        figures[f"storm_{key}_s"] = rounded(secs[key])
        figures[f"storm_{key}_per_s"] = rounded(n / secs[key], 1) if secs[key] else None
        figures[f"storm_{key}_failures"] = len(r["failures"])
        table.append(_row(key, n, r))
    ratios = {
        "storm_checked_over_insecure": ratio(
            secs.get("rotary_checked"), secs.get("rotary_insecure")
        ),
        "storm_warm_over_insecure": ratio(secs.get("rotary_warm"), secs.get("rotary_insecure")),
        "storm_socketio_over_rotary": ratio(secs.get("socketio"), secs.get("rotary_checked")),
    }
    curves = {
        f"storm_{k}": cumulative_curve(
            r["ready_at"], xlabel="seconds since start", ylabel=f"clients subscribed ({_LABELS[k]})"
        )
        for k, r in runs.items()
    }
    extra = {"notes": notes, "failures": {k: r["failures"][:5] for k, r in runs.items()}}
    return {
        "figures": figures,
        "ratios": {k: v for k, v in ratios.items() if v is not None},
        "table_header": ["storm run", "clients", "subscribed", "seconds", "clients/s", "failed"],
        "table": table,
        "curves": curves,
        "json": extra,
    }


def _row(key: str, n: int, r: dict[str, Any]) -> list[Any]:
    elapsed = r["elapsed"]
    rate = round(r["ready"] / elapsed) if r["ready"] and elapsed == elapsed else "-"
    return [_LABELS[key], n, r["ready"], round(elapsed, 3), rate, len(r["failures"])]
