"""Once stalled subscribers are cut, the server's memory is back where it was before them.

A subscriber that stops reading makes the server hold its bytes: the transport's buffer,
then the client's outbox, up to the queue limit, when it is cut (3008 or 3009). Cutting it
must free all of that, with the session and its connection objects. The real aiohttp
endpoint runs in-process so that `tracemalloc` counts every byte Python holds; the stalled
peers are raw sockets with a 4 KiB receive buffer that never read after subscribing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import tracemalloc
import weakref
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from rotary.config.load import load_config
from rotary.node.client import ClientSession
from rotary.node.node import Node
from rotary.server import build_app, build_node
from tests.functional.rawsock import RawWebSocket

_CHANNEL = "crowd"
_STALLED = 8
_QUEUE = 64 << 10
_CONFIG = {
    "client_insecure": True,
    "allow_subscribe_for_client": True,
    "client_queue_max_size": _QUEUE,
    "websocket_write_timeout": "300ms",
    "ping_interval": "300s",
}
_PAYLOAD = b'{"b":"' + b"x" * 4000 + b'"}'
#: Timer handles cancelled but not yet due (asyncio keeps them in its heap), thread-pool
#: bits: a few KiB. One stalled peer's queue alone is 64 KiB.
_HELD_AT_MOST = 32 << 10
_KINDS = (ClientSession, web.WebSocketResponse, web.Request)


@contextlib.asynccontextmanager
async def _serving() -> AsyncIterator[tuple[Node, int]]:
    node = build_node(load_config(None, env={}, overrides=_CONFIG))
    await node.start()
    app = build_app(load_config(None, env={}, overrides=_CONFIG), node)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield node, runner.addresses[0][1]
    finally:
        await runner.cleanup()
        await node.close()


def _stalled(port: int) -> RawWebSocket:
    peer = RawWebSocket(port, rcvbuf=4096)
    peer.request({"id": 1, "connect": {}})
    peer.request({"id": 2, "subscribe": {"channel": _CHANNEL}})
    return peer


def _clients(node: Node) -> int:
    return int(node.info()["num_clients"])  # type: ignore[call-overload]


async def _stall_and_cut(node: Node, port: int, count: int) -> list[RawWebSocket]:
    """`count` stalled subscribers join; publish until the node has cut every one of them."""
    before = _clients(node)
    peers = [await asyncio.to_thread(_stalled, port) for _ in range(count)]
    assert _clients(node) == before + count
    channel = node.resolver.resolve(_CHANNEL)
    # The kernel takes a few MiB of each stalled peer's bytes before the outbox fills.
    for sent in range(1, 5001):
        await node.publish(channel, _PAYLOAD)
        if sent % 20 == 0:
            await asyncio.sleep(0.01)
            if _clients(node) == before:
                return peers
    raise AssertionError(f"stalled clients not cut: {_clients(node) - before} left")


async def _settle() -> None:
    """Let cut sessions finish: close frames time out, transports abort, handlers end."""
    await asyncio.sleep(1.0)
    gc.collect()


async def _held_after_settling(baseline: int, bound: int) -> int:
    """Bytes traced above `baseline` once they fall under `bound`, or after 10 s: the
    last transports are aborted one write timeout after their close frame was sent."""
    for _ in range(20):
        await _settle()
        growth = tracemalloc.get_traced_memory()[0] - baseline
        if growth < bound:
            break
    return growth


def _connection_objects() -> list[weakref.ref[Any]]:
    return [weakref.ref(o) for o in gc.get_objects() if isinstance(o, _KINDS)]


async def test_memory_returns_to_its_level_once_stalled_subscribers_are_cut() -> None:
    async with _serving() as (node, port):
        # A first round allocates what lives for the process (caches, logging, pools).
        warm = await _stall_and_cut(node, port, 2)
        await _settle()
        # Before tracing: the isinstance checks fill ABC caches (a few hundred KiB).
        known = {id(r()) for r in _connection_objects()}
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            peers = await _stall_and_cut(node, port, _STALLED)
            peak = tracemalloc.get_traced_memory()[1] - baseline
            growth = await _held_after_settling(baseline, _HELD_AT_MOST)
        finally:
            tracemalloc.stop()
        left = [r() for r in _connection_objects() if id(r()) not in known]
        for peer in [*warm, *peers]:
            peer.close()
    # Tracing saw the stalled peers' bytes: more than two full queues at once (they fill
    # together, each with its transport's buffer beside it, and are cut one by one).
    assert peak > 2 * _QUEUE
    assert growth < _HELD_AT_MOST, f"{growth} bytes still held after the cut (peak {peak})"
    assert [type(o).__name__ for o in left if o is not None] == []
