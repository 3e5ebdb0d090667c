"""The cluster view: which nodes are alive, from their periodic announcements.

Every node publishes its info (uid, name, version, counts, uptime) as a control message every
`interval` seconds, and once more, as a goodbye, when it closes. Every node (itself
included, since control messages reach their sender too) keeps the latest info per uid; an
entry not refreshed for `EXPIRY_INTERVALS` intervals is gone (the node died or lost Redis).
The ``info`` API lists the live entries, this node's own always fresh.

With the memory engine control messages reach only this node, so the list holds one node.

Wire format (JSON, sent through `Broker.publish_control` beside the user/client operations of
`rotary.node.control`)::

    {"op": "node_info", "uid": "...", "info": {...}}   # announcement
    {"op": "node_leave", "uid": "..."}                  # goodbye at shutdown
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from rotary.clock import Clock
from rotary.node.scheduler import Scheduler, TimerHandle

__all__ = [
    "EXPIRY_INTERVALS",
    "Cluster",
    "NodeRegistry",
    "info_message",
    "is_cluster_message",
    "leave_message",
]

_log = logging.getLogger("rotary.cluster")

#: An entry unheard of for this many announcement intervals is dropped.
EXPIRY_INTERVALS = 3.0
#: Seconds the goodbye may take at shutdown (Redis may be down then).
_GOODBYE_TIMEOUT = 1.0
#: Every cluster message starts with these bytes (orjson keeps key order), so the node tells
#: them from user/client operations without parsing.
_PREFIX = b'{"op":"node_'

Info = dict[str, object]
Publish = Callable[[bytes], Awaitable[None]]


def info_message(uid: str, info: Info) -> bytes:
    """The announcement of node `uid`."""
    return orjson.dumps({"op": "node_info", "uid": uid, "info": info})


def leave_message(uid: str) -> bytes:
    """The goodbye of node `uid`."""
    return orjson.dumps({"op": "node_leave", "uid": uid})


def is_cluster_message(data: bytes) -> bool:
    """Whether a control message belongs to the cluster view (not to `rotary.node.control`)."""
    return data.startswith(_PREFIX)


@dataclass(frozen=True, slots=True)
class _Entry:
    info: Info
    seen_at: float


class NodeRegistry:
    """The latest info of each node, forgotten `ttl` seconds after it was last heard.

    Time is `clock.monotonic()`; expired entries are dropped lazily, on `live`.
    """

    def __init__(self, *, clock: Clock, ttl: float) -> None:
        self._clock = clock
        self._ttl = ttl
        self._entries: dict[str, _Entry] = {}

    def update(self, uid: str, info: Info) -> bool:
        """Record node `uid`'s info; True when the node was not known (or had expired)."""
        now = self._clock.monotonic()
        old = self._entries.get(uid)
        self._entries[uid] = _Entry(info, now)
        return old is None or now - old.seen_at > self._ttl

    def remove(self, uid: str) -> None:
        """Forget node `uid` at once (it said goodbye)."""
        self._entries.pop(uid, None)

    def live(self) -> dict[str, Info]:
        """uid → info of every node heard from within `ttl` seconds."""
        now = self._clock.monotonic()
        for uid in [u for u, e in self._entries.items() if now - e.seen_at > self._ttl]:
            del self._entries[uid]
        return {uid: e.info for uid, e in self._entries.items()}


class Cluster:
    """Announces this node and keeps the registry of the others.

    `own_info` returns this node's current info; `publish` sends a control message to every
    node (`Broker.publish_control`). `start` announces at once and then every `interval`
    seconds (timers from `scheduler`); `close` stops and says goodbye. A failed announcement
    is logged and retried at the next interval.
    """

    def __init__(
        self,
        *,
        uid: str,
        own_info: Callable[[], Info],
        publish: Publish,
        clock: Clock,
        scheduler: Scheduler,
        interval: float,
    ) -> None:
        self.uid = uid
        self.interval = interval
        self.registry = NodeRegistry(clock=clock, ttl=EXPIRY_INTERVALS * interval)
        self._own_info = own_info
        self._publish = publish
        self._scheduler = scheduler
        self._timer: TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._failing = False

    def start(self) -> None:
        """Announce now and every `interval` seconds until `close`."""
        self._tick()

    async def close(self) -> None:
        """Stop announcing and tell the other nodes this one is gone (best effort)."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            async with asyncio.timeout(_GOODBYE_TIMEOUT):
                await self._publish(leave_message(self.uid))
        except Exception as exc:  # the others expire this node by themselves
            _log.info("goodbye to the cluster not sent: %s", exc)

    def receive(self, data: bytes) -> None:
        """Apply one cluster message (see `is_cluster_message`); bad ones are logged."""
        try:
            msg: dict[str, Any] = orjson.loads(data)
            uid = str(msg["uid"])
            if uid == self.uid:
                return
            if msg.get("op") == "node_leave":
                self.registry.remove(uid)
            elif msg.get("op") == "node_info" and isinstance(msg.get("info"), dict):
                self._heard(uid, msg["info"])
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            _log.warning("bad cluster message ignored: %s", exc)

    def nodes(self) -> list[Info]:
        """Every live node's info, this node's own fresh, sorted by name then uid."""
        everyone = {**self.registry.live(), self.uid: self._own_info()}
        return sorted(everyone.values(), key=lambda i: (str(i.get("name")), str(i.get("uid"))))

    def _heard(self, uid: str, info: Info) -> None:
        if self.registry.update(uid, info) and not self._closed:
            # A newcomer learns about this node now rather than one interval later.
            _log.info("node %s (%s) joined the cluster view", info.get("name"), uid)
            self._spawn_announcement()

    def _tick(self) -> None:
        if self._closed:
            return
        self._spawn_announcement()
        self._timer = self._scheduler.call_later(self.interval, self._tick)

    def _spawn_announcement(self) -> None:
        task = asyncio.get_running_loop().create_task(self._announce())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _announce(self) -> None:
        try:
            await self._publish(info_message(self.uid, self._own_info()))
        except Exception as exc:  # Redis away: the next tick tries again
            if not self._failing:
                _log.warning("announcing this node to the cluster failed: %s", exc)
            self._failing = True
            return
        self._failing = False
