"""centrifuge-js (Node 20) over HTTP-streaming and SSE with emulation (docs/transports.md),
configured as a browser app would be: a list of transports and an absolute
`emulationEndpoint`. History through emulation, and the fallback from a WebSocket that cannot
connect. The shared SDK behaviour tests (tokens, refresh, presence, recovery…) run over these
transports too: tests/functional/test_sdk_official_clients.py, `TRANSPORT_SDKS`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.functional.cluster_helpers import skip_or_fail, start_node
from tests.functional.conftest import API_KEY, SECRET, ServerHandle, free_port
from tests.sdk.harness import JsSdkDriver, TokenFactory, open_driver

TOKENS = TokenFactory(SECRET)
CONFIG: dict[str, Any] = {
    "token_hmac_secret_key": SECRET,
    "api_key": API_KEY,
    "http_stream": True,
    "sse": {"enabled": True},
    "allow_subscribe_for_client": True,
    "namespaces": [
        {
            "name": "chat",
            "allow_subscribe_for_client": True,
            "presence": True,
            "allow_presence_for_subscriber": True,
            "allow_history_for_subscriber": True,
            "history_size": 100,
            "history_ttl": "300s",
            "force_recovery": True,
        }
    ],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    handle = start_node(CONFIG, tmp_path_factory.mktemp("sdk-emulation"), "sdk-emulation")
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(params=["js"])
async def js(request: pytest.FixtureRequest) -> AsyncIterator[JsSdkDriver]:
    """centrifuge-js, JSON unless a test asks for ``js-protobuf`` (indirect parametrize)."""
    try:
        async with open_driver(request.param) as driver:
            assert isinstance(driver, JsSdkDriver)
            yield driver
    except RuntimeError as exc:  # node or the npm packages missing
        if "not installed" not in str(exc):
            raise
        skip_or_fail(str(exc))


def _endpoint(server: ServerHandle, kind: str) -> dict[str, str]:
    return {"transport": kind, "endpoint": f"{server.http_url}/connection/{kind}"}


async def _connect(
    js: JsSdkDriver, server: ServerHandle, transports: list[dict[str, str]], **kw: Any
) -> dict[str, Any]:
    await js.connect_transports(transports, emulation_endpoint=f"{server.http_url}/emulation", **kw)
    return await js.wait_for(lambda e: e["ev"] == "connected")


@pytest.mark.parametrize(
    ("kind", "js"),
    [("http_stream", "js"), ("sse", "js"), ("http_stream", "js-protobuf")],
    indirect=["js"],
    ids=["http_stream", "sse", "http_stream-protobuf"],
)
async def test_subscribe_publications_presence_and_history_over_emulation(
    server: ServerHandle, js: JsSdkDriver, kind: str
) -> None:
    user, channel = f"u-{uuid.uuid4().hex[:8]}", f"chat:{uuid.uuid4().hex[:8]}"
    connected = await _connect(js, server, [_endpoint(server, kind)], token=TOKENS.connection(user))
    assert connected["transport"] == kind
    await js.subscribe(channel, recoverable=True)
    await js.wait_for(lambda e: e["ev"] == "sub_subscribed" and e["channel"] == channel)
    server.api("publish", {"channel": channel, "data": {"n": 1}})
    pub = await js.wait_for(lambda e: e["ev"] == "publication")
    assert (pub["channel"], pub["data"], pub["offset"]) == (channel, {"n": 1}, 1)
    clients = await js.presence(channel)
    assert [c["user"] for c in clients.values()] == [user]
    history = await js.history(channel, 10)
    assert [p["data"] for p in history["publications"]] == [{"n": 1}]


async def test_the_sdk_falls_back_from_a_websocket_that_cannot_connect(
    server: ServerHandle, js: JsSdkDriver
) -> None:
    dead = {
        "transport": "websocket",
        "endpoint": f"ws://127.0.0.1:{free_port()}/connection/websocket",
    }
    transports = [dead, _endpoint(server, "http_stream"), _endpoint(server, "sse")]
    connected = await _connect(js, server, transports, token=TOKENS.connection("fallback"))
    assert connected["transport"] == "http_stream"
    assert len(js.find(lambda e: e["ev"] == "connected")) == 1
