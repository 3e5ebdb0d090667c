"""Fossil delta compression as the official SDKs decode it (centrifuge-js and
centrifuge-python, unchanged, over JSON and Protobuf), with the memory and the Redis engine."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.functional.conftest import ServerHandle, default_config
from tests.sdk.harness import PROTOCOL_SDKS, TokenFactory, frames, open_driver

pytestmark = [pytest.mark.sdk, pytest.mark.timeout(40)]

TOKENS = TokenFactory(default_config()["token_hmac_secret_key"])
DELTA_NS = {
    "name": "delta",
    "allowed_delta_types": ["fossil"],
    "delta_publish": True,
    "history_size": 20,
    "history_ttl": "300s",
    "force_recovery": True,
    "allow_subscribe_for_client": True,
}
ENGINES = [
    pytest.param({}, id="memory"),
    pytest.param(
        {"engine": "redis", "redis_address": "127.0.0.1:6379"},
        id="redis",
        marks=pytest.mark.redis,
    ),
]


def _doc(n: int) -> dict[str, Any]:
    return {"n": n, "title": "a slowly changing document", "body": "lorem ipsum " * 40}


def _config(engine: dict[str, Any]) -> dict[str, Any]:
    prefix = {"redis_prefix": f"rotary-delta-{uuid.uuid4().hex[:8]}"} if engine else {}
    return {**default_config(), **engine, **prefix, "namespaces": [DELTA_NS]}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("sdk_name", PROTOCOL_SDKS)
async def test_sdk_decodes_the_deltas_it_receives(
    rotary_server: Any, engine: dict[str, Any], sdk_name: str
) -> None:
    server: ServerHandle = rotary_server(_config(engine))
    channel = f"delta:doc-{sdk_name}"
    async with open_driver(sdk_name) as sdk:
        await sdk.connect(server.ws_url, token=TOKENS.connection("alice"))
        await sdk.wait_for(lambda e: e["ev"] == "connected")
        await sdk.subscribe(channel, delta="fossil")
        await sdk.wait_for(lambda e: e["ev"] == "sub_subscribed")
        for n in range(4):
            body = await asyncio.to_thread(
                server.api, "publish", {"channel": channel, "data": _doc(n)}
            )
            assert "error" not in body, body
            await sdk.wait_for(lambda e, n=n: e["ev"] == "publication" and e["data"] == _doc(n))
        pubs = [m["push"]["pub"] for m in frames(sdk.events, "in") if "pub" in m.get("push", {})]
        subscribe_results = [m["subscribe"] for m in frames(sdk.events, "in") if "subscribe" in m]
    assert subscribe_results[0]["delta"] is True
    assert [p.get("delta", False) for p in pubs] == [False, True, True, True]
    if not sdk_name.endswith("protobuf"):  # over JSON, data is a JSON string
        assert all(isinstance(p["data"], str) for p in pubs)
        assert all(len(p["data"]) < 30 for p in pubs[1:])
