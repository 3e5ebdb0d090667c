"""The official SDKs (npm `centrifuge` + `ws`, PyPI `centrifuge-python`) against a real Rotary.

Every test runs once per SDK and protocol (JSON and Protobuf), and, through
tests/functional/test_sdk_transports.py, for centrifuge-js over HTTP-streaming and SSE too.
The SDKs are used unchanged, with public options only; tokens are signed here with PyJWT,
the HTTP API is called directly. Intervals come from the server config (docs/tokens.md
"Connection expiry and refresh", docs/tokens.md "Subscription expiry"), so expiries happen
within seconds; waits are event-driven, each bounded. One server process serves the whole
module (its start-up dominated the run time); every test uses channels of its own, suffixed
with the SDK's name.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from tests.functional.conftest import SECRET, ServerHandle, default_config, free_port
from tests.sdk.harness import (
    PROTOCOL_SDKS,
    SdkDriver,
    TokenFactory,
    exp_of,
    frames,
    open_driver,
    replies_to,
)

pytestmark = [pytest.mark.sdk, pytest.mark.timeout(40)]

TOKENS = TokenFactory(SECRET)
USER = "alice"
# Grace delays above the 1 s that whole-second ttl rounding can add before the SDK acts.
EXPIRED_CLOSE_DELAY = 2.0
CHECK_INTERVAL = 0.5


ROOM = {"name": "room", "presence": True, "allow_presence_for_subscriber": True}
HIST = {
    "name": "hist",
    "history_size": 50,
    "history_ttl": "300s",
    "force_recovery": True,
    "allow_subscribe_for_client": True,
    "allow_history_for_subscriber": True,
}


def server_config() -> dict[str, Any]:
    """The default test config with short expiry checks (docs/tokens.md "Connection expiry and
    refresh", docs/tokens.md "Subscription expiry") and namespaces:
    top level open to subscribers with an id, `room` with presence, `hist` with recovery and
    history for subscribers."""
    return {
        **default_config(),
        "client_expired_close_delay": f"{EXPIRED_CLOSE_DELAY:g}s",
        "client_expired_sub_close_delay": f"{EXPIRED_CLOSE_DELAY:g}s",
        "client_presence_update_interval": f"{int(CHECK_INTERVAL * 1000)}ms",
        "allow_subscribe_for_client": True,
        "namespaces": [ROOM, HIST],
        "http_stream": True,
        "sse": True,
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """One `python -m rotary` for the module, started as the functional fixture does."""
    folder = tmp_path_factory.mktemp("rotary-sdk")
    config = server_config()
    (folder / "config.json").write_text(json.dumps(config))
    port = free_port()
    cmd = [sys.executable, "-m", "rotary", "-c", str(folder / "config.json")]
    cmd += ["--port", str(port), "--address", "127.0.0.1"]
    log_path = folder / "rotary.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    handle = ServerHandle(port=port, config=config, process=proc, log_path=log_path)
    try:
        _wait_healthy(handle)
        yield handle
    finally:
        handle.stop()


def _wait_healthy(handle: ServerHandle) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert handle.process.poll() is None, f"rotary exited:\n{handle.log()}"
        try:
            with urllib.request.urlopen(f"{handle.http_url}/health", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"rotary not healthy:\n{handle.log()}")


@pytest.fixture(params=PROTOCOL_SDKS)
async def sdk(request: pytest.FixtureRequest, server: ServerHandle) -> AsyncIterator[SdkDriver]:
    """A started SDK driver; closed before the module's server stops."""
    async with open_driver(request.param) as driver:
        yield driver


def chan(sdk: SdkDriver, name: str) -> str:
    """`name` made unique to this SDK's run (the server is shared by the module)."""
    return f"{name}-{sdk.sdk}"


async def api(server: ServerHandle, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """Call the server API off the event loop; fail on an error answer."""
    body = await asyncio.to_thread(server.api, method, params)
    assert "error" not in body, f"API {method} failed: {body}"
    return body.get("result", {})


def is_ev(name: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    """Predicate: event `name` whose listed fields equal the given values."""
    return lambda e: e["ev"] == name and all(e.get(k) == v for k, v in fields.items())


async def connected(sdk: SdkDriver, server: ServerHandle, **kw: Any) -> dict[str, Any]:
    """Connect `sdk` with `kw` (token, get_token, …) and wait for `connected`."""
    kw.setdefault("token", TOKENS.connection(USER))
    await sdk.connect(server.ws_url, **kw)
    return await sdk.wait_for(is_ev("connected"))


async def sleep_until(deadline: float) -> None:
    """Sleep until wall-clock `deadline` (an exp claim plus delays)."""
    await asyncio.sleep(max(0.0, deadline - time.time()))


async def publish_and_receive(
    sdk: SdkDriver, server: ServerHandle, channel: str, data: dict[str, Any]
) -> dict[str, Any]:
    """Publish `data` through the HTTP API and wait until the SDK delivers it."""
    start = len(sdk.events)
    await api(server, "publish", {"channel": channel, "data": data})
    return await sdk.wait_for(is_ev("publication", channel=channel, data=data), start=start)


def assert_no_events(sdk: SdkDriver, start: int, *names: str) -> None:
    found = sdk.find(lambda e: e["ev"] in names, start=start)
    assert not found, f"{sdk.sdk}: unexpected {found}\n{sdk.dump()}"


def token_requests(sdk: SdkDriver, kind: str) -> list[dict[str, Any]]:
    return sdk.find(is_ev("token_request", kind=kind))


class SubTokens:
    """A subscription getToken source: the i-th call signs a token with ttls[i] (last repeats).

    Records every `exp` it issued, so a test knows when the server's expiry would bite.
    """

    def __init__(self, *ttls: float, user: str = USER, **claims: Any) -> None:
        self._ttls = ttls
        self._user = user
        self._claims = claims
        self.exps: list[int] = []

    def __call__(self, channel: str) -> str:
        ttl = self._ttls[min(len(self.exps), len(self._ttls) - 1)]
        token = TOKENS.subscription(self._user, channel, ttl=ttl, **self._claims)
        self.exps.append(exp_of(token))
        return token


# 1 ------------------------------------------------------------------------------------------


async def test_sdk_connects_with_a_token_and_reports_its_client_id(
    sdk: SdkDriver, server: ServerHandle
) -> None:
    event = await connected(sdk, server)
    assert isinstance(event["client"], str) and event["client"]
    [(_, reply)] = replies_to(sdk.events, "connect")
    assert reply["connect"]["client"] == event["client"], sdk.dump()


async def test_sdk_speaks_the_protocol_it_was_configured_with(
    sdk: SdkDriver, server: ServerHandle
) -> None:
    await connected(sdk, server)
    kinds = {"binary" in e for e in sdk.events if e["ev"] == "frame" and e["dir"] == "in"}
    assert kinds == {sdk.sdk.endswith("-protobuf")}, sdk.dump()


# 2 ------------------------------------------------------------------------------------------


async def test_sdk_subscribes_to_a_private_channel_with_a_token_from_its_get_token_callback(
    sdk: SdkDriver, server: ServerHandle
) -> None:
    channel = chan(sdk, "$news")
    await connected(sdk, server)
    await sdk.subscribe(channel, get_token=SubTokens(3600))
    await sdk.wait_for(is_ev("sub_subscribed", channel=channel))
    assert [r["channel"] for r in token_requests(sdk, "subscription")] == [channel]
    [(command, reply)] = replies_to(sdk.events, "subscribe")
    assert command["subscribe"]["token"], "the SDK sent the token it got from getToken"
    assert "error" not in reply, sdk.dump()


# 3 ------------------------------------------------------------------------------------------


async def test_publication_sent_through_the_http_api_reaches_the_sdk_subscriber(
    sdk: SdkDriver, server: ServerHandle
) -> None:
    channel = chan(sdk, "$news")
    await connected(sdk, server)
    await sdk.subscribe(channel, get_token=SubTokens(3600))
    await sdk.wait_for(is_ev("sub_subscribed", channel=channel))
    await publish_and_receive(sdk, server, channel, {"text": "hello", "n": 1})
    await publish_and_receive(sdk, server, channel, {"text": "world", "n": 2})


# 4 ------------------------------------------------------------------------------------------


async def test_subscription_token_of_another_user_disconnects_with_3500(
    sdk: SdkDriver, server: ServerHandle
) -> None:
    channel = chan(sdk, "$news")
    # docs/tokens.md "How a subscription token is checked": token user ≠ connection user →
    # disconnect 3500 (terminal, no reconnect).
    await connected(sdk, server)
    await sdk.subscribe(channel, get_token=SubTokens(3600, user="mallory"))
    event = await sdk.wait_for(is_ev("disconnected"))
    assert event["code"] == 3500, sdk.dump()
    assert_no_events(sdk, 0, "sub_subscribed", "publication")


async def test_subscription_token_with_a_bad_signature_ends_unsubscribed_with_103(
    sdk: SdkDriver, server: ServerHandle
) -> None:
    channel = chan(sdk, "$news")
    start = len(sdk.events)
    await connected(sdk, server)
    forged = TOKENS.forged(TOKENS.subscription(USER, channel))
    await sdk.subscribe(channel, token=forged)
    event = await sdk.wait_for(is_ev("sub_unsubscribed", channel=channel))
    assert event["code"] == 103, sdk.dump()
    [(_, reply)] = replies_to(sdk.events, "subscribe")
    assert reply["error"]["code"] == 103, sdk.dump()
    # A refused subscription is not a connection problem.
    assert_no_events(sdk, start, "disconnected", "sub_subscribed")


# 5 ------------------------------------------------------------------------------------------


async def test_expired_connection_token_is_refreshed_by_the_sdk_and_the_connection_stays_up(
    sdk: SdkDriver, server: ServerHandle
) -> None:
    channel = chan(sdk, "news")
    first_token = TOKENS.connection(USER, ttl=2)
    event = await connected(
        sdk,
        server,
        token=first_token,
        get_token=lambda: TOKENS.connection(USER, ttl=3600),
    )
    after_connect = sdk.events.index(event)
    [(_, reply)] = replies_to(sdk.events, "connect")
    assert reply["connect"]["expires"] is True and reply["connect"]["ttl"] > 0, sdk.dump()
    await sdk.subscribe(channel)
    await sdk.wait_for(is_ev("sub_subscribed", channel=channel))

    # The server answers the SDK's refresh with a new expiry (docs/tokens.md "Connection expiry and
    # refresh").
    await sdk.wait_for(lambda e: bool(_refresh_replies(sdk)), within=6)
    [(_, refreshed)] = _refresh_replies(sdk)
    assert refreshed["refresh"].get("expires") is True, sdk.dump()
    assert refreshed["refresh"]["ttl"] > 60, sdk.dump()

    # Past the first token's expiry plus the close delay, the old deadline no longer applies.
    await sleep_until(exp_of(first_token) + EXPIRED_CLOSE_DELAY + CHECK_INTERVAL + 0.5)
    await publish_and_receive(sdk, server, channel, {"after": "expiry"})
    assert len(token_requests(sdk, "connection")) >= 1
    assert_no_events(sdk, after_connect, "disconnected", "connecting")


def _refresh_replies(sdk: SdkDriver) -> list[tuple[dict[str, Any], Any]]:
    return [(c, r) for c, r in replies_to(sdk.events, "refresh") if r is not None]


# 6 ------------------------------------------------------------------------------------------


async def test_short_lived_subscription_is_kept_alive_through_sub_refresh(
    sdk: SdkDriver, server: ServerHandle
) -> None:
    channel = chan(sdk, "$ticker")
    await connected(sdk, server)
    tokens = SubTokens(2)
    await sdk.subscribe(channel, get_token=tokens)
    subscribed = await sdk.wait_for(is_ev("sub_subscribed", channel=channel))
    after_subscribe = sdk.events.index(subscribed)

    # Three refreshes: the subscription outlives three token expiries.
    await sdk.wait_for(lambda e: len(_sub_refresh_replies(sdk)) >= 3, within=12)
    for _, reply in _sub_refresh_replies(sdk):
        assert "error" not in reply, sdk.dump()
        assert reply["sub_refresh"].get("expires") is True, sdk.dump()
        assert reply["sub_refresh"]["ttl"] > 0, sdk.dump()
    await sleep_until(tokens.exps[1] + EXPIRED_CLOSE_DELAY + CHECK_INTERVAL + 0.3)
    await publish_and_receive(sdk, server, channel, {"tick": 1})
    assert len(tokens.exps) >= 4
    assert_no_events(sdk, after_subscribe, "sub_subscribing", "sub_unsubscribed", "disconnected")


def _sub_refresh_replies(sdk: SdkDriver) -> list[tuple[dict[str, Any], Any]]:
    return [(c, r) for c, r in replies_to(sdk.events, "sub_refresh") if r is not None]


# 7 ------------------------------------------------------------------------------------------


async def test_presence_from_the_sdk_shows_conn_info_and_chan_info_from_the_tokens(
    sdk: SdkDriver, server: ServerHandle
) -> None:
    channel = chan(sdk, "$room:lobby")
    conn_info = {"name": "Alice", "tags": ["a", "b"]}
    chan_info = {"seat": 7, "role": "speaker"}
    event = await connected(sdk, server, token=TOKENS.connection(USER, info=conn_info))
    await sdk.subscribe(channel, get_token=SubTokens(3600, info=chan_info))
    await sdk.wait_for(is_ev("sub_subscribed", channel=channel))
    clients = await sdk.presence(channel)
    assert clients == {
        event["client"]: {
            "client": event["client"],
            "user": USER,
            "conn_info": conn_info,
            "chan_info": chan_info,
        }
    }, sdk.dump()


async def test_history_from_the_sdk_lists_api_publications_in_order_with_their_offsets(
    sdk: SdkDriver, server: ServerHandle
) -> None:
    channel = chan(sdk, "hist:log")
    await connected(sdk, server)
    await sdk.subscribe(channel)
    await sdk.wait_for(is_ev("sub_subscribed", channel=channel))
    offsets = []
    for n in range(3):
        offsets.append((await publish_and_receive(sdk, server, channel, {"n": n}))["offset"])
    result = await sdk.history(channel, limit=10)
    assert result["publications"] == [
        {"data": {"n": n}, "offset": offset} for n, offset in enumerate(offsets)
    ], sdk.dump()
    assert result["offset"] == offsets[-1] and result["epoch"], result


# 8 ------------------------------------------------------------------------------------------


async def test_sdk_recovers_publications_missed_while_reconnecting_without_gap_or_duplicate(
    sdk: SdkDriver, server: ServerHandle
) -> None:
    channel = chan(sdk, "hist:feed")
    # A reconnect delay of ≥1 s leaves time to publish while the client is away.
    user = chan(sdk, "bob")  # the API disconnect below is by user: no one else is him
    await connected(sdk, server, token=TOKENS.connection(user), min_reconnect_delay=1.0)
    await sdk.subscribe(channel)
    first = await sdk.wait_for(is_ev("sub_subscribed", channel=channel))
    assert first["recoverable"] is True, sdk.dump()
    for n in (1, 2):
        await publish_and_receive(sdk, server, channel, {"n": n})

    away = len(sdk.events)
    drop = {"code": 3011, "reason": "force reconnect"}
    await api(server, "disconnect", {"user": user, "disconnect": drop})
    await sdk.wait_for(is_ev("connecting", code=3011), start=away)
    for n in (3, 4, 5):
        await api(server, "publish", {"channel": channel, "data": {"n": n}})

    back = await sdk.wait_for(is_ev("sub_subscribed", channel=channel), start=away)
    assert back["was_recovering"] is True and back["recovered"] is True, sdk.dump()
    await sdk.wait_for(is_ev("publication", channel=channel, data={"n": 5}), start=away)
    pubs = sdk.find(is_ev("publication", channel=channel))
    assert [p["data"]["n"] for p in pubs] == [1, 2, 3, 4, 5], sdk.dump()
    assert [p["offset"] for p in pubs] == list(range(pubs[0]["offset"], pubs[0]["offset"] + 5))
    _assert_recovered_on_the_wire(sdk, away, pubs[1]["offset"])


def _assert_recovered_on_the_wire(sdk: SdkDriver, start: int, last_seen: int) -> None:
    """The resubscribe asked to recover after `last_seen` and got the 3 missed publications."""
    [(command, reply)] = replies_to(sdk.events[start:], "subscribe")
    request = command["subscribe"]
    assert request.get("recover") is True and request.get("offset") == last_seen, sdk.dump()
    result = reply["subscribe"]
    assert result.get("recovered") is True and result.get("was_recovering") is True, sdk.dump()
    recovered = [p["data"]["n"] for p in result.get("publications", [])]
    assert recovered == [3, 4, 5], sdk.dump()


# 9 ------------------------------------------------------------------------------------------


async def test_expired_token_at_sub_refresh_ends_with_2501_and_the_sdk_resubscribes(
    sdk: SdkDriver, server: ServerHandle
) -> None:
    # Rotary's deliberate difference (docs/differences.md quirk 1): the expired token is
    # answered {} and the subscription is ended with unsubscribe push 2501.
    channel = chan(sdk, "$alerts")
    await connected(sdk, server)
    tokens = SubTokens(2, -30, 3600)
    await sdk.subscribe(channel, get_token=tokens)
    first = await sdk.wait_for(is_ev("sub_subscribed", channel=channel))
    after_first = sdk.events.index(first) + 1

    ended = await sdk.wait_for(is_ev("sub_subscribing", channel=channel), start=after_first)
    assert ended["code"] == 2501, sdk.dump()
    again = await sdk.wait_for(is_ev("sub_subscribed", channel=channel), start=after_first)
    assert len(tokens.exps) >= 3, "the SDK fetched a fresh token after the 2501"
    [(command, reply)] = _sub_refresh_replies(sdk)
    assert reply == {"id": command["id"], "sub_refresh": {}}, sdk.dump()
    pushes = [m["push"] for m in frames(sdk.events, "in") if "unsubscribe" in m.get("push", {})]
    assert pushes == [{"channel": channel, "unsubscribe": _EXPIRED}], sdk.dump()

    await publish_and_receive(sdk, server, channel, {"still": "here"})
    assert_no_events(sdk, sdk.events.index(again), "sub_subscribing", "sub_unsubscribed")
    assert_no_events(sdk, 0, "disconnected")


_EXPIRED = {"code": 2501, "reason": "subscription expired"}


# 10 -----------------------------------------------------------------------------------------


async def test_expiry_ttl_counts_whole_seconds_from_the_current_second(
    sdk: SdkDriver, server: ServerHandle
) -> None:
    # Centrifugo sends ttl = exp - unix_now_in_seconds (docs/protocol.md "Commands" step 11,
    # docs/tokens.md "How a connection token is checked", docs/differences.md): a
    # token expiring in the next second gets ttl 1, never `expires: true, ttl: 0` while the
    # expiry is still ahead. ttl 0 makes both SDKs refresh at once, in a loop until the second
    # turns when the new token expires in the same second.
    channel = chan(sdk, "$brief")
    await _mid_second()
    token = TOKENS.connection(USER, ttl=1)  # expires at the next whole second
    await connected(sdk, server, token=token, get_token=lambda: TOKENS.connection(USER))
    await sdk.subscribe(channel, get_token=SubTokens(1, 3600))
    await sdk.wait_for(is_ev("sub_subscribed", channel=channel))
    [(_, connect), *_] = replies_to(sdk.events, "connect")
    [(_, subscribe), *_] = replies_to(sdk.events, "subscribe")
    assert connect["connect"]["expires"] is True, sdk.dump()
    assert subscribe["subscribe"]["expires"] is True, sdk.dump()
    assert (connect["connect"]["ttl"], subscribe["subscribe"]["ttl"]) == (1, 1), sdk.dump()


async def _mid_second() -> None:
    """Wait for the start of the next second plus 0.2 s, leaving 0.8 s before it turns."""
    await asyncio.sleep(1.2 - time.time() % 1)
