"""``GET /metrics`` on a real server: counters move for what clients do (docs/metrics.md).

One server (memory engine, ``prometheus`` on, ``log_json`` on) serves the module; tests read
counters before and after an action and check the difference, so their order does not
matter.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rotary.metrics import Metrics
from tests.functional.conftest import API_KEY, SECRET, ServerHandle, WsClient, make_token
from tests.functional.test_revocation_cluster import start_node

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    config = {
        "token_hmac_secret_key": SECRET,
        "api_key": API_KEY,
        "prometheus": True,
        "log_json": True,
        "allow_subscribe_for_client": True,
    }
    handle = start_node(config, tmp_path_factory.mktemp("metrics"), "metrics")
    try:
        yield handle
    finally:
        handle.stop()


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(server: ServerHandle) -> Samples:
    """Every sample of ``/metrics`` by (name, labels)."""
    with urllib.request.urlopen(f"{server.http_url}/metrics", timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def connected(ws_connect: Any, server: ServerHandle, user: str) -> WsClient:
    client: WsClient = await ws_connect(server)
    reply = await client.request({"id": 1, "connect": {"token": make_token(user)}})
    assert "connect" in reply, reply
    return client


async def test_refused_subscription_moves_verification_command_and_cache_counters(
    server: ServerHandle, ws_connect: Any
) -> None:
    user, channel = f"m-{uuid.uuid4().hex[:6]}", f"$m-{uuid.uuid4().hex[:6]}"
    forged = make_token(user, channel=channel)[:-4] + "AAAA"
    before = await asyncio.to_thread(scrape, server)
    client = await connected(ws_connect, server, user)
    reply = await client.request({"id": 2, "subscribe": {"channel": channel, "token": forged}})
    assert reply["error"]["code"] == 103
    after = await asyncio.to_thread(scrape, server)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    refused = {"kind": "subscription", "outcome": "invalid", "reason": "signature"}
    assert moved("rotary_token_verifications_total", **refused) == 1
    ok = {"kind": "connection", "outcome": "ok", "reason": "none"}
    assert moved("rotary_token_verifications_total", **ok) == 1
    assert moved("rotary_client_commands_total", method="subscribe") == 1
    assert moved("rotary_client_commands_total", method="connect") == 1
    assert moved("rotary_token_cache_total", result="miss") == 2
    assert moved("rotary_revocation_checks_total", result="ok") == 1
    assert value(after, "rotary_connections") >= 1


async def test_revoked_token_moves_revocation_and_disconnect_counters(
    server: ServerHandle, ws_connect: Any
) -> None:
    user, jti = f"m-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    token = make_token(user, jti=jti)
    before = await asyncio.to_thread(scrape, server)
    client: WsClient = await ws_connect(server)
    assert "connect" in await client.request({"id": 1, "connect": {"token": token}})
    await asyncio.to_thread(server.api, "revoke_token", {"uid": jti})
    assert (await client.closed(wait=10))[0] == 3011
    again: WsClient = await ws_connect(server)
    assert (await again.request({"id": 1, "connect": {"token": token}}))["error"]["code"] == 109
    after = await asyncio.to_thread(scrape, server)
    revoked = {"kind": "connection", "outcome": "revoked", "reason": "revoked_jti"}
    assert (
        value(after, "rotary_token_verifications_total", **revoked)
        - value(before, "rotary_token_verifications_total", **revoked)
        == 1
    )
    assert value(after, "rotary_token_cache_total", result="hit") > value(
        before, "rotary_token_cache_total", result="hit"
    )
    key = ("rotary_revocation_checks_total", {"result": "revoked"})
    assert value(after, key[0], **key[1]) - value(before, key[0], **key[1]) == 1
    assert value(after, "rotary_disconnects_total", code="3011") >= 1


async def test_publications_and_subscriptions_are_counted(
    server: ServerHandle, ws_connect: Any
) -> None:
    channel = f"open-{uuid.uuid4().hex[:6]}"
    before = await asyncio.to_thread(scrape, server)
    client = await connected(ws_connect, server, "pub")
    assert "subscribe" in await client.request({"id": 2, "subscribe": {"channel": channel}})
    await asyncio.to_thread(server.api, "publish", {"channel": channel, "data": {"n": 1}})
    await client.push()
    after = await asyncio.to_thread(scrape, server)
    assert (
        value(after, "rotary_publications_total", source="api")
        - value(before, "rotary_publications_total", source="api")
        == 1
    )
    assert value(after, "rotary_subscriptions") >= 1


async def test_json_log_has_one_denial_object_per_refusal_without_the_token(
    server: ServerHandle, ws_connect: Any
) -> None:
    user, channel = f"j-{uuid.uuid4().hex[:6]}", f"$j-{uuid.uuid4().hex[:6]}"
    expired = make_token(user, channel=channel, exp_in=-60)
    client = await connected(ws_connect, server, user)
    reply = await client.request({"id": 2, "subscribe": {"channel": channel, "token": expired}})
    assert reply["error"]["code"] == 109
    deadline = time.monotonic() + 5
    denials: list[dict[str, Any]] = []
    while not denials and time.monotonic() < deadline:
        entries = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
        denials = [e for e in entries if e.get("event") == "denial" and e.get("user") == user]
        await asyncio.sleep(0.05)
    [entry] = denials
    assert {k: entry[k] for k in ("action", "reason", "channel", "outcome")} == {
        "action": "subscribe",
        "reason": "expired",
        "channel": channel,
        "outcome": "expired",
    }
    assert entry["client"] and expired not in server.log()


def test_metrics_endpoint_is_absent_without_prometheus(tmp_path: Path) -> None:
    handle = start_node({"token_hmac_secret_key": SECRET, "api_key": API_KEY}, tmp_path, "off")
    try:
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"{handle.http_url}/metrics", timeout=5)
        assert caught.value.code == 404
        caught.value.close()
    finally:
        handle.stop()


async def test_a_failing_engine_operation_is_counted_by_its_name() -> None:
    from rotary.server import _Metered

    class Failing:
        async def publish(self, channel: str) -> None:
            raise ConnectionError("redis is down")

        async def history(self, channel: str) -> int:
            return 1

    metrics = Metrics()
    engine: Any = _Metered(Failing(), metrics)
    with pytest.raises(ConnectionError):
        await engine.publish("c")
    assert await engine.history("c") == 1
    errors = metrics.registry.get_sample_value
    assert errors("rotary_engine_errors_total", {"op": "publish"}) == 1
    assert errors("rotary_engine_errors_total", {"op": "history"}) in (None, 0)
