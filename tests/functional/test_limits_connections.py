"""Connection admission limits (docs/protocol.md "Endpoint and handshake"); the legacy API endpoint
wired into the server.

The 503 of the legacy endpoint during shutdown is tested on the binding itself
(tests/api/test_http_shutdown.py): on a real server the window is too short to hit reliably.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from rotary.testing import ManualClock
from rotary.transports.limits import ConnectionRateLimiter
from tests.functional.conftest import API_KEY, default_config, make_token


async def _refused_status(server: Any) -> int:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await session.ws_connect(server.ws_url)
    return err.value.status


async def test_connection_limit_refuses_upgrades_with_503(
    rotary_server: Any, ws_connect: Any
) -> None:
    server = rotary_server({**default_config(), "client_connection_limit": 2})
    clients = [await ws_connect(server) for _ in range(2)]
    for client in clients:
        assert "connect" in await client.request({"id": 1, "connect": {"token": make_token()}})
    assert await _refused_status(server) == 503


async def test_connection_rate_limit_refuses_upgrades_with_503(
    rotary_server: Any, ws_connect: Any
) -> None:
    server = rotary_server({**default_config(), "client_connection_rate_limit": 1})
    client = await ws_connect(server)
    assert "connect" in await client.request({"id": 1, "connect": {"token": make_token()}})
    # One per second with a burst of one: a second upgrade right away is refused.
    assert await _refused_status(server) == 503


def test_rate_limiter_refills_at_its_rate_up_to_one_second_of_burst() -> None:
    clock = ManualClock()
    limiter = ConnectionRateLimiter(2, clock)
    assert [limiter.allow() for _ in range(3)] == [True, True, False]
    clock.advance(0.5)
    assert [limiter.allow() for _ in range(2)] == [True, False]
    clock.advance(10)
    assert [limiter.allow() for _ in range(3)] == [True, True, False]


def test_rate_limiter_with_rate_zero_allows_everything() -> None:
    limiter = ConnectionRateLimiter(0, ManualClock())
    assert all(limiter.allow() for _ in range(1000))


async def test_legacy_api_answers_normally_before_shutdown(rotary_server: Any) -> None:
    server = rotary_server()
    headers = {"X-API-Key": API_KEY}
    async with (
        aiohttp.ClientSession(headers=headers) as api,
        api.post(server.api_url, data='{"method": "info", "params": {}}') as resp,
    ):
        assert resp.status == 200
        assert "nodes" in (await resp.json())["result"]
