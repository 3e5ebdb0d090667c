"""`nodecost`: the storm's per-client work inside one process, without sockets.

What the reconnect storm (`bench.storm`) asks of a node, minus aiohttp, asyncio's transports
and the load clients: N sessions on a do-nothing transport, each handling one connect frame
and then one frame with two subscribes, exactly the commands of the storm's clients (same
tokens, same channels, same server configuration):

- checked: HS256 connection token, subscribe to ``$lobby`` and ``$u<i>`` with their
  subscription tokens, on a fresh node (cold verified-token cache);
- warm: the same frames again on the same node (every token answered from the cache);
- insecure: ``client_insecure``, no tokens, subscribe to ``lobby`` and ``u<i>``.

The figure is process CPU time per client (connect + two subscribes; the cleanup is not
counted). One round runs insecure, checked and warm back to back, each on fresh nodes; the
figures are the medians over the rounds. The ratios ``nodecost_checked_over_insecure`` and
``nodecost_warm_over_insecure`` (the token checks' share of the node's own work) are the
medians of each round's own ratio: on a shared machine the speed drifts between rounds more
than within one. The garbage collector is set up as the server sets it (start-up objects
frozen, gen-0 threshold 50,000), and as in the storm each fresh node starts without
garbage of earlier runs (collected before its first storm, untimed), while the warm storm
inherits what the cold one left, as the storm's warm run does on the same server.

Run alone with ``python -m bench.nodecost [--quick] [N]``; ``python -m bench nodecost``
calls `run` once the harness lists it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import sys
import time
from typing import Any

import orjson

from bench.common import SECRET
from bench.results import ratio, rounded
from bench.servers import ROTARY_CHECKED, ROTARY_INSECURE
from bench.tokens import client_tokens
from rotary.config.load import load_config
from rotary.node.node import Node
from rotary.protocol.codes import Disconnect
from rotary.server import build_node

__all__ = ["run"]

_VARIANTS = ("checked", "warm", "insecure")
_LABELS = {
    "checked": "tokens checked, cold cache",
    "warm": "tokens checked, warm cache",
    "insecure": "client_insecure, no tokens",
}
_GC_GEN0_THRESHOLD = 50_000  # as the server sets it (rotary.server)

#: (connect frame, subscribe frame) of one client.
Frames = tuple[bytes, bytes]


class _NullTransport:
    """A direct transport that accepts every frame and keeps nothing."""

    __slots__ = ()

    def frame(self, message: bytes) -> bytes:
        return message

    def write_frame(self, wire: bytes) -> bool:
        return True

    async def drain(self) -> None:
        return None

    async def write(self, frame: bytes) -> None:
        return None

    async def close(self, disconnect: Disconnect) -> None:
        return None


def _frames(n: int, *, checked: bool, exp: int) -> list[Frames]:
    """The storm's frames for clients 0..n-1 (tokens made by PyJWT, as the load clients do)."""
    out = []
    for i in range(n):
        channels = ("$lobby", f"$u{i}") if checked else ("lobby", f"u{i}")
        tokens = client_tokens(SECRET, i, channels, exp=exp) if checked else None
        connect: dict[str, Any] = {"token": tokens.connect} if tokens else {}
        subs = []
        for k, channel in enumerate(channels):
            sub: dict[str, Any] = {"channel": channel}
            if tokens:
                sub["token"] = tokens.subscribe[k]
            subs.append(orjson.dumps({"id": k + 2, "subscribe": sub}))
        out.append((orjson.dumps({"id": 1, "connect": connect}), b"\n".join(subs)))
    return out


async def _storm(node: Node, frames: list[Frames]) -> float:
    """CPU seconds for every client's connect and subscribes; then end the sessions."""
    sessions = []
    started = time.process_time()
    for connect, subscribe in frames:
        session = node.new_session(_NullTransport())
        await session.handle_frame(connect)
        await session.handle_frame(subscribe)
        sessions.append(session)
    took = time.process_time() - started
    subscribed = sum(len(s.subs) == 2 for s in sessions)
    for session in sessions:
        await session.cleanup()
    if subscribed != len(frames):
        raise RuntimeError(f"only {subscribed} of {len(frames)} clients subscribed")
    return took


async def _node(overrides: dict[str, Any]) -> Node:
    node = build_node(load_config(None, env={}, overrides=overrides))
    await node.start()
    return node


async def _measure(n: int, reps: int) -> dict[str, list[float]]:
    exp = int(time.time()) + 3600
    checked, insecure = _frames(n, checked=True, exp=exp), _frames(n, checked=False, exp=exp)
    gc.collect()
    gc.freeze()
    gc.set_threshold(_GC_GEN0_THRESHOLD, 50, 100)
    runs: dict[str, list[float]] = {k: [] for k in _VARIANTS}
    for _ in range(reps):
        node = await _node(ROTARY_INSECURE)
        gc.collect()
        runs["insecure"].append(await _storm(node, insecure))
        await node.close()
        node = await _node(ROTARY_CHECKED)
        gc.collect()
        runs["checked"].append(await _storm(node, checked))
        runs["warm"].append(await _storm(node, checked))
        await node.close()
    return runs


def _per_client_us(seconds: list[float], n: int) -> float:
    return statistics.median(seconds) * 1e6 / n


def _paired_ratio(runs: dict[str, list[float]], key: str) -> float | None:
    """The median over rounds of `key`'s time over the same round's insecure time."""
    pairs = zip(runs[key], runs["insecure"], strict=True)
    return ratio(statistics.median(a / b for a, b in pairs), 1.0)


def run(*, quick: bool, clients: int | None = None) -> dict[str, Any]:
    """Measure; see the module docstring. Returns the harness result dict."""
    n = clients or (2000 if quick else 5000)
    reps = 5 if quick else 7
    thresholds = gc.get_threshold()
    try:
        runs = asyncio.run(_measure(n, reps))
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    us = {k: _per_client_us(v, n) for k, v in runs.items()}
    figures: dict[str, Any] = {"nodecost_clients": n, "nodecost_reps": reps}
    figures |= {f"nodecost_{k}_us_per_client": rounded(v, 1) for k, v in us.items()}
    figures |= {
        f"nodecost_{k}_overhead_us": rounded(us[k] - us["insecure"], 1) for k in ("checked", "warm")
    }
    table = [
        [_LABELS[k], n, reps, rounded(us[k], 1), rounded(min(runs[k]) * 1e6 / n, 1)]
        for k in _VARIANTS
    ]
    return {
        "figures": figures,
        "ratios": {
            "nodecost_checked_over_insecure": _paired_ratio(runs, "checked"),
            "nodecost_warm_over_insecure": _paired_ratio(runs, "warm"),
        },
        "table_header": ["node cost", "clients", "reps", "median µs/client", "best µs/client"],
        "table": table,
        "json": {"seconds": runs},
    }


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    numbers = [int(a) for a in argv if a.isdigit()]
    result = run(quick=quick, clients=numbers[0] if numbers else None)
    print(json.dumps({"figures": result["figures"], "ratios": result["ratios"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
