"""Token revocation across two real nodes sharing Redis (docs/revocation.md).

One pair of `python -m rotary` processes (A and B, ``engine: redis``, a Redis prefix of
their own) serves the module; every test uses users, ``jti`` values and channels of its
own. Revocations are written through B's server API while the client is on A, so every
cut shown here crossed the nodes through Redis.

The promise under test is functional: a live connection or subscription holding a revoked
token is cut. "Cut" has a generous deadline, `CUT_DEADLINE` seconds from the API answer
(the cut takes milliseconds; how fast is a benchmark figure, bench/), and a session still
alive after it fails the test. The cut latencies seen are printed (``-s``) for the record.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.functional.cluster_helpers import node_pair_fixture, pair_config, start_node
from tests.functional.conftest import API_KEY, ServerHandle, WsClient, make_token

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]

#: Seconds from the API call (made through B) to the close/unsubscribe frame on A, per test.
CUT_LATENCIES: dict[str, float] = {}

#: Seconds a live session may outlive the revocation that refuses its token.
CUT_DEADLINE = 5.0

_T = TypeVar("_T")


async def cut_in_time(awaiting: Awaitable[_T], what: str) -> _T:
    """The close code or push `awaiting` yields, failing the test if it is not there within
    `CUT_DEADLINE` seconds."""
    try:
        async with asyncio.timeout(CUT_DEADLINE):
            return await awaiting
    except TimeoutError:
        pytest.fail(f"{what} still alive {CUT_DEADLINE} s after its token was revoked")


nodes = node_pair_fixture("revocation")


async def api(server: ServerHandle, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """Call the server API off the event loop; fail on an error answer."""
    body = await asyncio.to_thread(server.api, method, params)
    assert "error" not in body, f"API {method} failed: {body}"
    result: dict[str, Any] = body.get("result", {})
    return result


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def connected(ws_connect: Any, server: ServerHandle, token: str) -> WsClient:
    """A client connected to `server` with `token` (asserts success)."""
    client: WsClient = await ws_connect(server)
    reply = await client.request({"id": 1, "connect": {"token": token}})
    assert "connect" in reply, reply
    return client


async def connect_reply(ws_connect: Any, server: ServerHandle, token: str) -> dict[str, Any]:
    client: WsClient = await ws_connect(server)
    return await client.request({"id": 1, "connect": {"token": token}})


async def test_revoking_a_live_connections_jti_through_node_b_disconnects_it_on_node_a(
    nodes: tuple[ServerHandle, ServerHandle], ws_connect: Any
) -> None:
    a, b = nodes
    user, jti = unique("u"), unique("jti")
    token = make_token(user, jti=jti, iat=int(time.time()))
    client = await connected(ws_connect, a, token)
    answered = time.monotonic()
    await api(b, "revoke_token", {"uid": jti, "expire_at": int(time.time()) + 3600})
    assert await cut_in_time(client.closed(), "connection") == (3011, "force reconnect")
    CUT_LATENCIES["connection"] = time.monotonic() - answered
    for node in (a, b):
        refused = await connect_reply(ws_connect, node, token)
        assert refused["error"] == {"code": 109, "message": "token expired"}
    fresh = make_token(user, jti=unique("jti"), iat=int(time.time()))
    await connected(ws_connect, a, fresh)


async def test_revoked_subscription_token_is_unsubscribed_with_2501_and_refused_again(
    nodes: tuple[ServerHandle, ServerHandle], ws_connect: Any
) -> None:
    a, b = nodes
    user, jti, channel = unique("u"), unique("sjti"), unique("$private")
    client = await connected(ws_connect, a, make_token(user))
    sub_token = make_token(user, channel=channel, jti=jti, iat=int(time.time()))
    ok = await client.request({"id": 2, "subscribe": {"channel": channel, "token": sub_token}})
    assert "subscribe" in ok, ok
    answered = time.monotonic()
    await api(b, "revoke_token", {"uid": jti})
    push = await cut_in_time(client.push(), "subscription")
    CUT_LATENCIES["subscription"] = time.monotonic() - answered
    expected = {"code": 2501, "reason": "subscription expired"}
    assert push == {"push": {"channel": channel, "unsubscribe": expected}}
    again = await client.request({"id": 3, "subscribe": {"channel": channel, "token": sub_token}})
    assert again["error"] == {"code": 109, "message": "token expired"}
    fresh = make_token(user, channel=channel, jti=unique("sjti"))
    back = await client.request({"id": 4, "subscribe": {"channel": channel, "token": fresh}})
    assert "subscribe" in back, back


async def test_invalidate_user_tokens_cuts_older_tokens_and_spares_newer_ones(
    nodes: tuple[ServerHandle, ServerHandle], ws_connect: Any
) -> None:
    a, b = nodes
    user, now = unique("u"), int(time.time())
    older = make_token(user, iat=now - 60)
    newer = make_token(user, iat=now - 10)
    old_client = await connected(ws_connect, a, older)
    new_client = await connected(ws_connect, a, newer)
    await api(b, "invalidate_user_tokens", {"user": user, "issued_before": now - 30})
    assert await cut_in_time(old_client.closed(), "connection") == (3011, "force reconnect")
    still = await new_client.request({"id": 2, "subscribe": {"channel": unique("open")}})
    assert "subscribe" in still, still
    assert (await connect_reply(ws_connect, b, older))["error"]["code"] == 109
    await connected(ws_connect, b, newer)


async def test_invalidate_user_tokens_defaults_issued_before_to_now(
    nodes: tuple[ServerHandle, ServerHandle], ws_connect: Any
) -> None:
    a, b = nodes
    user = unique("u")
    token = make_token(user, iat=int(time.time()) - 5)
    client = await connected(ws_connect, a, token)
    await api(b, "invalidate_user_tokens", {"user": user})
    assert await cut_in_time(client.closed(), "connection") == (3011, "force reconnect")
    assert (await connect_reply(ws_connect, a, token))["error"]["code"] == 109


async def test_invalidation_limited_to_a_channel_cuts_only_that_channels_subscription(
    nodes: tuple[ServerHandle, ServerHandle], ws_connect: Any
) -> None:
    a, b = nodes
    user, now = unique("u"), int(time.time())
    news, other = unique("$news"), unique("$other")
    client = await connected(ws_connect, a, make_token(user, iat=now - 60))
    for n, channel in enumerate((news, other), start=2):
        tok = make_token(user, channel=channel, iat=now - 60)
        assert "subscribe" in await client.request(
            {"id": n, "subscribe": {"channel": channel, "token": tok}}
        )
    await api(b, "invalidate_user_tokens", {"user": user, "channel": news})
    push = await cut_in_time(client.push(), "subscription")
    assert push["push"] == {
        "channel": news,
        "unsubscribe": {"code": 2501, "reason": "subscription expired"},
    }
    # The connection and the other channel's subscription are untouched.
    await api(b, "publish", {"channel": other, "data": {"still": True}})
    pub = await client.push()
    assert pub == {"push": {"channel": other, "pub": {"data": {"still": True}}}}


async def test_refresh_with_a_revoked_token_disconnects_with_3005(
    nodes: tuple[ServerHandle, ServerHandle], ws_connect: Any
) -> None:
    a, b = nodes
    user, jti = unique("u"), unique("jti")
    client = await connected(ws_connect, a, make_token(user))
    await api(b, "revoke_token", {"uid": jti})
    await client.send({"id": 2, "refresh": {"token": make_token(user, jti=jti)}})
    assert await client.closed(wait=10) == (3005, "connection expired")


async def test_sub_refresh_with_a_revoked_token_is_answered_then_unsubscribed_with_2501(
    nodes: tuple[ServerHandle, ServerHandle], ws_connect: Any
) -> None:
    a, b = nodes
    user, jti, channel = unique("u"), unique("sjti"), unique("$refresh")
    client = await connected(ws_connect, a, make_token(user))
    first = make_token(user, channel=channel)
    assert "subscribe" in await client.request(
        {"id": 2, "subscribe": {"channel": channel, "token": first}}
    )
    await api(b, "revoke_token", {"uid": jti})
    revoked = make_token(user, channel=channel, jti=jti)
    await client.send({"id": 3, "sub_refresh": {"channel": channel, "token": revoked}})
    # The reply and the push may share one frame: read messages, not replies.
    messages: list[dict[str, Any]] = []
    while len(messages) < 2:
        messages.extend(m for m in await client.recv() if m)
    expected = {"code": 2501, "reason": "subscription expired"}
    assert messages == [
        {"id": 3, "sub_refresh": {}},
        {"push": {"channel": channel, "unsubscribe": expected}},
    ]


async def test_every_refusal_and_cut_is_one_denial_line_without_the_token(
    nodes: tuple[ServerHandle, ServerHandle], ws_connect: Any
) -> None:
    a, b = nodes
    user, jti = unique("u"), unique("jti")
    token = make_token(user, jti=jti)
    client = await connected(ws_connect, a, token)
    await api(b, "revoke_token", {"uid": jti})
    assert await cut_in_time(client.closed(), "connection") == (3011, "force reconnect")
    await connect_reply(ws_connect, a, token)
    lines = [line for line in a.log().splitlines() if f'user="{user}"' in line]
    cut = [line for line in lines if "denied revocation: reason=revoked_jti" in line]
    refused = [line for line in lines if "denied connect: reason=revoked_jti" in line]
    assert len(cut) == 1 and "outcome=revoked" in cut[0] and "disconnect 3011" in cut[0]
    assert len(refused) == 1 and "outcome=revoked" in refused[0]
    assert token not in a.log() and token.split(".")[2] not in a.log()


async def test_the_cent_client_revokes_and_invalidates_with_pros_request_shapes(
    nodes: tuple[ServerHandle, ServerHandle], ws_connect: Any
) -> None:
    from cent import AsyncClient, InvalidateUserTokensRequest, RevokeTokenRequest

    a, b = nodes
    user, jti = unique("u"), unique("jti")
    by_jti = await connected(ws_connect, a, make_token(user, jti=jti))
    by_user = await connected(ws_connect, a, make_token(user, iat=int(time.time()) - 60))
    async with AsyncClient(b.api_url, API_KEY) as cent:
        await cent.revoke_token(RevokeTokenRequest(uid=jti, expire_at=int(time.time()) + 60))
        assert await cut_in_time(by_jti.closed(), "connection") == (3011, "force reconnect")
        before = int(time.time()) - 30
        await cent.invalidate_user_tokens(
            InvalidateUserTokensRequest(user=user, issued_before=before)
        )
    assert await cut_in_time(by_user.closed(), "connection") == (3011, "force reconnect")


async def test_revoke_token_without_uid_is_107_bad_request(
    nodes: tuple[ServerHandle, ServerHandle],
) -> None:
    body = await asyncio.to_thread(nodes[1].api, "revoke_token", {"expire_at": 1})
    assert body["error"]["code"] == 107


async def test_revocations_outlive_a_node_restart(tmp_path: Path, ws_connect: Any) -> None:
    config = pair_config(f"rotary-revocation-restart-{uuid.uuid4().hex[:10]}")
    first = start_node(config, tmp_path, "first")
    user, jti = unique("u"), unique("jti")
    revoked = make_token(user, jti=jti)
    older = make_token(user, iat=int(time.time()) - 60)
    try:
        await api(first, "revoke_token", {"uid": jti})
        await api(
            first, "invalidate_user_tokens", {"user": user, "issued_before": int(time.time()) - 30}
        )
    finally:
        assert first.stop() == 0
    second = start_node(config, tmp_path, "second")
    try:
        for token in (revoked, older):
            assert (await connect_reply(ws_connect, second, token))["error"]["code"] == 109
        await connected(ws_connect, second, make_token(user, iat=int(time.time())))
    finally:
        second.stop()


def teardown_module() -> None:
    if CUT_LATENCIES:
        print("revocation cut latencies (s):", {k: round(v, 4) for k, v in CUT_LATENCIES.items()})


async def test_checktoken_explains_a_revoked_token_in_the_words_of_the_log(
    nodes: tuple[ServerHandle, ServerHandle], ws_connect: Any, tmp_path: Path
) -> None:
    a, b = nodes
    user, jti = unique("u"), unique("jti")
    token = make_token(user, jti=jti)
    await api(b, "revoke_token", {"uid": jti})
    await connect_reply(ws_connect, a, token)
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(a.config))
    cmd = [sys.executable, "-m", "rotary", "checktoken", "-c", str(cfg), token]
    done = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1, done
    assert done.stdout.splitlines()[:2] == [
        "error: token revoked",
        "reason: revoked_jti (the token's jti was revoked (revoke_token))",
    ]
    [logged] = [line for line in a.log().splitlines() if f'user="{user}"' in line]
    assert "denied connect: reason=revoked_jti" in logged
