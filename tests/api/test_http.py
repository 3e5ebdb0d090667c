"""The HTTP binding on a real loopback socket: auth, error modes, legacy endpoint, limits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from rotary.api.executor import ApiExecutor
from rotary.api.http import add_api_routes
from rotary.config.model import ApiSettings
from rotary.protocol.codes import CommandError, ErrorCode
from tests.api.fakes import RecordingNode

KEY = "sekrit-api-key"
MakeClient = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
def node() -> RecordingNode:
    return RecordingNode()


@pytest.fixture
async def make_client(node: RecordingNode) -> AsyncIterator[MakeClient]:
    clients: list[TestClient[web.Request, web.Application]] = []

    async def make(
        settings: ApiSettings | None = None, **kw: Any
    ) -> TestClient[web.Request, web.Application]:
        app = web.Application()
        add_api_routes(app, ApiExecutor(node), settings or ApiSettings(key=KEY), **kw)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def client(make_client: MakeClient) -> TestClient[web.Request, web.Application]:
    return await make_client()


AUTH = {"X-API-Key": KEY}


async def post(
    client: TestClient[web.Request, web.Application],
    path: str,
    body: Any,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    resp = await client.post(path, data=data, headers=AUTH if headers is None else headers)
    return resp.status, await resp.read()


# the per-method endpoints


async def test_publish_answers_result_wrapped_in_result(
    client: TestClient[web.Request, web.Application], node: RecordingNode
) -> None:
    status, body = await post(client, "/api/publish", {"channel": "c", "data": {"x": 1}})
    assert status == 200
    assert orjson.loads(body) == {"result": {"offset": 3, "epoch": "abcd"}}
    assert node.last("api_publish")["data"] == b'{"x":1}'


async def test_batch_answers_replies_at_the_top_level(
    client: TestClient[web.Request, web.Application],
) -> None:
    status, body = await post(
        client, "/api/batch", {"commands": [{"info": {}}, {"presence_stats": {"channel": "c"}}]}
    )
    assert status == 200
    assert orjson.loads(body) == {
        "replies": [{"info": {"nodes": []}}, {"presence_stats": {"num_clients": 2, "num_users": 1}}]
    }


async def test_api_error_is_http_200_with_error_object_by_default(
    client: TestClient[web.Request, web.Application],
) -> None:
    status, body = await post(client, "/api/publish", {"channel": "c"})
    assert (status, orjson.loads(body)) == (200, {"error": {"code": 107, "message": "bad request"}})


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ErrorCode.UNKNOWN_CHANNEL, 404),
        (ErrorCode.NOT_AVAILABLE, 400),
        (ErrorCode.UNRECOVERABLE_POSITION, 416),
        (ErrorCode.INTERNAL, 500),
        (ErrorCode.PERMISSION_DENIED, 500),
    ],
)
async def test_transport_error_mode_header_maps_codes_to_http_statuses(
    client: TestClient[web.Request, web.Application],
    node: RecordingNode,
    error: Any,
    status: int,
) -> None:
    node.failures["api_history"] = CommandError(error)
    headers = {**AUTH, "X-Centrifugo-Error-Mode": "transport"}
    got, body = await post(client, "/api/history", {"channel": "c"}, headers)
    assert got == status
    assert orjson.loads(body)["code"] == error.code


async def test_transport_error_mode_from_settings_gives_bare_error(
    make_client: MakeClient,
) -> None:
    client = await make_client(ApiSettings(key=KEY, error_mode="transport"))
    status, body = await post(client, "/api/presence", {})
    assert (status, orjson.loads(body)) == (400, {"code": 107, "message": "bad request"})


async def test_rpc_in_transport_mode_is_404_not_found(
    client: TestClient[web.Request, web.Application],
) -> None:
    headers = {**AUTH, "X-Centrifugo-Error-Mode": "transport"}
    status, body = await post(client, "/api/rpc", {"method": "m"}, headers)
    assert (status, orjson.loads(body)) == (404, {"code": 104, "message": "not found"})


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1,2]", b'"text"'])
async def test_body_that_is_not_a_json_object_gets_400_bad_request(
    client: TestClient[web.Request, web.Application], node: RecordingNode, body: bytes
) -> None:
    assert await post(client, "/api/info", body) == (400, b"Bad Request")
    assert node.calls == []


async def test_wrongly_typed_field_gets_400_bad_request(
    client: TestClient[web.Request, web.Application],
) -> None:
    assert await post(client, "/api/publish", {"channel": 1, "data": 1}) == (400, b"Bad Request")


@pytest.mark.parametrize("path", ["/api/block_user", "/api/nope"])
async def test_method_not_served_is_404(
    client: TestClient[web.Request, web.Application], path: str
) -> None:
    status, _ = await post(client, path, {"uid": "x"})
    assert status == 404


@pytest.mark.parametrize("path", ["/api/publish", "/api"])
async def test_non_post_request_gets_405_with_empty_body(
    client: TestClient[web.Request, web.Application], path: str
) -> None:
    resp = await client.get(path, headers=AUTH)
    assert (resp.status, await resp.read()) == (405, b"")


async def test_body_over_the_size_limit_gets_413(
    make_client: MakeClient, node: RecordingNode
) -> None:
    client = await make_client(max_body_size=1000)
    status, _ = await post(client, "/api/publish", {"channel": "c", "data": "x" * 2000})
    assert status == 413
    assert node.calls == []


async def test_custom_prefix_moves_both_endpoints(make_client: MakeClient) -> None:
    client = await make_client(ApiSettings(key=KEY, handler_prefix="/srv/api/"))
    assert (await post(client, "/srv/api/info", {}))[0] == 200
    assert (await post(client, "/srv/api", b'{"method":"info"}'))[0] == 200
    assert (await post(client, "/api/info", {}))[0] == 404


# authorization


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"X-API-Key": KEY}, ""),
        ({"Authorization": f"apikey {KEY}"}, ""),
        ({"Authorization": f"APIKey {KEY}"}, ""),
        ({}, f"?api_key={KEY}"),
        ({"X-API-Key": "wrong"}, f"?api_key={KEY}"),
    ],
)
async def test_key_is_accepted_from_header_authorization_or_query(
    client: TestClient[web.Request, web.Application], headers: dict[str, str], query: str
) -> None:
    status, _ = await post(client, f"/api/info{query}", {}, headers)
    assert status == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "wrong"},
        {"X-API-Key": KEY[:-1]},
        {"Authorization": f"bearer {KEY}"},
        {"Authorization": f"apikey {KEY} extra"},
        {"X-API-Key": "wrong", "Authorization": f"apikey {KEY}"},
    ],
)
async def test_missing_or_wrong_key_gets_401_with_empty_body(
    client: TestClient[web.Request, web.Application],
    node: RecordingNode,
    headers: dict[str, str],
) -> None:
    assert await post(client, "/api/info", {}, headers) == (401, b"")
    assert await post(client, "/api", b'{"method":"info"}', headers) == (401, b"")
    assert node.calls == []


async def test_empty_configured_key_refuses_every_request(make_client: MakeClient) -> None:
    client = await make_client(ApiSettings(key=""))
    assert await post(client, "/api/info", {}, {"X-API-Key": ""}) == (401, b"")
    assert await post(client, "/api/info?api_key=", {}, {}) == (401, b"")


async def test_insecure_mode_needs_no_key(make_client: MakeClient) -> None:
    client = await make_client(ApiSettings(key="", insecure=True))
    assert (await post(client, "/api/info", {}, {}))[0] == 200


# the legacy endpoint


async def test_legacy_endpoint_answers_one_line_per_command_in_order(
    client: TestClient[web.Request, web.Application], node: RecordingNode
) -> None:
    body = (
        b'{"id":1,"method":"publish","params":{"channel":"c","data":{"a":1}}}\n'
        b'{"id":2,"method":"PRESENCE_STATS","params":{"channel":"c"}}  '
        b'{"id":3,"method":9}\n'
        b'{"id":4,"method":"presence","params":{}}\n'
        b'{"method":"block_user","params":{"user":"x"}}\n'
        b'{"id":6,"method":"no_such_thing"}\n'
    )
    status, raw = await post(client, "/api", body)
    assert status == 200
    assert [orjson.loads(line) for line in raw.split(b"\n")] == [
        {"id": 1, "result": {"offset": 3, "epoch": "abcd"}},
        {"id": 2, "result": {"num_clients": 2, "num_users": 1}},
        {"id": 3, "result": {"nodes": []}},
        {"id": 4, "error": {"code": 107, "message": "bad request"}},
        {"error": {"code": 104, "message": "not found"}},
        {"id": 6, "error": {"code": 104, "message": "not found"}},
    ]
    assert node.names() == ["api_publish", "api_presence_stats", "api_info"]


async def test_legacy_endpoint_reports_undecodable_params_as_107(
    client: TestClient[web.Request, web.Application],
) -> None:
    status, raw = await post(client, "/api", b'{"id":1,"method":"publish","params":[1]}')
    assert (status, orjson.loads(raw)) == (
        200,
        {"id": 1, "error": {"code": 107, "message": "bad request"}},
    )


async def test_legacy_endpoint_keeps_http_200_even_in_transport_mode(
    make_client: MakeClient,
) -> None:
    client = await make_client(ApiSettings(key=KEY, error_mode="transport"))
    status, raw = await post(client, "/api", b'{"method":"presence","params":{}}')
    assert (status, orjson.loads(raw)) == (200, {"error": {"code": 107, "message": "bad request"}})


@pytest.mark.parametrize(
    "body", [b"", b"  \n", b'{"method":"info"} {broken', b'{"method":"info"} 5']
)
async def test_legacy_endpoint_with_a_malformed_body_gets_400_and_runs_nothing(
    client: TestClient[web.Request, web.Application], node: RecordingNode, body: bytes
) -> None:
    assert await post(client, "/api", body) == (400, b"Bad Request")
    assert node.calls == []


async def test_api_errors_are_logged_with_method_and_code_but_never_the_key(
    client: TestClient[web.Request, web.Application], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="rotary.api")
    await post(client, f"/api/publish?api_key={KEY}", {"channel": "c"}, {})
    assert "publish" in caplog.text
    assert "107" in caplog.text
    assert KEY not in caplog.text
