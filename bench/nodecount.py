"""`nodecount`: the node's own work per storm client and per fan-out delivery, in instructions.

The in-process counterpart of `bench.stormcount`: no sockets, no aiohttp, no load clients,
only what the node itself does (`bench.nodecost`'s storm: a connect frame and a frame of two
subscribes per client, checked cold, checked warm and insecure), plus a fan-out: N insecure
subscribers of one channel, each on a transport that frames its messages as WebSocket text
frames and drops them, and publications sent by the server API call (`Node.api_publish`),
each followed by the loop turn that flushes the outboxes.

A child interpreter runs under callgrind with instrumentation off; it prepares each phase,
says so, and the parent (this module's `count`) switches counting on, zeroes, lets the
phase run and dumps the count when the child says it is done. Figures are instructions per
client (storm) or per delivery (fan-out); they repeat within a fraction of a per cent, so
two source trees can be compared on a busy machine: `BENCH_NODECOUNT_SRC=/other/tree/src`
puts another tree's ``rotary`` first on the child's path (its bench code stays this one).

Run alone: ``python -m bench.nodecount [CLIENTS] [--keep DIR]`` (200 clients by default;
``--keep`` keeps the callgrind dumps for ``callgrind_annotate``). `profile` does the same
phases under cProfile in this process and groups own time by function group (read the
shares, not the times: the machine is shared). Needs valgrind for the counts.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import json
import os
import pstats
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.stormcount import CallgrindCounter, callgrind_wrapper

__all__ = ["GROUPS", "count", "group_of", "profile"]

#: Publications of the fan-out phase (each to every subscriber).
_PUBLICATIONS = 20
_PAYLOAD = b'{"price":101.25,"symbol":"ROT","seq":0}'

#: Function groups by the path fragments of their file (first match wins); cProfile names
#: C functions ``~:<built-in method ...>`` with their module in the name. Built-ins of no
#: group here (dict.get, len…) are charged to their callers' groups (`charge_builtins`).
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("waiting (epoll)", ("select.epoll",)),
    ("socket calls", ("_socket.socket",)),
    ("token verify", ("rotary/auth/", "rotary/policy/", "cryptography", "hmac", "jwt")),
    ("JSON", ("orjson", "rotary/protocol/codec", "rotary/jsonbytes")),
    ("Protobuf", ("rotary/protocol/protobuf",)),
    ("transport and framing", ("rotary/transports/", "rotary/protocol/framing", "struct")),
    ("hub", ("rotary/node/hub",)),
    ("outbox", ("rotary/node/outbox",)),
    ("engine", ("rotary/engines/",)),
    ("channels", ("rotary/channels/",)),
    ("node", ("rotary/node/", "rotary/protocol/")),
    ("aiohttp", ("aiohttp", "multidict", "yarl", "propcache")),
    ("asyncio", ("asyncio", "_asyncio", "selectors", "_contextvars")),
)


def group_of(where: str) -> str:
    """The function group of a profile entry's file (or built-in's name)."""
    for name, fragments in GROUPS:
        if any(f in where for f in fragments):
            return name
    return "other"


def charge_builtins(stats: pstats.Stats) -> dict[str, tuple[float, int]]:
    """Own time and calls by group; a built-in of no group is charged to its callers'
    groups in proportion to the time each caller spent in it."""
    out: dict[str, tuple[float, int]] = {}

    def add(group: str, own: float, calls: int) -> None:
        t, c = out.get(group, (0.0, 0))
        out[group] = (t + own, c + calls)

    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (file, _line, func), (_cc, calls, own, _cum, callers) in raw.items():
        group = group_of(f"{file}:{func}")
        if group != "other" or file != "~" or not callers:
            add(group, own, calls)
            continue
        spent = sum(c[2] for c in callers.values()) or 1.0
        for (cfile, _l, cfunc), (_c, ncalls, ctime, _ct) in callers.items():
            add(group_of(f"{cfile}:{cfunc}"), own * ctime / spent, ncalls)
    return out


# ---------------------------------------------------------------------- the phases (child)


class _WireSink:
    """A direct transport that frames as the WebSocket transport does (text frames, binary
    ones for Protobuf) and drops the bytes."""

    __slots__ = ("frame",)

    def __init__(self, binary: bool = False) -> None:
        from rotary.transports.websocket import binary_frame, text_frame

        self.frame: Callable[[bytes], bytes] = binary_frame if binary else text_frame

    def write_frame(self, wire: bytes) -> bool:
        return True

    def idle_send(self) -> Callable[[bytes], int]:
        """A socket that takes every frame whole (the outbox's batched sends)."""
        return len

    async def drain(self) -> None:
        return None

    async def write(self, frame: bytes) -> None:
        return None

    async def close(self, disconnect: Any) -> None:
        return None


def _protobuf_frames(frames: list[Any]) -> list[Any]:
    """The storm's JSON (connect, subscribes) frames as a Protobuf client sends them: the
    same commands, varint-prefixed Protobuf messages (`bench.clients`' encoding)."""
    import orjson

    from bench.clients import _CONNECT, _FIELD1, _FIELD2, _SUBSCRIBE, _len_field, _pb_command

    def encode(line: bytes) -> bytes:
        cmd = orjson.loads(line)
        if "connect" in cmd:
            token = cmd["connect"].get("token", "")
            return _pb_command(
                cmd["id"], _CONNECT, _len_field(_FIELD1, token.encode()) if token else b""
            )
        sub = cmd["subscribe"]
        body = _len_field(_FIELD1, sub["channel"].encode())
        if sub.get("token"):
            body += _len_field(_FIELD2, sub["token"].encode())
        return _pb_command(cmd["id"], _SUBSCRIBE, body)

    return [
        (encode(connect), b"".join(encode(line) for line in subscribe.split(b"\n")))
        for connect, subscribe in frames
    ]


def _codec(protobuf: bool) -> Any:
    from rotary.protocol.codec import JSON
    from rotary.protocol.protobuf import PROTOBUF

    return PROTOBUF if protobuf else JSON


async def _fanout_subscribers(n: int, protobuf: bool = False) -> tuple[Any, list[Any]]:
    from bench.nodecost import _node
    from bench.servers import ROTARY_INSECURE

    node = await _node(ROTARY_INSECURE)
    codec = _codec(protobuf)
    ((connect, subscribe),) = _protobuf_frames([_FANOUT_FRAMES]) if protobuf else [_FANOUT_FRAMES]
    sessions = []
    for _ in range(n):
        session = node.new_session(_WireSink(protobuf), codec=codec)
        await session.handle_frame(connect)
        await session.handle_frame(subscribe)
        sessions.append(session)
    await asyncio.sleep(0)  # the replies' flush
    return node, sessions


async def _publish(node: Any) -> None:
    for _ in range(_PUBLICATIONS):
        await node.api_publish("news", _PAYLOAD)
        await asyncio.sleep(0)  # the loop turn whose flusher writes every outbox


async def _connect_all(
    node: Any, frames: list[Any], state: dict[str, Any], protobuf: bool = False
) -> None:
    """Each client's connect and subscribe frames; the sessions stay (ended uncounted)."""
    sessions = state.setdefault("sessions", [])
    codec = _codec(protobuf)
    for connect, subscribe in frames:
        session = node.new_session(_WireSink(protobuf), codec=codec)
        await session.handle_frame(connect)
        await session.handle_frame(subscribe)
        sessions.append(session)
    await asyncio.sleep(0)  # the replies' flush
    if sum(len(s.subs) == 2 for s in sessions) != len(frames):
        raise RuntimeError("not every client subscribed")


async def _end_all(state: dict[str, Any]) -> None:
    for session in state.pop("sessions", []):
        await session.cleanup()


#: The fan-out subscribers' connect and subscribe frames (JSON; `_protobuf_frames` turns
#: them into Protobuf).
_FANOUT_FRAMES = (b'{"id":1,"connect":{}}', b'{"id":2,"subscribe":{"channel":"news"}}')

#: The phases of one codec, in order; Protobuf's are named with a ``_protobuf`` suffix.
PHASES = ("insecure", "checked", "warm", "fanout")


def _phases(n: int, protobuf: bool = False) -> list[tuple[str, Callable[[], Awaitable[Any]]]]:
    """(name, prepare) pairs; each prepare returns the coroutine function to count. With
    `protobuf` the clients speak Protobuf (same commands, same configuration)."""
    from bench.nodecost import _frames, _node
    from bench.servers import ROTARY_CHECKED, ROTARY_INSECURE

    exp = int(time.time()) + 3600
    checked, insecure = _frames(n, checked=True, exp=exp), _frames(n, checked=False, exp=exp)
    if protobuf:
        checked, insecure = _protobuf_frames(checked), _protobuf_frames(insecure)
    state: dict[str, Any] = {}

    async def insecure_prep() -> Callable[[], Awaitable[Any]]:
        await _end_all(state)
        node = await _node(ROTARY_INSECURE)
        return lambda: _connect_all(node, insecure, state, protobuf)

    async def checked_prep() -> Callable[[], Awaitable[Any]]:
        await _end_all(state)
        state["checked"] = node = await _node(ROTARY_CHECKED)
        return lambda: _connect_all(node, checked, state, protobuf)

    async def warm_prep() -> Callable[[], Awaitable[Any]]:
        await _end_all(state)
        node = state["checked"]
        return lambda: _connect_all(node, checked, state, protobuf)

    async def fanout_prep() -> Callable[[], Awaitable[Any]]:
        await _end_all(state)
        node, state["fanout"] = await _fanout_subscribers(n, protobuf)
        return lambda: _publish(node)

    suffix = "_protobuf" if protobuf else ""
    preps = (insecure_prep, checked_prep, warm_prep, fanout_prep)
    return [(name + suffix, prep) for name, prep in zip(PHASES, preps, strict=True)]


def _all_phases(n: int, codecs: tuple[str, ...]) -> list[tuple[str, Any]]:
    """The phases of every codec in `codecs` ("json", "protobuf"), in that order."""
    return [phase for codec in codecs for phase in _phases(n, codec == "protobuf")]


def _wait_for_go() -> None:
    """Block until the parent writes a line, waking often (callgrind answers requests only
    while the process runs)."""
    while not select.select([sys.stdin], [], [], 0.05)[0]:
        pass
    sys.stdin.readline()


async def _child(n: int, codecs: tuple[str, ...]) -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)  # as the server sets it
    for name, prepare in _all_phases(n, codecs):
        work = await prepare()
        gc.collect()
        print(f"ready {name}", flush=True)
        _wait_for_go()
        await work()
        print(f"done {name}", flush=True)
        _wait_for_go()


# ---------------------------------------------------------------------- counting (parent)


def count(
    n: int,
    *,
    src: str | None = None,
    keep: Path | None = None,
    codecs: tuple[str, ...] = ("json",),
) -> dict[str, float]:
    """Instructions per client for insecure/checked/warm, per delivery for fanout, for each
    codec of `codecs` (Protobuf's phases named ``…_protobuf``), each codec in a child of its
    own: in one process the second codec's fan-out paid for a cycle collection of the first
    one's heap (Protobuf 10,744 instructions per delivery after JSON, 6,069 alone)."""
    figures: dict[str, float] = {}
    for codec in codecs:
        figures |= _count_codec(n, codec, src=src, keep=keep)
    return figures


def _count_codec(n: int, codec: str, *, src: str | None, keep: Path | None) -> dict[str, float]:
    """`count` for one codec, in a child interpreter under callgrind."""
    with tempfile.TemporaryDirectory(prefix="bench-nodecount-") as tmp:
        out = (keep or Path(tmp)) / f"nodecount-{codec}.cg"
        out.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        paths = [src] if src else []
        env["PYTHONPATH"] = os.pathsep.join([*paths, str(Path(__file__).parent.parent)])
        argv = [*callgrind_wrapper(out), sys.executable, "-m", "bench.nodecount", "--child"]
        with (
            (out.parent / f"nodecount-{codec}.log").open("w") as log,
            subprocess.Popen(
                [*argv, str(n), f"--{codec}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
            ) as child,
        ):
            try:
                return _drive(child, CallgrindCounter(child.pid, out), n, len(PHASES))
            finally:
                child.kill()


def _drive(
    child: subprocess.Popen[str], counter: CallgrindCounter, n: int, phases: int
) -> dict[str, float]:
    assert child.stdin is not None and child.stdout is not None
    figures: dict[str, float] = {}
    instrumented = False
    for line in child.stdout:
        word, _, name = line.strip().partition(" ")
        if word == "ready":
            if not instrumented:
                counter.instrument()
                instrumented = True
            counter.zero()
        elif word == "done":
            per = n * _PUBLICATIONS if name.startswith("fanout") else n
            figures[name] = counter.dump() / per
        else:
            continue
        child.stdin.write("go\n")
        child.stdin.flush()
    if child.wait() != 0 and len(figures) < phases:
        raise RuntimeError(f"the counted child failed (exit {child.returncode}); see its log")
    return figures


# ---------------------------------------------------------------------- cProfile


def profile(n: int, *, limit: int = 25, codecs: tuple[str, ...] = ("json",)) -> dict[str, Any]:
    """Own time by function group (shares), Python calls per client or delivery by group and
    the top functions, per phase."""

    async def main() -> dict[str, Any]:
        out = {}
        for name, prepare in _all_phases(n, codecs):
            work = await prepare()
            prof = cProfile.Profile()
            prof.enable()
            await work()
            prof.disable()
            per = n * _PUBLICATIONS if name.startswith("fanout") else n
            out[name] = _grouped(pstats.Stats(prof), limit, per)
        return out

    return asyncio.run(main())


def _grouped(stats: pstats.Stats, limit: int, per: int) -> dict[str, Any]:
    charged = charge_builtins(stats)
    groups = {k: t for k, (t, _c) in charged.items()}
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    rows = [
        (own, calls, f"{_short(file)}:{line}({func})")
        for (file, line, func), (_cc, calls, own, _cum, _callers) in raw.items()
    ]
    total = sum(groups.values()) or 1.0
    rows.sort(reverse=True)
    return {
        "groups": {k: round(100 * v / total, 1) for k, v in sorted(groups.items())},
        "calls_per_unit": round(sum(c for _t, c in charged.values()) / per, 1),
        "calls_per_unit_by_group": {k: round(c / per, 1) for k, (_t, c) in sorted(charged.items())},
        "top": [f"{100 * own / total:5.1f}% {calls:>7} {f}" for own, calls, f in rows[:limit]],
    }


def _short(file: str) -> str:
    return file.split("site-packages/")[-1].split("/src/")[-1]


def _codecs(argv: list[str]) -> tuple[str, ...]:
    """The codecs asked for: ``--json``, ``--protobuf`` or both (JSON alone by default)."""
    named = tuple(c for c in ("json", "protobuf") if f"--{c}" in argv)
    return named or ("json",)


def main(argv: list[str]) -> int:
    numbers = [int(a) for a in argv if a.isdigit()]
    n = numbers[0] if numbers else 200
    codecs = _codecs(argv)
    if "--child" in argv:
        asyncio.run(_child(n, codecs))
        return 0
    if "--profile" in argv:
        print(json.dumps(profile(n, codecs=codecs), indent=2))
        return 0
    keep = Path(argv[argv.index("--keep") + 1]) if "--keep" in argv else None
    src = os.environ.get("BENCH_NODECOUNT_SRC")
    figures = count(n, src=src, keep=keep, codecs=codecs)
    print(json.dumps({k: round(v) for k, v in figures.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
