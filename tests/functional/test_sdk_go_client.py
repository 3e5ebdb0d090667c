"""The official Go SDK (centrifuge-go) against a real Rotary, over Protobuf and over JSON.

A third client implementation beside centrifuge-js and centrifuge-python: a small program in
tests/sdk/go, built once into a cache outside the repository (tests/sdk/go_driver.py) and
driven through JSON lines. Every test runs once per protocol; tokens are signed here with
PyJWT, publications go through the HTTP API. Without Go the tests skip (fail under CI=true).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.functional.cluster_helpers import start_node
from tests.functional.conftest import SECRET, ServerHandle, default_config
from tests.sdk.go_driver import GO_PROTOCOL_SDKS, GoSdkDriver, go_sdk_or_skip, open_go_driver
from tests.sdk.harness import TokenFactory, exp_of

# func_only: a first build of the Go program (module download and compile, a minute or more
# on two cores) happens in fixture set-up, bounded by the build's own timeout.
pytestmark = [pytest.mark.sdk, pytest.mark.timeout(40, func_only=True)]

TOKENS = TokenFactory(SECRET)
USER = "gopher"
EXPIRED_CLOSE_DELAY = 2.0


@pytest.fixture(scope="module")
def go_binary() -> Path:
    """The built Go SDK program (skips without Go, fails under CI)."""
    return go_sdk_or_skip()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """One Rotary for the module: a `room` namespace with presence and history, short
    expiry checks so that token refresh happens within seconds."""
    room = {
        "name": "room",
        "presence": True,
        "allow_presence_for_subscriber": True,
        "history_size": 20,
        "history_ttl": "300s",
        "allow_history_for_subscriber": True,
        "allow_publish_for_subscriber": True,
        "allow_subscribe_for_client": True,
    }
    config = {
        **default_config(),
        "client_expired_close_delay": f"{EXPIRED_CLOSE_DELAY:g}s",
        "client_expired_sub_close_delay": f"{EXPIRED_CLOSE_DELAY:g}s",
        "allow_subscribe_for_client": True,
        "namespaces": [room],
    }
    handle = start_node(config, tmp_path_factory.mktemp("rotary-go"), "rotary")
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(params=GO_PROTOCOL_SDKS)
async def go(
    request: pytest.FixtureRequest, go_binary: Path, server: ServerHandle
) -> AsyncIterator[GoSdkDriver]:
    async with open_go_driver(request.param) as driver:
        yield driver


def is_ev(name: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    """Predicate: event `name` whose listed fields equal the given values."""
    return lambda e: e["ev"] == name and all(e.get(k) == v for k, v in fields.items())


def traced(go: GoSdkDriver, kind: str, method: str) -> list[dict[str, Any]]:
    """The SDK's traced commands or replies (`kind`) that carry `method`."""
    found = (e["message"] for e in go.events if e["ev"] == "trace" and e["kind"] == kind)
    return [m for m in found if method in m]


async def connected(go: GoSdkDriver, server: ServerHandle, **kw: Any) -> dict[str, Any]:
    """Connect with `kw` (a one-hour token unless given) and wait for `connected`."""
    if "get_token" not in kw:
        kw.setdefault("token", TOKENS.connection(USER))
    await go.connect(server.ws_url, **kw)
    return await go.wait_for(is_ev("connected"))


async def api(server: ServerHandle, method: str, params: dict[str, Any]) -> dict[str, Any]:
    body = await asyncio.to_thread(server.api, method, params)
    assert "error" not in body, f"API {method} failed: {body}"
    return dict(body.get("result", {}))


async def published(go: GoSdkDriver, server: ServerHandle, channel: str, data: Any) -> None:
    """Publish `data` through the HTTP API and wait until the Go client delivers it."""
    start = len(go.events)
    await api(server, "publish", {"channel": channel, "data": data})
    await go.wait_for(is_ev("publication", channel=channel, data=data), start=start)


def chan(go: GoSdkDriver, name: str) -> str:
    return f"{name}-{go.sdk}"


async def test_go_client_speaks_the_protocol_it_was_configured_with(
    go: GoSdkDriver, server: ServerHandle
) -> None:
    event = await connected(go, server)
    assert event["client"], go.dump()
    wire = await go.wait_for(is_ev("wire"))
    if go.sdk == "go-protobuf":
        assert (wire["subprotocol"], wire["opcode"]) == ("centrifuge-protobuf", 2), go.dump()
    else:
        assert (wire["subprotocol"], wire["opcode"]) == ("", 1), go.dump()


async def test_go_client_subscribes_to_a_private_channel_with_a_token_and_gets_api_publications(
    go: GoSdkDriver, server: ServerHandle
) -> None:
    channel = chan(go, "$news")
    await connected(go, server)
    await go.subscribe(channel, get_token=lambda ch: TOKENS.subscription(USER, ch))
    await go.wait_for(is_ev("sub_subscribed", channel=channel))
    assert go.find(is_ev("token_request", kind="subscription", channel=channel)), go.dump()
    await published(go, server, channel, {"text": "héllo", "n": [1, 2.5, None, True]})
    await published(go, server, channel, "a bare string")


async def test_go_client_with_a_forged_subscription_token_gets_error_103(
    go: GoSdkDriver, server: ServerHandle
) -> None:
    channel = chan(go, "$closed")
    await connected(go, server)
    await go.subscribe(channel, get_token=lambda ch: TOKENS.forged(TOKENS.subscription(USER, ch)))
    error = await go.wait_for(is_ev("sub_error", channel=channel))
    assert error["code"] == 103, go.dump()
    await go.wait_for(is_ev("sub_unsubscribed", channel=channel))
    assert not go.find(is_ev("sub_subscribed", channel=channel)), go.dump()


async def test_go_client_reads_presence_with_infos_from_its_tokens(
    go: GoSdkDriver, server: ServerHandle
) -> None:
    channel = chan(go, "$room:lobby")
    conn_info = {"name": "Gopher", "langs": ["go"]}
    chan_info = {"seat": 3}
    token = TOKENS.connection(USER, info=conn_info)
    event = await connected(go, server, token=token)
    sub_token = TOKENS.subscription(USER, channel, info=chan_info)
    await go.subscribe(channel, token=sub_token)
    await go.wait_for(is_ev("sub_subscribed", channel=channel))
    clients = await go.presence(channel)
    expected = {"client": event["client"], "user": USER, "conn_info": conn_info}
    assert clients == {event["client"]: {**expected, "chan_info": chan_info}}, go.dump()


async def test_go_client_reads_history_in_publication_order(
    go: GoSdkDriver, server: ServerHandle
) -> None:
    channel = chan(go, "room:log")
    await connected(go, server)
    await go.subscribe(channel)
    await go.wait_for(is_ev("sub_subscribed", channel=channel))
    for n in range(3):
        await api(server, "publish", {"channel": channel, "data": {"n": n}})
    result = await go.history(channel, limit=10)
    pubs = result["publications"]
    assert [p["data"] for p in pubs] == [{"n": 0}, {"n": 1}, {"n": 2}], go.dump()
    assert [p["offset"] for p in pubs] == [1, 2, 3] and result["offset"] == 3, go.dump()
    assert result["epoch"], go.dump()


async def test_go_client_publishes_json_that_an_api_history_reads_back(
    go: GoSdkDriver, server: ServerHandle
) -> None:
    channel = chan(go, "room:chat")
    await connected(go, server)
    await go.subscribe(channel)
    await go.wait_for(is_ev("sub_subscribed", channel=channel))
    await go.publish(channel, {"from": "go"})
    await go.wait_for(is_ev("publication", channel=channel, data={"from": "go"}))
    history = await api(server, "history", {"channel": channel, "limit": 5})
    assert [p["data"] for p in history["publications"]] == [{"from": "go"}]


async def test_go_client_refreshes_its_connection_and_subscription_tokens_and_stays_up(
    go: GoSdkDriver, server: ServerHandle
) -> None:
    channel = chan(go, "$ticker")
    conn_ttls, sub_ttls = iter([2, 3600]), iter([2, 3600])
    first_exps: list[int] = []

    def conn_token() -> str:
        token = TOKENS.connection(USER, ttl=next(conn_ttls, 3600))
        first_exps.append(exp_of(token))
        return token

    await connected(go, server, get_token=conn_token)
    await go.subscribe(
        channel, get_token=lambda ch: TOKENS.subscription(USER, ch, ttl=next(sub_ttls, 3600))
    )
    subscribed = await go.wait_for(is_ev("sub_subscribed", channel=channel))
    start = go.events.index(subscribed)
    # The SDK asks for new tokens before the two-second ones run out and sends them in
    # `refresh` and `sub_refresh` commands; the server answers with the new expiry.
    await go.wait_for(lambda e: bool(traced(go, "reply", "refresh")), within=8)
    await go.wait_for(lambda e: bool(traced(go, "reply", "sub_refresh")), within=8)
    assert traced(go, "reply", "refresh")[0]["refresh"]["ttl"] > 60, go.dump()
    assert traced(go, "reply", "sub_refresh")[0]["sub_refresh"]["ttl"] > 60, go.dump()
    # Past the first tokens' expiry and the close delay, the old deadlines no longer apply.
    await asyncio.sleep(max(0.0, first_exps[0] + EXPIRED_CLOSE_DELAY + 1 - time.time()))
    await published(go, server, channel, {"after": "expiry"})
    lost = ("disconnected", "connecting", "sub_subscribing", "sub_unsubscribed")
    assert not go.find(lambda e: e["ev"] in lost, start=start), go.dump()


async def test_go_client_recovers_publications_missed_while_reconnecting_without_gap(
    go: GoSdkDriver, server: ServerHandle
) -> None:
    channel = chan(go, "room:feed")
    user = chan(go, "gopher-away")  # the API disconnect below is by user: no one else is him
    await connected(go, server, token=TOKENS.connection(user), min_reconnect_delay=1.0)
    await go.subscribe(channel, recoverable=True)
    first = await go.wait_for(is_ev("sub_subscribed", channel=channel))
    assert first["recoverable"] is True, go.dump()
    await published(go, server, channel, {"n": 1})
    away = len(go.events)
    drop = {"code": 3011, "reason": "force reconnect"}
    await api(server, "disconnect", {"user": user, "disconnect": drop})
    await go.wait_for(is_ev("connecting", code=3011), start=away)
    for n in (2, 3):
        await api(server, "publish", {"channel": channel, "data": {"n": n}})
    back = await go.wait_for(is_ev("sub_subscribed", channel=channel), start=away)
    assert back["was_recovering"] is True and back["recovered"] is True, go.dump()
    await go.wait_for(is_ev("publication", channel=channel, data={"n": 3}), start=away)
    pubs = go.find(is_ev("publication", channel=channel))
    assert [p["data"]["n"] for p in pubs] == [1, 2, 3], go.dump()
