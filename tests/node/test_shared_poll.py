"""The shared poll manager with a scripted backend: what it asks, what it pushes, when it stops.

The backend here is a fake (the functional tests use a real one over HTTP); intervals are a
few milliseconds so that each test takes a fraction of a second.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import orjson
import pytest

from rotary.channels.shared_poll import PollSettings
from rotary.node.shared_poll import (
    ItemPush,
    KeyState,
    PollAnswer,
    PolledItem,
    PollFailure,
    SharedPollManager,
    Tracker,
)
from rotary.protocol import fossil
from rotary.protocol.codec import JSON
from rotary.protocol.protobuf import PROTOBUF

FAST = 0.01


class ScriptedBackend:
    """Answers from `items` (key → (data, version) or None for removed); records requests."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[object, int] | None] = {}
        self.epoch = ""
        self.fail = False
        self.requests: list[list[tuple[str, int]]] = []
        self.asked = asyncio.Event()
        self.closed = False

    async def refresh(
        self, proxy_name: str, channel: str, items: Sequence[tuple[str, int]]
    ) -> PollAnswer:
        self.requests.append(list(items))
        self.asked.set()
        if self.fail:
            raise PollFailure("backend down")
        found = []
        for key, _ in items:
            if key not in self.items:
                continue
            item = self.items[key]
            if item is None:
                found.append(PolledItem(key, removed=True))
            else:
                found.append(PolledItem(key, orjson.dumps(item[0]), item[1]))
        return PollAnswer(found, self.epoch)

    async def close(self) -> None:
        self.closed = True

    async def next_request(self) -> list[tuple[str, int]]:
        self.asked.clear()
        await asyncio.wait_for(self.asked.wait(), 2)
        return self.requests[-1]


class Client:
    """A tracker's outside: what was pushed, and whether it was reset."""

    def __init__(self, settings: PollSettings, channel: str = "poll:1") -> None:
        self.pushed: list[dict[str, object]] = []
        self.resets = 0
        self.tracker = Tracker(
            channel=channel,
            codec=JSON,
            push=lambda data: self.pushed.append(orjson.loads(data)["push"]["pub"]),
            unencodable=lambda: None,
            reset=self._reset,
            settings=settings,
        )

    def _reset(self) -> None:
        self.resets += 1

    def track(self, manager: SharedPollManager, keys: dict[str, int]) -> list[int | None]:
        held = manager.track(self.tracker.channel, self.tracker.settings, list(keys))
        for key, version in keys.items():
            self.tracker.keys[key] = KeyState(version)
        manager.add(self.tracker, list(keys))
        return held

    async def wait_pushes(self, count: int) -> list[dict[str, object]]:
        for _ in range(200):
            if len(self.pushed) >= count:
                break
            await asyncio.sleep(FAST)
        return self.pushed


def settings(**kw: object) -> PollSettings:
    values: dict[str, object] = {
        "proxy_name": "p",
        "versioned": True,
        "refresh_interval": 0.05,
        "shutdown_delay": 0.05,
    }
    values.update(kw)
    return PollSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def backend() -> ScriptedBackend:
    return ScriptedBackend()


@pytest.fixture
async def manager(backend: ScriptedBackend) -> SharedPollManager:
    m = SharedPollManager(backend, make_epoch=lambda: "EPOCHxyz")
    yield m
    await m.close()


async def test_first_answer_is_pushed_to_every_tracker_of_the_key_once(
    backend: ScriptedBackend, manager: SharedPollManager
) -> None:
    backend.items["k"] = ({"v": 1}, 1)
    a, b = Client(settings()), Client(settings())
    a.track(manager, {"k": 0})
    b.track(manager, {"k": 0})
    manager.poll_soon("poll:1", ["k"])

    assert await a.wait_pushes(1) == [{"data": {"v": 1}, "key": "k", "version": 1}]
    assert await b.wait_pushes(1) == [{"data": {"v": 1}, "key": "k", "version": 1}]
    await asyncio.sleep(0.12)  # two more cycles: nothing new
    assert len(a.pushed) == len(b.pushed) == 1


async def test_versioned_poll_tells_the_backend_the_version_held(
    backend: ScriptedBackend, manager: SharedPollManager
) -> None:
    backend.items["k"] = ({"v": 1}, 7)
    client = Client(settings())
    client.track(manager, {"k": 0})
    manager.poll_soon("poll:1", ["k"])
    await client.wait_pushes(1)

    assert await backend.next_request() == [("k", 7)]


async def test_client_version_at_or_above_the_backends_gets_nothing(
    backend: ScriptedBackend, manager: SharedPollManager
) -> None:
    backend.items["k"] = ({"v": 1}, 3)
    client = Client(settings())
    client.track(manager, {"k": 3})
    await backend.next_request()
    await backend.next_request()

    assert client.pushed == []


async def test_versionless_channel_counts_versions_on_data_changes_only(
    backend: ScriptedBackend, manager: SharedPollManager
) -> None:
    backend.items["k"] = ({"t": "a"}, 0)
    client = Client(settings(versioned=False))
    client.track(manager, {"k": 0})
    manager.poll_soon("poll:1", ["k"])
    await client.wait_pushes(1)
    await backend.next_request()
    backend.items["k"] = ({"t": "b"}, 0)

    pushed = await client.wait_pushes(2)

    assert [(p["data"], p["version"]) for p in pushed] == [({"t": "a"}, 1), ({"t": "b"}, 2)]
    assert manager.epoch("poll:1", settings(versioned=False)) == "EPOCHxyz"


async def test_removed_item_is_pushed_as_removal_and_forgotten(
    backend: ScriptedBackend, manager: SharedPollManager
) -> None:
    backend.items["k"] = ({"v": 1}, 1)
    client = Client(settings())
    client.track(manager, {"k": 0})
    manager.poll_soon("poll:1", ["k"])
    await client.wait_pushes(1)
    backend.items["k"] = None

    pushed = await client.wait_pushes(2)

    assert pushed[1] == {"key": "k", "removed": True}
    assert "k" not in client.tracker.keys


async def test_publisher_epoch_change_resets_every_subscriber(
    backend: ScriptedBackend, manager: SharedPollManager
) -> None:
    backend.items["k"] = ({"v": 1}, 1)
    client = Client(settings())
    client.track(manager, {"k": 0})
    manager.poll_soon("poll:1", ["k"])
    await client.wait_pushes(1)

    backend.epoch = "new-epoch"
    await backend.next_request()
    await asyncio.sleep(FAST)

    assert client.resets == 1
    assert manager.epoch("poll:1", settings()) == "new-epoch"


async def test_keys_are_polled_in_batches_of_the_batch_size(
    backend: ScriptedBackend, manager: SharedPollManager
) -> None:
    client = Client(settings(batch_size=2, refresh_interval=0.02))
    client.track(manager, {"a": 0, "b": 0, "c": 0})
    await asyncio.sleep(0.08)

    sizes = {len(r) for r in backend.requests}
    assert sizes == {1, 2}
    assert {k for r in backend.requests for k, _ in r} == {"a", "b", "c"}


async def test_channel_nobody_tracks_stops_polling_after_its_shutdown_delay(
    backend: ScriptedBackend, manager: SharedPollManager
) -> None:
    client = Client(settings())
    client.track(manager, {"k": 0})
    await backend.next_request()

    manager.remove(client.tracker, ["k"])
    await asyncio.sleep(0.1)
    asked = len(backend.requests)
    await asyncio.sleep(0.15)

    assert len(backend.requests) == asked
    assert manager.num_channels == 0


async def test_failed_poll_is_logged_and_the_next_cycle_asks_again(
    backend: ScriptedBackend, manager: SharedPollManager, caplog: pytest.LogCaptureFixture
) -> None:
    backend.fail = True
    backend.items["k"] = ({"v": 1}, 1)
    client = Client(settings())
    caplog.set_level(logging.WARNING, "rotary.shared_poll")
    client.track(manager, {"k": 0})
    await backend.next_request()
    backend.fail = False

    assert (await client.wait_pushes(1))[0]["version"] == 1
    assert "shared poll of poll:1 failed: backend down" in caplog.text


async def test_close_stops_the_workers_and_closes_the_backend(backend: ScriptedBackend) -> None:
    manager = SharedPollManager(backend)
    Client(settings()).track(manager, {"k": 0})

    await manager.close()

    assert backend.closed
    assert manager.num_channels == 0


_OLD = orjson.dumps({"text": "the same long text " * 6, "n": 1})
_NEW = orjson.dumps({"text": "the same long text " * 6, "n": 2})


def test_item_goes_as_a_delta_only_to_a_client_holding_the_base_version() -> None:
    item = ItemPush("k", 3, _NEW, (2, _OLD))

    assert item.delta(JSON, "ch", 1) is None  # another base: the client must get it whole
    push = orjson.loads(item.delta(JSON, "ch", 2) or b"null")["push"]["pub"]
    assert (push["delta"], push["key"], push["version"]) == (True, "k", 3)
    assert fossil.apply(_OLD, push["data"].encode()) == _NEW


def test_item_without_a_base_or_a_shorter_delta_goes_whole() -> None:
    assert ItemPush("k", 3, _NEW, None).delta(JSON, "ch", 2) is None
    assert ItemPush("k", 3, b"1", (2, b"2")).delta(JSON, "ch", 2) is None


def test_whole_item_of_a_delta_subscription_carries_its_json_as_a_string() -> None:
    item = ItemPush("k", 3, _NEW, None)

    text = orjson.loads(item.whole(JSON, "ch", as_text=True))["push"]["pub"]["data"]
    plain = orjson.loads(item.whole(JSON, "ch", as_text=False))["push"]["pub"]["data"]

    assert text == _NEW.decode()
    assert plain == orjson.loads(_NEW)


def test_protobuf_delta_item_carries_the_delta_flag_and_the_raw_patch() -> None:
    item = ItemPush("k", 3, _NEW, (2, _OLD))
    patch = fossil.create(_OLD, _NEW)

    encoded = item.delta(PROTOBUF, "ch", 2)

    assert encoded is not None
    assert patch in encoded
    assert b"\x40\x01" in encoded  # field 8 (delta), varint true
