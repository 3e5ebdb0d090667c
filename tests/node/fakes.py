"""Fakes for node tests: a recording transport, a manual scheduler, a table authenticator."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from rotary.channels.options import ChannelSettings
from rotary.channels.resolver import ChannelResolver
from rotary.config.model import ClientSettings
from rotary.engines.memory.broker import MemoryBroker
from rotary.engines.memory.presence import MemoryPresenceManager
from rotary.node.auth import ConnectCredentials, SubscribeCredentials, TokenProblem
from rotary.node.client import ClientSession
from rotary.node.node import Node
from rotary.protocol.codes import Disconnect
from rotary.testing import ManualClock


class RecordingTransport:
    """Keeps every written frame and the close reason."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.closed: Disconnect | None = None

    async def write(self, frame: bytes) -> None:
        self.frames.append(frame)

    async def close(self, disconnect: Disconnect) -> None:
        if self.closed is None:
            self.closed = disconnect


class _Handle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualScheduler:
    """Runs callbacks when `advance` moves the manual clock past their time."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self._queue: list[tuple[float, int, Callable[[], None], _Handle]] = []
        self._seq = itertools.count()

    def call_later(self, delay: float, callback: Callable[[], None]) -> _Handle:
        handle = _Handle()
        due = self.clock.monotonic() + max(delay, 0.0)
        heapq.heappush(self._queue, (due, next(self._seq), callback, handle))
        return handle

    async def advance(self, seconds: float) -> None:
        """Move time forward, firing due callbacks in order and letting their tasks run."""
        target = self.clock.monotonic() + seconds
        while self._queue and self._queue[0][0] <= target:
            due, _, callback, handle = heapq.heappop(self._queue)
            self.clock.advance(due - self.clock.monotonic())
            if not handle.cancelled:
                callback()
                await settle()
        self.clock.advance(target - self.clock.monotonic())
        await settle()


async def settle() -> None:
    """Let ready tasks (writers, background work) run."""
    for _ in range(10):
        await asyncio.sleep(0)


@dataclass
class TableAuth:
    """Tokens are keys of `connect` / `subscribe`; a TokenProblem value is raised."""

    connect: dict[str, ConnectCredentials | TokenProblem] = field(default_factory=dict)
    subscribe: dict[str, SubscribeCredentials | TokenProblem] = field(default_factory=dict)

    async def connect_token(self, token: str, *, now: float) -> ConnectCredentials:
        found = self.connect.get(token, TokenProblem("invalid", "unknown"))
        if isinstance(found, TokenProblem):
            raise found
        return found

    async def subscribe_token(
        self, token: str, *, now: float, channel: str, user: str, client: str
    ) -> SubscribeCredentials:
        found = self.subscribe.get(token, TokenProblem("invalid", "unknown"))
        if isinstance(found, TokenProblem):
            raise found
        if found.channel != channel or found.user != user:
            raise TokenProblem("mismatch", "channel_or_user")
        return found


class Conn:
    """One session with its recording transport and running writer."""

    def __init__(self, session: ClientSession, transport: RecordingTransport) -> None:
        self.session = session
        self.transport = transport
        self._seen = 0
        self.writer = asyncio.get_running_loop().create_task(session.run_writer())

    async def send(self, *commands: dict[str, Any] | bytes) -> None:
        lines = [c if isinstance(c, bytes) else orjson.dumps(c) for c in commands]
        await self.session.handle_frame(b"\n".join(lines))
        await settle()

    def messages(self) -> list[dict[str, Any]]:
        """Every message written since the last call, frames split on newlines."""
        new = self.transport.frames[self._seen :]
        self._seen = len(self.transport.frames)
        return [orjson.loads(line) for frame in new for line in frame.split(b"\n")]

    async def request(self, command: dict[str, Any]) -> dict[str, Any]:
        """Send one command; return its reply (pushes before it are dropped)."""
        await self.send(command)
        replies = [m for m in self.messages() if m.get("id") == command["id"]]
        assert replies, f"no reply to {command}"
        return replies[0]

    @property
    def closed(self) -> Disconnect | None:
        return self.transport.closed

    async def close(self) -> None:
        await self.session.cleanup()
        await settle()


class Harness:
    """A node on a manual clock and scheduler, with the memory engine."""

    def __init__(
        self,
        settings: ClientSettings | None = None,
        channels: ChannelSettings | None = None,
    ) -> None:
        self.clock = ManualClock()
        self.scheduler = ManualScheduler(self.clock)
        self.auth = TableAuth()
        ids = itertools.count(1)
        self.node = Node(
            settings=settings or ClientSettings(),
            resolver=ChannelResolver(channels or ChannelSettings()),
            broker=MemoryBroker(self.clock),
            presence=MemoryPresenceManager(self.clock),
            auth=self.auth,
            clock=self.clock,
            scheduler=self.scheduler,
            id_factory=lambda: f"client-{next(ids)}",
            rand=lambda: 0.0,
        )

    @property
    def now(self) -> int:
        return int(self.clock.now())

    async def open(self) -> Conn:
        transport = RecordingTransport()
        return Conn(self.node.new_session(transport), transport)

    async def connect(self, token: str = "", **creds: Any) -> Conn:
        """A connected session; `creds` make a token for it on the fly."""
        if creds:
            token = token or f"conn-{len(self.auth.connect)}"
            self.auth.connect[token] = ConnectCredentials(**creds)
        conn = await self.open()
        reply = await conn.request({"id": 1, "connect": {"token": token}})
        assert "connect" in reply, reply
        return conn
