"""The example apps of examples/ (FastAPI under uvicorn, Django under its server) hand
centrifuge-js its tokens from their endpoints, and the SDK reads a private channel on Rotary."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.functional.backend_apps import APPS, AppHandle, start_app
from tests.functional.conftest import SECRET, ServerHandle
from tests.sdk.harness import JsSdkDriver, open_driver

pytestmark = [pytest.mark.sdk, pytest.mark.slow]

CHANNEL = "$gossips"


async def _connect_and_subscribe(
    driver: JsSdkDriver, server: ServerHandle, app: AppHandle, cookie: str
) -> None:
    options = {"minReconnectDelay": 200, "maxReconnectDelay": 1000}
    endpoint = f"{app.url}/centrifugo/connection_token"
    driver._send(
        {"op": "connect", "url": server.ws_url, "cookie": cookie, "token_endpoint": endpoint,
         "options": options}
    )  # fmt: skip
    await driver.wait_for(lambda e: e["ev"] == "connected")
    sub_options = {"minResubscribeDelay": 200, "maxResubscribeDelay": 1000}
    sub_endpoint = f"{app.url}/centrifugo/subscription_token"
    driver._send(
        {"op": "subscribe", "channel": CHANNEL, "token_endpoint": sub_endpoint,
         "options": sub_options}
    )  # fmt: skip


@pytest.mark.parametrize("kind", APPS)
async def test_member_gets_tokens_from_the_example_app_and_reads_the_private_channel(
    kind: str, rotary_server: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    server = rotary_server()
    with start_app(kind, secret=SECRET, tmp_path=tmp_path) as app:
        async with open_driver("js") as driver:
            assert isinstance(driver, JsSdkDriver)
            await _connect_and_subscribe(driver, server, app, app.login("alice"))
            await driver.wait_for(lambda e: e["ev"] == "sub_subscribed", within=15)
            server.api("publish", {"channel": CHANNEL, "data": {"text": "psst"}})
            got = await driver.wait_for(lambda e: e["ev"] == "publication")
            assert got["data"] == {"text": "psst"}
            statuses = [e["status"] for e in driver.find(lambda e: e["ev"] == "token_fetch")]
            assert statuses == [200, 200]


@pytest.mark.parametrize("kind", APPS)
async def test_non_member_connects_but_gets_403_for_the_private_channel(
    kind: str, rotary_server: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    server = rotary_server()
    with start_app(kind, secret=SECRET, tmp_path=tmp_path) as app:
        async with open_driver("js") as driver:
            assert isinstance(driver, JsSdkDriver)
            await _connect_and_subscribe(driver, server, app, app.login("mallory"))
            await driver.wait_for(lambda e: e["ev"] == "token_fetch" and e["status"] == 403)
            await driver.wait_for(lambda e: e["ev"] == "sub_error")
            assert not driver.find(lambda e: e["ev"] == "sub_subscribed")


@pytest.mark.parametrize("kind", APPS)
def test_token_endpoints_answer_as_the_sdk_examples_expect(kind: str, tmp_path: Path) -> None:
    with start_app(kind, secret=SECRET, tmp_path=tmp_path) as app:
        cookie = app.login("bob")
        status, body = app.post("/centrifugo/connection_token", {}, cookie=cookie)
        assert status == 200
        claims = _claims(body)
        assert claims["sub"] == "bob"
        assert claims["exp"] - claims["iat"] == 300
        status, body = app.post(
            "/centrifugo/subscription_token", {"channel": CHANNEL}, cookie=cookie
        )
        assert (status, _claims(body)["channel"]) == (200, CHANNEL)
        refusals = [
            app.post("/centrifugo/connection_token", {}),
            app.post("/centrifugo/subscription_token", {"channel": CHANNEL}),
            app.post("/centrifugo/subscription_token", {"channel": "$other"}, cookie=cookie),
            app.post("/centrifugo/subscription_token", {}, cookie=cookie),
            app.post("/centrifugo/subscription_token", ["not", "an object"], cookie=cookie),
        ]
        assert [status for status, _ in refusals] == [403] * 5
        assert all("token" not in body for _, body in refusals if isinstance(body, dict))


def _claims(body: Any) -> dict[str, Any]:
    assert isinstance(body, dict) and set(body) == {"token"}
    claims: dict[str, Any] = jwt.decode(body["token"], SECRET, algorithms=["HS256"])
    return claims
