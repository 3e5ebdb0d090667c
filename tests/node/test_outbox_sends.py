"""The outbox's second pass: one frame each to sockets with nothing queued, sent in a row.

`IdleRecorder` stands for a transport whose socket is reachable (``idle_send``): what its
socket takes is recorded apart from what goes through ``write_frame``, so the tests see which
way each byte went, and in which order.
"""

from __future__ import annotations

import asyncio
import socket

from rotary.node.outbox import Outbox
from rotary.protocol.codes import Disconnect
from rotary.transports.sockwrite import socket_send
from tests.node.fakes import settle
from tests.node.test_outbox_direct import DirectRecorder


class IdleRecorder(DirectRecorder):
    """A `DirectRecorder` with a socket: it takes at most `take` bytes a send (all if None),
    or raises `error`; `queued` makes the transport report bytes still held."""

    def __init__(self, *, take: int | None = None, error: OSError | None = None) -> None:
        super().__init__()
        self.take = take
        self.error = error
        self.queued = False
        self.sent: list[bytes] = []
        self.order: list[tuple[str, bytes]] = []

    def idle_send(self) -> object:
        return None if self.queued else self._send

    def _send(self, wire: bytes) -> int:
        if self.error is not None:
            raise self.error
        taken = wire if self.take is None else wire[: self.take]
        self.sent.append(taken)
        self.order.append(("socket", taken))
        return len(taken)

    def write_frame(self, wire: bytes) -> bool:
        self.order.append(("transport", wire))
        return super().write_frame(wire)


def _outbox(transport: DirectRecorder, failures: list[Disconnect]) -> Outbox:
    return Outbox(transport, max_size=10_000, write_timeout=5, on_failure=failures.append)


async def test_one_frame_to_an_idle_socket_is_sent_on_the_socket_not_the_transport() -> None:
    transport, failures = IdleRecorder(), []
    outbox = _outbox(transport, failures)
    outbox.push(b"a")
    await settle()
    assert transport.sent == [b"<a>"]
    assert transport.frames == []
    assert failures == []


async def test_the_sends_of_a_flush_follow_the_framing_of_every_outbox() -> None:
    transports = [IdleRecorder() for _ in range(3)]
    failures: list[Disconnect] = []
    boxes = [_outbox(t, failures) for t in transports]
    message = b"m"
    framed_before_sending: list[int] = []
    for transport in transports:
        send = transport._send

        def counting(wire: bytes, send=send) -> int:  # type: ignore[no-untyped-def]
            framed_before_sending.append(sum(len(t.framed) for t in transports))
            return send(wire)

        transport._send = counting  # type: ignore[method-assign]
    for outbox in boxes:
        outbox.push(message)
    await settle()
    assert [t.sent for t in transports] == [[b"<m>"]] * 3
    assert framed_before_sending == [1, 1, 1]  # framed once, and before the first send


async def test_what_a_socket_does_not_take_goes_to_the_transport_right_after() -> None:
    transport, failures = IdleRecorder(take=2), []
    outbox = _outbox(transport, failures)
    outbox.push(b"hello")
    await settle()
    assert transport.order == [("socket", b"<h"), ("transport", b"ello>")]
    assert failures == []


async def test_a_socket_that_would_block_hands_the_whole_frame_to_the_transport() -> None:
    transport, failures = IdleRecorder(error=BlockingIOError()), []
    outbox = _outbox(transport, failures)
    outbox.push(b"x")
    await settle()
    assert transport.frames == [b"<x>"]
    assert failures == []


async def test_a_failed_send_on_a_closed_connection_disconnects_3009() -> None:
    transport, failures = IdleRecorder(error=ConnectionResetError()), []
    transport.broken = True  # the transport meets the same error on its own write
    outbox = _outbox(transport, failures)
    outbox.push(b"x")
    await settle()
    assert [d.code for d in failures] == [3009]


async def test_a_transport_still_holding_bytes_is_written_through_the_transport() -> None:
    transport, failures = IdleRecorder(), []
    transport.queued = True
    outbox = _outbox(transport, failures)
    outbox.push(b"after")
    await settle()
    assert transport.order == [("transport", b"<after>")]


async def test_a_backed_up_rest_hands_the_queue_to_the_writer_and_keeps_order() -> None:
    transport, failures = IdleRecorder(take=1), []
    transport.backed_up = True
    outbox = _outbox(transport, failures)
    runner = asyncio.get_running_loop().create_task(outbox.run())
    outbox.push(b"1")
    await settle()
    outbox.push(b"2")
    await settle()
    assert transport.order == [("socket", b"<"), ("transport", b"1>")]
    transport.release()
    await settle()
    assert transport.order[-1] == ("transport", b"<2>")
    outbox.close(Disconnect(3001, "shutdown"))
    await runner
    assert failures == []


async def test_socket_send_is_the_socket_of_asyncios_plain_transport_only() -> None:
    loop = asyncio.get_running_loop()
    accepted: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
    try:
        send = socket_send(transport)
        sock = transport.get_extra_info("socket")
        assert send is not None
        assert isinstance(send.__self__, socket.socket)  # type: ignore[attr-defined]
        assert send.__self__.fileno() == sock.fileno()  # type: ignore[attr-defined]
        assert socket_send(None) is None
        assert socket_send(asyncio.Transport()) is None
    finally:
        transport.close()
        await settle()
        for writer in accepted:
            writer.close()
            await writer.wait_closed()
        server.close()
        await server.wait_closed()
