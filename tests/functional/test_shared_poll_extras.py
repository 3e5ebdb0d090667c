"""Shared poll channels beyond polling a named proxy: publishing into them through the
server HTTP API (``shared_poll_publish``, called as `cent` calls methods: POST /api/<method>
with X-API-Key), on the memory engine and on Redis and from one Redis node to the clients of
another; the default proxy (channel.proxy.shared_poll_refresh) of namespaces that name
none; fossil deltas of items whose previous data the backend gives; and the shared poll
metrics at /metrics.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis

from rotary.protocol import fossil
from tests.functional.cluster_helpers import start_node
from tests.functional.conftest import API_KEY, ServerHandle, WsClient, make_token
from tests.functional.test_metrics_endpoint import scrape, value
from tests.functional.test_ws_shared_poll import (
    Backend,
    ask,
    config,
    new_channel,
    subscribed,
    track,
    updates,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def poll_backend() -> Iterator[tuple[Backend, str]]:
    """The app's refresh endpoint (items by key), in a thread of this process."""
    state = Backend()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            answer = json.dumps(state.answer({**json.loads(body), "path": self.path})).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{http.server_address[1]}/refresh"
    http.shutdown()
    http.server_close()


def publish_config(endpoint: str, engine: str) -> dict[str, Any]:
    """The shared poll test config plus ``pollpub``: versioned, publishing enabled, and a
    refresh interval long enough that only publications bring new versions."""
    cfg = config(endpoint, engine)
    group = {"proxy_name": "poll_backend", "mode": "versioned", "refresh_interval": "60s"}
    cfg["channel"]["namespaces"].append(
        {
            "name": "pollpub",
            "subscription_type": "shared_poll",
            "allow_subscribe_for_client": True,
            "shared_poll": {**group, "publish_enabled": True},
        }
    )
    cfg["channel"]["namespaces"].append({"name": "stream"})
    cfg["channel"]["namespaces"].append(
        {
            "name": "polldef",
            "subscription_type": "shared_poll",
            "allow_subscribe_for_client": True,
            "shared_poll": {"mode": "versioned", "refresh_interval": "200ms"},
        }
    )
    cfg["channel"]["namespaces"].append(
        {
            "name": "polldelta",
            "subscription_type": "shared_poll",
            "allow_subscribe_for_client": True,
            "allowed_delta_types": ["fossil"],
            "shared_poll": {**group, "refresh_interval": "200ms"},
        }
    )
    default = {"endpoint": f"{endpoint}/default", "timeout": "2s"}
    cfg["channel"]["proxy"] = {"shared_poll_refresh": default}
    cfg["http_api"] = {"key": API_KEY}
    cfg["prometheus"] = {"enabled": True}
    return cfg


@pytest.fixture(scope="module", params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def server(
    request: pytest.FixtureRequest,
    poll_backend: tuple[Backend, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerHandle]:
    engine = request.param
    folder = tmp_path_factory.mktemp(engine)
    handle = start_node(publish_config(poll_backend[1], engine), folder, engine)
    yield handle
    handle.stop()


async def publish(server: ServerHandle, **params: Any) -> dict[str, Any]:
    return await asyncio.to_thread(server.api, "shared_poll_publish", params)


async def test_published_version_reaches_the_clients_tracking_the_key(
    server: ServerHandle, poll_backend: tuple[Backend, str], ws_connect: Any
) -> None:
    state, _ = poll_backend
    channel = new_channel("pollpub")
    assert "k" not in state.items  # the backend knows nothing of this key
    client = await subscribed(server, ws_connect, channel)
    await ask(client, track(3, channel, {"k": 0}))

    assert await publish(server, channel=channel, key="k", version=2, data={"n": 2}) == {
        "result": {}
    }

    assert await updates(client, 1) == [{"data": {"n": 2}, "key": "k", "version": 2}]


async def test_stale_published_versions_are_dropped(server: ServerHandle, ws_connect: Any) -> None:
    channel = new_channel("pollpub")
    client = await subscribed(server, ws_connect, channel)
    await ask(client, track(3, channel, {"k": 0}))
    await publish(server, channel=channel, key="k", version=5, data={"n": 5})
    assert (await updates(client, 1))[0]["version"] == 5

    for version in (5, 4):  # equal and older versions: nothing goes out
        assert await publish(server, channel=channel, key="k", version=version, data={}) == {
            "result": {}
        }
    await publish(server, channel=channel, key="k", version=6, data={"n": 6})

    assert await updates(client, 1) == [{"data": {"n": 6}, "key": "k", "version": 6}]


async def test_binary_b64data_reaches_a_json_client_as_its_json_value(
    server: ServerHandle, ws_connect: Any
) -> None:
    channel = new_channel("pollpub")
    client = await subscribed(server, ws_connect, channel)
    await ask(client, track(3, channel, {"k": 0}))

    await publish(server, channel=channel, key="k", version=1, b64data="eyJiIjoxfQ==")

    assert await updates(client, 1) == [{"data": {"b": 1}, "key": "k", "version": 1}]


async def test_a_new_publisher_epoch_unsubscribes_the_subscribers_with_2500(
    server: ServerHandle, ws_connect: Any
) -> None:
    channel = new_channel("pollpub")
    client = await subscribed(server, ws_connect, channel)
    await ask(client, track(3, channel, {"k": 0}))

    await publish(server, channel=channel, key="k", version=1, epoch="e2", data={})

    push = (await client.push())["push"]
    assert push["channel"] == channel
    assert push["unsubscribe"]["code"] == 2500


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"key": "k", "version": 1, "data": {}}, 107),  # no channel
        ({"channel": "pollpub:x", "version": 1, "data": {}}, 107),  # no key
        ({"channel": "pollpub:x", "key": "k", "data": {}}, 107),  # no version
        ({"channel": "nowhere:x", "key": "k", "version": 1, "data": {}}, 102),
        ({"channel": "stream:x", "key": "k", "version": 1, "data": {}}, 107),
        ({"channel": "poll:x", "key": "k", "version": 1, "data": {}}, 108),  # not enabled
    ],
)
async def test_bad_shared_poll_publish_gets_its_error_code_and_the_server_goes_on(
    server: ServerHandle, params: dict[str, Any], code: int
) -> None:
    assert (await publish(server, **params))["error"]["code"] == code
    assert await publish(server, channel="pollpub:x", key="k", version=1, data={}) == {"result": {}}


@pytest.mark.redis
async def test_publication_on_one_redis_node_reaches_the_clients_of_another(
    poll_backend: tuple[Backend, str], ws_connect: Any, tmp_path: Path
) -> None:
    base = publish_config(poll_backend[1], "redis")
    nodes = [start_node(base, tmp_path, name) for name in ("n1", "n2")]
    try:
        channel = new_channel("pollpub")
        client = await subscribed(nodes[1], ws_connect, channel)
        await ask(client, track(3, channel, {"k": 0}))

        await publish(nodes[0], channel=channel, key="k", version=7, data={"from": "n1"})

        assert await updates(client, 1) == [{"data": {"from": "n1"}, "key": "k", "version": 7}]
    finally:
        for node in nodes:
            node.stop()


@pytest.mark.redis
async def test_publication_reaches_only_the_redis_nodes_tracking_its_key(
    poll_backend: tuple[Backend, str], ws_connect: Any, tmp_path: Path
) -> None:
    base = publish_config(poll_backend[1], "redis")
    nodes = [start_node(base, tmp_path, name) for name in ("n1", "n2")]
    try:
        channel = new_channel("pollpub")
        on_a = await subscribed(nodes[0], ws_connect, channel)
        await ask(on_a, track(3, channel, {"a": 0}))
        on_b = await subscribed(nodes[1], ws_connect, channel)
        await ask(on_b, track(3, channel, {"b": 0}))

        # A new epoch resets the subscribers of every node it reaches: only n2 tracks "b".
        await publish(nodes[0], channel=channel, key="b", version=1, epoch="e2", data={})
        assert (await on_b.push())["push"]["unsubscribe"]["code"] == 2500
        await publish(nodes[1], channel=channel, key="a", version=4, data={"n": 4})

        assert await updates(on_a, 1) == [{"data": {"n": 4}, "key": "a", "version": 4}]
    finally:
        for node in nodes:
            node.stop()


@pytest.mark.redis
async def test_redis_node_listens_to_a_keys_channel_only_while_a_client_tracks_the_key(
    poll_backend: tuple[Backend, str], ws_connect: Any, tmp_path: Path
) -> None:
    base = publish_config(poll_backend[1], "redis")
    prefix = base["engine"]["redis"]["prefix"]
    node = start_node(base, tmp_path, "n1")
    redis_client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        channel = new_channel("pollpub")
        client = await subscribed(node, ws_connect, channel)
        await ask(client, track(3, channel, {"a": 0, "b": 0}))
        listened = redis_client.pubsub_channels(f"{prefix}*{channel}*")
        assert sorted(name[-1:] for name in listened) == [b"a", b"b"]

        await ask(
            client, {"id": 4, "sub_refresh": {"channel": channel, "type": 2, "untrack": ["a"]}}
        )
        for _ in range(100):
            listened = redis_client.pubsub_channels(f"{prefix}*{channel}*")
            if len(listened) < 2:
                break
            await asyncio.sleep(0.05)

        assert [name[-1:] for name in listened] == [b"b"]
    finally:
        redis_client.close()
        node.stop()


async def test_namespace_without_a_proxy_name_is_polled_through_the_default_proxy(
    server: ServerHandle, poll_backend: tuple[Backend, str], ws_connect: Any
) -> None:
    state, _ = poll_backend
    channel = new_channel("polldef")
    state.items["dk"] = {"data": {"d": 1}, "version": 3}
    client = await subscribed(server, ws_connect, channel)

    await ask(client, track(3, channel, {"dk": 0}))

    assert await updates(client, 1) == [{"data": {"d": 1}, "key": "dk", "version": 3}]
    with state.lock:
        paths = {r["path"] for r in state.requests if r["channel"] == channel}
    assert paths == {"/refresh/default"}


async def test_polls_items_and_publications_are_counted_in_the_shared_poll_metrics(
    server: ServerHandle, poll_backend: tuple[Backend, str], ws_connect: Any
) -> None:
    state, _ = poll_backend
    channel = new_channel("polldef")
    state.items.update({"m1": {"data": {}, "version": 1}, "m2": {"removed": True}})
    before = await asyncio.to_thread(scrape, server)
    client = await subscribed(server, ws_connect, channel)
    await ask(client, track(3, channel, {"m1": 0, "m2": 0}))
    await updates(client, 2)  # m1's data, m2's removal
    pub_channel = new_channel("pollpub")
    other = await subscribed(server, ws_connect, pub_channel)
    await ask(other, track(3, pub_channel, {"p": 0}))
    for version in (2, 2, 3):  # the repeated 2 is skipped; 3 arrives after it, in order
        await publish(server, channel=pub_channel, key="p", version=version, data={})
    assert [pub["version"] for pub in await updates(other, 2)] == [2, 3]

    after = await asyncio.to_thread(scrape, server)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("rotary_shared_poll_calls_total", outcome="ok") >= 1
    assert grew("rotary_shared_poll_items_total", result="polled") >= 2
    assert grew("rotary_shared_poll_items_total", result="changed") >= 1
    assert grew("rotary_shared_poll_items_total", result="removed") == 1
    assert grew("rotary_shared_poll_publications_total", result="applied") == 2
    assert grew("rotary_shared_poll_publications_total", result="skipped") == 1
    assert value(after, "rotary_shared_poll_channels") >= 2
    assert value(after, "rotary_shared_poll_keys") >= 2


async def delta_subscribed(server: ServerHandle, ws_connect: Any, channel: str) -> WsClient:
    client: WsClient = await ws_connect(server)
    assert "connect" in await ask(client, {"id": 1, "connect": {"token": make_token()}})
    sub = {"channel": channel, "type": 4, "delta": "fossil"}
    reply = await ask(client, {"id": 2, "subscribe": sub})
    assert reply["subscribe"]["delta"] is True, reply
    return client


async def test_delta_client_gets_a_fossil_delta_when_the_backend_gives_the_previous_data(
    server: ServerHandle, poll_backend: tuple[Backend, str], ws_connect: Any
) -> None:
    state, _ = poll_backend
    channel = new_channel("polldelta")
    old = {"text": "a long enough item " * 8, "n": 1}
    new = {"text": "a long enough item " * 8, "n": 2}
    state.items["dl"] = {"data": old, "version": 1}
    client = await delta_subscribed(server, ws_connect, channel)
    plain = await subscribed(server, ws_connect, channel)
    for c in (client, plain):
        await ask(c, track(3, channel, {"dl": 0}))
    first = (await updates(client, 1))[0]
    assert first == {"data": json.dumps(old, separators=(",", ":")), "key": "dl", "version": 1}
    assert (await updates(plain, 1))[0]["data"] == old

    state.items["dl"] = {"data": new, "prev_data": old, "version": 2}

    (patched,) = await updates(client, 1)
    assert patched["delta"] is True
    assert patched["version"] == 2
    result = fossil.apply(first["data"].encode(), patched["data"].encode())
    assert json.loads(result) == new
    assert await updates(plain, 1) == [{"data": new, "key": "dl", "version": 2}]


async def test_delta_is_not_granted_where_the_namespace_does_not_allow_it(
    server: ServerHandle, ws_connect: Any
) -> None:
    client: WsClient = await ws_connect(server)
    assert "connect" in await ask(client, {"id": 1, "connect": {"token": make_token()}})
    sub = {"channel": new_channel("pollpub"), "type": 4, "delta": "fossil"}

    reply = await ask(client, {"id": 2, "subscribe": sub})

    assert "delta" not in reply["subscribe"]


async def test_publication_without_data_brings_the_version_alone(
    server: ServerHandle, ws_connect: Any
) -> None:
    channel = new_channel("pollpub")
    client = await subscribed(server, ws_connect, channel)
    await ask(client, track(3, channel, {"k": 0}))

    assert await publish(server, channel=channel, key="k", version=4) == {"result": {}}

    assert await updates(client, 1) == [{"key": "k", "version": 4}]
