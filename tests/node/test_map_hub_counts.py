"""The map hub's counts of live subscribers and channels, which the ``info`` API and the
subscriptions metric add to the stream hub's (docs/map-subscriptions.md)."""

from __future__ import annotations

from rotary.engines.base import StreamPosition
from rotary.node.maps import MapHub, MapSubscriber
from rotary.protocol.codec import JSON

SUB = MapSubscriber(lambda data: None, JSON)
AT = StreamPosition(0, "e")


def _counts(hub: MapHub) -> tuple[int, int]:
    return hub.num_live_channels, hub.num_live_subs


def test_a_subscriber_paging_through_the_state_is_not_counted_until_it_is_live() -> None:
    hub = MapHub()
    hub.add_pending("m:1", "c1", SUB)
    pending = _counts(hub)
    hub.activate("m:1", "c1", AT)

    assert (pending, _counts(hub)) == ((0, 0), (1, 1))


def test_subscribers_of_one_channel_count_one_channel_until_the_last_leaves() -> None:
    hub = MapHub()
    for client, channel in (("c1", "m:1"), ("c2", "m:1"), ("c3", "m:2")):
        hub.add_pending(channel, client, SUB)
        hub.activate(channel, client, AT)
    three = _counts(hub)
    hub.remove("m:1", "c1")
    hub.remove("m:1", "c1")  # twice: no effect the second time
    two = _counts(hub)
    hub.remove("m:1", "c2")
    hub.remove("m:2", "c3")

    assert (three, two, _counts(hub)) == ((2, 3), (2, 2), (0, 0))


def test_a_subscriber_removed_while_pending_changes_no_count() -> None:
    hub = MapHub()
    hub.add_pending("m:1", "c1", SUB)
    hub.remove("m:1", "c1")
    hub.activate("m:1", "c1", AT)  # its reply raced the removal: it stays gone

    assert _counts(hub) == (0, 0)
