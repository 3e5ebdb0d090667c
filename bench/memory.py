"""`memory`: server RSS per connection, each connection holding one subscription.

For each N, a fresh server: VmRSS (from /proc/<pid>/status) once it is ready, then N clients
connect (Rotary: connection token checked, subscribe to the public channel `news`), a short
settle, VmRSS again. KB per connection = (after − before) / N. Beside it a bare aiohttp
WebSocket server holding the same number of connections (nothing else), since aiohttp is the
library Rotary's transport is built on.

Then, at the largest N, Rotary again with a 200-byte ``info`` object in every connection
token (figure ``memory_rotary_info_kb_per_connection``), as backends usually put the user's
display data there. Then history: a fresh Rotary whose namespace `kept` keeps every
publication, M publications of about 100 bytes through the HTTP API to one channel, VmRSS
before and after: KB per kept publication (figure ``memory_history_kb_per_publication``;
M 20,000, 5,000 with `quick`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import aiohttp
import orjson

from bench import progress
from bench.clients import OpenSpec
from bench.common import API_KEY, SECRET, ServerProcess, ServerUnavailable, rss_kb
from bench.fanout import payload, publish_http
from bench.peers.centrifugo import cores_label
from bench.results import ratio
from bench.servers import (
    ROTARY_STANDARD,
    start_aiohttp_bare,
    start_all,
    start_centrifugo_standard,
    start_rotary_with,
    stop_all,
    ws_path,
)
from bench.worker import LoadPool, shared_pool

__all__ = ["run"]

_SETTLE_S = 0.5
_LABELS = {
    "rotary": "Rotary (token + 1 subscription)",
    "aiohttp": "bare aiohttp WebSocket",
    "centrifugo": f"Centrifugo v6.9.1 (token + 1 subscription), {cores_label()}",
}
# Servers the load clients drive with a connection token and one subscription.
_CENTRIFUGO_PROTOCOL = ("rotary", "centrifugo")


def run(*, quick: bool) -> dict[str, Any]:
    """Measure at N = 1,000 (quick) or 1,000 and 10,000 (full); see the module docstring."""
    sizes = [1000] if quick else [1000, 10_000]
    progress.expect(len(_LABELS) * len(sizes) + 2)
    exp = int(time.time()) + 3600
    results: dict[str, dict[int, dict[str, Any]]] = {kind: {} for kind in _LABELS}
    notes: list[str] = []
    pool = shared_pool()
    for n in sizes:
        progress.note(f"memory: starting servers N={n}")
        servers = start_all({kind: (lambda k=kind: _start(k)) for kind in _LABELS})
        try:
            for kind, server in servers.items():
                progress.note(f"memory: {kind} N={n}")
                if not isinstance(server, ServerProcess):
                    notes.append(f"{kind} not available: {server}")
                else:
                    _measure_into(pool, server, n=n, exp=exp, into=results[kind], notes=notes)
                progress.step()
        finally:
            stop_all(servers)
    progress.note("memory: rotary, token with info")
    with_info = _with_info(pool, sizes[-1], exp, notes)
    progress.step()
    progress.note("memory: history")
    history = _history(5000 if quick else 20_000, notes)
    progress.step()
    out = _result(sizes, results, notes)
    label = f"Rotary, token with {_INFO_SIZE}-byte info + 1 subscription"
    _add_extra(out, "memory_rotary_info_kb_per_connection", "with_info", label, with_info)
    if history is not None:
        label = f"Rotary history, {history['publications']:,} kept publications (per publication)"
        _add_extra(out, "memory_history_kb_per_publication", "history", label, history)
    return out


def _add_extra(
    out: dict[str, Any], figure: str, key: str, label: str, measured: dict[str, Any] | None
) -> None:
    """Add one extra measurement (`_measure` or `_history` output) to the result `out`.

    Its per-item figure (the last entry of `measured`) becomes `figure`; a table row too.
    """
    if measured is None:
        return
    count, before, after, per_item = measured.values()
    out["figures"][figure] = per_item
    out["json"][key] = measured
    out["table"].append([label, count, before // 1024, after // 1024, per_item])


#: Bytes of ``info`` in each connection token of the with-info measurement.
_INFO_SIZE = 200


def _with_info(pool: LoadPool, n: int, exp: int, notes: list[str]) -> dict[str, Any] | None:
    """Rotary's RSS per connection when each connection token carries `_INFO_SIZE` of info."""
    try:
        server = start_rotary_with(ROTARY_STANDARD)
        return _measure(pool, server, "rotary", n, exp, info_size=_INFO_SIZE)
    except (ServerUnavailable, RuntimeError, TimeoutError) as exc:
        notes.append(f"rotary with token info N={n} not measured: {exc}")
        return None


#: A namespace that keeps every publication of the history measurement.
_HISTORY_NAMESPACE = {"name": "kept", "history_size": 100_000, "history_ttl": "1h"}


def _history(m: int, notes: list[str]) -> dict[str, Any] | None:
    """RSS per publication kept in history: M publications of ~100 bytes to `kept:all`."""
    config = {**ROTARY_STANDARD, "namespaces": [_HISTORY_NAMESPACE]}
    try:
        server = start_rotary_with(config)
    except ServerUnavailable as exc:
        notes.append(f"history not measured: {exc}")
        return None
    try:
        time.sleep(_SETTLE_S)
        before = rss_kb(server.pid)
        bodies = [orjson.dumps({"channel": "kept:all", "data": payload(s)}) for s in range(m)]
        url = server.url("/api/publish", "http")
        asyncio.run(publish_http(url, {"X-API-Key": API_KEY}, bodies))
        time.sleep(_SETTLE_S)
        after = rss_kb(server.pid)
    except (RuntimeError, OSError, aiohttp.ClientError) as exc:
        notes.append(f"history not measured: {exc}")
        return None
    finally:
        server.stop()
    return _rss_growth("publications", m, before, after) | {
        "kb_per_publication": round((after - before) / m, 3)
    }


def _measure_into(
    pool: LoadPool,
    server: ServerProcess,
    *,
    n: int,
    exp: int,
    into: dict[int, dict[str, Any]],
    notes: list[str],
) -> None:
    kind = server.name if server.name in _CENTRIFUGO_PROTOCOL else "aiohttp"
    try:
        into[n] = _measure(pool, server, kind, n, exp)
    except (RuntimeError, TimeoutError) as exc:
        notes.append(f"{kind} N={n} not measured: {exc}")


def _start(kind: str) -> ServerProcess:
    if kind == "rotary":
        return start_rotary_with(ROTARY_STANDARD)
    return start_centrifugo_standard() if kind == "centrifugo" else start_aiohttp_bare()


def _measure(
    pool: LoadPool, server: ServerProcess, kind: str, n: int, exp: int, *, info_size: int = 0
) -> dict[str, Any]:
    """RSS before and after N clients connect; the server is stopped afterwards.

    `info_size`: bytes of ``info`` in each Rotary connection token (0: none).
    """
    try:
        time.sleep(_SETTLE_S)
        before = rss_kb(server.pid)
        speaks = kind in _CENTRIFUGO_PROTOCOL
        client = "rotary" if speaks else "bare"
        channels = ("news",) if speaks else ()
        spec = OpenSpec(client, server.url(ws_path(kind)), 0, n, channels, SECRET, exp)
        spec = replace(spec, info_size=info_size)
        opened = pool.open(spec)
        if opened["failures"]:
            raise RuntimeError(f"{len(opened['failures'])} clients failed: {opened['failures'][0]}")
        time.sleep(_SETTLE_S)
        after = rss_kb(server.pid)
    finally:
        pool.broadcast({"op": "close"})
        server.stop()
    return _rss_growth("connections", n, before, after) | {
        "kb_per_connection": round((after - before) / n, 2)
    }


def _rss_growth(what: str, count: int, before: int, after: int) -> dict[str, Any]:
    """The raw figures of one measurement: `count` of `what`, RSS before and after (KB)."""
    return {what: count, "rss_before_kb": before, "rss_after_kb": after}


def _result(
    sizes: list[int], results: dict[str, dict[int, dict[str, Any]]], notes: list[str]
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    table = []
    for kind, by_n in results.items():
        for n, r in by_n.items():
            figures[f"memory_{kind}_{n}_kb_per_connection"] = r["kb_per_connection"]
            table.append(
                [
                    _LABELS[kind],
                    n,
                    r["rss_before_kb"] // 1024,
                    r["rss_after_kb"] // 1024,
                    r["kb_per_connection"],
                ]
            )
    big = sizes[-1]
    rot = results["rotary"].get(big, {}).get("kb_per_connection")
    bare = results["aiohttp"].get(big, {}).get("kb_per_connection")
    cfo = results["centrifugo"].get(big, {}).get("kb_per_connection")
    ratios = {
        "memory_kb_per_connection": rot,
        "memory_rotary_over_bare": ratio(rot, bare),
        "memory_rotary_over_centrifugo": ratio(rot, cfo),
    }
    curves = {
        f"memory_{kind}": {
            "x": list(by_n),
            "y": [r["kb_per_connection"] for r in by_n.values()],
            "xlabel": "connections",
            "ylabel": f"KB per connection ({_LABELS[kind]})",
        }
        for kind, by_n in results.items()
        if by_n
    }
    return {
        "figures": figures,
        "ratios": {k: v for k, v in ratios.items() if v is not None},
        "table_header": [
            "memory server",
            "connections",
            "RSS before MB",
            "RSS after MB",
            "KB/connection",
        ],
        "table": table,
        "curves": curves,
        "json": {
            "runs": {k: {str(n): r for n, r in v.items()} for k, v in results.items()},
            "notes": notes,
            "ratio_at_connections": big,
        },
    }
