"""API configuration keys reach the HTTP binding of a real rotary process."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable

from tests.functional.conftest import ServerHandle, default_config


def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_insecure_transport_mode_and_prefix_keys_are_honoured(
    rotary_server: Callable[..., ServerHandle],
) -> None:
    server = rotary_server(
        {
            **default_config(),
            "api_insecure": True,
            "api_error_mode": "transport",
            "api_handler_prefix": "/custom",
        }
    )
    base = f"{server.http_url}/custom"
    status, body = post(f"{base}/presence", b"{}")
    assert (status, json.loads(body)) == (400, {"code": 107, "message": "bad request"})
    assert post(f"{base}/info", b"{}")[0] == 200
    assert post(f"{server.http_url}/api/info", b"{}")[0] == 404


def get_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def test_wrong_key_and_get_requests_are_refused_by_a_real_server(
    rotary_server: Callable[..., ServerHandle],
) -> None:
    server = rotary_server()
    assert post(f"{server.api_url}/info", b"{}", {"X-API-Key": "wrong"}) == (401, b"")
    assert get_status(f"{server.api_url}/info") == 405
