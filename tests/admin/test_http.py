"""The admin endpoints on a real loopback socket: login, tokens, throttling, the API, 404s."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from rotary.admin import add_admin_routes
from rotary.api.executor import ApiExecutor
from rotary.config import load_config
from rotary.config.model import AdminSettings
from rotary.server import build_app, build_node
from rotary.testing import ManualClock
from tests.api.fakes import RecordingNode

PASSWORD = "correct horse battery staple"
SETTINGS = AdminSettings(enabled=True, password=PASSWORD, secret="admin-secret", token_ttl=600)
Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def node() -> RecordingNode:
    return RecordingNode(nodes=[{"uid": "n1", "name": "one", "num_clients": 3}])


@pytest.fixture
async def make_client(node: RecordingNode, clock: ManualClock) -> AsyncIterator[MakeClient]:
    clients: list[Client] = []

    async def make(settings: AdminSettings = SETTINGS) -> Client:
        app = web.Application()
        add_admin_routes(app, ApiExecutor(node), settings, clock=clock)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    return await make_client()


async def login(client: Client, password: str = PASSWORD) -> aiohttp.ClientResponse:
    return await client.post("/admin/auth", data={"password": password})


async def token_of(client: Client) -> str:
    response = await login(client)
    assert response.status == 200
    return str((await response.json())["token"])


async def call(client: Client, body: Any, headers: dict[str, str] | None = None) -> Any:
    return await client.post("/admin/api", json=body, headers=headers or {})


async def test_init_says_not_authenticated_without_a_token(client: Client) -> None:
    response = await client.get("/admin/init")
    assert await response.json() == {"insecure": False, "edition": "oss", "authenticated": False}


async def test_the_right_password_urlencoded_gets_a_token_that_authenticates(
    client: Client,
) -> None:
    token = await token_of(client)
    response = await client.get("/admin/init", headers={"Authorization": f"token {token}"})
    assert (await response.json())["authenticated"] is True


async def test_the_right_password_in_a_multipart_form_gets_a_token(client: Client) -> None:
    form = aiohttp.FormData()
    form.add_field("password", PASSWORD)
    form.add_field("ignored", b"file body", filename="f.txt")
    response = await client.post("/admin/auth", data=form)
    assert response.status == 200
    assert (await response.json())["token"]


async def test_a_password_sent_as_a_file_part_is_refused(client: Client) -> None:
    form = aiohttp.FormData()
    form.add_field("password", PASSWORD.encode(), filename="password.txt")
    assert (await client.post("/admin/auth", data=form)).status == 400


async def test_a_wrong_password_gets_400(client: Client) -> None:
    response = await login(client, "wrong")
    assert (response.status, await response.text()) == (400, "Bad Request")


async def test_an_address_that_fails_five_times_gets_429_even_with_the_right_password(
    client: Client, clock: ManualClock
) -> None:
    for _ in range(5):
        assert (await login(client, "wrong")).status == 400
    refused = await login(client)
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) == 60
    clock.advance(61)
    assert (await login(client)).status == 200


async def test_the_api_without_a_token_is_401_and_runs_nothing(
    client: Client, node: RecordingNode
) -> None:
    response = await call(client, {"method": "info", "params": {}})
    assert response.status == 401
    assert node.calls == []


async def test_a_token_in_the_query_string_is_never_accepted(
    client: Client, node: RecordingNode
) -> None:
    token = await token_of(client)
    response = await client.post(f"/admin/api?token={token}", json={"method": "info"})
    assert response.status == 401
    assert node.calls == []


async def test_an_expired_token_is_401(client: Client, clock: ManualClock) -> None:
    headers = {"Authorization": f"token {await token_of(client)}"}
    clock.advance(601)
    assert (await call(client, {"method": "info", "params": {}}, headers)).status == 401


async def test_an_api_call_with_a_token_runs_the_method(
    client: Client, node: RecordingNode
) -> None:
    headers = {"Authorization": f"token {await token_of(client)}"}
    body = {"method": "publish", "params": {"channel": "news", "data": {"x": 1}}}
    response = await call(client, body, headers)
    assert response.status == 200
    assert await response.json() == {"result": {"offset": 3, "epoch": "abcd"}}
    assert node.last("api_publish")["data"] == b'{"x":1}'
    info = await call(client, {"method": "info", "params": {}}, headers)
    assert (await info.json())["result"]["nodes"][0]["num_clients"] == 3


async def test_an_api_error_comes_back_in_the_body(client: Client) -> None:
    headers = {"Authorization": f"token {await token_of(client)}"}
    response = await call(client, {"method": "publish", "params": {}}, headers)
    assert (await response.json())["error"]["code"] == 107


async def test_insecure_mode_needs_no_token_and_says_so(
    make_client: MakeClient, node: RecordingNode, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(AdminSettings(enabled=True, insecure=True))
    init = await (await client.get("/admin/init")).json()
    assert (init["insecure"], init["authenticated"]) == (True, True)
    assert (await call(client, {"method": "info", "params": {}})).status == 200
    assert "INSECURE admin mode" in caplog.text


async def test_the_ui_is_served_with_a_strict_content_security_policy(client: Client) -> None:
    page = await client.get("/")
    assert page.content_type == "text/html"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert '<script type="module" src="/admin/ui/app.js">' in await page.text()
    script = await client.get("/admin/ui/app.js")
    assert script.content_type == "text/javascript"
    assert (await client.get("/admin/ui/../http.py")).status == 404


async def _app_client(overrides: dict[str, Any]) -> tuple[Client, Any]:
    config = load_config(None, env={}, overrides=overrides)
    node = build_node(config)
    await node.start()
    client = TestClient(TestServer(build_app(config, node), host="127.0.0.1"))
    await client.start_server()
    return client, node


async def test_with_admin_disabled_every_admin_path_and_the_root_are_404() -> None:
    client, node = await _app_client({"api_key": "k"})
    try:
        for path in ("/", "/admin/init", "/admin/ui/app.js"):
            assert (await client.get(path)).status == 404
        for path in ("/admin/auth", "/admin/api"):
            assert (await client.post(path, data={"password": ""})).status == 404
    finally:
        await client.close()
        await node.close()


async def test_the_server_mounts_the_admin_routes_when_enabled() -> None:
    overrides = {"admin": True, "admin_password": PASSWORD, "admin_secret": "s"}
    client, node = await _app_client(overrides)
    try:
        headers = {"Authorization": f"token {await token_of(client)}"}
        reply = await (await call(client, {"method": "info", "params": {}}, headers)).json()
        assert reply["result"]["nodes"][0]["uid"] == node.uid
    finally:
        await client.close()
        await node.close()
