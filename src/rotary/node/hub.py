"""The hub: which local clients are subscribed to which channel, and the fan-out.

A publication is encoded once per channel and handed to every subscriber's queue by a
plain synchronous loop: fan-out never awaits a single subscriber, and nothing in it
mutates the hub (sessions leave the hub later, from their own cleanup).

A subscriber goes through two states. While its subscribe is being answered it is
*pending*: publications for the channel are buffered for it, so that the subscribe reply
can be queued first and the buffered publications after it (docs/protocol.md "Connection life
cycle" rule 5). Then it is
*active*: plain subscribers get the encoded bytes; *tracked* (positioned) subscribers get
them through a callback that checks offsets; *delta* subscribers (`rotary.node.delta`) get a
`DeltaPush` that encodes, once for all of them, the forms they may need.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rotary.engines.base import ClientInfo, Publication, StreamPosition
from rotary.node.delta import DeltaDelivery, DeltaPush, Previous, base_for
from rotary.protocol.codec import client_info_obj, encode_push, publication_push

__all__ = ["Buffered", "Hub", "TrackedDelivery"]

#: One publication buffered for a pending subscriber: (encoded push, offset, epoch, publication).
Buffered = tuple[bytes, int, str, Publication]

#: Delivery to a positioned subscriber: (encoded push, offset, epoch).
TrackedDelivery = Callable[[bytes, int, str], None]


@dataclass(slots=True)
class _Channel:
    plain: dict[str, Callable[[bytes], None]] = field(default_factory=dict)
    tracked: dict[str, TrackedDelivery] = field(default_factory=dict)
    join_leave: dict[str, Callable[[bytes], None]] = field(default_factory=dict)
    pending: dict[str, list[Buffered]] = field(default_factory=dict)
    delta: dict[str, DeltaDelivery] = field(default_factory=dict)
    #: The last publication, kept while delta subscribers may need it as a delta base.
    prev: Previous | None = None

    def __len__(self) -> int:
        return len(self.plain) + len(self.tracked) + len(self.pending) + len(self.delta)


class Hub:
    """Subscriptions of this node's clients, by channel."""

    def __init__(self) -> None:
        self._channels: dict[str, _Channel] = {}
        self._num_subs = 0

    def add_pending(self, channel: str, client_id: str) -> bool:
        """Start buffering `channel` for `client_id`; True when the channel is new here."""
        ch = self._channels.get(channel)
        created = ch is None
        if ch is None:
            ch = self._channels[channel] = _Channel()
        if client_id not in ch.pending:
            ch.pending[client_id] = []
            self._num_subs += 1
        return created

    def activate(
        self,
        channel: str,
        client_id: str,
        *,
        push: Callable[[bytes], None],
        tracked: TrackedDelivery | None = None,
        delta: DeltaDelivery | None = None,
        join_leave: bool = False,
    ) -> list[Buffered]:
        """Make a pending subscriber active; return what was buffered for it meanwhile."""
        ch = self._channels[channel]
        buffered = ch.pending.pop(client_id, [])
        if delta is not None:
            ch.delta[client_id] = delta
        elif tracked is not None:
            ch.tracked[client_id] = tracked
        else:
            ch.plain[client_id] = push
        if join_leave:
            ch.join_leave[client_id] = push
        return buffered

    def remove(self, channel: str, client_id: str) -> bool:
        """Forget one subscriber; True when it was the channel's last one here."""
        ch = self._channels.get(channel)
        if ch is None:
            return False
        plain = ch.plain.pop(client_id, None)
        tracked = ch.tracked.pop(client_id, None)
        pending = ch.pending.pop(client_id, None)
        delta = ch.delta.pop(client_id, None)
        found = plain is not None or tracked is not None or pending is not None
        found = found or delta is not None
        ch.join_leave.pop(client_id, None)
        if found:
            self._num_subs -= 1
        if not ch:
            del self._channels[channel]
            return True
        return False

    def has_channel(self, channel: str) -> bool:
        """Whether any local client is subscribed (or subscribing) to `channel`."""
        return channel in self._channels

    def broadcast_publication(self, channel: str, pub: Publication, sp: StreamPosition) -> None:
        """Queue `pub` to every local subscriber of `channel`, encoding it once."""
        ch = self._channels.get(channel)
        if ch is None:
            return
        data = publication_push(channel, pub)
        for push in ch.plain.values():
            push(data)
        if ch.tracked:
            offset, epoch = pub.offset, sp.epoch
            for deliver in ch.tracked.values():
                deliver(data, offset, epoch)
        for buf in ch.pending.values():
            buf.append((data, pub.offset, sp.epoch, pub))
        if ch.delta:
            pushes = DeltaPush(channel, pub, base_for(ch.prev, pub, sp))
            for give in ch.delta.values():
                give(pushes, pub.offset, sp.epoch)
        ch.prev = (pub, sp.epoch) if ch.delta or ch.pending else None

    def seed_previous(self, channel: str, pub: Publication, epoch: str) -> None:
        """Offer `pub` (read from history) as the channel's delta base, unless the hub already
        holds a later one of the same stream."""
        ch = self._channels.get(channel)
        if ch is None:
            return
        prev = ch.prev
        if prev is None or prev[1] != epoch or prev[0].offset < pub.offset:
            ch.prev = (pub, epoch)

    def broadcast_join_leave(self, channel: str, kind: str, info: ClientInfo) -> None:
        """Queue a ``join`` or ``leave`` push to the subscribers that receive them."""
        ch = self._channels.get(channel)
        if ch is None or not ch.join_leave:
            return
        data = encode_push(kind, {"info": client_info_obj(info)}, channel)
        for push in ch.join_leave.values():
            push(data)

    def channels(self) -> dict[str, int]:
        """Channel → number of local subscribers."""
        return {name: len(ch) for name, ch in self._channels.items()}

    @property
    def num_channels(self) -> int:
        return len(self._channels)

    @property
    def num_subs(self) -> int:
        return self._num_subs
