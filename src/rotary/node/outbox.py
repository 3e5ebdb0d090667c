"""Per-client outbound queue: the only place a client's bytes are written.

`Outbox.push` never awaits, so the hub can fan a publication out to every subscriber in one
synchronous loop. Queued messages are joined into one frame (docs/protocol.md "Framing") by the
session codec's `join_frame`.

Two ways out:

* A `DirectTransport` (the WebSocket) is written without any task switch: the first push of
  an event-loop turn registers the outbox with its loop's flusher, and one ``call_soon``
  callback per turn writes every registered outbox. The same message pushed to many clients
  is framed once per flush. A transport that offers ``idle_send`` (a socket with nothing
  queued before it) has its one frame sent after every outbox of the flush is framed, in
  one tight loop of sends (`rotary.transports.sockwrite`). A task is started only when the
  transport is backed up (above its high-water mark): it waits for the transport to drain,
  bounded by `write_timeout`, writes what queued up meanwhile and ends; and one more at the
  end, to close the transport.
* Any other `Transport` is written by `run`, a task for the outbox's whole life, each write
  bounded by `write_timeout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Protocol, cast

from rotary.jsonbytes import trimmed
from rotary.protocol.codes import Disconnect, DisconnectCode

__all__ = ["DirectTransport", "Outbox", "Transport"]

_log = logging.getLogger("rotary.outbox")

#: Most messages joined into one frame (Centrifugo packs up to 16; more saves syscalls).
_MAX_BATCH = 64

#: What a failed or closed connection raises on write.
_WRITE_ERRORS = (TimeoutError, OSError, ConnectionError, RuntimeError)

#: Bytes on the wire, by the identity of what was framed, for one flush (see `_Flusher`).
_FrameCache = dict[object, tuple[object, type, bytes]]

#: The second pass of a flush: (a socket's send, the frame for it, the outbox it is from).
_Sends = list[tuple[Callable[[bytes], int], bytes, "Outbox"]]


class Transport(Protocol):
    """One client connection's byte channel (WebSocket in production, a recorder in tests)."""

    async def write(self, frame: bytes) -> None:
        """Send one text frame. Raises on failure."""

    async def close(self, disconnect: Disconnect) -> None:
        """Close with `disconnect`'s code and reason. Idempotent; never raises."""


class DirectTransport(Transport, Protocol):
    """A `Transport` that can also be written synchronously (the outbox's fast path)."""

    def frame(self, message: bytes) -> bytes:
        """The wire bytes carrying `message`: the same for every transport of this class (one
        flush frames a message once per transport class)."""

    def write_frame(self, wire: bytes) -> bool:
        """Write bytes made by `frame` now. False: the transport is now above its high-water
        mark and `drain` must be awaited before writing more. Raises ConnectionError (or
        OSError, RuntimeError) once the connection is closing."""

    async def drain(self) -> None:
        """Return once the transport is below its low-water mark (at once when it is)."""

    # Optional: ``idle_send() -> Callable[[bytes], int] | None``, the send of the socket
    # beneath while the connection is open and nothing is queued in the transport (a frame
    # handed to it goes straight out; what it does not take is written with `write_frame`).


class _Flusher:
    """Writes the outboxes pushed to during one event-loop turn, in one callback.

    Two passes: the first frames every outbox's queue and writes what cannot go straight to
    a socket; it collects the rest, one frame each to a socket with nothing queued, and the
    second pass sends those in a row. Each socket is written by one pass only, so no bytes
    overtake others.
    """

    __slots__ = ("__weakref__", "_cache", "_dirty", "_loop", "_sends")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._dirty: list[Outbox] = []
        self._cache: _FrameCache = {}
        self._sends: _Sends = []

    def add(self, outbox: Outbox) -> None:
        if not self._dirty:
            self._loop.call_soon(self._run)
        self._dirty.append(outbox)

    def _run(self) -> None:
        dirty, self._dirty = self._dirty, []
        cache, sends = self._cache, self._sends
        try:
            for outbox in dirty:
                try:
                    outbox._flush(cache, sends)
                except Exception:  # one client's failure must not stop the others' writes
                    _log.exception("flushing a client's outbox failed")
            for send, wire, outbox in sends:
                try:
                    sent = send(wire)
                except OSError:
                    sent = 0  # would block, or failed: the transport's own write tells which
                if sent != len(wire):
                    outbox._write_rest(wire[sent:])
        finally:
            cache.clear()
            sends.clear()


_flushers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Flusher] = (
    weakref.WeakKeyDictionary()
)


def _loop_flusher() -> _Flusher:
    loop = asyncio.get_running_loop()
    flusher = _flushers.get(loop)
    if flusher is None:
        flusher = _flushers[loop] = _Flusher(loop)
    return flusher


def _framed(
    direct: DirectTransport, cache: _FrameCache, key: object, keep: object, message: bytes
) -> bytes:
    """`message` framed by `direct`, from `cache` when this flush framed it already.

    `key` is the identity of what was framed (the message, or the tuple of a batch's
    messages); identity keys are safe because `keep` holds those objects alive until the
    flush ends. Transports of different classes frame differently (WebSocket frames, SSE
    events…), so an entry holds the class that framed it, and another class files its own
    under ``(class, key)``. (The class is not part of the first key: a tuple per delivery
    costs a tenth of it.)
    """
    kind = type(direct)
    hit = cache.get(key)
    if hit is not None:
        if hit[1] is kind:
            return hit[2]
        key = (kind, key)
        hit = cache.get(key)
        if hit is not None:
            return hit[2]
    wire = direct.frame(message)
    cache[key] = (keep, kind, wire)
    return wire


class Outbox:
    """Queued frames of one client and the way they are written.

    `on_failure` is called (once) with 3008 when the queued bytes exceed `max_size`, or with
    3009 when a write fails, or a write (or, for a `DirectTransport`, a backed-up transport's
    drain) outlasts `write_timeout`. `run` returns once the outbox is closed and the transport
    closed: for a plain `Transport` it must run for the outbox's whole life (it is the
    writer); for a `DirectTransport` it only waits, and may be awaited at the end.
    """

    __slots__ = (
        "_closing",
        "_deadline",
        "_direct",
        "_done",
        "_flush_first",
        "_flusher",
        "_idle",
        "_items",
        "_join",
        "_max_size",
        "_on_failure",
        "_runner",
        "_scheduled",
        "_size",
        "_transport",
        "_wake",
        "_write_timeout",
        "_writer_owns",
        "closed",
    )

    def __init__(
        self,
        transport: Transport,
        *,
        max_size: int,
        write_timeout: float,
        on_failure: Callable[[Disconnect], None],
        join: Callable[[list[bytes]], bytes] = b"\n".join,
    ) -> None:
        self._transport = transport
        self._join = join
        self._direct: DirectTransport | None = _as_direct(transport)
        #: The direct transport's ``idle_send``, if it has one.
        self._idle: Callable[[], Callable[[bytes], int] | None] | None = (
            getattr(transport, "idle_send", None) if self._direct is not None else None
        )
        self._max_size = max_size
        self._write_timeout = write_timeout
        self._on_failure = on_failure
        # A list, not a deque: an empty deque keeps a 64-slot block (~0.7 KB per client).
        self._items: list[bytes] = []
        self._size = 0
        #: Wakes `run` of a plain transport (a direct one starts `_runner` instead).
        self._wake = asyncio.Event() if self._direct is None else None
        #: The task writing for a direct transport while it is backed up, or closing it.
        self._runner: asyncio.Task[None] | None = None
        #: Resolved when a direct transport's outbox is closed (for `run`).
        self._done: asyncio.Future[None] | None = None
        self._closing: Disconnect | None = None
        self._flush_first = True
        #: The write timeout of the writer task's current wait, if it is waiting.
        self._deadline: asyncio.Timeout | None = None
        self._flusher: _Flusher | None = None
        #: In the flusher's list for this loop turn.
        self._scheduled = False
        #: The writer task writes the queue (always without a direct transport; else while
        #: the transport is backed up, or once closing).
        self._writer_owns = self._direct is None
        self.closed = False

    def push(self, message: bytes) -> None:
        """Queue one encoded message; never awaits.

        While the writer task owns the queue (a backed-up transport) the message may wait a
        long time, so it is kept as a copy of its own length (`rotary.jsonbytes`): an encoder's
        output can sit in a buffer of several KiB, which the size limit would not see.
        """
        if self._closing is not None:
            return
        if self._writer_owns:
            message = trimmed(message)
        self._items.append(message)
        self._size += len(message)
        if self._size > self._max_size > 0:
            self._fail(DisconnectCode.SLOW)
        elif self._wake is not None:
            self._wake.set()
        elif not self._writer_owns and not self._scheduled:
            self._scheduled = True
            flusher = self._flusher
            if flusher is None:
                flusher = self._flusher = _loop_flusher()
            flusher.add(self)

    def close(self, disconnect: Disconnect, *, flush: bool = True) -> None:
        """Stop accepting messages; write the queued ones if `flush`, then close."""
        if self._closing is not None:
            return
        self._closing = disconnect
        # A closing outbox reports no failure; the callback usually refers back to the
        # session that owns this outbox, and keeping it would make the two a reference
        # cycle, left for the rarely running full garbage collection.
        self._on_failure = _no_failure_report
        self._flush_first = flush
        self._hand_over()
        if not flush and self._deadline is not None:
            # Nothing more will be written: stop waiting for the transport now.
            self._deadline.reschedule(0)

    async def run(self) -> None:
        """Until closed: write (plain transport) or wait (direct). Then close the transport."""
        wake = self._wake
        if wake is None:
            # Shielded: a cancelled waiter must not cancel the future other waiters share.
            await asyncio.shield(self._finished())
            return
        try:
            while self._closing is None or (self._items and self._flush_first):
                await wake.wait()
                wake.clear()
                if self._closing is None or self._flush_first:
                    await self._drain()
        finally:
            self.closed = True
            await self._transport.close(self._closing or DisconnectCode.CONNECTION_CLOSED)

    # ------------------------------------------------------------------ fast path

    def _flush(self, cache: _FrameCache, sends: _Sends) -> None:
        """Write the queue now, unless the writer task owns it (called by `_Flusher`).

        One queued message (a publication fanned out, the usual case at a steady rate) is
        framed here without further calls, and added to `sends` when the transport has an
        idle socket: this runs once per delivery.
        """
        self._scheduled = False
        if self._writer_owns:
            return
        direct = self._direct
        assert direct is not None
        items = self._items
        try:
            while items:
                if len(items) == 1:
                    message = items.pop()
                    self._size -= len(message)
                    hit = cache.get(id(message))
                    if hit is not None and hit[1] is type(direct):
                        wire = hit[2]
                    else:
                        wire = _framed(direct, cache, id(message), message, message)
                    idle = self._idle
                    send = idle() if idle is not None else None
                    if send is not None:
                        sends.append((send, wire, self))
                        return
                else:
                    wire = self._next_wire(direct, cache)
                if not direct.write_frame(wire):
                    self._hand_over()
                    return
        except _WRITE_ERRORS:
            self._fail(DisconnectCode.WRITE_ERROR)

    def _write_rest(self, rest: bytes) -> None:
        """Write what a socket did not take of a frame of `_Flusher`'s second pass."""
        direct = self._direct
        assert direct is not None
        try:
            if not direct.write_frame(rest):
                self._hand_over()
        except _WRITE_ERRORS:
            self._fail(DisconnectCode.WRITE_ERROR)

    def _write_queued(self, cache: _FrameCache) -> bool:
        """Write queued messages while the transport takes them; False when backed up."""
        direct = self._direct
        assert direct is not None
        items = self._items
        while items:
            if not direct.write_frame(self._next_wire(direct, cache)):
                return False
        return True

    def _next_wire(self, direct: DirectTransport, cache: _FrameCache) -> bytes:
        """Frame the next batch, reusing the frame of an identical batch in this flush."""
        items = self._items
        if len(items) == 1:
            message = items.pop()
            self._size -= len(message)
            return _framed(direct, cache, id(message), message, message)
        batch = self._take(_MAX_BATCH)
        return _framed(direct, cache, tuple(map(id, batch)), batch, self._join(batch))

    # ------------------------------------------------------------------ writer task

    def _hand_over(self) -> None:
        """Make the writer task responsible for the queue (and, once closing, the close)."""
        self._writer_owns = True
        if self._wake is not None:
            self._wake.set()
        elif self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._run_direct())

    async def _run_direct(self) -> None:
        """A backed-up or closing direct transport: drain and write; close when closing."""
        try:
            if self._closing is None or self._flush_first:
                await self._drain()
        finally:
            self._runner = None
            if self._closing is not None:
                await self._close_transport()

    async def _close_transport(self) -> None:
        self.closed = True
        try:
            await self._transport.close(self._closing or DisconnectCode.CONNECTION_CLOSED)
        finally:
            done = self._finished()
            if not done.done():
                done.set_result(None)

    def _finished(self) -> asyncio.Future[None]:
        """Resolved once a direct transport is closed (made on first need)."""
        if self._done is None:
            self._done = asyncio.get_running_loop().create_future()
        return self._done

    async def _drain(self) -> None:
        try:
            if self._direct is not None:
                await self._drain_direct(self._direct)
            else:
                await self._drain_plain(self._transport)
        except _WRITE_ERRORS:
            self._fail(DisconnectCode.WRITE_ERROR)

    async def _drain_direct(self, direct: DirectTransport) -> None:
        """Wait for the backed-up transport, write the queue, then hand it back."""
        done = False
        while not done:
            async with self._timeout():
                await direct.drain()
            # Done once writing is no longer wanted, or all is written without backing up.
            done = (self._closing is not None and not self._flush_first) or self._write_queued({})
        if self._closing is None:
            self._writer_owns = False

    async def _drain_plain(self, transport: Transport) -> None:
        items = self._items
        while items and (self._closing is None or self._flush_first):
            batch = self._take(_MAX_BATCH)
            frame = batch[0] if len(batch) == 1 else self._join(batch)
            async with self._timeout():
                await transport.write(frame)

    def _take(self, count: int) -> list[bytes]:
        """Remove and return the first `count` queued messages (in place: callers alias it)."""
        items = self._items
        batch = items[:count]
        del items[:count]
        self._size -= sum(map(len, batch))
        return batch

    @contextlib.asynccontextmanager
    async def _timeout(self) -> AsyncIterator[None]:
        """Bound one wait of the writer task by `write_timeout` (cut short by a hard close)."""
        async with asyncio.timeout(self._write_timeout or None) as deadline:
            self._deadline = deadline
            try:
                yield
            finally:
                self._deadline = None

    def _fail(self, disconnect: Disconnect) -> None:
        self._items.clear()
        self._size = 0
        if self._closing is None:
            report = self._on_failure
            self.close(disconnect, flush=False)
            report(disconnect)


def _no_failure_report(disconnect: Disconnect) -> None:
    """The failure callback of a closing outbox: failures are no longer reported."""


#: Transport class → whether it offers the direct-write methods (asked once per class).
_DIRECT_CLASSES: dict[type, bool] = {}


def _as_direct(transport: Transport) -> DirectTransport | None:
    kind = type(transport)
    direct = _DIRECT_CLASSES.get(kind)
    if direct is None:
        names = ("frame", "write_frame", "drain")
        direct = _DIRECT_CLASSES[kind] = all(hasattr(transport, name) for name in names)
    return cast(DirectTransport, transport) if direct else None
