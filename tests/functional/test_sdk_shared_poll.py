"""centrifuge-js (5.8, which has shared poll subscriptions) against Rotary's shared poll
channels, over JSON and Protobuf (fossil deltas included), with the loopback backend of
test_ws_shared_poll."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.functional.cluster_helpers import start_node
from tests.functional.conftest import ServerHandle, make_token
from tests.functional.test_ws_shared_poll import (
    POLL_SECRET,
    Backend,
    backend,  # noqa: F401 - the module-scoped backend fixture, shared
    config,
    new_channel,
)

pytestmark = [pytest.mark.sdk, pytest.mark.timeout(60)]

JS_DIR = Path(__file__).resolve().parent.parent / "sdk" / "js"


class PollDriver:
    """tests/sdk/js/poll_driver.mjs in a node child process; its events in order."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []

    def send(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())

    async def next(self, kind: str, within: float = 10.0) -> dict[str, Any]:
        """The next event of `kind`; an error or unsubscription on the way fails the test."""
        async with asyncio.timeout(within):
            while True:
                assert self.proc.stdout is not None
                line = await self.proc.stdout.readline()
                assert line, f"driver exited; events: {self.events}"
                event = json.loads(line)
                self.events.append(event)
                assert event["ev"] not in ("error", "fatal", "unsubscribed"), self.events
                if event["ev"] == kind:
                    return event


@pytest.fixture(scope="module")
def server(
    backend: tuple[Backend, str],  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerHandle]:
    handle = start_node(config(backend[1], "memory"), tmp_path_factory.mktemp("sdk"), "sdk")
    yield handle
    handle.stop()


@pytest.fixture
async def poll_driver() -> AsyncIterator[Any]:
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules" / "centrifuge").is_dir():
        pytest.fail("centrifuge-js is not installed: run `make js-deps`")
    procs: list[asyncio.subprocess.Process] = []

    async def start(url: str, channel: str, protocol: str, delta: str = "") -> PollDriver:
        args = [url, make_token(), channel, protocol, POLL_SECRET, "42"]
        args += [delta] if delta else []
        proc = await asyncio.create_subprocess_exec(
            node,
            str(JS_DIR / "poll_driver.mjs"),
            *args,
            cwd=str(JS_DIR),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        procs.append(proc)
        return PollDriver(proc)

    yield start
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.close()
        await proc.wait()


@pytest.mark.parametrize("protocol", ["json", "protobuf"])
async def test_js_shared_poll_subscription_tracks_keys_and_follows_versions_and_removals(
    server: ServerHandle,
    backend: tuple[Backend, str],  # noqa: F811
    poll_driver: Any,
    protocol: str,
) -> None:
    state, _ = backend
    channel = new_channel()
    state.items["js1"] = {"data": {"score": 1}, "version": 1}
    driver = await poll_driver(server.ws_url, channel, protocol)
    await driver.next("subscribed")

    driver.send({"op": "track", "keys": ["js1"]})
    first = await driver.next("update")
    state.items["js1"] = {"data": {"score": 2}, "version": 2}
    second = await driver.next("update")
    state.items["js1"] = {"data": None, "version": 3, "removed": True}
    removal = await driver.next("update")

    assert (first["key"], first["data"], first["version"]) == ("js1", {"score": 1}, 1)
    assert (second["data"], second["version"]) == ({"score": 2}, 2)
    assert (removal["key"], removal["removed"]) == ("js1", True)


async def test_js_string_keys_are_signed_through_get_signature(
    server: ServerHandle,
    backend: tuple[Backend, str],  # noqa: F811
    poll_driver: Any,
) -> None:
    state, _ = backend
    channel = new_channel("pollvl")
    state.items["s1"] = {"data": {"text": "hello"}}
    driver = await poll_driver(server.ws_url, channel, "json")
    await driver.next("subscribed")

    driver.send({"op": "track_keys", "keys": ["s1"]})
    update = await driver.next("update")

    assert (update["key"], update["data"]) == ("s1", {"text": "hello"})
    assert update["version"] > 0


@pytest.mark.parametrize("protocol", ["json", "protobuf"])
async def test_js_delta_subscription_decodes_the_fossil_delta_of_an_item(
    server: ServerHandle,
    backend: tuple[Backend, str],  # noqa: F811
    poll_driver: Any,
    protocol: str,
) -> None:
    state, _ = backend
    channel = new_channel()
    old = {"text": "an item long enough to be worth a delta " * 4, "score": 1}
    new = {**old, "score": 2}
    state.items["jd"] = {"data": old, "version": 1}
    driver = await poll_driver(server.ws_url, channel, protocol, "fossil")
    await driver.next("subscribed")

    driver.send({"op": "track", "keys": ["jd"]})
    first = await driver.next("update")
    state.items["jd"] = {"data": new, "prev_data": old, "version": 2}
    second = await driver.next("update")

    assert (first["data"], first["deltas"]) == (old, 0)
    assert (second["data"], second["version"], second["deltas"]) == (new, 2, 1)
