"""centrifuge-js (5.8, which has map subscriptions) against Rotary's map channels."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.functional.cluster_helpers import SHARED_REDIS, shared_redis_or_skip
from tests.functional.conftest import make_token
from tests.functional.test_ws_maps import config

JS_DIR = Path(__file__).resolve().parent.parent / "sdk" / "js"


class MapDriver:
    """tests/sdk/js/map_driver.mjs in a node child process; its events in order."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []

    def send(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())

    async def next(self, kind: str, within: float = 10.0) -> dict[str, Any]:
        """The first event of `kind` not taken yet, read already or still to come."""
        for event in self.events:
            if event["ev"] == kind and not event.get("_taken"):
                event["_taken"] = True
                return event
        async with asyncio.timeout(within):
            while True:
                assert self.proc.stdout is not None
                line = await self.proc.stdout.readline()
                assert line, f"driver exited; events: {self.events}"
                event = json.loads(line)
                self.events.append(event)
                assert event["ev"] not in ("error", "fatal", "unsubscribed", "write_error"), (
                    self.events
                )
                if event["ev"] == kind:
                    event["_taken"] = True
                    return event


@pytest.fixture
async def map_driver() -> AsyncIterator[Any]:
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules" / "centrifuge").is_dir():
        pytest.fail("centrifuge-js is not installed: run `make js-deps`")
    procs: list[asyncio.subprocess.Process] = []

    async def start(
        url: str,
        channel: str,
        page_size: int = 0,
        kind: str = "map",
        *,
        protocol: str = "json",
        delta: str = "",
    ) -> MapDriver:
        proc = await asyncio.create_subprocess_exec(
            node,
            str(JS_DIR / "map_driver.mjs"),
            url,
            make_token(),
            channel,
            str(page_size),
            kind,
            protocol,
            delta,
            cwd=str(JS_DIR),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        procs.append(proc)
        return MapDriver(proc)

    yield start
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.close()
        await proc.wait()


def _publish(server: Any, key: str, data: Any) -> None:
    reply = server.api("map_publish", {"channel": "game:js", "key": key, "data": data})
    assert "result" in reply, reply


async def test_js_map_subscription_syncs_paged_state_then_follows_writes_and_removals(
    rotary_server: Any, map_driver: Any
) -> None:
    server = rotary_server(config(min_page_size=1))
    for i in range(5):
        _publish(server, f"k{i}", {"n": i})

    driver = await map_driver(server.ws_url, "game:js", page_size=2)
    sync = await driver.next("sync")
    _publish(server, "k9", {"n": 9})
    added = await driver.next("update")
    server.api("map_remove", {"channel": "game:js", "key": "k0"})
    removed = await driver.next("update")

    assert sorted((e["key"], e["data"]["n"]) for e in sync["entries"]) == [
        (f"k{i}", i) for i in range(5)
    ]
    assert (added["key"], added["data"], added["removed"]) == ("k9", {"n": 9}, False)
    assert (removed["key"], removed["removed"]) == ("k0", True)
    sent = [
        json.loads(line)
        for e in driver.events
        if e["ev"] == "frame" and e["dir"] == "out"
        for line in e["data"].split("\n")
    ]
    pages = [m["subscribe"] for m in sent if "subscribe" in m]
    assert len(pages) >= 3 and all(p["type"] == 1 for p in pages)  # 5 keys, 2 a page


async def test_js_map_subscriber_writes_and_removes_its_own_key(
    rotary_server: Any, map_driver: Any
) -> None:
    server = rotary_server(
        config(allow_publish_for_subscriber=True, allow_remove_for_subscriber=True)
    )
    driver = await map_driver(server.ws_url, "game:js")
    await driver.next("sync")

    driver.send({"op": "publish", "key": "me", "data": {"at": 1}})
    await driver.next("written")
    mine = await driver.next("update")
    driver.send({"op": "remove", "key": "me"})
    await driver.next("written")
    gone = await driver.next("update")

    assert (mine["key"], mine["data"], gone["key"], gone["removed"]) == (
        "me",
        {"at": 1},
        "me",
        True,
    )
    state = server.api("map_read_state", {"channel": "game:js", "limit": -1})["result"]
    assert state["entries"] == []


async def test_js_client_presence_map_sees_a_subscriber_come_and_go(
    rotary_server: Any, map_driver: Any, ws_connect: Any
) -> None:
    cfg = config()
    cfg["namespaces"] += [
        {
            "name": "chat",
            "allow_subscribe_for_client": True,
            "map_clients_presence_channel_prefix": "clients:",
        },
        {
            "name": "clients",
            "subscription_type": "map_clients",
            "allow_subscribe_for_client": True,
            "map": {"mode": "ephemeral", "key_ttl": "60s"},
        },
    ]
    server = rotary_server(cfg)
    driver = await map_driver(server.ws_url, "clients:chat:room", kind="clients")
    await driver.next("sync")
    member = await ws_connect(server)
    joined = await member.request({"id": 1, "connect": {"token": make_token("member")}})
    await member.request({"id": 2, "subscribe": {"channel": "chat:room"}})

    came = await driver.next("update")
    await member.request({"id": 3, "unsubscribe": {"channel": "chat:room"}})
    went = await driver.next("update")

    client_id = joined["connect"]["client"]
    assert (came["key"], came["removed"], went["key"], went["removed"]) == (
        client_id,
        False,
        client_id,
        True,
    )
    frames = [e["data"] for e in driver.events if e["ev"] == "frame" and e["dir"] == "out"]
    assert any('"type":2' in f for f in frames)  # the SDK's client presence map type


@pytest.mark.parametrize("engine", ["memory", "redis"])
@pytest.mark.parametrize("protocol", ["json", "protobuf"])
async def test_js_map_subscription_with_fossil_delta_decodes_per_key_deltas(
    rotary_server: Any, map_driver: Any, protocol: str, engine: str
) -> None:
    cfg = config()
    cfg["namespaces"][0] |= {"allowed_delta_types": ["fossil"], "delta_publish": True}
    if engine == "redis":
        shared_redis_or_skip()
        cfg |= {
            "engine": "redis",
            "redis_address": SHARED_REDIS,
            "redis_prefix": f"rotary-sdkmaps-{uuid.uuid4().hex[:10]}",
            "map_broker_type": "redis",
            "map_broker_redis_address": SHARED_REDIS,
            "map_broker_redis_prefix": f"rotary-sdkmaps-{uuid.uuid4().hex[:10]}",
        }
    server = rotary_server(cfg)
    padding = "p" * 300
    _publish(server, "seeded", {"v": 0, "padding": padding})
    driver = await map_driver(server.ws_url, "game:js", protocol=protocol, delta="fossil")
    sync = await driver.next("sync")

    for v in (1, 2):
        _publish(server, "seeded", {"v": v, "padding": padding})  # deltas on the synced value
    _publish(server, "fresh", {"v": 1, "padding": padding})  # a new key: whole
    updates = [await driver.next("update") for _ in range(3)]
    driver.send({"op": "stats"})
    stats = await driver.next("stats")

    assert sync["entries"] == [
        {"key": "seeded", "data": {"v": 0, "padding": padding}, "removed": False}
    ]
    assert [(u["key"], u["data"]["v"]) for u in updates] == [
        ("seeded", 1),
        ("seeded", 2),
        ("fresh", 1),
    ]
    assert all(u["data"]["padding"] == padding for u in updates)
    assert (stats["numDeltaPayloads"], stats["numFullPayloads"]) == (2, 2)  # sync entry + new key
    assert stats["bytesReceived"] < stats["bytesDecoded"]


async def test_js_map_subscriber_coalesces_its_writes_when_the_namespace_asks_for_debounce(
    rotary_server: Any, map_driver: Any
) -> None:
    cfg = config(allow_publish_for_subscriber=True)
    cfg["namespaces"][0]["client_publish_debounce_interval"] = "1s"
    server = rotary_server(cfg)
    driver = await map_driver(server.ws_url, "game:js")
    await driver.next("sync")

    for x in range(6):
        driver.send({"op": "publish", "key": "cursor", "data": {"x": x}})
    for _ in range(6):
        await driver.next("written")  # held writes resolve at once: the SDK coalesces them
    while (await driver.next("update"))["data"] != {"x": 5}:
        pass

    sent = [
        json.loads(line)
        for e in driver.events
        if e["ev"] == "frame" and e["dir"] == "out"
        for line in e["data"].split("\n")
    ]
    publishes = [m["publish"]["data"] for m in sent if "publish" in m]
    assert publishes == [{"x": 0}, {"x": 5}], "the first at once, then only the latest"
    state = server.api("map_read_state", {"channel": "game:js", "limit": -1})["result"]
    assert [e["data"] for e in state["entries"]] == [{"x": 5}]
