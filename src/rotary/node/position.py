"""The periodic stream-position check (docs/protocol.md "History and recovery",
``client_channel_position_check_delay``).

Gaps are normally caught as publications arrive (`rotary.node.subscribe`); this check catches
the gap nothing reveals: a lost publication followed by silence, or a stream that lost its
history (new epoch) while the channel was quiet. Every `delay` seconds the node reads the
stream top of each channel that has positioned subscribers here, once per channel however many
subscribers share it, and compares it with the position each subscription last delivered.

A subscription is in step when its epoch equals the top's and its offset has reached the
top's offset. Because a publication may be on its way from the broker while the top is read,
one mismatch is tolerated: like Centrifugo, a subscription is flagged only after
`MAX_FAILURES` checks in a row fail. A flagged client-side subscription gets the Unsubscribe
push 2500 (the SDK resubscribes and recovers); a server-side one disconnects the client 3010.
A broker error skips that channel until the next round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rotary.engines.base import HistoryFilter, StreamPosition
from rotary.node.ending import end_subscription
from rotary.node.scheduler import TimerHandle
from rotary.node.subscription import Subscription
from rotary.protocol.codes import DisconnectCode, UnsubscribeCode

if TYPE_CHECKING:
    from rotary.node.contracts import NodeServices, Session

__all__ = ["MAX_FAILURES", "PositionChecker", "group_by_channel", "in_step"]

_log = logging.getLogger("rotary.position")

#: Failed checks in a row after which a subscription has lost its position.
MAX_FAILURES = 2

#: The positioned subscriptions of one channel: (session, subscription) pairs.
_Members = list[tuple["Session", Subscription]]


def in_step(sub: Subscription, top: StreamPosition) -> bool:
    """Whether `sub` has delivered everything up to the stream `top` in the same epoch."""
    return sub.epoch == top.epoch and sub.offset >= top.offset


def group_by_channel(sessions: Iterable[Session]) -> dict[str, _Members]:
    """Live positioned subscriptions of connected `sessions`, grouped by channel."""
    groups: dict[str, _Members] = {}
    for s in sessions:
        if s.closed:
            continue
        for sub in s.subs.values():
            if sub.positioned and not sub.ended:
                groups.setdefault(sub.channel, []).append((s, sub))
    return groups


class PositionChecker:
    """Runs the check every `node.settings.channel_position_check_delay` seconds (0: never).

    Timers go through the node's scheduler; one round runs at a time as a task owned by the
    checker. `start` after the node's broker started, `stop` at close (idempotent).
    """

    def __init__(self, node: NodeServices) -> None:
        self._node = node
        self._delay = node.settings.channel_position_check_delay
        self._timer: TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    def start(self) -> None:
        """Arm the first round."""
        self._stopped = False
        self._arm()

    def stop(self) -> None:
        """Cancel the timer and a round in progress."""
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def check_once(self) -> None:
        """One round: read each channel's top once, flag subscriptions out of step."""
        groups = group_by_channel(self._node.connected_sessions())
        for channel, members in groups.items():
            top = await self._top(channel)
            if top is not None:
                for s, sub in members:
                    _judge(s, sub, top)

    def _arm(self) -> None:
        if self._delay > 0 and not self._stopped:
            self._timer = self._node.scheduler.call_later(self._delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self._stopped:
            return
        self._task = asyncio.get_running_loop().create_task(self._round())

    async def _round(self) -> None:
        try:
            await self.check_once()
        except Exception:
            _log.exception("stream position check failed")
        finally:
            self._task = None
            self._arm()

    async def _top(self, channel: str) -> StreamPosition | None:
        node = self._node
        try:
            found = await node.broker.history(
                channel, HistoryFilter(limit=0), meta_ttl=node.meta_ttl(channel)
            )
        except Exception as exc:  # the broker may be away for a while: check again later
            _log.warning("stream top of %r not available: %s", channel, exc)
            return None
        return found.position


def _judge(s: Session, sub: Subscription, top: StreamPosition) -> None:
    """Count a failed check (or reset the count); flag the subscription at `MAX_FAILURES`."""
    if sub.ended or s.closed or s.subs.get(sub.channel) is not sub:
        return
    if in_step(sub, top):
        sub.position_failures = 0
        return
    sub.position_failures += 1
    if sub.position_failures < MAX_FAILURES:
        return
    _log.info(
        "client %s: position in %r (%d %r) behind stream top (%d %r)",
        s.id,
        sub.channel,
        sub.offset,
        sub.epoch,
        top.offset,
        top.epoch,
    )
    if sub.server_side:
        s.disconnect(DisconnectCode.INSUFFICIENT_STATE)
    else:
        end_subscription(s, sub, UnsubscribeCode.INSUFFICIENT_STATE)
