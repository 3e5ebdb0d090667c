"""Tags filters through the official Python SDK (PyPI ``centrifuge-python``), unchanged, against
a real Rotary on the memory and the Redis engine, over JSON and Protobuf.

A filtered subscriber gets only the publications its filter passes, live and recovered,
while its stream position moves past the others (no resubscribe); an unfiltered subscriber
of the same channel gets everything.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from centrifuge import (
    Client,
    Filter,
    PublicationContext,
    SubscribedContext,
    SubscribingContext,
    SubscriptionEventHandler,
)

from tests.functional.conftest import API_KEY, SECRET, ServerHandle, make_token

pytestmark = [pytest.mark.sdk, pytest.mark.timeout(60)]

TAGGED = {
    "name": "tagged",
    "allow_subscribe_for_client": True,
    "allow_tags_filter": True,
    "history_size": 20,
    "history_ttl": "60s",
    "force_recovery": True,
}

#: (data, tags) published in turn; the filter below passes the first and the last.
PUBLISHED = [
    ({"n": 1}, {"team": "eng", "prio": "3"}),
    ({"n": 2}, {"team": "sales", "prio": "5"}),
    ({"n": 3}, {"team": "eng", "prio": "1.5"}),
    ({"n": 4}, {"team": "eng", "prio": "2"}),
    ({"n": 5}, {}),
]
FILTER = Filter.all(Filter.eq("team", "eng"), Filter.gte("prio", "2"))


def server_config(engine: str) -> dict[str, Any]:
    cfg: dict[str, Any] = {"token_hmac_secret_key": SECRET, "api_key": API_KEY}
    cfg["namespaces"] = [TAGGED]
    if engine == "redis":
        cfg |= {
            "engine": "redis",
            "redis_address": "127.0.0.1:6379",
            "redis_prefix": f"rotary-tags-{uuid.uuid4().hex[:8]}",
        }
    return cfg


class Recorder(SubscriptionEventHandler):
    """Publications by data, and how often the subscription (re)subscribed."""

    def __init__(self) -> None:
        self.got: list[Any] = []
        self.subscribing = 0
        self.subscribed: list[SubscribedContext] = []
        self.arrived = asyncio.Event()

    async def on_publication(self, ctx: PublicationContext) -> None:
        data = ctx.pub.data  # bytes over Protobuf, decoded JSON over JSON
        self.got.append(json.loads(data) if isinstance(data, bytes) else data)
        self.arrived.set()

    async def on_subscribing(self, ctx: SubscribingContext) -> None:
        self.subscribing += 1

    async def on_subscribed(self, ctx: SubscribedContext) -> None:
        self.subscribed.append(ctx)

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.got) < count:
                self.arrived.clear()
                await self.arrived.wait()


async def subscribed_client(
    server: ServerHandle, channel: str, *, protobuf: bool, tags_filter: Any = None
) -> tuple[Client, Recorder]:
    client = Client(
        server.ws_url, token=make_token("u"), use_protobuf=protobuf, proxy=None, timeout=5
    )
    events = Recorder()
    sub = client.new_subscription(channel, events=events, tags_filter=tags_filter)
    await client.connect()
    await sub.subscribe()
    await sub.ready(5)
    return client, events


def publish(server: ServerHandle, channel: str, items: list[tuple[Any, dict[str, str]]]) -> None:
    for data, tags in items:
        server.api("publish", {"channel": channel, "data": data, "tags": tags})


@pytest.mark.parametrize("engine", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def test_filtered_sdk_subscribers_get_only_matching_publications_live_and_recovered(
    rotary_server: Any, engine: str
) -> None:
    server = rotary_server(server_config(engine))
    for protobuf in (False, True):
        channel = f"tagged:{uuid.uuid4().hex[:8]}"
        filtered, seen = await subscribed_client(
            server, channel, protobuf=protobuf, tags_filter=FILTER
        )
        plain, everything = await subscribed_client(server, channel, protobuf=protobuf)
        try:
            await _live_then_recovered(server, channel, filtered, seen, everything)
        finally:
            await filtered.disconnect()
            await plain.disconnect()
            await asyncio.sleep(0.05)  # the SDK's teardown tasks run before the loop ends


async def _live_then_recovered(
    server: ServerHandle, channel: str, filtered: Client, seen: Recorder, everything: Recorder
) -> None:
    publish(server, channel, PUBLISHED)
    await everything.wait_for(5)
    await seen.wait_for(2)
    assert seen.got == [{"n": 1}, {"n": 4}]
    assert everything.got == [data for data, _ in PUBLISHED]
    assert seen.subscribing == 1, "dropped publications must not look like a gap"

    await filtered.disconnect()
    publish(server, channel, [({"n": 6}, {"team": "eng", "prio": "9"}), ({"n": 7}, {})])
    await filtered.connect()
    await seen.wait_for(3)
    assert seen.got[2:] == [{"n": 6}]
    assert seen.subscribed[-1].recovered is True
