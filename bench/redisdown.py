"""`redisdown`: the CPU a node spends while its Redis is dead.

One Rotary node on the Redis engine (a private ``redis-server`` on a free port, never the
shared 6379) holds N WebSocket clients in this process, each subscribed to a channel of its
own with recovery (so that the node has N channels to subscribe again once Redis is back).
The node's CPU share (``/proc/<pid>/stat``) is measured over W seconds with Redis up and
idle, then Redis is killed and, after 3 s for the first quick reconnects, over W seconds
more. A node whose retries back off stays near its idle share; a busy loop takes a whole
core. Sizes: quick 100 clients, W = 5 s; full 1,000 clients, W = 10 s.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from typing import Any

import aiohttp
import orjson

from bench import progress
from bench.common import SECRET, ServerProcess, cpu_seconds, free_port, start_server
from bench.servers import ROTARY_STANDARD, start_rotary_with
from bench.tokens import client_tokens

__all__ = ["run"]

_SETTLE_S = 3.0


def run(*, quick: bool) -> dict[str, Any]:
    """Measure once; see the module docstring."""
    clients, window = (100, 5.0) if quick else (1000, 10.0)
    binary = shutil.which("redis-server")
    if binary is None:
        return {"figures": {}, "notes": ["redis-server is not installed: nothing measured"]}
    progress.expect(2)
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    redis = start_server("redis", [*argv, "no"], port=port, health_path=None)
    try:
        server = start_rotary_with(_config(port))
        try:
            figures = asyncio.run(_measure(server, redis, clients, window))
        finally:
            server.stop()
    finally:
        redis.stop()
    table = [[clients, window, *(figures[k] for k in _COLUMNS)]]
    header = ["clients", "window s", "CPU share, Redis up", "CPU share, Redis dead"]
    return {"figures": figures, "table_header": header, "table": table}


_COLUMNS = ("redisdown_cpu_share_up", "redisdown_cpu_share_down")


def _config(port: int) -> dict[str, Any]:
    return {
        **ROTARY_STANDARD,
        "engine": "redis",
        "redis_address": f"127.0.0.1:{port}",
        "redis_prefix": f"bench-down-{uuid.uuid4().hex[:8]}",
        "history_size": 100,
        "history_ttl": "300s",
        "force_recovery": True,
    }


async def _measure(
    server: ServerProcess, redis: ServerProcess, clients: int, window: float
) -> dict[str, Any]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        readers = await _subscribe_all(session, server, clients)
        progress.note("redisdown: Redis up")
        up = await _share(server, window)
        progress.step()
        progress.note("redisdown: Redis dead")
        redis.stop()
        await asyncio.sleep(_SETTLE_S)
        down = await _share(server, window)
        progress.step()
        alive = server.process.poll() is None
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    return {
        "redisdown_cpu_share_up": up,
        "redisdown_cpu_share_down": down,
        "redisdown_node_alive": alive,
    }


async def _share(server: ServerProcess, seconds: float) -> float:
    """The node's share of one CPU over the next `seconds`."""
    cpu, wall = cpu_seconds(server.pid), time.monotonic()
    await asyncio.sleep(seconds)
    return round((cpu_seconds(server.pid) - cpu) / (time.monotonic() - wall), 4)


async def _subscribe_all(
    session: aiohttp.ClientSession, server: ServerProcess, count: int
) -> list[asyncio.Task[None]]:
    gate = asyncio.Semaphore(100)
    exp = int(time.time()) + 3600

    async def one(index: int) -> asyncio.Task[None]:
        async with gate:
            ws = await session.ws_connect(server.url("/connection/websocket"))
            token = client_tokens(SECRET, index, (), exp=exp).connect
            connect = orjson.dumps({"id": 1, "connect": {"token": token}})
            subscribe = orjson.dumps({"id": 2, "subscribe": {"channel": f"down{index}"}})
            await ws.send_bytes(connect + b"\n" + subscribe)
            while '"id":2' not in str((await ws.receive()).data):
                pass
            return asyncio.create_task(_answer_pings(ws))

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def _answer_pings(ws: aiohttp.ClientWebSocketResponse) -> None:
    async for msg in ws:
        if isinstance(msg.data, str) and "{}" in msg.data.split("\n"):
            await ws.send_str("{}")
    await ws.close()
