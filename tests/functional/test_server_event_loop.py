"""``event_loop``: the server runs on uvloop by default and on asyncio's own loop when asked."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.functional.conftest import API_KEY, SECRET, make_token


def config(**extra: Any) -> dict[str, Any]:
    return {"token_hmac_secret_key": SECRET, "api_key": API_KEY, **extra}


async def _connect_and_publish(server: Any, ws_connect: Any) -> dict[str, Any]:
    client = await ws_connect(server)
    await client.request({"id": 1, "connect": {"token": make_token()}})
    await client.request({"id": 2, "subscribe": {"channel": "news"}})
    await asyncio.to_thread(server.api, "publish", {"channel": "news", "data": {"n": 1}})
    push: dict[str, Any] = await client.push()
    return push


@pytest.mark.parametrize(
    ("setting", "logged"), [("auto", "event loop uvloop"), ("asyncio", "event loop asyncio")]
)
async def test_server_serves_clients_on_the_chosen_event_loop_and_logs_it(
    rotary_server: Any, ws_connect: Any, setting: str, logged: str
) -> None:
    server = rotary_server(config(event_loop=setting, allow_subscribe_for_client=True))
    push = await _connect_and_publish(server, ws_connect)
    assert push == {"push": {"channel": "news", "pub": {"data": {"n": 1}}}}
    assert server.stop() == 0
    assert logged in server.log()
