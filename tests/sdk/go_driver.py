"""Drive the official Go SDK (centrifuge-go) from pytest, as a third SDK beside js and python.

tests/sdk/go/ is a small Go program with its own go.mod and go.sum; it turns JSON-line
commands on stdin into SDK calls and prints the SDK's events as JSON lines, in the shapes of
tests/sdk/harness.py (see the comment at the top of tests/sdk/go/main.go for the extras).

The program is built once into a cache outside the repository, ``~/.cache/rotary/bin``, under
a name carrying a digest of its sources: it is rebuilt only when go.mod, go.sum or a ``.go``
file changes; builds of other sources are removed then, once a day old. Two pytest workers
wanting it at once build it once (a lock file serialises them). ``python -m
tests.sdk.go_driver`` builds it ahead of a test run (``make go-sdk``) and prints how long
that took.

Without Go, tests that need the program skip with the reason, or fail under CI=true, where
nothing may be skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from bench.gobuild import GoMissingError, go_tool

from bench import gobuild
from tests.sdk.harness import ConnTokenSource, JsSdkDriver, SubTokenSource

__all__ = [
    "GO_DIR",
    "GO_PROTOCOL_SDKS",
    "GoMissingError",
    "GoSdkDriver",
    "built_binary",
    "go_sdk_or_skip",
    "open_go_driver",
]

GO_DIR = Path(__file__).parent / "go"
BIN_DIR = gobuild.BIN_DIR
#: The Go SDK in both protocols, named as harness.PROTOCOL_SDKS names the others.
GO_PROTOCOL_SDKS = ("go", "go-protobuf")
_PREFIX = "rotary-gosdk-"
#: A cold build downloads the SDK's modules and compiles them: minutes on a slow machine.
BUILD_TIMEOUT = 900.0
STALE_AFTER = gobuild.STALE_AFTER


def source_digest() -> str:
    """A digest of every file the build reads from tests/sdk/go (names and contents)."""
    return gobuild.source_digest(GO_DIR)


def built_binary() -> Path:
    """The program built from the current sources; builds it first when it is missing.

    Raises GoMissingError without Go, RuntimeError (with Go's output) when the build fails.
    """
    return gobuild.build_cached(
        GO_DIR,
        BIN_DIR,
        _PREFIX,
        go=go_tool(),
        needed_by="the centrifuge-go tests",
        timeout=BUILD_TIMEOUT,
    )


def _prune(target: Path) -> None:
    gobuild.prune(BIN_DIR, _PREFIX, target)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def go_sdk_or_skip() -> Path:
    """`built_binary()`, or skip the test without Go (fail under CI=true)."""
    try:
        return built_binary()
    except GoMissingError as exc:
        if _in_ci():
            pytest.fail(f"{exc} (CI is set, so this is a failure, not a skip)")
        pytest.skip(str(exc))


class GoSdkDriver(JsSdkDriver):
    """centrifuge-go in a child process: the node driver's line protocol, another program.

    Beyond `SdkDriver`: `history`, `publish`, and `subscribe(join_leave=True)`; its events
    add ``wire`` (subprotocol and first frame's opcode, read off the socket), ``trace`` (the
    SDK's decoded commands, replies and pushes) and ``join``/``leave``.
    """

    def __init__(self, hard_timeout: float, *, protobuf: bool = False) -> None:
        super().__init__(hard_timeout, protobuf=protobuf)
        self.sdk = "go-protobuf" if protobuf else "go"

    async def start(self) -> None:
        """Build if needed, spawn the program and wait for its `ready` line."""
        binary = await asyncio.to_thread(built_binary)
        self._proc = await asyncio.create_subprocess_exec(
            str(binary),
            str(int(self._hard_timeout * 1000)),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read())
        await self.wait_for(lambda e: e["ev"] == "ready", within=10)

    async def connect(
        self,
        url: str,
        *,
        token: str = "",
        get_token: ConnTokenSource | None = None,
        min_reconnect_delay: float = 0.5,
    ) -> None:
        self._conn_tokens = get_token
        protocol = "protobuf" if self._protobuf else "json"
        cmd = {"op": "connect", "url": url, "token": token, "protocol": protocol}
        delay = int(min_reconnect_delay * 1000)
        self._send({**cmd, "use_get_token": get_token is not None, "min_reconnect_delay_ms": delay})

    async def subscribe(
        self,
        channel: str,
        *,
        token: str = "",
        get_token: SubTokenSource | None = None,
        recoverable: bool = False,
        min_resubscribe_delay: float = 0.2,
        join_leave: bool = False,
    ) -> None:
        """As `SdkDriver.subscribe`; the SDK's own resubscribe delay applies (200 ms)."""
        if get_token is not None:
            self._sub_tokens[channel] = get_token
        cmd = {"op": "subscribe", "channel": channel, "token": token, "join_leave": join_leave}
        use = get_token is not None
        self._send({**cmd, "recoverable": recoverable, "use_get_token": use})

    async def history(self, channel: str, *, limit: int = 100) -> dict[str, Any]:
        """The subscription's `history(limit)`: publications (data, offset), offset, epoch."""
        result: dict[str, Any] = await self._call(
            {"op": "history", "channel": channel, "limit": limit}
        )
        return result

    async def publish(self, channel: str, data: Any) -> None:
        """Publish `data` (as its JSON bytes) through the subscription of `channel`."""
        await self._call({"op": "publish", "channel": channel, "data": data})


@contextlib.asynccontextmanager
async def open_go_driver(sdk: str, *, hard_timeout: float = 40.0) -> AsyncIterator[GoSdkDriver]:
    """A started driver for `sdk` (one of `GO_PROTOCOL_SDKS`), closed on exit."""
    driver = GoSdkDriver(hard_timeout, protobuf=sdk.endswith("-protobuf"))
    try:
        await driver.start()
        yield driver
    finally:
        await driver.close()


def _main() -> int:
    started = time.monotonic()
    try:
        binary = built_binary()
    except GoMissingError as exc:
        print(f"{'error' if _in_ci() else 'note'}: {exc}", file=sys.stderr)
        return 1 if _in_ci() else 0
    print(f"{binary} ready in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
