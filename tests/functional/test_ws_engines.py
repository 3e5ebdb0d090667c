"""The server wired to the Redis engine: the same protocol over real Redis."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.functional.conftest import API_KEY, SECRET, make_token

pytestmark = pytest.mark.redis


def redis_config(**extra: Any) -> dict[str, Any]:
    return {
        "token_hmac_secret_key": SECRET,
        "api_key": API_KEY,
        "engine": "redis",
        "redis_address": "127.0.0.1:6379",
        "redis_prefix": f"rotary-test-{uuid.uuid4().hex[:8]}",
        "allow_subscribe_for_client": True,
        "history_size": 10,
        "history_ttl": "60s",
        "presence": True,
        "allow_presence_for_client": True,
        "allow_history_for_client": True,
        **extra,
    }


async def test_two_nodes_on_redis_share_publications_presence_and_recovery(
    rotary_server: Any, ws_connect: Any
) -> None:
    cfg = redis_config()
    first, second = rotary_server(cfg), rotary_server(cfg)
    a = await ws_connect(first)
    await a.request({"id": 1, "connect": {"token": make_token("1")}})
    sub = await a.request({"id": 2, "subscribe": {"channel": "room", "recoverable": True}})
    epoch = sub["subscribe"]["epoch"]
    b = await ws_connect(second)
    await b.request({"id": 1, "connect": {"token": make_token("2")}})
    await b.request({"id": 2, "subscribe": {"channel": "room"}})
    second.api("publish", {"channel": "room", "data": {"n": 1}})
    push = await a.push()
    assert push == {"push": {"channel": "room", "pub": {"data": {"n": 1}, "offset": 1}}}
    stats = await a.request({"id": 3, "presence_stats": {"channel": "room"}})
    assert stats["presence_stats"] == {"num_clients": 2, "num_users": 2}
    c = await ws_connect(second)
    await c.request({"id": 1, "connect": {"token": make_token("3")}})
    recover = {"channel": "room", "recover": True, "offset": 0, "epoch": epoch}
    result = await c.request({"id": 2, "subscribe": {**recover, "recoverable": True}})
    assert result["subscribe"]["recovered"] is True
    assert [p["data"] for p in result["subscribe"]["publications"]] == [{"n": 1}]
