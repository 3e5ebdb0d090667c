"""Ending a subscription: the one way out, shared by every handler that cuts one.

Sits below the command handlers (subscribe, revocation, control, position) so that each
of them can end a subscription without importing another handler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rotary.node import shared_poll
from rotary.node.subscription import Subscription
from rotary.protocol.codes import Unsubscribe

if TYPE_CHECKING:
    from rotary.node.contracts import Session

__all__ = ["end_subscription", "remove_subscription"]


def end_subscription(s: Session, sub: Subscription, unsub: Unsubscribe | None) -> None:
    """End `sub` now (optionally telling the client why); release the rest in the background."""
    if s.subs.get(sub.channel) is sub:
        del s.subs[sub.channel]
    sub.ended = True
    # Leave the hub at once, so that a resubscribe right after starts from a clean slate.
    s.node.hub.remove(sub.channel, s.id)
    s.node.maps.hub.remove(sub.channel, s.id)
    shared_poll.release(s.node.shared_poll, s, sub.channel)
    if unsub is not None:
        s.send_unsubscribe(sub.channel, unsub)
    s.releasing.add(sub)
    s.spawn(remove_subscription(s, sub))


async def remove_subscription(s: Session, sub: Subscription) -> None:
    """Leave the hub and presence, announce the leave (when it emits them), free the broker.

    Runs to completion once per subscription; a run cut short (the session's tasks are
    cancelled) is repeated by the session's cleanup.
    """
    if sub.released:
        return
    node, channel = s.node, sub.channel
    node.hub.remove(channel, s.id)
    node.maps.hub.remove(channel, s.id)
    shared_poll.release(node.shared_poll, s, channel)
    if node.maps.presence_maps:
        await node.maps.leave_presence(channel, s.id)
    if sub.presence:
        await node.presence.remove_presence(channel, s.id, s.user)
    if sub.emit_join_leave:
        await node.broker.publish_leave(channel, sub.info)
    await node.broker_release(channel)
    sub.released = True
    s.releasing.discard(sub)
