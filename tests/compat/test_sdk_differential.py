"""The official SDKs see the same session from Centrifugo v6.9.1 and from Rotary.

Each SDK (centrifuge-js, centrifuge-python) plays one session against each server: connect
with a token callback, subscribe to a recoverable channel, receive two API publications,
subscribe to a private channel whose first token has expired (the SDK must ask for a new
one), read presence, then be unsubscribed and disconnected by the server API. The event
logs, without raw frames, times, client ids and epochs, must be equal. They run in `make
test` too: one session per SDK and server takes a few seconds.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from bench.centrifugo import start_centrifugo
from bench.common import ServerProcess, start_rotary

from tests.compat import configs
from tests.compat.dsl import Tok
from tests.compat.runner import sign
from tests.sdk.harness import PROTOCOL_SDKS, SdkDriver, open_driver

pytestmark = [pytest.mark.compat, pytest.mark.sdk, pytest.mark.timeout(90)]

_WS = "/connection/websocket"
_DROPPED = {"t", "client", "epoch"}
# Raw frames, and the JS driver's answers to its own calls (the presence is recorded apart).
_DRIVER_EVENTS = {"frame", "reply"}


@pytest.fixture(scope="module")
def servers(centrifugo_binary: Path) -> Iterator[dict[str, ServerProcess]]:
    """Centrifugo and Rotary, both started with the `base` configuration."""
    cfg = configs.config("base")
    started = {"centrifugo": start_centrifugo(cfg), "rotary": start_rotary(cfg)}
    try:
        yield started
    finally:
        for server in started.values():
            server.stop()


async def _api(server: ServerProcess, method: str, params: dict[str, Any]) -> None:
    headers = {"X-API-Key": configs.API_KEY}
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.url(f"/api/{method}", "http"), json=params, headers=headers) as resp,
    ):
        body = await resp.json()
    assert "error" not in body, body


def _is(name: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["ev"] == name and all(e.get(k) == v for k, v in fields.items())


def _sub_tokens() -> Callable[[str], str]:
    """A subscription token callback whose first token has already expired."""
    ttls = iter([-10, 3600, 3600])
    return lambda channel: sign(Tok(claims={"channel": channel}, exp_in=next(ttls)))


async def _session(driver: SdkDriver, server: ServerProcess) -> list[dict[str, Any]]:
    await driver.connect(server.url(_WS), get_token=lambda: sign(Tok()))
    await driver.wait_for(_is("connected"))
    await driver.subscribe("chat:sdk", recoverable=True)
    await driver.wait_for(_is("sub_subscribed", channel="chat:sdk"))
    for n in (1, 2):
        await _api(server, "publish", {"channel": "chat:sdk", "data": {"n": n}})
        await driver.wait_for(_is("publication", data={"n": n}))
    await driver.subscribe("$p", get_token=_sub_tokens())
    await driver.wait_for(_is("sub_subscribed", channel="$p"))
    presence = await driver.presence("chat:sdk")
    driver.record({"ev": "presence", "users": sorted(i["user"] for i in presence.values())})
    await _api(server, "unsubscribe", {"user": "42", "channel": "$p"})
    await driver.wait_for(_is("sub_unsubscribed", channel="$p"))
    await _api(server, "disconnect", {"user": "42", "disconnect": {"code": 4500, "reason": "bye"}})
    await driver.wait_for(_is("disconnected"))
    return [_plain(e) for e in driver.events if e["ev"] not in _DRIVER_EVENTS]


def _plain(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in _DROPPED}


@pytest.mark.parametrize("sdk", PROTOCOL_SDKS)
async def test_sdk_sees_the_same_session_from_both_servers(
    sdk: str, servers: dict[str, ServerProcess]
) -> None:
    logs = {}
    for name, server in servers.items():
        async with open_driver(sdk) as driver:
            logs[name] = await asyncio.wait_for(_session(driver, server), 40)
    shown = {k: "\n".join(json.dumps(e, sort_keys=True) for e in v) for k, v in logs.items()}
    assert logs["rotary"] == logs["centrifugo"], (
        f"centrifugo:\n{shown['centrifugo']}\nrotary:\n{shown['rotary']}"
    )
