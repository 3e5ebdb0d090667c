"""A subscriber that stops reading, among healthy ones, is cut and leaves at once.

The stalled peer is a raw socket with a tiny receive buffer that never reads after it
subscribed; it keeps its TCP connection open. Once the server cuts it (3008: its queue passed
``client_queue_max_size``; 3009: a write blocked past ``websocket_write_timeout``), it must
drop out of the channel's presence and the node's counts right away, not when its TCP
connection ends; the healthy subscribers must receive every publication.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest

from tests.functional.conftest import default_config, make_token
from tests.functional.rawsock import RawWebSocket

_CHANNEL = "room"
_HEALTHY = 5
#: One publication's payload; a few hundred fill the loopback buffers of the stalled peer.
_PAYLOAD = "x" * 10_000
_PER_BATCH = 10
_MAX_BATCHES = 200


def _config(**extra: Any) -> dict[str, Any]:
    return {**default_config(), "allow_subscribe_for_client": True, "presence": True, **extra}


def _stalled_subscriber(port: int) -> tuple[RawWebSocket, str]:
    peer = RawWebSocket(port, rcvbuf=4096)
    reply = peer.request({"id": 1, "connect": {"token": make_token("stalled")}})
    peer.request({"id": 2, "subscribe": {"channel": _CHANNEL}})
    return peer, str(reply["connect"]["client"])


async def _healthy_subscriber(server: Any, ws_connect: Any, user: str) -> Any:
    client = await ws_connect(server)
    assert "connect" in await client.request({"id": 1, "connect": {"token": make_token(user)}})
    assert "subscribe" in await client.request({"id": 2, "subscribe": {"channel": _CHANNEL}})
    return client


class _Counter:
    """Publications one healthy subscriber received so far (read by a task of its own)."""

    def __init__(self, client: Any) -> None:
        self.count = 0
        self.task = asyncio.create_task(self._read(client))

    async def _read(self, client: Any) -> None:
        while True:
            self.count += sum(1 for m in await client.recv(wait=60) if "pub" in m.get("push", {}))

    async def reach(self, count: int) -> None:
        """Return once `count` publications arrived (paces the flood: steady, not a burst)."""
        deadline = time.monotonic() + 20
        while self.count < count:
            assert not self.task.done(), self.task.exception()
            assert time.monotonic() < deadline, f"{self.count} of {count} publications"
            await asyncio.sleep(0.005)


async def _flood_until_gone(server: Any, client_ids: set[str], counters: list[_Counter]) -> int:
    """Publish batches until every one of `client_ids` left the channel's presence, each
    batch once the healthy subscribers received the previous one; the number published."""
    commands = [{"publish": {"channel": _CHANNEL, "data": {"blob": _PAYLOAD}}}] * _PER_BATCH
    for batch in range(1, _MAX_BATCHES + 1):
        replies = (await asyncio.to_thread(server.api, "batch", {"commands": commands}))["replies"]
        assert all("error" not in r for r in replies), replies[:1]
        for counter in counters:
            await counter.reach(batch * _PER_BATCH)
        if not client_ids & set(await asyncio.to_thread(_presence, server)):
            return batch * _PER_BATCH
    raise AssertionError(f"stalled clients were never cut:\n{server.log()[-3000:]}")


def _presence(server: Any) -> dict[str, Any]:
    return dict(server.api("presence", {"channel": _CHANNEL})["result"]["presence"])


async def _stall_among_healthy(
    server: Any, ws_connect: Any, code: int, *, stalled_count: int = 1
) -> list[RawWebSocket]:
    """Flood a channel holding stalled and healthy subscribers; check what each went
    through while the stalled ones still hold their TCP connections open."""
    healthy = [await _healthy_subscriber(server, ws_connect, f"h{i}") for i in range(_HEALTHY)]
    found = [
        await asyncio.to_thread(_stalled_subscriber, server.port) for _ in range(stalled_count)
    ]
    stalled = [peer for peer, _ in found]
    client_ids = {client_id for _, client_id in found}
    assert client_ids <= set(_presence(server))
    counters = [_Counter(client) for client in healthy]
    published = await _flood_until_gone(server, client_ids, counters)
    await asyncio.sleep(0.2)
    assert [c.count for c in counters] == [published] * _HEALTHY
    for counter in counters:
        counter.task.cancel()
    await asyncio.gather(*(c.task for c in counters), return_exceptions=True)
    assert f"disconnect {code} " in server.log()
    info = server.api("info", {})["result"]["nodes"][0]
    assert (info["num_clients"], info["num_subs"]) == (_HEALTHY, _HEALTHY)
    for client in healthy:
        await client.ws.close()
    return stalled


async def test_stalled_subscriber_cut_with_3008_leaves_presence_before_its_socket_closes(
    rotary_server: Any, ws_connect: Any
) -> None:
    # A write timeout far longer than the test: the close frame cannot go out until the peer
    # reads, so only an immediate clean-up can take the client out of presence in time.
    config = _config(client_queue_max_size=512 << 10, websocket_write_timeout="60s")
    server = rotary_server(config)
    [stalled] = await _stall_among_healthy(server, ws_connect, 3008)
    # The peer finally reads: everything queued before the cut, then the close frame.
    assert await asyncio.to_thread(stalled.close_code) == 3008
    stalled.close()


@pytest.mark.parametrize("stalled_count", [1, 20])
async def test_stalled_subscribers_cut_with_3009_have_their_sockets_released_by_the_server(
    rotary_server: Any, ws_connect: Any, stalled_count: int
) -> None:
    config = _config(client_queue_max_size=64 << 20, websocket_write_timeout="500ms")
    server = rotary_server(config)
    baseline = _open_fds(server)  # before any client: the healthy ones are closed too
    stalled = await _stall_among_healthy(server, ws_connect, 3009, stalled_count=stalled_count)
    # The peers still hold their ends open and read nothing: the server must let go of its
    # ends anyway (the close frame handed to the kernel, or the transport aborted).
    deadline = time.monotonic() + 10
    while _open_fds(server) > baseline:
        assert time.monotonic() < deadline, f"{_open_fds(server)} fds, {baseline} before"
        await asyncio.sleep(0.05)
    for peer in stalled:
        peer.close()


def _open_fds(server: Any) -> int:
    return len(os.listdir(f"/proc/{server.process.pid}/fd"))
