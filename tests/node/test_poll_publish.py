"""Shared poll publications travel on a broker channel per key, which a node listens to only
while it tracks the key (`PollRoutes`), here on the memory broker."""

from __future__ import annotations

import base64
import logging

import orjson
import pytest

from rotary.engines.base import ClientInfo, Publication, PublishOptions, StreamPosition
from rotary.engines.memory import MemoryBroker
from rotary.node import poll_publish
from rotary.node.shared_poll import SharedPollManager
from rotary.testing import ManualClock
from tests.node.test_shared_poll import Client, ScriptedBackend, settings

CHANNEL = "poll:1"


class Recorder:
    """A broker handler that applies key publications as the node does."""

    def __init__(self, manager: SharedPollManager) -> None:
        self.manager = manager
        self.channels: list[str] = []

    def handle_publication(self, channel: str, pub: Publication, sp: StreamPosition) -> None:
        self.channels.append(channel)
        if poll_publish.is_key_channel(channel):
            poll_publish.apply(self.manager, pub.data)

    def handle_join(self, channel: str, info: ClientInfo) -> None: ...

    def handle_leave(self, channel: str, info: ClientInfo) -> None: ...

    def handle_control(self, data: bytes) -> None: ...


@pytest.fixture
async def setup() -> tuple[MemoryBroker, SharedPollManager, poll_publish.PollRoutes, Recorder]:
    broker = MemoryBroker(ManualClock())
    manager = SharedPollManager(ScriptedBackend())
    routes = manager.routes = poll_publish.PollRoutes(broker, manager)
    recorder = Recorder(manager)
    await broker.start(recorder)
    yield broker, manager, routes, recorder
    await manager.close()
    await routes.close()


def message(key: str, version: int, data: bytes = b"{}") -> bytes:
    body = {"channel": CHANNEL, "key": key, "version": version, "epoch": ""}
    return orjson.dumps({**body, "data": base64.b64encode(data).decode()})


async def send(broker: MemoryBroker, key: str, version: int) -> None:
    channel = poll_publish.key_channel(CHANNEL, key)
    await broker.publish(channel, message(key, version), PublishOptions())


async def tracked(manager: SharedPollManager, routes: poll_publish.PollRoutes, key: str) -> Client:
    client = Client(settings(publish_enabled=True, refresh_interval=60), CHANNEL)
    await routes.reserve(CHANNEL, [key])
    client.track(manager, {key: 0})
    routes.settle(CHANNEL, [key], reserved=True)
    return client


def test_key_channels_of_different_channel_and_key_splits_never_collide() -> None:
    assert poll_publish.key_channel("ab", "c") != poll_publish.key_channel("a", "bc")
    assert poll_publish.is_key_channel(poll_publish.key_channel("a", "b"))
    assert not poll_publish.is_key_channel("shared_poll:1:ab")


async def test_publication_of_a_tracked_key_reaches_its_trackers_and_no_other_key(
    setup: tuple[MemoryBroker, SharedPollManager, poll_publish.PollRoutes, Recorder],
) -> None:
    broker, manager, routes, recorder = setup
    client = await tracked(manager, routes, "k")

    await send(broker, "other", 1)  # nobody here tracks it: never delivered to this node
    await send(broker, "k", 2)

    assert recorder.channels == [poll_publish.key_channel(CHANNEL, "k")]
    assert client.pushed == [{"data": {}, "key": "k", "version": 2}]


async def test_node_stops_listening_to_a_key_nobody_tracks_any_more(
    setup: tuple[MemoryBroker, SharedPollManager, poll_publish.PollRoutes, Recorder],
) -> None:
    broker, manager, routes, recorder = setup
    client = await tracked(manager, routes, "k")

    manager.remove(client.tracker, ["k"])
    await routes.close()  # the unsubscribe runs as a task
    await send(broker, "k", 2)

    assert recorder.channels == []


async def test_key_reserved_again_before_the_unsubscribe_runs_stays_listened_to(
    setup: tuple[MemoryBroker, SharedPollManager, poll_publish.PollRoutes, Recorder],
) -> None:
    broker, manager, routes, _ = setup
    first = await tracked(manager, routes, "k")
    manager.remove(first.tracker, ["k"])  # the unsubscribe is scheduled, not run yet

    second = await tracked(manager, routes, "k")
    await routes.close()
    await send(broker, "k", 3)

    assert second.pushed == [{"data": {}, "key": "k", "version": 3}]


async def test_malformed_key_publication_is_logged_and_dropped(
    setup: tuple[MemoryBroker, SharedPollManager, poll_publish.PollRoutes, Recorder],
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker, manager, routes, _ = setup
    client = await tracked(manager, routes, "k")
    channel = poll_publish.key_channel(CHANNEL, "k")

    with caplog.at_level(logging.WARNING, "rotary.shared_poll"):
        for body in (b"not json", b'{"channel": "poll:1"}', b'{"data": "%%%"}'):
            await broker.publish(channel, body, PublishOptions())
    await send(broker, "k", 1)

    assert caplog.text.count("malformed shared poll publication") == 3
    assert client.pushed == [{"data": {}, "key": "k", "version": 1}]
