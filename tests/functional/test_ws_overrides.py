"""Subscription-token overrides, server-side expiry and positioning over a real socket.

Each override test (docs/tokens.md "Subscription token claims" ``override``) puts two subscribers
on one channel, one holding a
real HS256 subscription token with the override and one holding a token without it, and shows
the option differs between them while the namespace default stays in force for the other.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import jwt

from tests.functional.conftest import API_KEY, SECRET, ServerHandle, WsClient, make_token

CHANNEL = "ns:room"


def config(**options: Any) -> dict[str, Any]:
    """One namespace ``ns`` with `options`; subscription tokens authorize everything else."""
    return {
        "token_hmac_secret_key": SECRET,
        "api_key": API_KEY,
        "namespaces": [{"name": "ns", **options}],
    }


def sub_token(user: str, channel: str = CHANNEL, **override: bool) -> str:
    """A subscription token (no ``exp``) for `user`, with each `override` as ``{"value": v}``."""
    claims: dict[str, Any] = {"sub": user, "channel": channel}
    if override:
        claims["override"] = {name: {"value": value} for name, value in override.items()}
    return str(jwt.encode(claims, SECRET, algorithm="HS256"))


async def connected(server: ServerHandle, ws_connect: Any, user: str) -> WsClient:
    client: WsClient = await ws_connect(server)
    reply = await client.request({"id": 1, "connect": {"token": make_token(user)}})
    assert "connect" in reply, reply
    return client


async def subscribed(
    server: ServerHandle, ws_connect: Any, user: str, **override: bool
) -> tuple[WsClient, dict[str, Any]]:
    """A client of `user` subscribed to CHANNEL with its token; returns it and the result."""
    client = await connected(server, ws_connect, user)
    token = sub_token(user, **override)
    reply = await client.request({"id": 2, "subscribe": {"channel": CHANNEL, "token": token}})
    assert "subscribe" in reply, reply
    return client, reply["subscribe"]


async def pushes_before(client: WsClient, marker: dict[str, Any]) -> list[dict[str, Any]]:
    """The pushes `client` receives before the publication whose data is `marker`."""
    seen = []
    while True:
        push = (await client.push())["push"]
        if push.get("pub", {}).get("data") == marker:
            return seen
        seen.append(push)


def joined_users(pushes: list[dict[str, Any]]) -> list[str]:
    return [p["join"]["info"]["user"] for p in pushes if "join" in p]


# ------------------------------------------------------------------------------- overrides


async def test_presence_override_false_keeps_only_that_subscriber_out_of_presence(
    rotary_server: Any, ws_connect: Any
) -> None:
    server = rotary_server(config(presence=True))
    await subscribed(server, ws_connect, "hidden", presence=False)
    await subscribed(server, ws_connect, "shown")
    presence = server.api("presence", {"channel": CHANNEL})["result"]["presence"]
    assert sorted(info["user"] for info in presence.values()) == ["shown"]
    stats = server.api("presence_stats", {"channel": CHANNEL})["result"]
    assert stats == {"num_clients": 1, "num_users": 1}


async def test_join_leave_override_makes_only_that_subscriber_emit_join_and_leave(
    rotary_server: Any, ws_connect: Any
) -> None:
    server = rotary_server(config(presence=True, join_leave=False, force_push_join_leave=True))
    watcher, _ = await subscribed(server, ws_connect, "watcher")
    loud, _ = await subscribed(server, ws_connect, "loud", join_leave=True)
    quiet, _ = await subscribed(server, ws_connect, "quiet")
    await quiet.ws.close()
    await loud.ws.close()
    server.api("publish", {"channel": CHANNEL, "data": {"marker": 1}})
    pushes = await pushes_before(watcher, {"marker": 1})
    assert joined_users(pushes) == ["loud"]
    assert [p["leave"]["info"]["user"] for p in pushes if "leave" in p] == ["loud"]


async def test_force_push_join_leave_override_pushes_joins_only_to_that_subscriber(
    rotary_server: Any, ws_connect: Any
) -> None:
    server = rotary_server(config(presence=True, join_leave=True, force_push_join_leave=False))
    pushed, _ = await subscribed(server, ws_connect, "pushed", force_push_join_leave=True)
    unpushed, _ = await subscribed(server, ws_connect, "unpushed")
    await subscribed(server, ws_connect, "newcomer")
    server.api("publish", {"channel": CHANNEL, "data": {"marker": 1}})
    joins = joined_users(await pushes_before(pushed, {"marker": 1}))
    assert joins == ["pushed", "unpushed", "newcomer"]  # its own join included
    assert await pushes_before(unpushed, {"marker": 1}) == []


async def test_force_recovery_override_makes_only_that_subscription_recoverable(
    rotary_server: Any, ws_connect: Any
) -> None:
    server = rotary_server(config(history_size=10, history_ttl="60s"))
    server.api("publish", {"channel": CHANNEL, "data": {"n": 1}})
    epoch = server.api("history", {"channel": CHANNEL, "limit": 0})["result"]["epoch"]
    _, recoverable = await subscribed(server, ws_connect, "r", force_recovery=True)
    _, plain = await subscribed(server, ws_connect, "p")
    assert recoverable["recoverable"] is True and recoverable["positioned"] is True
    assert (recoverable["epoch"], recoverable["offset"]) == (epoch, 1)
    assert plain == {}


async def test_force_recovery_override_recovers_missed_publications_on_resubscribe(
    rotary_server: Any, ws_connect: Any
) -> None:
    server = rotary_server(config(history_size=10, history_ttl="60s"))
    epoch = server.api("publish", {"channel": CHANNEL, "data": {"n": 1}})["result"]["epoch"]
    server.api("publish", {"channel": CHANNEL, "data": {"n": 2}})
    since = {"recover": True, "offset": 1, "epoch": epoch}
    results = {}
    for user, override in (("r", {"force_recovery": True}), ("p", {})):
        client = await connected(server, ws_connect, user)
        sub = {"channel": CHANNEL, "token": sub_token(user, **override), **since}
        results[user] = (await client.request({"id": 2, "subscribe": sub}))["subscribe"]
    assert results["r"]["recovered"] is True
    assert [p["data"] for p in results["r"]["publications"]] == [{"n": 2}]
    assert results["p"] == {}


async def test_force_positioning_override_positions_only_that_subscription(
    rotary_server: Any, ws_connect: Any
) -> None:
    server = rotary_server(config(history_size=10, history_ttl="60s"))
    epoch = server.api("publish", {"channel": CHANNEL, "data": {"n": 1}})["result"]["epoch"]
    _, positioned = await subscribed(server, ws_connect, "pos", force_positioning=True)
    _, plain = await subscribed(server, ws_connect, "plain")
    assert positioned["positioned"] is True and "recoverable" not in positioned
    assert (positioned["epoch"], positioned["offset"]) == (epoch, 1)
    assert plain == {}


# ------------------------------------------------------------------ server-side expiry
# (docs/tokens.md "Subscription expiry")


async def test_unrefreshed_server_side_subscription_closes_the_connection_with_3006(
    rotary_server: Any, ws_connect: Any
) -> None:
    server = rotary_server(
        {
            **config(),
            "client_presence_update_interval": "500ms",
            "client_expired_sub_close_delay": "0s",
        }
    )
    client = await connected(server, ws_connect, "u")
    expire_at = int(time.time()) + 2
    server.api("subscribe", {"user": "u", "channel": "news", "expire_at": expire_at})
    push = (await client.push())["push"]
    assert push["channel"] == "news" and "subscribe" in push
    assert await client.closed() == (3006, "subscription expired")


# ----------------------------------------------------------------------- positioning
# (docs/protocol.md "History and recovery")


def positioning_config() -> dict[str, Any]:
    # A 1 s meta TTL lets an idle stream be forgotten, so the next publication starts a new
    # epoch: the one gap a test can provoke through the public API.
    return config(
        history_size=10,
        history_ttl="1s",
        history_meta_ttl="1s",
        allow_positioning=True,
        allow_subscribe_for_client=True,
    )


async def test_positioned_subscribe_reports_the_stream_position(
    rotary_server: Any, ws_connect: Any
) -> None:
    server = rotary_server(positioning_config())
    epoch = server.api("publish", {"channel": CHANNEL, "data": {"n": 1}})["result"]["epoch"]
    client = await connected(server, ws_connect, "u")
    sub = {"channel": CHANNEL, "positioned": True}
    result = (await client.request({"id": 2, "subscribe": sub}))["subscribe"]
    assert result == {"positioned": True, "epoch": epoch, "offset": 1}


async def test_positioned_subscriber_gets_unsubscribe_2500_when_the_stream_epoch_changes(
    rotary_server: Any, ws_connect: Any
) -> None:
    server = rotary_server(positioning_config())
    server.api("publish", {"channel": CHANNEL, "data": {"n": 1}})
    client = await connected(server, ws_connect, "u")
    await client.request({"id": 2, "subscribe": {"channel": CHANNEL, "positioned": True}})
    await asyncio.sleep(1.5)  # the configured 1 s meta TTL passes with the channel idle
    server.api("publish", {"channel": CHANNEL, "data": {"n": 2}})
    push = (await client.push())["push"]
    assert push == {
        "channel": CHANNEL,
        "unsubscribe": {"code": 2500, "reason": "insufficient state"},
    }
