"""Emulation routing (rotary.node.emulation): commands run on the node holding the session, in
order, and the outcome says what happened; two nodes joined by an in-memory control bus."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from rotary.node.client import ClientSession
from rotary.node.emulation import Emulation, Outcome, is_emulation_message


class _Session:
    """Stands in for a ClientSession: records the frames it handles, one at a time."""

    def __init__(self, session_id: str, delay: float = 0.0) -> None:
        self.session_id = session_id
        self.delay = delay
        self.frames: list[bytes] = []
        self.running = 0
        self.overlapped = False

    async def handle_frame(self, frame: bytes) -> None:
        self.running += 1
        self.overlapped |= self.running > 1
        await asyncio.sleep(self.delay)
        self.frames.append(frame)
        self.running -= 1


class _Bus:
    """Control messages reach every node, the sender included (as the Redis broker does)."""

    def __init__(self) -> None:
        self.nodes: list[Emulation] = []
        self.deaf: set[str] = set()

    async def publish(self, data: bytes) -> None:
        assert is_emulation_message(data)
        for node in self.nodes:
            if node.uid not in self.deaf:
                node.receive(data)


def _pair(timeout: float = 5.0) -> tuple[Emulation, Emulation, _Bus]:
    bus = _Bus()
    alive = {"a", "b"}
    a, b = (
        Emulation(uid=uid, publish=bus.publish, node_alive=alive.__contains__, timeout=timeout)
        for uid in ("a", "b")
    )
    bus.nodes += [a, b]
    return a, b, bus


def _add(node: Emulation, session: _Session) -> None:
    node.add(cast(ClientSession, session))


async def test_commands_for_a_local_session_run_here() -> None:
    a, _, _ = _pair()
    session = _Session("s1")
    _add(a, session)
    assert await a.deliver("a", "s1", b'{"id":2}') is Outcome.DONE
    assert session.frames == [b'{"id":2}']


async def test_commands_for_another_node_run_there_and_the_answer_comes_back() -> None:
    a, b, _ = _pair()
    session = _Session("s1")
    _add(b, session)
    assert await a.deliver("b", "s1", b'{"id":3}') is Outcome.DONE
    assert session.frames == [b'{"id":3}']
    assert await a.deliver("b", "gone", b"{}") is Outcome.NO_SESSION


async def test_an_unknown_session_or_node_is_reported() -> None:
    a, _, _ = _pair()
    assert await a.deliver("a", "nope", b"{}") is Outcome.NO_SESSION
    assert await a.deliver("zz", "s1", b"{}") is Outcome.NO_NODE


async def test_a_node_that_does_not_answer_times_out() -> None:
    a, b, bus = _pair(timeout=0.05)
    _add(b, _Session("s1"))
    bus.deaf.add("b")
    assert await a.deliver("b", "s1", b"{}") is Outcome.TIMEOUT


async def test_frames_of_one_session_never_interleave_and_keep_their_order() -> None:
    a, b, _ = _pair()
    session = _Session("s1", delay=0.01)
    _add(b, session)
    frames = [f'{{"id":{n}}}'.encode() for n in range(5)]
    outcomes = await asyncio.gather(*(a.deliver("b", "s1", f) for f in frames))
    assert set(outcomes) == {Outcome.DONE}
    assert not session.overlapped and session.frames == frames


async def test_a_removed_session_is_no_longer_reachable() -> None:
    a, _, _ = _pair()
    session: Any = _Session("s1")
    _add(a, session)
    a.remove(session)
    assert await a.deliver("a", "s1", b"{}") is Outcome.NO_SESSION


async def test_binary_commands_of_a_protobuf_client_cross_nodes_unchanged() -> None:
    a, b, _ = _pair()
    session = _Session("s1")
    _add(b, session)
    commands = bytes(range(256))
    assert await a.deliver("b", "s1", commands) is Outcome.DONE
    assert session.frames == [commands]
