"""The delivery probe: proof, shard by shard, that what this node publishes comes back.

A PUB/SUB connection can stay open and answer PINGs while publications no longer reach it
(a Sentinel failover that left it on the old primary, a proxy that lost the subscription):
the node would then deliver nothing and look healthy. So every `interval` seconds the
probe PUBLISHes a small message on each shard's command connection to a channel only this
node listens to on that shard's PUB/SUB connection. A shard whose probe has not come back
for `_MISSED` intervals is reported and its PUB/SUB connection is dropped, which makes
`ShardSubscriber` reconnect, resubscribe and have its clients recover from history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from redis.exceptions import RedisError

__all__ = ["DeliveryProbe"]

logger = logging.getLogger("rotary.engines.redis")

#: Probe intervals without the probe coming back before a connection counts as deaf.
_MISSED = 3


class _Subscriber(Protocol):
    @property
    def connected(self) -> bool: ...

    async def reconnect(self, why: str) -> None: ...


class DeliveryProbe:
    """Probes every shard of one node.

    Contract: `heard(index)` must be called when the probe payload of shard `index` arrives
    on the probe channel (see `payload`). `problems()` never blocks. `start` and `close`
    own one task.
    """

    def __init__(
        self,
        *,
        channel: str,
        clients: Sequence[Any],
        subscribers: Sequence[_Subscriber],
        interval: float,
        time: Callable[[], float],
    ) -> None:
        self.channel = channel
        self._clients = clients
        self._subscribers = subscribers
        self._interval = interval
        self._time = time
        count = len(clients)
        #: When the oldest probe not yet heard back was sent, per shard (None: none is).
        self._waiting_since: list[float | None] = [None] * count
        #: The shard's last probe PUBLISH failed (Redis refuses or does not answer).
        self._failing = [False] * count
        #: The shard went deaf and has not delivered a probe since.
        self._deaf = [False] * count
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def payload(index: int) -> bytes:
        """What the probe of shard `index` publishes (`parse` reads it back)."""
        return b"probe:%d" % index

    @staticmethod
    def parse(payload: bytes) -> int | None:
        """The shard index carried by a probe payload, or None for anything else."""
        head, _, index = payload.partition(b":")
        return int(index) if head == b"probe" and index.isdigit() else None

    def start(self) -> None:
        if self._interval > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="redis-probe")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def heard(self, index: int) -> None:
        if 0 <= index < len(self._waiting_since):
            self._waiting_since[index] = None
            self._deaf[index] = False

    def problems(self) -> list[str]:
        """Shards whose probe cannot be published, or no longer comes back."""
        found = []
        for index, (failing, deaf) in enumerate(zip(self._failing, self._deaf, strict=True)):
            if failing:
                found.append(f"redis shard {index}: commands failing")
            elif deaf:
                found.append(f"redis shard {index}: PUB/SUB not delivering")
        return found

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            for index in range(len(self._clients)):
                await self._check(index)
                await self._send(index)

    async def _check(self, index: int) -> None:
        subscriber = self._subscribers[index]
        if not subscriber.connected:
            # A connection being re-established is already reported; wait for it.
            self._waiting_since[index] = None
            return
        since = self._waiting_since[index]
        if since is not None and self._time() - since > self._interval * _MISSED:
            self._deaf[index] = True
            self._waiting_since[index] = None
            await subscriber.reconnect("probe publications stopped arriving")

    async def _send(self, index: int) -> None:
        try:
            await self._clients[index].publish(self.channel, self.payload(index))
        except (RedisError, OSError) as exc:
            if not self._failing[index]:
                logger.warning("redis shard %d: probe publish failed: %s", index, exc)
            self._failing[index] = True
            return
        self._failing[index] = False
        if self._waiting_since[index] is None and self._subscribers[index].connected:
            self._waiting_since[index] = self._time()
