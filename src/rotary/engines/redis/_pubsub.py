"""One PUB/SUB connection per shard: batched (un)subscribes, ordered dispatch, reconnects."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError

from rotary.errors import RotaryError

__all__ = ["RedisEngineError", "ShardSubscriber"]

logger = logging.getLogger("rotary.engines.redis")

#: Reconnect delays: the first retry waits at most `_BACKOFF_BASE` seconds, each later
#: one doubles up to `_BACKOFF_CAP`, and every delay is jittered into [50 %, 100 %].
_BACKOFF_BASE = 0.05
_BACKOFF_CAP = 2.0
#: Channels per SUBSCRIBE command when resubscribing everything at once.
_CHUNK = 512
#: Seconds between PINGs on an idle PUB/SUB connection; after this many intervals without
#: any reply the connection counts as dead (a half-open TCP connection never errors).
PING_INTERVAL = 5.0
_MISSED_PINGS = 3

#: A message handed to the dispatcher: (Redis channel, payload).
Dispatch = Callable[[bytes, bytes], None]


class RedisEngineError(RotaryError):
    """Redis could not do what the engine asked (unreachable, timed out, refused)."""


def backoff_delay(attempt: int) -> float:
    """Seconds to wait before reconnect attempt number `attempt` (0-based), jittered."""
    ceiling = min(_BACKOFF_CAP, _BACKOFF_BASE * 2.0 ** min(attempt, 32))
    return ceiling * random.uniform(0.5, 1.0)


class ShardSubscriber:
    """Owns the PUB/SUB connection of one shard for one node.

    Contract:
    - `channels` is the set of Redis channels this node wants; it changes only through
      `subscribe` / `unsubscribe` and survives every reconnect.
    - `subscribe` / `unsubscribe` return once Redis confirmed the change (or, when the
      connection was lost meanwhile, once every wanted channel was subscribed again).
      Calls made in the same event-loop turn go out as one command.
    - Messages reach `dispatch` in the order Redis sent them, from one task.
    - After a lost connection it reconnects with capped, jittered exponential backoff,
      subscribes every wanted channel, then calls `on_resubscribed()`: messages sent
      while disconnected are lost, so the owner must recover them from history.
    """

    def __init__(
        self,
        *,
        name: str,
        new_connection: Callable[[str], AbstractConnection],
        dispatch: Dispatch,
        on_resubscribed: Callable[[], None],
        timeout: float,
        ping_interval: float = PING_INTERVAL,
    ) -> None:
        self.channels: set[str] = set()
        self._name = name
        self._new_connection = new_connection
        self._dispatch = dispatch
        self._on_resubscribed = on_resubscribed
        self._timeout = timeout
        self._ping_interval = ping_interval
        self._last_reply = 0.0
        self._conn: AbstractConnection | None = None
        self._ready = False
        self._ops: list[tuple[bool, str, asyncio.Future[None]]] = []
        self._waiters: dict[bytes, deque[asyncio.Future[None] | None]] = {}
        self._orphans: list[asyncio.Future[None]] = []
        self._resync_left = 0
        self._wake = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._connected_once = False

    @property
    def connected(self) -> bool:
        """Connected, and every wanted channel subscribed again since the last reconnect:
        publications reach this node."""
        return self._ready and self._resync_left == 0

    def want(self, channels: Iterable[str]) -> None:
        """Add `channels` to the wanted set without waiting: subscribed from the next
        (re)connect on. Call before `start` for channels the node always listens to."""
        self.channels.update(channels)

    async def reconnect(self, why: str) -> None:
        """Drop the current connection (if any): the connection task reconnects with
        backoff, resubscribes and calls `on_resubscribed`, as after any lost connection."""
        conn = self._conn
        if conn is not None:
            logger.warning("%s: reconnecting: %s", self._name, why)
            await conn.disconnect(nowait=True)

    def start(self) -> None:
        """Start the connection task and the command writer."""
        self._tasks = [
            asyncio.create_task(self._run(), name=f"{self._name}-reader"),
            asyncio.create_task(self._write_loop(), name=f"{self._name}-writer"),
        ]

    async def close(self) -> None:
        """Stop both tasks and drop the connection. Pending calls are cancelled."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._drop()
        for fut in self._orphans:
            fut.cancel()
        self._orphans.clear()

    async def subscribe(self, channels: Iterable[str]) -> None:
        """Add `channels` to the wanted set and wait until Redis confirmed them."""
        chans = list(channels)
        self.channels.update(chans)
        try:
            await self._change(True, chans)
        except RedisEngineError:
            self.channels.difference_update(chans)
            self._queue(False, chans)
            raise

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        """Remove `channels` from the wanted set and wait until Redis confirmed it."""
        chans = list(channels)
        self.channels.difference_update(chans)
        await self._change(False, chans)

    async def _change(self, subscribe: bool, chans: list[str]) -> None:
        futures = self._queue(subscribe, chans)
        try:
            async with asyncio.timeout(self._timeout):
                await asyncio.gather(*futures)
        except TimeoutError:
            verb = "subscribe" if subscribe else "unsubscribe"
            raise RedisEngineError(f"{self._name}: {verb} not confirmed in time") from None

    def _queue(self, subscribe: bool, chans: list[str]) -> list[asyncio.Future[None]]:
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = []
        for chan in chans:
            fut: asyncio.Future[None] = loop.create_future()
            futures.append(fut)
            if self._ready:
                self._ops.append((subscribe, chan, fut))
            else:
                self._orphans.append(fut)
        self._wake.set()
        return futures

    async def _write_loop(self) -> None:
        """Send queued (un)subscribes, merging consecutive ones of a kind into one command."""
        while True:
            try:
                async with asyncio.timeout(self._ping_interval):
                    await self._wake.wait()
            except TimeoutError:
                await self._ping()
                continue
            self._wake.clear()
            ops, self._ops = self._ops, []
            if not ops:
                continue
            conn = self._conn
            if conn is None or not self._ready:
                self._orphans.extend(fut for _, _, fut in ops)
                continue
            await self._send_ops(conn, _group(ops))

    async def _send_ops(
        self, conn: AbstractConnection, commands: list[tuple[bool, list[str], list[Any]]]
    ) -> None:
        async with self._send_lock:
            for _, chans, futs in commands:
                for chan, fut in zip(chans, futs, strict=True):
                    self._waiters.setdefault(chan.encode(), deque()).append(fut)
            try:
                await conn.send_packed_command(_pack(conn, commands))
            except (RedisError, OSError) as exc:
                # The reader sees the same broken socket and reconnects.
                logger.warning("%s: sending (un)subscribe failed: %s", self._name, exc)

    async def _ping(self) -> None:
        """PING an idle connection; drop it when it stopped answering altogether."""
        conn = self._conn
        if conn is None or not self._ready:
            return
        silent_for = asyncio.get_running_loop().time() - self._last_reply
        if silent_for > self._ping_interval * _MISSED_PINGS:
            logger.warning("%s: no reply for %.1f s, reconnecting", self._name, silent_for)
            await conn.disconnect(nowait=True)
            return
        async with self._send_lock:
            try:
                await conn.send_command("PING")
            except (RedisError, OSError) as exc:
                logger.warning("%s: PING failed: %s", self._name, exc)

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                conn = self._new_connection(self._name)
                self._conn = conn
                await conn.connect()  # type: ignore[no-untyped-call]
                attempt = 0
                await self._resync(conn)
                await self._read_loop(conn)
            except (RedisError, OSError) as exc:
                logger.warning("%s: PUB/SUB connection lost or refused: %s", self._name, exc)
            except Exception:
                logger.exception("%s: PUB/SUB connection failed unexpectedly", self._name)
            finally:
                await self._drop()
            await asyncio.sleep(backoff_delay(attempt))
            attempt += 1

    async def _resync(self, conn: AbstractConnection) -> None:
        """Subscribe every wanted channel on a fresh connection."""
        async with self._send_lock:
            # Snapshot and readiness change in one step: a call arriving before it is an
            # orphan covered by the snapshot, one arriving after it is sent after it.
            wanted = sorted(self.channels)
            self._resync_left = len(wanted)
            commands: list[tuple[bool, list[str], list[Any]]] = []
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                commands.append((True, chunk, [None] * len(chunk)))
                for chan in chunk:
                    self._waiters.setdefault(chan.encode(), deque()).append(None)
            self._ready = True
            self._last_reply = asyncio.get_running_loop().time()
            if commands:
                await conn.send_packed_command(_pack(conn, commands))
        if not wanted:
            self._resynced()

    async def _read_loop(self, conn: AbstractConnection) -> None:
        while True:
            reply = await conn.read_response()
            self._last_reply = asyncio.get_running_loop().time()
            if not isinstance(reply, list) or len(reply) < 3:
                continue
            kind = reply[0]
            if kind == b"message":
                self._deliver(reply[1], reply[2])
            elif kind in (b"subscribe", b"unsubscribe"):
                self._confirmed(reply[1])

    def _deliver(self, channel: bytes, payload: bytes) -> None:
        try:
            self._dispatch(channel, payload)
        except Exception:
            logger.exception("%s: dispatching a message failed", self._name)

    def _confirmed(self, channel: bytes) -> None:
        waiters = self._waiters.get(channel)
        if not waiters:
            return
        fut = waiters.popleft()
        if not waiters:
            del self._waiters[channel]
        if fut is None:
            self._resync_left -= 1
            if self._resync_left == 0:
                self._resynced()
        elif not fut.done():
            fut.set_result(None)

    def _resynced(self) -> None:
        orphans, self._orphans = self._orphans, []
        for fut in orphans:
            if not fut.done():
                fut.set_result(None)
        if self._connected_once:
            logger.warning("%s: resubscribed %d channels", self._name, len(self.channels))
            self._on_resubscribed()
        self._connected_once = True

    async def _drop(self) -> None:
        """Forget the connection; calls waiting on it now wait for the next resync."""
        self._ready = False
        self._resync_left = 0
        for waiters in self._waiters.values():
            self._orphans.extend(fut for fut in waiters if fut is not None)
        self._waiters.clear()
        self._orphans.extend(fut for _, _, fut in self._ops)
        self._ops.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.disconnect(nowait=True)


def _group(
    ops: list[tuple[bool, str, asyncio.Future[None]]],
) -> list[tuple[bool, list[str], list[Any]]]:
    """Consecutive operations of one kind merged, keeping their relative order."""
    commands: list[tuple[bool, list[str], list[Any]]] = []
    for subscribe, chan, fut in ops:
        if commands and commands[-1][0] == subscribe:
            commands[-1][1].append(chan)
            commands[-1][2].append(fut)
        else:
            commands.append((subscribe, [chan], [fut]))
    return commands


def _pack(conn: AbstractConnection, commands: list[tuple[bool, list[str], list[Any]]]) -> Any:
    """All commands packed into one write, so nothing can interleave with them."""
    return conn.pack_commands(
        [("SUBSCRIBE" if sub else "UNSUBSCRIBE", *chans) for sub, chans, _ in commands]
    )
