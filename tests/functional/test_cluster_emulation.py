"""Emulation across nodes (docs/transports.md "Emulation in a cluster"): a command sent through
one node's /emulation for a session held by the other runs there, through Redis."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from tests.functional.cluster_helpers import (
    NODE_INFO_INTERVAL,
    pair_config,
    shared_redis_or_skip,
    started_pair,
    until,
)
from tests.functional.conftest import ServerHandle, make_token
from tests.functional.streams import Stream, open_stream


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerHandle, ServerHandle]]:
    shared_redis_or_skip()
    folder = tmp_path_factory.mktemp("emulation-cluster")
    prefix = f"rotary-emu-{uuid.uuid4().hex[:10]}"
    config = pair_config(
        prefix, http_stream=True, sse=True, node_info_publish_interval=NODE_INFO_INTERVAL
    )
    with started_pair(config, folder) as pair:
        yield pair


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _emulate(
    http: aiohttp.ClientSession, via: ServerHandle, session: str, node: str, command: Any
) -> int:
    body = {"session": session, "node": node, "data": json.dumps(command)}
    async with http.post(f"{via.http_url}/emulation", json=body) as resp:
        return resp.status


async def _reply(stream: Stream, cmd_id: int) -> dict[str, Any]:
    while True:
        message = await stream.next()
        if message.get("id") == cmd_id:
            return message


@pytest.mark.parametrize("kind", ["http_stream", "sse"])
async def test_emulation_through_the_other_node_runs_on_the_node_holding_the_session(
    nodes: tuple[ServerHandle, ServerHandle], http: aiohttp.ClientSession, kind: str
) -> None:
    a, b = nodes
    user, channel = f"u-{uuid.uuid4().hex[:8]}", f"room-{uuid.uuid4().hex[:8]}"
    connect_cmd = {"id": 1, "connect": {"token": make_token(user)}}
    stream = await open_stream(http, kind, a.http_url, [connect_cmd])
    connect = (await _reply(stream, 1))["connect"]
    session, node = connect["session"], connect["node"]
    subscribe = {"id": 2, "subscribe": {"channel": channel}}

    async def accepted_by_b() -> bool:
        # B learns of A from A's announcements; until then it answers 404 (node not found).
        return await _emulate(http, b, session, node, subscribe) == 204

    await until(accepted_by_b, what="B routes the subscribe to A")
    assert "subscribe" in await _reply(stream, 2)
    await until(lambda: channel in a.api("channels", {})["result"]["channels"])
    b.api("publish", {"channel": channel, "data": {"via": "b"}})
    assert (await stream.next())["push"]["pub"]["data"] == {"via": "b"}
    assert await _emulate(http, b, "no-such-session", node, {}) == 404
    await stream.close()
