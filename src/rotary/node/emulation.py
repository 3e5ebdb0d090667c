"""Commands of emulated sessions (HTTP-streaming, SSE), delivered to the node holding the session.

An emulated client reads replies on its stream and sends commands through the emulation
endpoint, which any node may serve. `Emulation.deliver` runs the commands on this node when
the session lives here; otherwise it sends them, as a control message, to the node named in
the request, which runs them and answers with another control message. The endpoint answers
once the commands ran (or could not), as Centrifugo does.

The commands of one session run one frame at a time, in arrival order, as a WebSocket's
would: two emulation requests of one client never interleave their commands.

Wire format (JSON through `Broker.publish_control`, which reaches every node; a node acts only
on messages naming it)::

    {"op": "emu_request", "node": <target>, "from": <uid>, "id": N, "session": …,
     "data": <the commands, base64: Protobuf commands are binary>}
    {"op": "emu_reply", "node": <requester>, "id": N, "found": true|false}
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson

__all__ = ["Emulation", "Outcome", "is_emulation_message"]

_log = logging.getLogger("rotary.emulation")

#: Every emulation control message starts with these bytes (orjson keeps key order).
_PREFIX = b'{"op":"emu_'
#: Seconds to wait for the node holding a session to answer.
REMOTE_TIMEOUT = 5.0


class Outcome(enum.Enum):
    """What became of one emulation request."""

    DONE = "done"
    NO_SESSION = "no_session"
    NO_NODE = "no_node"
    TIMEOUT = "timeout"


def is_emulation_message(data: bytes) -> bool:
    """Whether a control message belongs to the emulation layer."""
    return data.startswith(_PREFIX)


class EmulatedSession(Protocol):
    """What the emulation layer needs of a client session: its id and a way in for frames."""

    @property
    def session_id(self) -> str: ...

    async def handle_frame(self, frame: bytes) -> None:
        """Run the commands of one frame as if they had come over a bidirectional stream."""


class _Entry:
    """An emulated session and the lock that keeps its frames in order."""

    __slots__ = ("lock", "session")

    def __init__(self, session: EmulatedSession) -> None:
        self.session = session
        self.lock = asyncio.Lock()


class Emulation:
    """Emulated sessions of this node, by session id, and the routing of their commands.

    `publish` sends a control message to every node; `node_alive(uid)` tells whether a node
    is in the cluster view.
    """

    def __init__(
        self,
        *,
        uid: str,
        publish: Callable[[bytes], Awaitable[None]],
        node_alive: Callable[[str], bool],
        timeout: float = REMOTE_TIMEOUT,
    ) -> None:
        self.uid = uid
        self._publish = publish
        self._node_alive = node_alive
        self._timeout = timeout
        self._sessions: dict[str, _Entry] = {}
        self._waiting: dict[int, asyncio.Future[bool]] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, session: EmulatedSession) -> None:
        """Make `session` reachable by its session id."""
        self._sessions[session.session_id] = _Entry(session)

    def remove(self, session: EmulatedSession) -> None:
        """Forget `session` (it ended)."""
        entry = self._sessions.get(session.session_id)
        if entry is not None and entry.session is session:
            del self._sessions[session.session_id]

    async def deliver(self, node: str, session: str, data: bytes) -> Outcome:
        """Run the commands `data` on session `session` of node `node`; return the outcome."""
        if node == self.uid:
            return Outcome.DONE if await self._run_here(session, data) else Outcome.NO_SESSION
        if not self._node_alive(node):
            return Outcome.NO_NODE
        return await self._ask(node, session, data)

    async def _run_here(self, session_id: str, data: bytes) -> bool:
        entry = self._sessions.get(session_id)
        if entry is None:
            return False
        async with entry.lock:
            await entry.session.handle_frame(data)
        return True

    async def _ask(self, node: str, session: str, data: bytes) -> Outcome:
        request_id = next(self._ids)
        waiter = self._waiting[request_id] = asyncio.get_running_loop().create_future()
        msg = {"op": "emu_request", "node": node, "from": self.uid, "id": request_id}
        try:
            commands = base64.b64encode(data).decode()
            await self._publish(orjson.dumps({**msg, "session": session, "data": commands}))
            async with asyncio.timeout(self._timeout):
                found = await waiter
        except TimeoutError:
            return Outcome.TIMEOUT
        finally:
            del self._waiting[request_id]
        return Outcome.DONE if found else Outcome.NO_SESSION

    def receive(self, data: bytes) -> None:
        """Apply one emulation control message (see `is_emulation_message`)."""
        try:
            msg: dict[str, Any] = orjson.loads(data)
            if msg.get("node") != self.uid:
                return
            if msg["op"] == "emu_request":
                self._spawn(self._answer(msg))
            elif msg["op"] == "emu_reply":
                waiter = self._waiting.get(int(msg["id"]))
                if waiter is not None and not waiter.done():
                    waiter.set_result(bool(msg["found"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            _log.warning("bad emulation message ignored: %s", exc)

    async def _answer(self, msg: dict[str, Any]) -> None:
        try:
            data = base64.b64decode(str(msg["data"]), validate=True)
        except binascii.Error:
            _log.warning("emulation request with bad data ignored")
            return
        found = await self._run_here(str(msg["session"]), data)
        reply = {"op": "emu_reply", "node": msg["from"], "id": msg["id"], "found": found}
        try:
            await self._publish(orjson.dumps(reply))
        except Exception as exc:  # the requester times out and answers 504
            _log.warning("emulation reply not sent: %s", exc)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel the requests of other nodes still running here."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
