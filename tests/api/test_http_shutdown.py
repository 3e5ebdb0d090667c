"""The legacy ``/api`` endpoint answers 503 once shutdown began (docs/api.md "Transport and
auth")."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from rotary.api.executor import ApiExecutor
from rotary.api.http import add_api_routes
from rotary.config.model import ApiSettings
from tests.api.fakes import RecordingNode

KEY = "shutdown-test-key"
AUTH = {"X-API-Key": KEY}
LEGACY = b'{"method": "channels", "params": {}}'


@pytest.fixture
async def served() -> AsyncIterator[tuple[TestClient[web.Request, web.Application], list[bool]]]:
    shutting_down = [False]
    app = web.Application()
    add_api_routes(
        app,
        ApiExecutor(RecordingNode()),
        ApiSettings(key=KEY),
        shutting_down=lambda: shutting_down[0],
    )
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield client, shutting_down
    await client.close()


async def test_legacy_endpoint_answers_503_with_empty_body_during_shutdown(
    served: tuple[TestClient[web.Request, web.Application], list[bool]],
) -> None:
    client, shutting_down = served
    async with client.post("/api", data=LEGACY, headers=AUTH) as resp:
        assert resp.status == 200
    shutting_down[0] = True
    async with client.post("/api", data=LEGACY, headers=AUTH) as resp:
        assert resp.status == 503
        assert await resp.read() == b""


async def test_key_is_still_checked_first_during_shutdown(
    served: tuple[TestClient[web.Request, web.Application], list[bool]],
) -> None:
    client, shutting_down = served
    shutting_down[0] = True
    async with client.post("/api", data=LEGACY) as resp:
        assert resp.status == 401


async def test_method_endpoints_keep_answering_during_shutdown(
    served: tuple[TestClient[web.Request, web.Application], list[bool]],
) -> None:
    client, shutting_down = served
    shutting_down[0] = True
    async with client.post("/api/channels", data=b"{}", headers=AUTH) as resp:
        assert resp.status == 200
