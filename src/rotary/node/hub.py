"""The hub: which local clients are subscribed to which channel, and the fan-out.

A publication is encoded once per channel and wire format (`rotary.protocol.base.Codec`)
and handed to every subscriber's queue by a plain synchronous loop: fan-out never awaits a
single subscriber, and nothing in it mutates the hub (sessions leave the hub later, from
their own cleanup).

A subscriber goes through two states. While its subscribe is being answered it is
*pending*: publications for the channel are buffered for it, so that the subscribe reply
can be queued first and the buffered publications after it (docs/protocol.md "Connection life
cycle" rule 5). Then it is
*active*: plain subscribers get the encoded bytes; *tracked* (positioned) subscribers get
them through a callback that checks offsets. *Filtered* subscribers (a tags filter,
`rotary.protocol.filters`) are kept apart, grouped by equal filter: each distinct filter is
evaluated once per publication, and its subscribers get the same encoded bytes when it
passes, or (positioned ones) an empty delivery that only moves their position when it does
not. Active subscribers are grouped by codec; a
publication that a codec cannot carry (bytes that are not JSON, for JSON clients) goes to
none of that group, each of whom is reported to `on_unencodable` instead (Centrifugo
disconnects them with 3506). *Delta* subscribers (`rotary.node.delta`) get a `DeltaPush`,
shared by every codec, that encodes the forms they need once per format.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from rotary.engines.base import ClientInfo, Publication, StreamPosition
from rotary.node.delta import DeltaDelivery, DeltaPush, Previous, base_for
from rotary.protocol.base import Codec, NotEncodable
from rotary.protocol.filters import TagsFilter, matches

__all__ = ["Buffered", "Hub", "TrackedDelivery"]

#: One publication buffered for a pending subscriber: (encoded push, offset, epoch).
Buffered = tuple[bytes, int, str]

#: Delivery to a positioned subscriber: (encoded push, offset, epoch). A filtered
#: subscriber's delivery also gets b"" for a publication its filter drops: the position
#: moves on, nothing is sent.
TrackedDelivery = Callable[[bytes, int, str], None]

#: A publication kept for a pending subscriber until it is active and its codec known.
_Held = tuple[Publication, str]


@dataclass(slots=True)
class _Group:
    """The active subscribers of one channel that share one codec.

    `codec` is None until the first subscriber activates; `next` is the group of another
    codec (a chain, not a dict: there are two codecs and most channels see one).
    """

    codec: Codec | None = None
    plain: dict[str, Callable[[bytes], None]] = field(default_factory=dict)
    tracked: dict[str, TrackedDelivery] = field(default_factory=dict)
    join_leave: dict[str, Callable[[bytes], None]] = field(default_factory=dict)
    delta: dict[str, DeltaDelivery] = field(default_factory=dict)
    #: Filtered subscribers: filter → client id → delivery; and each one's filter.
    filtered: dict[TagsFilter, dict[str, TrackedDelivery]] = field(default_factory=dict)
    filter_of: dict[str, TagsFilter] = field(default_factory=dict)
    next: _Group | None = None

    def members(self) -> int:
        return len(self.plain) + len(self.tracked) + len(self.delta) + len(self.filter_of)

    def add_filtered(self, client_id: str, tf: TagsFilter, deliver: TrackedDelivery) -> None:
        self.filtered.setdefault(tf, {})[client_id] = deliver
        self.filter_of[client_id] = tf

    def remove_filtered(self, client_id: str) -> bool:
        tf = self.filter_of.pop(client_id, None)
        if tf is None:
            return False
        members = self.filtered[tf]
        del members[client_id]
        if not members:
            del self.filtered[tf]
        return True


@dataclass(slots=True)
class _Channel(_Group):
    pending: dict[str, list[_Held]] = field(default_factory=dict)
    #: The last publication, kept while delta subscribers may need it as a delta base.
    prev: Previous | None = None

    def __len__(self) -> int:
        return len(self.pending) + sum(group.members() for group in self.groups())

    def empty(self) -> bool:
        """No subscriber at all, pending or active (`len` without counting them)."""
        group: _Group | None = self
        while group is not None:
            if group.members():
                return False
            group = group.next
        return not self.pending

    def groups(self) -> list[_Group]:
        """Every codec group, this channel's own first."""
        out: list[_Group] = []
        group: _Group | None = self
        while group is not None:
            out.append(group)
            group = group.next
        return out

    def group_for(self, codec: Codec) -> _Group:
        """The group of `codec`, taking over an unused one or adding one."""
        if self.codec is codec:
            return self  # the usual case: one codec per channel
        if self.codec is None:
            self.codec = codec  # the channel's first subscriber
            return self
        last: _Group | None = None
        for group in self.groups():
            if group.codec is codec:
                return group
            if group.codec is None or (not group.members() and not group.join_leave):
                group.codec = codec
                return group
            last = group
        assert last is not None
        last.next = _Group(codec)
        return last.next


def _encoded(codec: Codec, channel: str, pub: Publication, tf: TagsFilter | None) -> bytes:
    """`pub`'s push, or b"" when `tf` drops it (then it is never encoded)."""
    if tf is not None and not matches(tf, pub.tags):
        return b""
    return codec.publication_push(channel, pub)


def _untracked(push: Callable[[bytes], None]) -> TrackedDelivery:
    """The delivery of a filtered subscriber without positioning: dropped ones vanish."""

    def deliver(data: bytes, offset: int, epoch: str) -> None:
        if data:
            push(data)

    return deliver


def _passing(group: _Group, pub: Publication) -> set[str]:
    """The filtered subscribers of `group` whose filter lets `pub` through."""
    return {
        client_id
        for tf, members in group.filtered.items()
        if matches(tf, pub.tags)
        for client_id in members
    }


def _ignore_unencodable(client_id: str) -> None:
    """The default `Hub` report: nobody to tell."""


def _ignore_count(count: int) -> None:
    """The default count of filtered deliveries: nobody to tell."""


class Hub:
    """Subscriptions of this node's clients, by channel.

    `on_unencodable(client_id)` is called, from inside the fan-out, for each subscriber that
    did not get a publication or join/leave its codec cannot carry; it must not change the
    hub there and then. `on_filtered(count)` is told, per live publication, how many
    subscribers' tags filters dropped it (when any did).
    """

    def __init__(
        self,
        on_unencodable: Callable[[str], None] = _ignore_unencodable,
        on_filtered: Callable[[int], None] = _ignore_count,
    ) -> None:
        self._channels: dict[str, _Channel] = {}
        self._num_subs = 0
        self._on_unencodable = on_unencodable
        self._on_filtered = on_filtered

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
        codec: Codec,
        tracked: TrackedDelivery | None = None,
        delta: DeltaDelivery | None = None,
        join_leave: bool = False,
        tags_filter: TagsFilter | None = None,
    ) -> list[Buffered]:
        """Make a pending subscriber active; return what was buffered for it meanwhile,
        encoded with `codec`. A `delta` subscriber is handed what was buffered through
        `delta` instead (whole: the bases may be gone), and the list is empty. With a
        `tags_filter` (never with `delta`), a buffered publication it drops comes back as b"".

        Raises `NotEncodable` (and leaves the subscriber pending) when `codec` cannot carry
        a buffered publication.
        """
        ch = self._channels[channel]
        held = ch.pending.get(client_id, ())
        if delta is not None:
            for pub, ep in held:
                delta(DeltaPush(channel, pub, None), pub.offset, ep)
            buffered = []
        elif held:
            buffered = [(_encoded(codec, channel, p, tags_filter), p.offset, ep) for p, ep in held]
        else:
            buffered = []  # the usual case: nothing was published while subscribing
        ch.pending.pop(client_id, None)
        group = ch if ch.codec is codec else ch.group_for(codec)
        if tags_filter is not None:
            group.add_filtered(client_id, tags_filter, tracked or _untracked(push))
        elif delta is not None:
            group.delta[client_id] = delta
        elif tracked is not None:
            group.tracked[client_id] = tracked
        else:
            group.plain[client_id] = push
        if join_leave:
            group.join_leave[client_id] = push
        return buffered

    def remove(self, channel: str, client_id: str) -> bool:
        """Forget one subscriber; True when it was the channel's last one here."""
        ch = self._channels.get(channel)
        if ch is None:
            return False
        found = ch.pending.pop(client_id, None) is not None
        group: _Group | None = ch
        while group is not None:
            plain = group.plain.pop(client_id, None)
            tracked = group.tracked.pop(client_id, None)
            delta = group.delta.pop(client_id, None)
            group.join_leave.pop(client_id, None)
            filtered = group.remove_filtered(client_id)
            found = found or plain is not None or tracked is not None or delta is not None
            found = found or filtered
            group = group.next
        if found:
            self._num_subs -= 1
        if ch.empty():
            del self._channels[channel]
            return True
        return False

    def has_channel(self, channel: str) -> bool:
        """Whether any local client is subscribed (or subscribing) to `channel`."""
        return channel in self._channels

    def broadcast_publication(self, channel: str, pub: Publication, sp: StreamPosition) -> None:
        """Queue `pub` to every local subscriber of `channel`, encoding it once per codec."""
        ch = self._channels.get(channel)
        if ch is None:
            return
        pushes: DeltaPush | None = None
        group: _Group | None = ch
        while group is not None:
            if group.codec is not None:
                self._publish_to(group, group.codec, channel, pub, sp)
                if group.delta:
                    pushes = pushes or DeltaPush(channel, pub, base_for(ch.prev, pub, sp))
                    self._publish_delta(group, pushes, sp)
            group = group.next
        if ch.pending:
            held = (pub, sp.epoch)
            for buf in ch.pending.values():
                buf.append(held)
        ch.prev = (pub, sp.epoch) if pushes is not None or ch.pending else None

    def _publish_delta(self, group: _Group, pushes: DeltaPush, sp: StreamPosition) -> None:
        offset, epoch = pushes.pub.offset, sp.epoch
        for client_id, give in group.delta.items():
            try:
                give(pushes, offset, epoch)
            except NotEncodable:
                self._on_unencodable(client_id)

    def seed_previous(self, channel: str, pub: Publication, epoch: str) -> None:
        """Offer `pub` (read from history) as the channel's delta base, unless the hub already
        holds a later one of the same stream."""
        ch = self._channels.get(channel)
        if ch is None:
            return
        prev = ch.prev
        if prev is None or prev[1] != epoch or prev[0].offset < pub.offset:
            ch.prev = (pub, epoch)

    def _publish_to(
        self, group: _Group, codec: Codec, channel: str, pub: Publication, sp: StreamPosition
    ) -> None:
        if not group.plain and not group.tracked and not group.filtered:
            return  # only delta subscribers here
        try:
            data = codec.publication_push(channel, pub)
        except NotEncodable:
            self._report(group.plain.keys() | group.tracked.keys() | _passing(group, pub))
            return
        for push in group.plain.values():
            push(data)
        offset, epoch = pub.offset, sp.epoch
        if group.tracked:
            for deliver in group.tracked.values():
                deliver(data, offset, epoch)
        dropped = 0
        for tf, members in group.filtered.items():
            out = data if matches(tf, pub.tags) else b""
            if not out:
                dropped += len(members)
            for deliver in members.values():
                deliver(out, offset, epoch)
        if dropped:
            self._on_filtered(dropped)

    def broadcast_join_leave(self, channel: str, kind: str, info: ClientInfo) -> None:
        """Queue a ``join`` or ``leave`` push to the subscribers that receive them."""
        ch = self._channels.get(channel)
        if ch is None:
            return
        body = {"info": info}
        for group in ch.groups():
            if not group.join_leave or group.codec is None:
                continue
            try:
                data = group.codec.encode_push(kind, body, channel)
            except NotEncodable:
                self._report(group.join_leave.keys())
                continue
            for push in group.join_leave.values():
                push(data)

    def _report(self, client_ids: Iterable[str]) -> None:
        for client_id in client_ids:
            self._on_unencodable(client_id)

    def channels(self) -> dict[str, int]:
        """Channel → number of local subscribers."""
        return {name: len(ch) for name, ch in self._channels.items()}

    @property
    def num_channels(self) -> int:
        return len(self._channels)

    @property
    def num_subs(self) -> int:
        return self._num_subs
