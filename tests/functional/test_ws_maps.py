"""Map subscriptions over a real server: state pages, stream catch-up, live changes, the API."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.functional.cluster_helpers import start_node
from tests.functional.conftest import API_KEY, SECRET, ServerHandle, make_token


def config(mode: str = "persistent", **map_options: Any) -> dict[str, Any]:
    if mode != "persistent":
        map_options.setdefault("key_ttl", "60s")
    namespace = {
        "name": "game",
        "subscription_type": "map",
        "allow_subscribe_for_client": True,
        "map": {"mode": mode, **map_options},
    }
    return {
        "token_hmac_secret_key": SECRET,
        "api_key": API_KEY,
        "namespaces": [namespace, {"name": "news", "allow_subscribe_for_client": True}],
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """One server for the module (each test uses channels of its own): ``game`` as `config`
    makes it, ``paged`` with pages of two, ``lobby`` ephemeral."""
    cfg = config()
    paged = {**cfg["namespaces"][0], "name": "paged"}
    paged["map"] = {**paged["map"], "default_page_size": 2, "min_page_size": 1}
    cfg["namespaces"].append(paged)
    lobby = {**cfg["namespaces"][0], "name": "lobby"}
    lobby["map"] = {"mode": "ephemeral", "key_ttl": "60s"}
    cfg["namespaces"].append(lobby)
    handle = start_node(cfg, tmp_path_factory.mktemp("maps"), "maps")
    yield handle
    handle.stop()


async def _client(server: Any, ws_connect: Any) -> Any:
    client = await ws_connect(server)
    reply = await client.request({"id": 1, "connect": {"token": make_token()}})
    assert "connect" in reply, reply
    return client


def _sub(cmd_id: int, channel: str, phase: int, **fields: Any) -> dict[str, Any]:
    return {"id": cmd_id, "subscribe": {"channel": channel, "type": 1, "phase": phase, **fields}}


def _publish(server: Any, channel: str, key: str, data: Any, **extra: Any) -> dict[str, Any]:
    return server.api("map_publish", {"channel": channel, "key": key, "data": data, **extra})


async def test_small_map_goes_live_on_the_first_state_page_with_every_entry(
    server: Any, ws_connect: Any
) -> None:
    _publish(server, "game:1", "b", {"v": 2})
    _publish(server, "game:1", "a", {"v": 1})
    client = await _client(server, ws_connect)

    reply = (await client.request(_sub(2, "game:1", 2)))["subscribe"]

    assert "phase" not in reply  # live: phase 0, omitted like Centrifugo's JSON
    assert (reply["type"], reply["offset"], reply["recoverable"]) == (1, 2, True)
    assert [(e["key"], e["data"], e["offset"]) for e in reply["state"]] == [
        ("a", {"v": 1}, 2),
        ("b", {"v": 2}, 1),
    ]


async def test_live_subscriber_gets_writes_and_removals_with_keys_and_offsets(
    server: Any, ws_connect: Any
) -> None:
    client = await _client(server, ws_connect)
    await client.request(_sub(2, "game:2", 2))

    _publish(server, "game:2", "p1", {"x": 1})
    server.api("map_remove", {"channel": "game:2", "key": "p1"})

    write, removal = await client.push(), await client.push()
    assert write["push"] == {
        "channel": "game:2",
        "pub": {"data": {"x": 1}, "offset": 1, "key": "p1"},
    }
    assert removal["push"]["pub"]["key"] == "p1" and removal["push"]["pub"]["removed"] is True
    assert removal["push"]["pub"]["offset"] == 2


async def test_state_is_paged_with_a_cursor_then_the_stream_then_live(
    server: Any, ws_connect: Any
) -> None:
    for key in "abcde":
        _publish(server, "paged:3", key, {"k": key})
    client = await _client(server, ws_connect)

    first = (await client.request(_sub(2, "paged:3", 2, limit=2)))["subscribe"]
    assert (first["phase"], first["offset"], [e["key"] for e in first["state"]]) == (
        2,
        5,
        ["a", "b"],
    )
    epoch = first["epoch"]
    _publish(server, "paged:3", "a", {"k": "a2"})  # after the first page: comes from the stream
    pages = [first]
    while pages[-1].get("cursor"):
        more = _sub(10 + len(pages), "paged:3", 2, limit=2, cursor=pages[-1]["cursor"])
        more["subscribe"].update(offset=5, epoch=epoch)
        pages.append((await client.request(more))["subscribe"])

    assert [e["key"] for p in pages for e in p["state"]] == ["a", "b", "c", "d", "e"]
    live = pages[-1]
    assert "phase" not in live and live["offset"] == 6
    assert [(p["key"], p["data"]) for p in live["publications"]] == [("a", {"k": "a2"})]


async def test_recovering_subscriber_gets_only_the_changes_it_missed(
    server: Any, ws_connect: Any
) -> None:
    first = _publish(server, "game:4", "a", 1)["result"]
    _publish(server, "game:4", "b", 2)
    client = await _client(server, ws_connect)

    since = {"offset": first["offset"], "epoch": first["epoch"], "recover": True}
    reply = (await client.request(_sub(2, "game:4", 1, **since)))["subscribe"]

    assert (reply["was_recovering"], reply["recovered"], reply["offset"]) == (True, True, 2)
    assert [(p["key"], p["data"]) for p in reply["publications"]] == [("b", 2)]


async def test_recovery_from_another_epoch_gets_error_112(server: Any, ws_connect: Any) -> None:
    _publish(server, "game:5", "a", 1)
    client = await _client(server, ws_connect)

    reply = await client.request(_sub(2, "game:5", 1, offset=1, epoch="gone", recover=True))

    assert reply["error"]["code"] == 112


async def test_map_subscribe_to_a_stream_namespace_and_stream_subscribe_to_a_map_get_103(
    server: Any, ws_connect: Any
) -> None:
    client = await _client(server, ws_connect)

    to_stream = await client.request(_sub(2, "news:x", 2))
    to_map = await client.request({"id": 3, "subscribe": {"channel": "game:x"}})

    assert (to_stream["error"]["code"], to_map["error"]["code"]) == (103, 103)


async def test_a_page_of_a_flow_that_never_started_gets_103(server: Any, ws_connect: Any) -> None:
    client = await _client(server, ws_connect)

    reply = await client.request(_sub(2, "game:6", 2, cursor="a"))

    assert reply["error"]["code"] == 103


async def test_unsubscribed_client_gets_no_more_changes(server: Any, ws_connect: Any) -> None:
    client = await _client(server, ws_connect)
    await client.request(_sub(2, "game:7", 2))
    await client.request({"id": 3, "unsubscribe": {"channel": "game:7"}})

    _publish(server, "game:7", "a", 1)
    await client.request({"id": 4, "subscribe": {"channel": "news:y"}})  # a later reply

    assert client.pushes == []


async def test_api_key_modes_idempotency_and_stats(server: Any) -> None:
    once = {"idempotency_key": "k1"}

    assert _publish(server, "game:8", "a", 1, **once)["result"]["offset"] == 1
    again = _publish(server, "game:8", "a", 2, **once)["result"]
    taken = _publish(server, "game:8", "a", 3, key_mode="if_new")["result"]
    missing = server.api("map_remove", {"channel": "game:8", "key": "zz"})["result"]

    assert (again["suppressed"], again["suppress_reason"]) == (True, "idempotency")
    assert taken["suppress_reason"] == "key_exists"
    assert missing["suppress_reason"] == "key_not_found"
    assert server.api("map_stats", {"channel": "game:8"})["result"] == {"num_keys": 1}


async def test_api_write_with_an_old_version_is_suppressed_and_subscribers_never_see_it(
    server: Any, ws_connect: Any
) -> None:
    client = await _client(server, ws_connect)
    await client.request(_sub(2, "game:v1", 2))
    _publish(server, "game:v1", "a", 1, version=2, version_epoch="e")

    stale = _publish(server, "game:v1", "a", 2, version=1, version_epoch="e")["result"]
    newer = _publish(server, "game:v1", "a", 3, version=3, version_epoch="e")["result"]
    pushes = [(await client.push())["push"]["pub"] for _ in range(2)]

    assert stale == {"offset": 1, "epoch": newer["epoch"], "suppressed": True,
                     "suppress_reason": "version"}  # fmt: skip
    assert [(p["data"], p["offset"]) for p in pushes] == [(1, 1), (3, 2)]


async def test_api_version_on_an_ephemeral_map_gets_100(server: Any) -> None:
    assert _publish(server, "lobby:v2", "a", 1, version=1)["error"]["code"] == 100


async def test_api_reads_state_and_stream_and_clear_starts_a_new_epoch(server: Any) -> None:
    epoch = _publish(server, "game:9", "a", 1)["result"]["epoch"]
    _publish(server, "game:9", "b", 2)

    state = server.api("map_read_state", {"channel": "game:9", "limit": -1})["result"]
    stream = server.api(
        "map_read_stream",
        {"channel": "game:9", "since_offset": 1, "since_epoch": epoch, "limit": -1},
    )["result"]
    server.api("map_clear", {"channel": "game:9"})
    after = server.api("map_read_state", {"channel": "game:9", "limit": -1})["result"]

    assert [(e["key"], e["data"]) for e in state["entries"]] == [("a", 1), ("b", 2)]
    assert [(e["key"], e["offset"]) for e in stream["entries"]] == [("b", 2)]
    assert after["entries"] == [] and after["epoch"] != epoch


async def test_api_map_call_on_a_stream_channel_gets_107(server: Any) -> None:

    reply = _publish(server, "news:z", "a", 1)

    assert reply["error"]["code"] == 107


async def test_plain_publish_to_a_map_channel_gets_107(server: Any) -> None:

    reply = server.api("publish", {"channel": "game:10", "data": {"x": 1}})

    assert reply["error"]["code"] == 107


async def test_map_change_of_bytes_that_are_not_json_closes_a_json_subscriber_with_3506(
    server: Any, ws_connect: Any
) -> None:
    client = await _client(server, ws_connect)
    await client.request(_sub(2, "game:11", 2))

    reply = server.api("map_publish", {"channel": "game:11", "key": "a", "b64data": "/wA="})

    assert reply["result"]["offset"] == 1
    assert (await client.closed())[0] == 3506


async def test_channels_api_lists_map_channels_with_their_subscribers(
    server: Any, ws_connect: Any
) -> None:
    client = await _client(server, ws_connect)
    await client.request(_sub(2, "game:12", 2))

    listed = server.api("channels", {"pattern": "game:12"})["result"]["channels"]

    assert listed == {"game:12": {"num_clients": 1}}


async def test_api_score_stream_data_and_asc_are_accepted_and_change_nothing(server: Any) -> None:
    # Centrifugo's map API takes these fields but its maps are never ordered and keep no
    # separate stream data: entries stay in key order, the stream holds the data.
    _publish(server, "game:o1", "b", 1, score=5, stream_data={"x": 1}, b64stream_data="e30=")
    _publish(server, "game:o1", "a", 2, score=9)

    state = server.api("map_read_state", {"channel": "game:o1", "limit": -1, "asc": True})
    stream = server.api("map_read_stream", {"channel": "game:o1", "limit": -1})

    assert [(e["key"], e["data"]) for e in state["result"]["entries"]] == [("a", 2), ("b", 1)]
    assert [(e["key"], e["data"]) for e in stream["result"]["entries"]] == [("b", 1), ("a", 2)]


async def test_live_map_subscriptions_count_in_info_and_the_subscriptions_metric(
    tmp_path: Path, ws_connect: Any
) -> None:
    handle = start_node({**config(), "prometheus": True}, tmp_path, "counts")
    try:
        client = await _client(handle, ws_connect)
        await client.request(_sub(2, "game:c1", 2))
        live = _counts(handle)
        await client.request({"id": 3, "unsubscribe": {"channel": "game:c1"}})
        gone = _counts(handle)
    finally:
        handle.stop()

    assert live == (1, 1, 1.0)
    assert gone == (0, 0, 0.0)


def _counts(server: Any) -> tuple[int, int, float]:
    """(num_channels, num_subs) of ``info`` and the ``rotary_subscriptions`` gauge."""
    [node] = server.api("info", {})["result"]["nodes"]
    with urllib.request.urlopen(f"{server.http_url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    [gauge] = [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "rotary_subscriptions"
    ]
    return node["num_channels"], node["num_subs"], gauge
