"""JSON and Protobuf clients of one channel on two nodes sharing Redis see the same channel.

A JSON subscriber (centrifuge-python) on node A and a Protobuf subscriber on node B
(centrifuge-python or centrifuge-go in Protobuf mode) share a channel: each receives every
publication made through either node's API, in one order; a join on one node reaches the
other's client as a push in its own format, so does a leave; presence read from either side
lists both clients with the infos of their tokens. Bytes that are not JSON, published on B,
reach the Protobuf client and close the JSON client on A with 3506, as on one node.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.functional.cluster_helpers import (
    SHARED_REDIS,
    TOKENS,
    cluster_config,
    shared_redis_or_skip,
    started_pair,
    until,
)
from tests.functional.conftest import ServerHandle
from tests.sdk.go_driver import go_sdk_or_skip, open_go_driver
from tests.sdk.harness import SdkDriver, frames, open_driver

pytestmark = [pytest.mark.redis, pytest.mark.sdk, pytest.mark.timeout(60, func_only=True)]

#: The Protobuf side, in each SDK that speaks it here.
PROTOBUF_SDKS = ("python-protobuf", "go-protobuf")
JSON_INFO = {"side": "json", "node": "a"}
PROTOBUF_INFO = {"side": "protobuf", "node": "b"}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerHandle, ServerHandle]]:
    """Nodes A and B on the shared Redis under a prefix of their own; presence, join/leave
    pushed to every subscriber, history (so publications carry offsets)."""
    shared_redis_or_skip()
    folder = tmp_path_factory.mktemp("mixed")
    prefix = f"rotary-mixed-{uuid.uuid4().hex[:10]}"
    config = cluster_config([SHARED_REDIS], prefix, force_push_join_leave=True)
    with started_pair(config, folder) as pair:
        yield pair


@pytest.fixture(params=PROTOBUF_SDKS)
def protobuf_sdk(request: pytest.FixtureRequest) -> str:
    """The SDK of the Protobuf subscriber; the Go program is built here, in set-up, so that a
    first build is not counted in the test's own timeout (skips without Go, fails in CI)."""
    if request.param.startswith("go"):
        go_sdk_or_skip()
    return str(request.param)


@contextlib.asynccontextmanager
async def client(sdk: str) -> AsyncIterator[SdkDriver]:
    """A started driver for `sdk`, Go ones included."""
    if sdk.startswith("go"):
        async with open_go_driver(sdk) as driver:
            yield driver
    else:
        async with open_driver(sdk) as driver:
            yield driver


async def subscribed(
    driver: SdkDriver, server: ServerHandle, channel: str, user: str, info: dict[str, Any]
) -> str:
    """Connect `driver` to `server` as `user`, subscribe to `channel`; its client id."""
    await driver.connect(server.ws_url, token=TOKENS.connection(user, info=info))
    connected = await driver.wait_for(lambda e: e["ev"] == "connected")
    await driver.subscribe(channel)
    await driver.wait_for(lambda e: e["ev"] == "sub_subscribed" and e["channel"] == channel)
    return str(connected["client"])


def publications(driver: SdkDriver, channel: str) -> list[tuple[int, Any]]:
    """(offset, data) of every publication `driver` delivered on `channel`, in order."""
    return [
        (int(e["offset"]), e["data"])
        for e in driver.events
        if e["ev"] == "publication" and e["channel"] == channel
    ]


def presence_pushes(driver: SdkDriver, channel: str, kind: str) -> set[tuple[str, str]]:
    """(client, user) of every `kind` ("join" or "leave") push `driver` got on `channel`.

    The Go driver reports them as events; the Python SDK's raw frames are decoded, each in
    the format it arrived in.
    """
    if driver.sdk.startswith("go"):
        found = [e for e in driver.events if e["ev"] == kind and e["channel"] == channel]
        return {(e["client"], e["user"]) for e in found}
    pushes = [m.get("push", m) for m in frames(driver.events, "in")]
    infos = [p[kind]["info"] for p in pushes if p.get("channel") == channel and kind in p]
    return {(i["client"], i["user"]) for i in infos}


async def api(server: ServerHandle, method: str, params: dict[str, Any]) -> None:
    body = await asyncio.to_thread(server.api, method, params)
    assert "error" not in body, f"API {method} on {server.port} failed: {body}"


async def test_json_and_protobuf_subscribers_on_two_nodes_get_every_publication_of_both(
    nodes: tuple[ServerHandle, ServerHandle], protobuf_sdk: str
) -> None:
    a, b = nodes
    channel = f"mixed-pubs-{protobuf_sdk}-{uuid.uuid4().hex[:6]}"
    async with client("python") as json_sub, client(protobuf_sdk) as proto_sub:
        await subscribed(json_sub, a, channel, "json-user", JSON_INFO)
        await subscribed(proto_sub, b, channel, "proto-user", PROTOBUF_INFO)
        sent = [{"seq": n, "via": "ab"[n % 2], "text": "é"} for n in range(1, 9)]
        for data in sent:
            await api(nodes[int(data["seq"]) % 2], "publish", {"channel": channel, "data": data})
        expected = list(enumerate(sent, start=1))
        for driver in (json_sub, proto_sub):
            await until(
                lambda d=driver: len(publications(d, channel)) >= len(sent),
                what=f"{driver.sdk} got {len(sent)} publications",
            )
            assert publications(driver, channel) == expected, driver.dump()[-4000:]


async def test_join_leave_and_presence_cross_nodes_between_json_and_protobuf_clients(
    nodes: tuple[ServerHandle, ServerHandle], protobuf_sdk: str
) -> None:
    a, b = nodes
    channel = f"mixed-presence-{protobuf_sdk}-{uuid.uuid4().hex[:6]}"
    async with client(protobuf_sdk) as proto_sub:
        async with client("python") as json_sub:
            json_id = await subscribed(json_sub, a, channel, "json-user", JSON_INFO)
            proto_id = await subscribed(proto_sub, b, channel, "proto-user", PROTOBUF_INFO)
            # B's join reaches the JSON client on A as a JSON push.
            await until(
                lambda: (proto_id, "proto-user") in presence_pushes(json_sub, channel, "join"),
                what="the Protobuf client's join on the JSON client",
            )
            expected = {
                json_id: ("json-user", JSON_INFO),
                proto_id: ("proto-user", PROTOBUF_INFO),
            }
            for driver in (json_sub, proto_sub):
                clients = await driver.presence(channel)
                seen = {cid: (c["user"], c["conn_info"]) for cid, c in clients.items()}
                assert seen == expected, driver.dump()[-4000:]
        # The JSON client on A is gone: its leave reaches the Protobuf client on B.
        await until(
            lambda: (json_id, "json-user") in presence_pushes(proto_sub, channel, "leave"),
            what="the JSON client's leave on the Protobuf client",
        )


async def test_bytes_that_are_not_json_reach_protobuf_on_one_node_and_close_json_on_the_other(
    nodes: tuple[ServerHandle, ServerHandle], protobuf_sdk: str
) -> None:
    a, b = nodes
    channel = f"mixed-bytes-{protobuf_sdk}-{uuid.uuid4().hex[:6]}"
    async with client("python") as json_sub, client(protobuf_sdk) as proto_sub:
        await subscribed(json_sub, a, channel, "json-user", JSON_INFO)
        await subscribed(proto_sub, b, channel, "proto-user", PROTOBUF_INFO)
        b64 = base64.b64encode(b"\xffnot json").decode()
        await api(b, "publish", {"channel": channel, "b64data": b64})
        # Node A cannot put these bytes in a JSON frame: its client is closed with 3506.
        closed = await json_sub.wait_for(lambda e: e["ev"] == "disconnected")
        assert closed["code"] == 3506, json_sub.dump()
        await api(a, "publish", {"channel": channel, "data": {"after": "bytes"}})
        await until(lambda: len(publications(proto_sub, channel)) >= 2, what="both publications")
        got = [data for _, data in publications(proto_sub, channel)]
        assert got == [{"base64": b64}, {"after": "bytes"}], proto_sub.dump()[-4000:]
        assert not publications(json_sub, channel), json_sub.dump()[-4000:]
