"""A client that stops reading while publications flood in is closed with 3008 "slow".

The server's write timeout is set long, so that the outbound queue (``client_queue_max_size``)
overflows before any single write can time out (which would be 3009, covered at node level
in tests/node/test_commands.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.functional.conftest import default_config, make_token

#: Bytes of one publication; enough of them overflow the loopback socket buffers too.
_PAYLOAD = 100_000
_PER_BATCH = 5
_BATCHES = 80


def _flood(server: Any, channel: str) -> None:
    """Publish ``_BATCHES * _PER_BATCH`` large publications through the server API."""
    data = {"blob": "x" * _PAYLOAD}
    commands = [{"publish": {"channel": channel, "data": data}} for _ in range(_PER_BATCH)]
    for _ in range(_BATCHES):
        replies = server.api("batch", {"commands": commands})["replies"]
        assert all("error" not in r for r in replies), replies[:1]


async def test_client_that_stops_reading_is_closed_with_3008_slow(
    rotary_server: Any, ws_connect: Any
) -> None:
    config = {
        **default_config(),
        "allow_subscribe_for_client": True,
        "client_queue_max_size": 65536,
        "websocket_write_timeout": "30s",
    }
    server = rotary_server(config)
    client = await ws_connect(server)
    assert "connect" in await client.request({"id": 1, "connect": {"token": make_token("1")}})
    assert "subscribe" in await client.request({"id": 2, "subscribe": {"channel": "flood"}})
    # The test reads nothing from the socket while a thread floods the channel via the API.
    await asyncio.to_thread(_flood, server, "flood")
    code, reason = await client.closed(wait=30)
    assert (code, reason) == (3008, "slow")
    received = sum(frame.count('"pub"') for frame in client.frames)
    assert received < _BATCHES * _PER_BATCH
