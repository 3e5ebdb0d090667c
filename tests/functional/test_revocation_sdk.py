"""Token revocation with the official SDKs (centrifuge-js and centrifuge-python), unchanged.

Two real nodes share Redis (the pair of tests/functional/test_revocation_cluster.py, started
once for this module): the SDK is connected to node A and the token is revoked through node
B's server API. What both SDKs must do with Rotary's codes (docs/revocation.md): after the
cut (disconnect 3011, unsubscribe push 2501) they come back with the token they hold, are
refused with error 109, ask their getToken callback for a new token, and get back in with
it. The revoked token never gets in again. Each SDK runs in JSON and in Protobuf. Tokens are
PyJWT's, signed in this module.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.functional.cluster_helpers import node_pair_fixture
from tests.functional.conftest import SECRET, ServerHandle
from tests.sdk.harness import PROTOCOL_SDKS, SdkDriver, TokenFactory, open_driver, replies_to

pytestmark = [pytest.mark.sdk, pytest.mark.redis, pytest.mark.timeout(45)]

TOKENS = TokenFactory(SECRET)
_TOKEN_EXPIRED = {"code": 109, "message": "token expired"}


nodes = node_pair_fixture("revocation-sdk")


@pytest.fixture(params=PROTOCOL_SDKS)
async def sdk(
    request: pytest.FixtureRequest, nodes: tuple[ServerHandle, ServerHandle]
) -> AsyncIterator[SdkDriver]:
    async with open_driver(request.param) as driver:
        yield driver


async def api(server: ServerHandle, method: str, params: dict[str, Any]) -> None:
    body = await asyncio.to_thread(server.api, method, params)
    assert "error" not in body, f"API {method} failed: {body}"


def is_ev(name: str, **fields: Any) -> Any:
    return lambda e: e["ev"] == name and all(e.get(k) == v for k, v in fields.items())


class Fresh:
    """A getToken source: every call signs a new token (new ``jti``, ``iat`` now)."""

    def __init__(self, user: str, channel: str = "") -> None:
        self.user, self.channel = user, channel
        self.issued: list[str] = []

    def connection(self) -> str:
        return self._keep(TOKENS.connection(self.user, **self._claims()))

    def subscription(self, channel: str) -> str:
        return self._keep(TOKENS.subscription(self.user, channel, **self._claims()))

    def _claims(self) -> dict[str, Any]:
        return {"jti": uuid.uuid4().hex, "iat": int(time.time())}

    def _keep(self, token: str) -> str:
        self.issued.append(token)
        return token


def after(sdk: SdkDriver, event: dict[str, Any]) -> int:
    return sdk.events.index(event) + 1


def tokens_sent(sdk: SdkDriver, method: str, start: int) -> list[tuple[str, Any]]:
    """(token, reply) of every `method` command the SDK sent from event `start` on."""
    pairs = replies_to(sdk.events[start:], method)
    return [(cmd[method].get("token", ""), reply) for cmd, reply in pairs]


async def test_sdk_cut_by_revoke_token_on_another_node_gets_a_new_token_and_reconnects(
    sdk: SdkDriver, nodes: tuple[ServerHandle, ServerHandle]
) -> None:
    a, b = nodes
    user, jti = f"rev-{sdk.sdk}-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    revoked = TOKENS.connection(user, jti=jti, iat=int(time.time()))
    fresh = Fresh(user)
    await sdk.connect(a.ws_url, token=revoked, get_token=fresh.connection, min_reconnect_delay=0.1)
    first = await sdk.wait_for(is_ev("connected"))
    start = after(sdk, first)

    await api(b, "revoke_token", {"uid": jti, "expire_at": int(time.time()) + 3600})
    cut = await sdk.wait_for(lambda e: e["ev"] in ("connecting", "disconnected"), start=start)
    assert (cut["ev"], cut["code"]) == ("connecting", 3011), sdk.dump()
    back = await sdk.wait_for(is_ev("connected"), start=after(sdk, cut), within=15)

    assert sdk.find(is_ev("token_request", kind="connection"), start=start), sdk.dump()
    sent = tokens_sent(sdk, "connect", start)
    # The SDK first comes back with the token it holds: refused with 109, never let in.
    assert sent[0][0] == revoked, sdk.dump()
    for token, reply in sent:
        if token == revoked:
            assert reply is not None and reply["error"] == _TOKEN_EXPIRED, sdk.dump()
    assert sent[-1][0] in fresh.issued and "connect" in (sent[-1][1] or {}), sdk.dump()
    assert back["client"] != first["client"]


async def test_sdk_subscription_cut_by_revocation_resubscribes_with_a_new_token(
    sdk: SdkDriver, nodes: tuple[ServerHandle, ServerHandle]
) -> None:
    a, b = nodes
    user = f"rev-{sdk.sdk}-{uuid.uuid4().hex[:6]}"
    channel, jti = f"$rev-{sdk.sdk}-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    revoked = TOKENS.subscription(user, channel, jti=jti, iat=int(time.time()))
    fresh = Fresh(user)
    await sdk.connect(a.ws_url, token=TOKENS.connection(user))
    await sdk.wait_for(is_ev("connected"))
    await sdk.subscribe(channel, token=revoked, get_token=fresh.subscription)
    first = await sdk.wait_for(is_ev("sub_subscribed", channel=channel))
    start = after(sdk, first)

    await api(b, "revoke_token", {"uid": jti})
    cut = await sdk.wait_for(
        lambda e: e["ev"] in ("sub_subscribing", "sub_unsubscribed"), start=start
    )
    assert (cut["ev"], cut["code"]) == ("sub_subscribing", 2501), sdk.dump()
    await sdk.wait_for(is_ev("sub_subscribed", channel=channel), start=after(sdk, cut), within=15)

    assert sdk.find(is_ev("token_request", kind="subscription"), start=start), sdk.dump()
    sent = tokens_sent(sdk, "subscribe", start)
    assert sent[0][0] == revoked, sdk.dump()
    for token, reply in sent:
        if token == revoked:
            assert reply is not None and reply["error"] == _TOKEN_EXPIRED, sdk.dump()
    assert sent[-1][0] in fresh.issued and "subscribe" in (sent[-1][1] or {}), sdk.dump()
    assert not sdk.find(lambda e: e["ev"] in ("connecting", "disconnected"), start=start)


async def test_sdk_cut_by_user_invalidation_comes_back_with_a_newer_token(
    sdk: SdkDriver, nodes: tuple[ServerHandle, ServerHandle]
) -> None:
    a, b = nodes
    user = f"inv-{sdk.sdk}-{uuid.uuid4().hex[:6]}"
    older = TOKENS.connection(user, iat=int(time.time()) - 60)
    fresh = Fresh(user)
    await sdk.connect(a.ws_url, token=older, get_token=fresh.connection, min_reconnect_delay=0.1)
    start = after(sdk, await sdk.wait_for(is_ev("connected")))

    await api(b, "invalidate_user_tokens", {"user": user, "issued_before": int(time.time()) - 1})
    cut = await sdk.wait_for(lambda e: e["ev"] in ("connecting", "disconnected"), start=start)
    assert (cut["ev"], cut["code"]) == ("connecting", 3011), sdk.dump()
    await sdk.wait_for(is_ev("connected"), start=after(sdk, cut), within=15)
    sent = tokens_sent(sdk, "connect", start)
    assert all(r["error"] == _TOKEN_EXPIRED for t, r in sent if t == older and r), sdk.dump()
    assert sent[-1][0] in fresh.issued, sdk.dump()
