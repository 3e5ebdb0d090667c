"""`fanout`: N subscribers on one channel, M publications of ~100 bytes; deliveries per second.

The clock starts before the first publication and stops when every client holds every
message (counted at the clients). Servers, each on CPU 0 with the load on the other CPU:

- Rotary (connection token checked, public channel `news`), publications via POST
  /api/publish with X-API-Key, up to 8 requests in flight;
- the same with Protobuf subscribers (``cf_protocol=protobuf``) on a Rotary of their own,
  measured once (`fanout_protobuf_over_json`);
- a bare broadcast on picows (publications over a control WebSocket);
- a bare broadcast on aiohttp (POST /publish);
- python-socketio emitting `msg` to the room (POST /publish calling `sio.emit`);
- Rotary again, its subscribers on HTTP-streaming, then on SSE (`bench.streamclients`:
  connect with the channel in its ``subs``, pings answered through /emulation), each on a
  server of its own, measured as many rounds as the WebSocket pair; their ratios to Rotary
  over WebSocket compare the median rounds of one invocation;
- Centrifugo v6.9.1 configured like Rotary (GOMAXPROCS=1, pinned to CPU 0 like Rotary),
  publications via its POST /api/publish.

Every case is measured in rounds (`rounds`: five in a full run, three quick;
``BENCH_FANOUT_ROUNDS`` sets it): the same subscribers receive M publications once per
round, and a case's figures are those of its median round (by deliveries/s), every round's
figures kept in the JSON (``rounds``). One fan-out of 250,000 deliveries lasts about a
second, which a single round cannot tell from noise. Rotary and picows hold their
subscribers at the same time and deliveries alternate between them (order swapped each
round); their ratio is the median of the per-round ratios, so both sides see the same
background load.

When Rotary delivers less than 0.8× picows, a further Rotary run under cProfile records
where the server's time goes (`json.profile`), unless BENCH_PROFILE=0.
"""

from __future__ import annotations

import asyncio
import os
import pstats
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench import progress
from bench.clients import OpenSpec
from bench.common import (
    API_KEY,
    SECRET,
    CpuWatch,
    ServerProcess,
    ServerUnavailable,
    wait_idle,
)
from bench.peers.centrifugo import cores_label
from bench.profiling import pyspy_path, spy_on, summarize
from bench.results import ratio, rounded
from bench.servers import (
    ROTARY_STANDARD,
    ROTARY_STREAMING,
    start_all,
    start_peer,
    start_rotary_with,
    stop_all,
    ws_path,
)
from bench.worker import LoadPool, shared_pool

__all__ = ["run"]

_KINDS = (
    "rotary",
    "rotary-protobuf",
    "picows",
    "aiohttp",
    "socketio",
    "rotary-http_stream",
    "rotary-sse",
    "centrifugo",
)
#: Rotary measured over its streaming transports: kind → load client kind.
_STREAMING = {"rotary-http_stream": "http_stream", "rotary-sse": "sse"}
_LABELS = {
    "rotary": "Rotary (HTTP API publish)",
    "rotary-protobuf": "Rotary, Protobuf subscribers",
    "rotary-http_stream": "Rotary over HTTP-streaming",
    "rotary-sse": "Rotary over SSE",
    "centrifugo": f"Centrifugo v6.9.1, {cores_label()}",
    "picows": "bare broadcast, picows",
    "aiohttp": "bare broadcast, aiohttp",
    "socketio": "python-socketio room emit",
}
_IN_FLIGHT = 8
_PROFILE_THRESHOLD = 0.8
_PAIR = ("rotary", "picows")


def _plan(quick: bool) -> list[tuple[int, int]]:
    """(subscribers, publications) pairs: about 20k deliveries quick, 200-250k full."""
    if quick:
        return [(500, 40)]
    return [(1000, 200), (5000, 50)]


def run(*, quick: bool) -> dict[str, Any]:
    """Run every server at every size; see the module docstring."""
    plan = _plan(quick)
    progress.expect(len(_KINDS) * len(plan))
    exp = int(time.time()) + 3600
    rounds = fanout_rounds(quick)
    results: dict[str, dict[int, dict[str, Any]]] = {}
    paired: dict[int, dict[str, Any]] = {}
    notes: list[str] = []
    pool = shared_pool()
    progress.note("fanout: starting servers")
    servers = start_all({kind: (lambda k=kind: _start(k)) for kind in _KINDS})
    try:
        for kind, server in servers.items():
            if not isinstance(server, ServerProcess):
                notes.append(f"{kind} not available: {server}")
        if all(isinstance(servers[k], ServerProcess) for k in _PAIR):
            _run_pair(
                pool, servers, plan, exp=exp, rounds=rounds, into=(results, paired), notes=notes
            )
        for kind in _KINDS:
            server = servers[kind]
            if kind in results or not isinstance(server, ServerProcess):
                continue
            try:
                results[kind] = _kind(pool, server, kind, plan, exp=exp, repeats=rounds)
            except (RuntimeError, TimeoutError) as exc:
                notes.append(f"{kind} not measured: {exc}")
            finally:
                server.stop()
    finally:
        stop_all(servers)
    n_big = plan[-1][0]
    shares = [_headline(plan, results, paired), paired.get(n_big, {}).get("median_cpu")]
    worst = min((x for x in shares if x is not None), default=None)
    profile = _maybe_profile(pool, worst, plan, exp=exp, quick=quick)
    return _result(plan, results, paired, notes, profile)


def _headline(
    plan: list[tuple[int, int]],
    results: dict[str, dict[int, dict[str, Any]]],
    paired: dict[int, dict[str, Any]],
) -> float | None:
    """Rotary / picows at the largest N: the paired median, else the ratio of the bests."""
    n = plan[-1][0]
    if n in paired and paired[n]["median"] is not None:
        median: float = paired[n]["median"]
        return median
    return ratio(_rate(results, "rotary", n), _rate(results, "picows", n))


def _run_pair(
    pool: LoadPool,
    servers: dict[str, ServerProcess | ServerUnavailable],
    plan: list[tuple[int, int]],
    *,
    exp: int,
    rounds: int,
    into: tuple[dict[str, dict[int, dict[str, Any]]], dict[int, dict[str, Any]]],
    notes: list[str],
) -> None:
    """Rotary and picows with subscribers on both at once, deliveries alternating.

    Each round measures both back to back (order swapped every round), so both see the same
    background load; the ratio reported is the median of the per-round ratios.
    """
    results, paired = into
    for n, m in plan:
        progress.note(f"fanout: rotary vs picows N={n}")
        try:
            runs = _alternate(pool, servers, n=n, m=m, exp=exp, rounds=rounds)
        except (RuntimeError, TimeoutError) as exc:
            notes.append(f"rotary/picows N={n} not measured: {exc}")
            continue
        for kind in _PAIR:
            results.setdefault(kind, {})[n] = _summary(runs[kind])
            progress.step()
        paired[n] = _pair_ratios(runs)


def _alternate(
    pool: LoadPool,
    servers: dict[str, ServerProcess | ServerUnavailable],
    *,
    n: int,
    m: int,
    exp: int,
    rounds: int,
) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in _PAIR}
    try:
        for kind in _PAIR:
            _open(pool, _server(servers, kind), kind, n=n, exp=exp)
        for r in range(rounds):
            for kind in _PAIR if r % 2 == 0 else tuple(reversed(_PAIR)):
                runs[kind].append(_deliver(pool, _server(servers, kind), kind, n=n, m=m))
    finally:
        pool.broadcast({"op": "close"})
        for kind in _PAIR:
            wait_idle(_server(servers, kind).pid)
    return runs


def _server(servers: dict[str, ServerProcess | ServerUnavailable], kind: str) -> ServerProcess:
    server = servers[kind]
    assert isinstance(server, ServerProcess)
    return server


def _pair_ratios(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    pairs = list(zip(runs["rotary"], runs["picows"], strict=True))
    wall = [ratio(a["deliveries_per_s"], b["deliveries_per_s"]) for a, b in pairs]
    key = "deliveries_per_server_cpu_s"
    cpu = [ratio(a[key], b[key]) for a, b in pairs]
    return {
        "per_round": [x for x in wall if x is not None],
        "per_round_cpu": [x for x in cpu if x is not None],
        "median": _median([x for x in wall if x is not None]),
        "median_cpu": _median([x for x in cpu if x is not None]),
    }


def fanout_rounds(quick: bool) -> int:
    """Delivery rounds per case: ``BENCH_FANOUT_ROUNDS``, else 3 quick and 5 full."""
    return max(1, int(os.environ.get("BENCH_FANOUT_ROUNDS") or (3 if quick else 5)))


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A case's figures: its median round by deliveries/s (the lower middle one of an even
    count; a round that did not complete counts as the slowest), with every round's rate,
    rate per server CPU-second and time (``rounds``) and the best rate."""
    ordered = sorted(runs, key=lambda r: r["deliveries_per_s"] or 0)
    middle = ordered[(len(ordered) - 1) // 2]
    keys = ("deliveries_per_s", "deliveries_per_server_cpu_s", "seconds")
    return {
        **middle,
        "rounds": [{k: r[k] for k in keys} for r in runs],
        "best_deliveries_per_s": ordered[-1]["deliveries_per_s"],
    }


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _start(kind: str, profile_to: Path | None = None) -> ServerProcess:
    if kind in _STREAMING:
        return start_rotary_with(ROTARY_STREAMING)
    if kind.startswith("rotary"):
        return start_rotary_with(ROTARY_STANDARD, profile_to=profile_to)
    return start_peer(kind)


def _kind(
    pool: LoadPool,
    server: ServerProcess,
    kind: str,
    plan: list[tuple[int, int]],
    *,
    exp: int,
    repeats: int,
) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for n, m in plan:
        progress.note(f"fanout: {kind} N={n}")
        out[n] = _measure(pool, server, kind, n=n, m=m, exp=exp, repeats=repeats)
        progress.step()
    return out


def _measure(
    pool: LoadPool, server: ServerProcess, kind: str, *, n: int, m: int, exp: int, repeats: int
) -> dict[str, Any]:
    """Open N subscribers; `repeats` times publish M messages and wait for every delivery.

    Returns the median round with every round's figures (`_summary`).
    """
    try:
        _open(pool, server, kind, n=n, exp=exp)
        runs = [_deliver(pool, server, kind, n=n, m=m) for _ in range(repeats)]
    finally:
        pool.broadcast({"op": "close"})
        wait_idle(server.pid)
    return _summary(runs)


def _open(pool: LoadPool, server: ServerProcess, kind: str, *, n: int, exp: int) -> None:
    """Open N subscribers of `server` in the load group named `kind`."""
    kinds = {"picows": "bare", "aiohttp": "bare", "centrifugo": "rotary", **_STREAMING}
    client_kind = kinds.get(kind, kind)
    channels = ("news",) if _speaks_centrifugo(kind) else ("$news",) if kind == "socketio" else ()
    url = server.url("", "http") if kind in _STREAMING else server.url(ws_path(kind))
    spec = OpenSpec(client_kind, url, 0, n, channels, SECRET, exp)
    opened = pool.open(spec, group=kind)
    if opened["failures"]:
        raise RuntimeError(f"{kind}: {len(opened['failures'])} clients failed to open")


def _deliver(pool: LoadPool, server: ServerProcess, kind: str, *, n: int, m: int) -> dict[str, Any]:
    """Publish M messages to the `kind` group's N subscribers; wait for every delivery."""
    wait_idle(server.pid)  # e.g. the other server's round or the subscribe storm just ended
    pool.broadcast({"op": "arm", "per_client": m, "group": kind})
    watch = CpuWatch(server.pid)
    t0 = time.monotonic()
    asyncio.run(_publish(kind, server, m))
    t_pub = time.monotonic()
    replies = pool.broadcast({"op": "wait", "timeout": max(120.0, m * n / 2_000), "group": kind})
    done = [r["t_done"] for r in replies]
    complete = all(t is not None for t in done)
    elapsed = (max(done) - t0) if complete else None
    cpu = watch.stop()
    server_cpu = cpu["server_cpu_s"]
    wall = elapsed or (time.monotonic() - t0)
    return {
        "subscribers": n,
        "publications": m,
        "deliveries": sum(r["total"] for r in replies),
        "complete": complete,
        "seconds": rounded(elapsed, 4),
        "deliveries_per_s": round(n * m / elapsed) if elapsed else None,
        "deliveries_per_server_cpu_s": round(n * m / server_cpu)
        if complete and server_cpu
        else None,
        "publish_seconds": round(t_pub - t0, 4),
        "server_cpu_share": cpu["server_share"],
        "foreign_cpu_share": cpu["foreign_share"],
        "load_cpu_share": rounded(sum(r["cpu_s"] for r in replies) / wall / pool.size, 2),
        "short_clients": sum(r["short_clients"] for r in replies),
    }


def payload(seq: int) -> dict[str, Any]:
    """A publication of about 100 bytes once encoded."""
    return {"seq": seq, "text": "fan-out benchmark payload " + "x" * (62 - len(str(seq)))}


def _speaks_centrifugo(kind: str) -> bool:
    """Whether `kind` speaks Centrifugo's protocol and HTTP API (same clients, same publish)."""
    return kind.startswith("rotary") or kind == "centrifugo"


def _bodies(kind: str, m: int) -> list[bytes]:
    """The M request bodies for `kind`'s publish endpoint."""
    if _speaks_centrifugo(kind):
        return [orjson.dumps({"channel": "news", "data": payload(s)}) for s in range(m)]
    if kind == "socketio":
        return [orjson.dumps({"room": "$news", "data": payload(s)}) for s in range(m)]
    return [orjson.dumps(payload(s)) for s in range(m)]


async def _publish(kind: str, server: ServerProcess, m: int) -> None:
    if kind == "picows":
        await _publish_ws(server, m)
        return
    api = _speaks_centrifugo(kind)
    path = "/api/publish" if api else "/publish"
    headers = {"X-API-Key": API_KEY} if api else {}
    await publish_http(server.url(path, "http"), headers, _bodies(kind, m))


async def publish_http(url: str, headers: dict[str, str], bodies: list[bytes]) -> None:
    """POST every body to `url`, a few in flight; RuntimeError on any refusal."""
    gate = asyncio.Semaphore(_IN_FLIGHT)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(body: bytes) -> None:
            async with gate, session.post(url, data=body, headers=headers) as resp:
                reply = await resp.read()
                if resp.status != 200 or b'"error"' in reply:
                    raise RuntimeError(f"publish failed: {resp.status} {reply[:200]!r}")

        await asyncio.gather(*(one(b) for b in bodies))


async def _publish_ws(server: ServerProcess, m: int) -> None:
    timeout = aiohttp.ClientTimeout(total=60)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.ws_connect(server.url("/publish")) as ws,
    ):
        for s in range(m):
            await ws.send_str(orjson.dumps(payload(s)).decode())


def _maybe_profile(
    pool: LoadPool,
    share: float | None,
    plan: list[tuple[int, int]],
    *,
    exp: int,
    quick: bool,
) -> dict[str, Any] | None:
    """Profile Rotary's fan-out when it trails picows by more than 20 % (`share`: the worse
    of the wall-clock and per-CPU-second ratios).

    Off in quick runs unless BENCH_PROFILE=1; BENCH_PROFILE=0 turns it off everywhere.
    py-spy samples the server during the delivery phase only; without py-spy the whole
    server process runs under cProfile instead (start-up included).
    """
    n, m = plan[-1]
    wanted = os.environ.get("BENCH_PROFILE", "0" if quick else "1") == "1"
    if share is None or share >= _PROFILE_THRESHOLD or not wanted:
        return None
    progress.expect(1)
    progress.note("fanout: profiling rotary")
    try:
        return (
            _profile_pyspy(pool, n=n, m=m, exp=exp)
            if pyspy_path()
            else _profile_cprofile(pool, n=n, m=m, exp=exp)
        )
    finally:
        progress.step()


def _rate(results: dict[str, dict[int, dict[str, Any]]], kind: str, n: int) -> float | None:
    rate: float | None = results.get(kind, {}).get(n, {}).get("deliveries_per_s")
    return rate


def _profile_pyspy(pool: LoadPool, *, n: int, m: int, exp: int) -> dict[str, Any]:
    out = Path(tempfile.mkstemp(prefix="bench-rotary-fanout-", suffix=".pyspy.txt")[1])
    server = _start("rotary")
    try:
        _open(pool, server, "rotary", n=n, exp=exp)
        with spy_on(server.pid, out):
            figures = _deliver(pool, server, "rotary", n=n, m=m)
    finally:
        pool.broadcast({"op": "close"})
        server.stop()
    return {
        "tool": "py-spy (delivery phase only)",
        "subscribers": n,
        "publications": m,
        "under_profiler": figures,
        "samples_file": str(out),
        **summarize(out),
    }


def _profile_cprofile(pool: LoadPool, *, n: int, m: int, exp: int) -> dict[str, Any]:
    stats_path = Path(tempfile.mkstemp(prefix="bench-rotary-", suffix=".prof")[1])
    server = _start("rotary", profile_to=stats_path)
    try:
        figures = _measure(pool, server, "rotary", n=n, m=m, exp=exp, repeats=1)
    finally:
        server.stop(sig=signal.SIGINT)
    return {
        "tool": "cProfile (whole process)",
        "subscribers": n,
        "publications": m,
        "under_profiler": figures,
        "stats_file": str(stats_path),
        "own": _top(stats_path),
    }


def _top(stats_path: Path, limit: int = 25) -> list[str]:
    """The functions with the most own time, as text lines (empty when no stats were saved)."""
    if not stats_path.exists() or stats_path.stat().st_size == 0:
        return []
    stats = pstats.Stats(str(stats_path))
    total = stats.total_tt or 1.0  # type: ignore[attr-defined]
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)  # type: ignore[attr-defined]
    lines = []
    for (file, line, func), (_cc, calls, tottime, cumtime, _callers) in rows[:limit]:
        where = f"{Path(file).name}:{line}({func})"
        lines.append(
            f"{100 * tottime / total:5.1f}% own {tottime:7.3f}s cum {cumtime:7.3f}s "
            f"{calls:9d} calls  {where}"
        )
    return lines


def _result(
    plan: list[tuple[int, int]],
    results: dict[str, dict[int, dict[str, Any]]],
    paired: dict[int, dict[str, Any]],
    notes: list[str],
    profile: dict[str, Any] | None,
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    table = []
    for kind, by_n in results.items():
        for n, r in by_n.items():
            figures[f"fanout_{kind}_{n}_deliveries_per_s"] = r["deliveries_per_s"]
            figures[f"fanout_{kind}_{n}_per_server_cpu_s"] = r["deliveries_per_server_cpu_s"]
            table.append(
                [
                    _LABELS[kind],
                    n,
                    r["publications"],
                    r["deliveries"],
                    r["seconds"],
                    len(r["rounds"]),
                    r["deliveries_per_s"],
                    r["deliveries_per_server_cpu_s"],
                    r["server_cpu_share"],
                    r["load_cpu_share"],
                    r["foreign_cpu_share"],
                ]
            )
    n_big = plan[-1][0]

    def rate(kind: str) -> float | None:
        return results.get(kind, {}).get(n_big, {}).get("deliveries_per_s")

    def per_cpu(kind: str) -> float | None:
        return results.get(kind, {}).get(n_big, {}).get("deliveries_per_server_cpu_s")

    pair = paired.get(n_big, {})
    ratios = {
        "fanout_rotary_over_picows": _headline(plan, results, paired),
        "fanout_rotary_over_socketio": ratio(rate("rotary"), rate("socketio")),
        "fanout_rotary_over_picows_cpu": pair.get("median_cpu")
        or ratio(per_cpu("rotary"), per_cpu("picows")),
        "fanout_rotary_over_socketio_cpu": ratio(per_cpu("rotary"), per_cpu("socketio")),
        "fanout_rotary_over_aiohttp": ratio(rate("rotary"), rate("aiohttp")),
        "fanout_rotary_over_centrifugo": ratio(rate("rotary"), rate("centrifugo")),
        "fanout_rotary_over_centrifugo_cpu": ratio(per_cpu("rotary"), per_cpu("centrifugo")),
        "fanout_protobuf_over_json": ratio(rate("rotary-protobuf"), rate("rotary")),
        "fanout_protobuf_over_json_cpu": ratio(per_cpu("rotary-protobuf"), per_cpu("rotary")),
        "fanout_http_stream_over_websocket": ratio(rate("rotary-http_stream"), rate("rotary")),
        "fanout_sse_over_websocket": ratio(rate("rotary-sse"), rate("rotary")),
    }
    curves = {
        f"fanout_{kind}": {
            "x": list(by_n),
            "y": [r["deliveries_per_s"] or 0 for r in by_n.values()],
            "xlabel": "subscribers on the channel",
            "ylabel": f"deliveries/s ({_LABELS[kind]})",
        }
        for kind, by_n in results.items()
    }
    extra: dict[str, Any] = {
        "runs": {k: {str(n): r for n, r in v.items()} for k, v in results.items()},
        "notes": notes,
        "ratio_at_subscribers": n_big,
        "rotary_over_picows_paired": {str(n): p for n, p in paired.items()},
    }
    if profile:
        extra["profile"] = profile
    return {
        "figures": figures,
        "ratios": {k: v for k, v in ratios.items() if v is not None},
        "table_header": [
            "fan-out server",
            "subscribers",
            "pubs",
            "delivered",
            "seconds",
            "rounds",
            "median deliveries/s",
            "per server CPU-s",
            "server CPU",
            "load CPU",
            "foreign CPU0",
        ],
        "table": table,
        "curves": curves,
        "json": extra,
    }
