"""The outbox's fast path over a transport that can be written synchronously."""

from __future__ import annotations

import asyncio
import tracemalloc

import orjson
import pytest

from rotary.node.outbox import Outbox
from rotary.protocol.codes import Disconnect
from tests.node.fakes import settle
from tests.test_jsonbytes import SMALL_ENCODING_BUDGET


class DirectRecorder:
    """A `DirectTransport` in memory: `backed_up` makes writes report a full buffer and
    `drain` wait until `release` is called."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.framed: list[bytes] = []
        self.closed: Disconnect | None = None
        self.backed_up = False
        self.broken = False
        self._drained = asyncio.Event()
        self._drained.set()

    def frame(self, message: bytes) -> bytes:
        self.framed.append(message)
        return b"<" + message + b">"

    def write_frame(self, wire: bytes) -> bool:
        if self.broken:
            raise ConnectionResetError("gone")
        self.frames.append(wire)
        if self.backed_up:
            self._drained.clear()
        return not self.backed_up

    async def drain(self) -> None:
        await self._drained.wait()

    def release(self) -> None:
        self.backed_up = False
        self._drained.set()

    async def write(self, frame: bytes) -> None:
        raise AssertionError("a direct transport is written through write_frame")

    async def close(self, disconnect: Disconnect) -> None:
        if self.closed is None:
            self.closed = disconnect


def _outbox(
    transport: DirectRecorder,
    failures: list[Disconnect],
    *,
    max_size: int = 10_000,
    write_timeout: float = 0.05,
) -> tuple[Outbox, asyncio.Task[None]]:
    outbox = Outbox(
        transport, max_size=max_size, write_timeout=write_timeout, on_failure=failures.append
    )
    return outbox, asyncio.get_running_loop().create_task(outbox.run())


async def _backed_up(
    transport: DirectRecorder, failures: list[Disconnect], *, max_size: int, write_timeout: float
) -> tuple[Outbox, asyncio.Task[None]]:
    """An outbox whose transport took one frame (``first``) and is now backed up."""
    outbox, runner = _outbox(transport, failures, max_size=max_size, write_timeout=write_timeout)
    transport.backed_up = True
    outbox.push(b"first")
    await settle()
    return outbox, runner


async def test_messages_pushed_in_one_loop_turn_leave_as_one_frame() -> None:
    transport, failures = DirectRecorder(), []
    outbox, runner = _outbox(transport, failures)
    outbox.push(b"a")
    outbox.push(b"b")
    await settle()
    outbox.push(b"c")
    await settle()
    assert transport.frames == [b"<a\nb>", b"<c>"]
    outbox.close(Disconnect(3001, "shutdown"))
    await runner
    assert transport.closed == Disconnect(3001, "shutdown")
    assert failures == []


async def test_one_message_pushed_to_many_clients_is_framed_once() -> None:
    transports = [DirectRecorder() for _ in range(3)]
    failures: list[Disconnect] = []
    pairs = [_outbox(t, failures) for t in transports]
    message = b'{"push":1}'
    for outbox, _ in pairs:
        outbox.push(message)
    await settle()
    assert [t.frames for t in transports] == [[b'<{"push":1}>']] * 3
    assert sum(len(t.framed) for t in transports) == 1
    for outbox, runner in pairs:
        outbox.close(Disconnect(3001, "shutdown"))
        await runner


class OtherFraming(DirectRecorder):
    """A transport of another class (as SSE beside WebSocket): its own wire format."""

    def frame(self, message: bytes) -> bytes:
        self.framed.append(message)
        return b"[" + message + b"]"


async def test_one_message_to_two_transport_classes_is_framed_once_per_class() -> None:
    # Interleaved, so that each class finds the other's frame of the message first.
    transports = [DirectRecorder(), OtherFraming(), DirectRecorder(), OtherFraming()]
    failures: list[Disconnect] = []
    pairs = [_outbox(t, failures) for t in transports]
    message = b'{"push":1}'
    for outbox, _ in pairs:
        outbox.push(message)
    await settle()
    assert [t.frames for t in transports] == [[b"<" + message + b">"], [b"[" + message + b"]"]] * 2
    assert [len(t.framed) for t in transports] == [1, 1, 0, 0]
    for outbox, runner in pairs:
        outbox.close(Disconnect(3001, "shutdown"))
        await runner


async def test_messages_queued_while_backed_up_follow_in_order_after_drain() -> None:
    transport, failures = DirectRecorder(), []
    outbox, runner = _outbox(transport, failures, write_timeout=5)
    transport.backed_up = True
    outbox.push(b"1")
    await settle()
    outbox.push(b"2")
    outbox.push(b"3")
    await settle()
    assert transport.frames == [b"<1>"]
    transport.release()
    await settle()
    outbox.push(b"4")
    await settle()
    assert transport.frames == [b"<1>", b"<2\n3>", b"<4>"]
    outbox.close(Disconnect(3001, "shutdown"))
    await runner
    assert failures == []


async def test_messages_queued_while_backed_up_hold_about_their_own_length() -> None:
    transport, failures = DirectRecorder(), []
    outbox, runner = await _backed_up(transport, failures, max_size=1_000_000, write_timeout=5)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(1000):  # each reply fresh from the encoder, as the session pushes it
            outbox.push(orjson.dumps({"id": n, "publish": {}}))
        per_message = (tracemalloc.get_traced_memory()[0] - before) / 1000
    finally:
        tracemalloc.stop()
    transport.release()
    await settle()

    assert per_message < SMALL_ENCODING_BUDGET
    assert transport.frames[-1].endswith(b'{"id":999,"publish":{}}>')
    outbox.close(Disconnect(3001, "shutdown"))
    await runner
    assert failures == []


async def test_transport_backed_up_longer_than_write_timeout_disconnects_3009() -> None:
    transport, failures = DirectRecorder(), []
    outbox, runner = _outbox(transport, failures)
    transport.backed_up = True
    outbox.push(b"1")
    await asyncio.wait_for(runner, 5)
    assert [d.code for d in failures] == [3009]
    assert transport.closed is not None and transport.closed.code == 3009


async def test_queue_overflow_while_backed_up_disconnects_3008() -> None:
    transport, failures = DirectRecorder(), []
    outbox, runner = await _backed_up(transport, failures, max_size=10, write_timeout=5)
    outbox.push(b"123456")
    outbox.push(b"123456")
    await asyncio.wait_for(runner, 5)
    assert [d.code for d in failures] == [3008]
    assert transport.closed is not None and transport.closed.code == 3008
    assert transport.frames == [b"<first>"]


async def test_write_to_a_closing_connection_disconnects_3009() -> None:
    transport, failures = DirectRecorder(), []
    outbox, runner = _outbox(transport, failures)
    transport.broken = True
    outbox.push(b"1")
    await asyncio.wait_for(runner, 5)
    assert [d.code for d in failures] == [3009]


@pytest.mark.parametrize(("flush", "expected"), [(True, [b"<a\nb>"]), (False, [])])
async def test_close_writes_the_queue_only_when_flushing(
    flush: bool, expected: list[bytes]
) -> None:
    transport, failures = DirectRecorder(), []
    outbox, runner = _outbox(transport, failures)
    outbox.push(b"a")
    outbox.push(b"b")
    outbox.close(Disconnect(3000, "bye"), flush=flush)
    await asyncio.wait_for(runner, 5)
    await settle()
    assert transport.frames == expected
    assert transport.closed == Disconnect(3000, "bye")
