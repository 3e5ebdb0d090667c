"""Publishing into shared poll channels (the server API's ``shared_poll_publish``).

docs/shared-poll.md "Publishing". As in Centrifugo, each key of a channel that takes
publications has a broker channel of its own, which a node listens to while some client
there tracks the key (`PollRoutes`); a publication goes to that broker channel only, so a
node that does not track the key never reads it. On an engine of one node (memory), the
node applies every publication itself, as Centrifugo's memory broker delivers them all.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import orjson

from rotary.channels.shared_poll import poll_settings
from rotary.engines.base import Broker, PublishOptions
from rotary.protocol.codes import CommandError, ErrorCode

if TYPE_CHECKING:
    from rotary.node.contracts import NodeServices
    from rotary.node.shared_poll import SharedPollManager

__all__ = ["PollRoutes", "apply", "is_key_channel", "key_channel", "publish"]

_log = logging.getLogger("rotary.shared_poll")

#: Starts every key's broker channel. The NUL byte keeps these names apart from the channels
#: of clients (which the node routes elsewhere), and the length keeps channel and key apart.
_PREFIX = "\x00shared_poll:"


def key_channel(channel: str, key: str) -> str:
    """The broker channel carrying the publications of `key` of `channel`."""
    return f"{_PREFIX}{len(channel)}:{channel}{key}"


def is_key_channel(name: str) -> bool:
    """Whether the broker channel `name` is a key's (`key_channel`), not a client channel."""
    return name.startswith(_PREFIX)


async def publish(
    node: NodeServices, channel: str, key: str, version: int, epoch: str, data: bytes
) -> None:
    """Send `key` of `channel` at `version` to the nodes tracking the key (with an engine of
    one node, apply it here).

    Raises `CommandError`: 107 for an empty channel or key, a version of 0 or a channel that
    is not shared poll; 102 for an unknown namespace; 108 when the namespace does not enable
    publishing (Centrifugo's checks, in its order).
    """
    if not channel or not key or version <= 0:
        raise CommandError(ErrorCode.BAD_REQUEST)
    resolved = node.resolver.resolve(channel)
    if resolved is None:
        raise CommandError(ErrorCode.UNKNOWN_CHANNEL)
    settings = poll_settings(resolved.options)
    if settings is None:
        raise CommandError(ErrorCode.BAD_REQUEST)
    if not settings.publish_enabled:
        raise CommandError(ErrorCode.NOT_AVAILABLE)
    manager = node.shared_poll
    if manager is not None and manager.routes is None:  # one node: no engine round trip
        manager.published(channel, key, version, epoch, data)
        return
    message = {
        "channel": channel,
        "key": key,
        "version": version,
        "epoch": epoch,
        # base64 keeps binary payloads (b64data) intact inside the JSON message.
        "data": base64.b64encode(data).decode(),
    }
    await node.broker.publish(key_channel(channel, key), orjson.dumps(message), PublishOptions())


def apply(manager: SharedPollManager | None, body: bytes) -> None:
    """Apply one publication received on a key's broker channel to this node's trackers.

    A body that is not one of `publish`'s messages is logged and dropped.
    """
    if manager is None:
        return
    try:
        msg = orjson.loads(body)
        data = base64.b64decode(str(msg["data"]), validate=True)
        channel, key, version = str(msg["channel"]), str(msg["key"]), int(msg["version"])
        epoch = str(msg["epoch"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        _log.warning("malformed shared poll publication dropped")
        return
    manager.published(channel, key, version, epoch, data)


class PollRoutes:
    """`rotary.node.shared_poll.KeyRoutes` on a broker: this node listens to a key's broker
    channel while it tracks the key or a track of it is under way.

    Subscribes and unsubscribes of one broker channel take effect in the order they are
    called (both engines keep it), and the decision to unsubscribe is taken in the same step
    as the call; so a key reserved before an unsubscribe runs keeps its subscription.
    """

    def __init__(self, broker: Broker, manager: SharedPollManager) -> None:
        self._broker = broker
        self._manager = manager
        self._reserved: Counter[tuple[str, str]] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()

    async def reserve(self, channel: str, keys: Sequence[str]) -> None:
        """Listen to `keys` of `channel`; each holds a reservation until `settle(...,
        reserved=True)`. Raises what the broker raises (the reservations are then settled)."""
        for key in keys:
            self._reserved[(channel, key)] += 1
        try:
            # At once: the Redis engine sends subscribes queued together as one command.
            await asyncio.gather(*(self._broker.subscribe(key_channel(channel, k)) for k in keys))
        except BaseException:
            self.settle(channel, keys, reserved=True)
            raise

    def settle(self, channel: str, keys: Sequence[str], *, reserved: bool = False) -> None:
        """End the reservations of `keys` (`reserved`), then stop listening to each key that
        is neither tracked nor reserved."""
        for key in keys:
            if reserved:
                self._reserved[(channel, key)] -= 1
                if self._reserved[(channel, key)] <= 0:
                    del self._reserved[(channel, key)]
            if not self._wanted(channel, key):
                task = asyncio.get_running_loop().create_task(self._unsubscribe(channel, key))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def _wanted(self, channel: str, key: str) -> bool:
        return (channel, key) in self._reserved or self._manager.tracks(channel, key)

    async def _unsubscribe(self, channel: str, key: str) -> None:
        # Checked again when the task runs: a track may have reserved the key meanwhile.
        if self._wanted(channel, key):
            return
        try:
            await self._broker.unsubscribe(key_channel(channel, key))
        except Exception as exc:  # the engine logs the cause; a stray listener costs little
            _log.warning("unsubscribing a shared poll key failed: %s", exc)

    async def close(self) -> None:
        """Wait for the unsubscribes under way (before the broker closes)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
