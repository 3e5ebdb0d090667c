"""`storm`: N clients connect and subscribe to two channels at once; time until all are in.

Rotary four times in a round: tokens checked on a fresh server (cold verified-token cache),
the same storm again on the same server with the same tokens (warm cache), and twice on a
server with token checks off (`client_insecure`, public channels): the first is the
baseline the issue names, the second is like for like with the warm storm (both the second
storm on their server). Then the checked storm once more on a fresh server with Protobuf
clients (`storm_protobuf_over_json`: its time over the JSON checked storm's). Then the
transports side by side, each on a fresh server with HTTP-streaming and SSE on: JSON
WebSocket clients, HTTP-streaming clients and SSE clients, all with a connection token and
the two public channels (`lobby`, `u<i>`; a streaming client names them in its connect
request's ``subs``, a WebSocket client subscribes after connecting, as the SDKs do):
`storm_http_stream_over_websocket` and `storm_sse_over_websocket`, time and server CPU. Then
python-socketio doing the equivalent PyJWT checks (connect token in the connect handler,
two channel tokens in a `join` event, two `enter_room`), and Centrifugo v6.9.1 itself with
the checked storm's clients and tokens (GOMAXPROCS=1, pinned to the server CPU like Rotary,
so the ratio compares one core with one core).
Clients: connection token + one subscription token per `$`-private channel (`$lobby`,
shared by all, and `$u<i>`, the client's own).

A full run plays 7 rounds of Rotary's storms (`BENCH_STORM_REPEATS`), the peers in the
first 3 of them (`BENCH_STORM_PEER_REPEATS`: socket.io is ~3x slower and moves far less), every
round on fresh servers, and reports the median of each variant: on a shared two-core
machine one storm can move by a fifth or more between identical runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bench import progress
from bench.clients import OpenSpec
from bench.common import SECRET, CpuWatch, ServerProcess, ServerUnavailable, wait_idle
from bench.results import cumulative_curve, ratio, rounded
from bench.servers import (
    ROTARY_CHECKED,
    ROTARY_INSECURE,
    ROTARY_STREAMING,
    start_all,
    start_centrifugo_checked,
    start_rotary_with,
    start_socketio,
    stop_all,
    ws_path,
)
from bench.streamclients import STREAM_KINDS
from bench.worker import LoadPool, shared_pool

__all__ = ["run", "storm_ratios", "storm_specs"]

_PRIVATE = ("$lobby", "$u{i}")
_PUBLIC = ("lobby", "u{i}")
#: The transports compared side by side → the load client kind of each.
_TRANSPORTS = {"websocket": "rotary", "http_stream": "http_stream", "sse": "sse"}


def run(*, quick: bool) -> dict[str, Any]:
    """Run the storm; see the module docstring. Returns the harness result dict.

    BENCH_STORM_REPEATS=k runs k rounds of Rotary's storms (default 1 with `quick`, else 7);
    BENCH_STORM_PEER_REPEATS=j runs the socket.io storm in the first j of them (default 1
    with `quick`, else 3). Figures and ratios are the medians over the complete runs of each
    variant.
    """
    n = 500 if quick else 5000
    repeats = max(1, int(os.environ.get("BENCH_STORM_REPEATS", "1" if quick else "7")))
    peer_default = "1" if quick else "3"
    peer_repeats = min(repeats, int(os.environ.get("BENCH_STORM_PEER_REPEATS", peer_default)))
    timeout = 30.0 if quick else 120.0
    exp = int(time.time()) + 3600
    progress.expect(len(_ROTARY_LABELS) * repeats + len(_PEERS) * peer_repeats)
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in _LABELS}
    notes: list[str] = []
    specs = storm_specs(n, exp=exp, timeout=timeout)
    pool = shared_pool()
    for k in range(repeats):
        _one_round(pool, specs, runs, notes, with_peer=k < peer_repeats, insecure_first=k % 2 == 1)
    typical = {k: _median(v) for k, v in runs.items() if v}
    return _result(n, typical, notes)


def storm_specs(n: int, *, exp: int, timeout: float) -> dict[str, OpenSpec]:
    """The storm's clients per server kind; the caller fills in each server's URL.

    ``checked``: Rotary, connection token and two subscription tokens; ``insecure``: Rotary,
    no tokens, public channels; ``socketio``: the peer, the same tokens.
    """
    return {
        "checked": OpenSpec("rotary", "", 0, n, _PRIVATE, SECRET, exp, timeout=timeout),
        "checked_protobuf": OpenSpec(
            "rotary-protobuf", "", 0, n, _PRIVATE, SECRET, exp, timeout=timeout
        ),
        "insecure": OpenSpec("rotary", "", 0, n, _PUBLIC, timeout=timeout),
        "socketio": OpenSpec("socketio", "", 0, n, _PRIVATE, SECRET, exp, timeout=timeout),
        **{
            f"transport_{kind}": OpenSpec(client, "", 0, n, _PUBLIC, SECRET, exp, timeout=timeout)
            for kind, client in _TRANSPORTS.items()
        },
    }


def storm_ratios(
    value: dict[str, float | None], *, prefix: str, suffix: str = ""
) -> dict[str, float | None]:
    """The storm's four ratios of `value` (seconds, CPU seconds, instructions) by variant.

    Keys ``<prefix>_checked_over_insecure<suffix>`` and so on; None where a variant is
    missing. ``…_warm_over_insecure_again`` is like for like: both the second storm on
    their server (the heap already grown).
    """
    pairs = {
        "checked_over_insecure": ("rotary_checked", "rotary_insecure"),
        "warm_over_insecure": ("rotary_warm", "rotary_insecure"),
        "socketio_over_rotary": ("socketio", "rotary_checked"),
        "warm_over_insecure_again": ("rotary_warm", "rotary_insecure_again"),
    }
    return {
        f"{prefix}_{name}{suffix}": ratio(value.get(top), value.get(bottom))
        for name, (top, bottom) in pairs.items()
    }


def _one_round(
    pool: LoadPool,
    specs: dict[str, OpenSpec],
    runs: dict[str, list[dict[str, Any]]],
    notes: list[str],
    *,
    with_peer: bool,
    insecure_first: bool,
) -> None:
    """Two storms on a fresh checked server (cold, then warm), two on a fresh insecure one.

    The pairs swap order every other round, so a drift of the machine's speed within a
    round does not always favour the same pair; with `with_peer`, the peers (socket.io,
    Centrifugo) follow.
    """
    progress.note("storm: starting servers")
    starters: dict[str, Callable[[], ServerProcess]] = {
        "checked": lambda: start_rotary_with(ROTARY_CHECKED),
        "insecure": lambda: start_rotary_with(ROTARY_INSECURE),
        "checked_protobuf": lambda: start_rotary_with(ROTARY_CHECKED),
        **{f"transport_{kind}": _start_streaming for kind in _TRANSPORTS},
    }
    if with_peer:
        starters["socketio"] = start_socketio
        starters["centrifugo"] = start_centrifugo_checked
    servers = start_all(starters)
    try:
        pairs = [
            ("checked", ("rotary_checked", "rotary_warm")),
            ("insecure", ("rotary_insecure", "rotary_insecure_again")),
            ("checked_protobuf", ("rotary_checked_protobuf",)),
            *((f"transport_{kind}", (f"rotary_transport_{kind}",)) for kind in _TRANSPORTS),
        ]
        for server_name, keys in reversed(pairs) if insecure_first else pairs:
            server = servers[server_name]
            for key in keys:
                progress.note(f"storm: {_LABELS[key]}")
                if isinstance(server, ServerProcess):
                    runs[key].append(_storm(pool, specs[server_name], server))
                else:
                    notes.append(f"{key} not available: {server}")
                progress.step()
        for peer, spec_name in _PEERS.items() if with_peer else ():
            progress.note(f"storm: {_LABELS[peer]}")
            _storm_into(pool, specs[spec_name], servers, peer, runs[peer], notes)
            progress.step()
    finally:
        stop_all(servers)


def _start_streaming() -> ServerProcess:
    return start_rotary_with(ROTARY_STREAMING)


def _storm_into(
    pool: LoadPool,
    spec: OpenSpec,
    servers: dict[str, ServerProcess | ServerUnavailable],
    name: str,
    into: list[dict[str, Any]],
    notes: list[str],
) -> None:
    server = servers[name]
    if isinstance(server, ServerProcess):
        into.append(_storm(pool, spec, server))
    else:
        notes.append(f"{name} not available: {server}")


def _median(outs: list[dict[str, Any]]) -> dict[str, Any]:
    """The complete run of median time (the first run when none completed).

    With an even count the slower of the two middle runs is taken. The server CPU figure is
    the median of the complete runs' CPU, which need not come from the same run.
    """
    complete = sorted((o for o in outs if o["complete"]), key=lambda o: o["elapsed"])
    if not complete:
        return outs[0]
    middle = complete[len(complete) // 2]
    cpus = sorted(o["server_cpu_s"] for o in complete if o.get("server_cpu_s") is not None)
    cpu = cpus[len(cpus) // 2] if cpus else middle.get("server_cpu_s")
    return {
        **middle,
        "server_cpu_s": cpu,
        "all_seconds": [round(o["elapsed"], 3) for o in outs],
        "all_server_cpu_s": [o.get("server_cpu_s") for o in outs],
    }


def _storm(pool: LoadPool, spec: OpenSpec, server: ServerProcess) -> dict[str, Any]:
    """One storm; the clients are closed afterwards and the server left to go idle."""
    stream = spec.kind in STREAM_KINDS
    spec = replace(spec, url=server.url("", "http") if stream else server.url(ws_path(spec.kind)))
    watch = CpuWatch(server.pid)
    try:
        out = pool.open(spec)
        out |= watch.stop()
    finally:
        pool.broadcast({"op": "close"})
        out_idle = wait_idle(server.pid)
    out["complete"] = not out["failures"]
    out["settle_s"] = round(out_idle, 2)
    return out


_ROTARY_LABELS = {
    "rotary_checked": "Rotary, tokens checked (cold cache)",
    "rotary_warm": "Rotary, same tokens again (warm cache)",
    "rotary_insecure": "Rotary, token checks off",
    "rotary_insecure_again": "Rotary, token checks off, again (same server)",
    "rotary_checked_protobuf": "Rotary, tokens checked, Protobuf clients",
    "rotary_transport_websocket": "Rotary, public channels, JSON WebSocket clients",
    "rotary_transport_http_stream": "Rotary, public channels, HTTP-streaming clients",
    "rotary_transport_sse": "Rotary, public channels, SSE clients",
}
_LABELS = {
    **_ROTARY_LABELS,
    "socketio": "python-socketio + PyJWT",
    "centrifugo": "Centrifugo v6.9.1, tokens checked, GOMAXPROCS=1",
}
# Each peer and the clients it gets: Centrifugo speaks Rotary's protocol, so the same ones.
_PEERS = {"socketio": "socketio", "centrifugo": "checked"}


def _result(n: int, runs: dict[str, dict[str, Any]], notes: list[str]) -> dict[str, Any]:
    secs = {k: (r["elapsed"] if r["complete"] else None) for k, r in runs.items()}
    figures: dict[str, Any] = {"storm_clients": n}
    table = []
    for key, r in runs.items():
        figures[f"storm_{key}_s"] = rounded(secs[key])
        figures[f"storm_{key}_per_s"] = rounded(n / secs[key], 1) if secs[key] else None
        figures[f"storm_{key}_failures"] = len(r["failures"])
        figures[f"storm_{key}_server_cpu_s"] = r.get("server_cpu_s")
        figures[f"storm_{key}_load_cpu_s"] = r.get("load_cpu_s")
        figures[f"storm_{key}_rounds_s"] = r.get("all_seconds", [rounded(secs[key])])
        figures[f"storm_{key}_rounds_server_cpu_s"] = r.get("all_server_cpu_s")
        table.append(_row(key, n, r))
    cpu = {k: (r.get("server_cpu_s") if r["complete"] else None) for k, r in runs.items()}
    ratios = storm_ratios(secs, prefix="storm") | storm_ratios(cpu, prefix="storm", suffix="_cpu")
    for suffix, value in (("", secs), ("_cpu", cpu)):
        both = value.get("rotary_checked"), value.get("centrifugo")
        ratios[f"storm_rotary_over_centrifugo{suffix}"] = ratio(*both)
    protobuf = ("rotary_checked_protobuf", "rotary_checked")
    ratios["storm_protobuf_over_json"] = ratio(secs.get(protobuf[0]), secs.get(protobuf[1]))
    ratios["storm_protobuf_over_json_cpu"] = ratio(cpu.get(protobuf[0]), cpu.get(protobuf[1]))
    ratios |= _transport_ratios(secs, cpu)
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
        "table_header": [
            "storm run",
            "clients",
            "subscribed",
            "seconds",
            "clients/s",
            "failed",
            "server CPU s",
            "load CPU s",
            "foreign CPU0",
        ],
        "table": table,
        "curves": curves,
        "json": extra,
    }


def _transport_ratios(
    secs: dict[str, float | None], cpu: dict[str, float | None]
) -> dict[str, float | None]:
    """Each streaming transport's storm time and server CPU over the JSON WebSocket's."""
    out: dict[str, float | None] = {}
    base = "rotary_transport_websocket"
    for kind in ("http_stream", "sse"):
        top = f"rotary_transport_{kind}"
        out[f"storm_{kind}_over_websocket"] = ratio(secs.get(top), secs.get(base))
        out[f"storm_{kind}_over_websocket_cpu"] = ratio(cpu.get(top), cpu.get(base))
    return out


def _row(key: str, n: int, r: dict[str, Any]) -> list[Any]:
    elapsed = r["elapsed"]
    rate = round(r["ready"] / elapsed) if r["ready"] and elapsed == elapsed else "-"
    cpu = [r.get("server_cpu_s"), r.get("load_cpu_s"), r.get("foreign_share")]
    return [_LABELS[key], n, r["ready"], round(elapsed, 3), rate, len(r["failures"]), *cpu]
