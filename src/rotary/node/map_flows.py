"""Map subscribe flows in progress, per session: the state a map subscribe keeps between
its requests.

Sits below both `rotary.node.map_subscribe` (which runs the flows) and
`rotary.node.subscribe` (whose unsubscribe abandons one), so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from weakref import WeakKeyDictionary

from rotary.channels.maps import MapSettings
from rotary.engines.base import StreamPosition
from rotary.node.subscription import Subscription

__all__ = ["FLOWS", "Flow", "drop", "forget_flow"]


@dataclass(slots=True)
class Flow:
    """A map subscribe between its first request and going live."""

    sub: Subscription
    settings: MapSettings
    started: float
    data: bytes | None = None
    #: The position of the first state page, frozen for the whole flow.
    position: StreamPosition | None = None


#: session → channel → flow in progress. Weak: a session that goes away takes its flows.
#: The session is only a key here, so any object that can be weakly referenced will do.
FLOWS: WeakKeyDictionary[object, dict[str, Flow]] = WeakKeyDictionary()


def forget_flow(s: object, channel: str) -> None:
    """Abandon a map subscribe of `channel` in progress (the client unsubscribed)."""
    drop(s, channel)


def drop(s: object, channel: str) -> None:
    """Forget the flow of `channel` (and the session's entry once it has none left)."""
    flows = FLOWS.get(s)
    if flows is not None:
        flows.pop(channel, None)
        if not flows:
            del FLOWS[s]
