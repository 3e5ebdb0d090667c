"""Many stalled subscribers among many healthy ones in one channel, under steady publishing.

The issue's scale is 1,000 healthy subscribers and 100 stalled ones. On the project's
2-core machine that is too heavy for ``make test``, so the sizes are parameters:
``ROTARY_ISOLATION_HEALTHY`` and ``ROTARY_ISOLATION_STALLED`` (defaults 200 and 25). Run the
full size with ``ROTARY_ISOLATION_HEALTHY=1000 ROTARY_ISOLATION_STALLED=100``.

The healthy subscribers are aiohttp WebSockets, all in this process, one reading task each;
the stalled ones are raw sockets with a 4 KiB receive buffer that never read after
subscribing. Only counts are asserted: every stalled subscriber is cut (3008 or 3009) and
leaves presence and the node's counts, every healthy one receives every publication.
"""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

import aiohttp

from tests.functional.conftest import default_config, make_token
from tests.functional.rawsock import RawWebSocket

_CHANNEL = "crowd"
_HEALTHY = int(os.environ.get("ROTARY_ISOLATION_HEALTHY", "200"))
_STALLED = int(os.environ.get("ROTARY_ISOLATION_STALLED", "25"))
#: Small publications in batches: enough bytes to stall the peers, little work per healthy one.
_PAYLOAD = "x" * 2000
_PER_BATCH = 20
_MAX_BATCHES = 100


class _Healthy:
    """A subscriber that reads everything and counts publications (answers pings too)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.count = 0
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            text = str(message.data)
            self.count += text.count('"pub":')
            if "{}" in text.split("\n"):
                await self.ws.send_str("{}")


async def _subscribe(session: aiohttp.ClientSession, port: int, user: str) -> _Healthy:
    ws = await session.ws_connect(f"ws://127.0.0.1:{port}/connection/websocket")
    connect = {"id": 1, "connect": {"token": make_token(user)}}
    subscribe = {"id": 2, "subscribe": {"channel": _CHANNEL}}
    await ws.send_str(f"{_json(connect)}\n{_json(subscribe)}")
    while '"id":2' not in (await ws.receive_str()).replace(" ", ""):
        pass
    return _Healthy(ws)


async def _subscribe_all(session: aiohttp.ClientSession, port: int) -> list[_Healthy]:
    """`_HEALTHY` subscribers, set up a few dozen at a time."""
    gate = asyncio.Semaphore(50)

    async def one(user: str) -> _Healthy:
        async with gate:
            return await _subscribe(session, port, user)

    return list(await asyncio.gather(*(one(f"h{i}") for i in range(_HEALTHY))))


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


def _stalled(port: int, index: int) -> tuple[RawWebSocket, str]:
    peer = RawWebSocket(port, rcvbuf=4096)
    reply = peer.request({"id": 1, "connect": {"token": make_token(f"stalled{index}")}})
    peer.request({"id": 2, "subscribe": {"channel": _CHANNEL}})
    return peer, str(reply["connect"]["client"])


async def _received(healthy: list[_Healthy], count: int) -> None:
    """Wait until every healthy subscriber has `count` publications (paces the publisher)."""
    for _ in range(4000):
        if all(h.count >= count for h in healthy):
            return
        assert not any(h.task.done() for h in healthy), "a healthy subscriber was closed"
        await asyncio.sleep(0.01)
    raise AssertionError(f"lowest count {min(h.count for h in healthy)} of {count}")


async def _publish_until_cut(server: Any, healthy: list[_Healthy], stalled_ids: set[str]) -> int:
    """Publish batches, each once every healthy subscriber got the previous ones, until no
    stalled client is left in presence; the number published."""
    commands = [{"publish": {"channel": _CHANNEL, "data": {"b": _PAYLOAD}}}] * _PER_BATCH
    for batch in range(1, _MAX_BATCHES + 1):
        replies = (await asyncio.to_thread(server.api, "batch", {"commands": commands}))["replies"]
        assert all("error" not in r for r in replies), replies[:1]
        await _received(healthy, batch * _PER_BATCH)
        presence = await asyncio.to_thread(server.api, "presence", {"channel": _CHANNEL})
        if not stalled_ids & set(presence["result"]["presence"]):
            return batch * _PER_BATCH
    raise AssertionError(f"stalled clients were never cut:\n{server.log()[-3000:]}")


async def _logged_disconnects(server: Any, count: int) -> list[str]:
    """The disconnect codes in the server's log once there are `count` (the log may lag
    behind the presence leave), or all there are after a while."""
    for _ in range(500):
        cuts = re.findall(r"disconnect (\d+) ", server.log())
        if len(cuts) >= count:
            break
        await asyncio.sleep(0.02)
    return cuts


async def test_every_stalled_subscriber_is_cut_and_every_healthy_one_gets_every_publication(
    rotary_server: Any,
) -> None:
    config = {
        **default_config(),
        "allow_subscribe_for_client": True,
        "presence": True,
        "client_queue_max_size": 256 << 10,
        "websocket_write_timeout": "500ms",
        # The stalled peers never answer pings: at full size, setting up can outlast the
        # default 25 s, and 3012 would then cut them instead of the mechanisms under test.
        "ping_interval": "300s",
    }
    server = rotary_server(config)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        healthy = await _subscribe_all(session, server.port)
        found = [await asyncio.to_thread(_stalled, server.port, i) for i in range(_STALLED)]
        stalled_ids = {client_id for _, client_id in found}
        published = await _publish_until_cut(server, healthy, stalled_ids)
        await asyncio.sleep(0.2)
        assert sorted({h.count for h in healthy}) == [published]
        cuts = await _logged_disconnects(server, _STALLED)
        assert set(cuts) <= {"3008", "3009"} and len(cuts) == _STALLED, cuts
        info = server.api("info", {})["result"]["nodes"][0]
        assert (info["num_clients"], info["num_subs"]) == (_HEALTHY, _HEALTHY)
        for h in healthy:
            await h.ws.close()
        await asyncio.gather(*(h.task for h in healthy), return_exceptions=True)
    for peer, _ in found:
        peer.close()
