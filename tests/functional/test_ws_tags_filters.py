"""Tags filters and publish debounce over a real server, with a raw JSON WebSocket client:
the refusals (107, the connection survives), the subscribe result, stream and map channels,
and the count of deliveries filters dropped at /metrics.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.functional.cluster_helpers import start_node
from tests.functional.conftest import API_KEY, SECRET, ServerHandle, WsClient, make_token
from tests.functional.test_metrics_endpoint import scrape, value

EQ_ENG = {"key": "team", "cmp": "eq", "val": "eng"}


def config() -> dict[str, Any]:
    tagged = {
        "name": "tagged",
        "allow_subscribe_for_client": True,
        "allow_tags_filter": True,
        "allowed_delta_types": ["fossil"],
        "client_publish_debounce_interval": "50ms",
    }
    board = {
        "name": "board",
        "subscription_type": "map",
        "allow_subscribe_for_client": True,
        "allow_tags_filter": True,
        "client_publish_debounce_interval": "1.5s",
        "map": {"mode": "persistent"},
    }
    plain = {"name": "plain", "allow_subscribe_for_client": True}
    return {
        "token_hmac_secret_key": SECRET,
        "api_key": API_KEY,
        "namespaces": [tagged, board, plain],
        "prometheus": True,
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    handle = start_node(config(), tmp_path_factory.mktemp("tags"), "tags")
    yield handle
    handle.stop()


async def _client(server: ServerHandle, ws_connect: Any) -> WsClient:
    client: WsClient = await ws_connect(server)
    reply = await client.request({"id": 1, "connect": {"token": make_token()}})
    assert "connect" in reply, reply
    return client


def _deep(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = EQ_ENG
    for _ in range(levels):
        node = {"op": "not", "nodes": [node]}
    return node


@pytest.mark.parametrize(
    ("channel", "tf"),
    [
        ("plain:a", EQ_ENG),  # the namespace does not allow tags filters
        ("tagged:a", {"key": "team", "cmp": "eq"}),  # eq without val
        ("tagged:a", {"key": "team", "cmp": "like", "val": "x"}),
        ("tagged:a", {"op": "and", "nodes": []}),
        ("tagged:a", {"op": "not", "nodes": [EQ_ENG, EQ_ENG]}),
        ("tagged:a", {"cmp": "in", "vals": ["x"]}),  # no key
        ("tagged:a", _deep(40)),
        ("board:a", {"key": "team", "cmp": "gt"}),
    ],
)
async def test_a_tags_filter_that_cannot_be_applied_gets_error_107_and_the_client_stays(
    server: ServerHandle, ws_connect: Any, channel: str, tf: dict[str, Any]
) -> None:
    client = await _client(server, ws_connect)
    request: dict[str, Any] = {"channel": channel, "tf": tf}
    if channel.startswith("board:"):
        request |= {"type": 1, "phase": 2}

    reply = await client.request({"id": 2, "subscribe": request})

    assert reply["error"]["code"] == 107
    assert "subscribe" in await client.request({"id": 3, "subscribe": {"channel": "plain:b"}})


async def test_filtered_subscriber_gets_matching_publications_without_delta_and_with_debounce(
    server: ServerHandle, ws_connect: Any
) -> None:
    client = await _client(server, ws_connect)
    tf = {"op": "or", "nodes": [EQ_ENG, {"key": "team", "cmp": "nex"}]}
    sub = {"channel": "tagged:live", "tf": tf, "delta": "fossil"}

    result = (await client.request({"id": 2, "subscribe": sub}))["subscribe"]

    assert result == {"publish_debounce": 50}  # no delta: a filtered subscriber gets it whole
    for n, tags in enumerate([{"team": "sales"}, {"team": "eng"}, {}, {"team": "ops"}]):
        server.api("publish", {"channel": "tagged:live", "data": {"n": n}, "tags": tags})
    server.api("publish", {"channel": "tagged:live", "data": {"n": 9}, "tags": {"team": "eng"}})
    got = [(await client.push())["push"]["pub"] for _ in range(3)]
    assert [(p["data"], p.get("tags")) for p in got] == [
        ({"n": 1}, {"team": "eng"}),
        ({"n": 2}, None),
        ({"n": 9}, {"team": "eng"}),
    ]


async def test_filtered_map_subscriber_sees_only_matching_state_and_changes(
    server: ServerHandle, ws_connect: Any
) -> None:
    channel = "board:1"
    for key, team in [("a", "eng"), ("b", "sales"), ("c", "eng")]:
        server.api(
            "map_publish",
            {"channel": channel, "key": key, "data": {"k": key}, "tags": {"team": team}},
        )
    client = await _client(server, ws_connect)
    sub = {"channel": channel, "type": 1, "phase": 2, "tf": EQ_ENG}

    result = (await client.request({"id": 2, "subscribe": sub}))["subscribe"]

    assert sorted(e["key"] for e in result["state"]) == ["a", "c"]
    assert result["publish_debounce"] == 1500
    for key, team in [("d", "sales"), ("e", "eng")]:
        server.api(
            "map_publish",
            {"channel": channel, "key": key, "data": {"k": key}, "tags": {"team": team}},
        )
    push = await client.push()
    assert push["push"]["pub"]["key"] == "e"


DROPPED = "rotary_tags_filter_dropped_publications_total"


async def test_each_subscriber_whose_filter_drops_a_live_publication_counts_once(
    server: ServerHandle, ws_connect: Any
) -> None:
    before = value(scrape(server), DROPPED)
    stream = [await _client(server, ws_connect) for _ in range(3)]
    for n, client in enumerate(stream):  # two filtered subscribers, one without a filter
        sub: dict[str, Any] = {"channel": "tagged:count"} | ({"tf": EQ_ENG} if n else {})
        assert "subscribe" in await client.request({"id": 2, "subscribe": sub})
    board = await _client(server, ws_connect)
    sub = {"channel": "board:count", "type": 1, "phase": 2, "tf": EQ_ENG}
    assert "subscribe" in await board.request({"id": 2, "subscribe": sub})

    server.api("publish", {"channel": "tagged:count", "data": {}, "tags": {"team": "ops"}})
    server.api("publish", {"channel": "tagged:count", "data": {}, "tags": {"team": "eng"}})
    for key, team in [("x", "ops"), ("y", "eng")]:
        params = {"channel": "board:count", "key": key, "data": {}, "tags": {"team": team}}
        server.api("map_publish", params)
    assert (await stream[1].push())["push"]["pub"]["tags"] == {"team": "eng"}
    assert (await board.push())["push"]["pub"]["key"] == "y"

    assert value(scrape(server), DROPPED) - before == 3  # 2 stream subscribers + 1 map
