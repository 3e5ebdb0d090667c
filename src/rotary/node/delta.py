"""Fossil delta compression of publications (docs/features-6.9.md "Delta compression").

A subscription negotiates delta with ``"delta": "fossil"`` in its subscribe request, in a
namespace whose ``allowed_delta_types`` lists ``fossil``; its subscribe result then says
``"delta": true``. From then on some publications it receives carry, with ``delta`` set, a
Fossil delta (`rotary.protocol.fossil`) that turns the previous publication's data into this
one's. Over JSON, as the SDKs expect, every publication of such a subscription carries its
``data`` as a JSON *string* (holding the JSON text, or the delta); over Protobuf ``data`` is
the bytes themselves.

A publication goes out as a delta only when all of these hold, else whole:

- it was published with delta allowed (`Publication.delta`: the API's ``delta`` flag or the
  namespace's ``delta_publish``);
- the subscription is positioned, has delivered the publication just before it (same epoch,
  offset one less), and has already received a whole one since it subscribed (its chain has
  begun: the first publication after a subscribe, and after a recovery that returned nothing,
  is whole);
- this node saw that previous publication (the delta base), and the delta is shorter than the
  data.

Recovered publications in a subscribe result form their own chain: the first whole, each next
a delta against the one before it. Every encoding of a publication is made once per
publication and wire format, whatever the number of subscribers (`DeltaPush`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

import orjson

from rotary.engines.base import Publication, StreamPosition
from rotary.protocol import fossil
from rotary.protocol.base import Codec, NotEncodable

if TYPE_CHECKING:
    from rotary.node.subscription import Subscription

__all__ = [
    "DELTA_FOSSIL",
    "DeltaDelivery",
    "DeltaPush",
    "Previous",
    "base_for",
    "delta_tracker",
    "recovered_publications",
]

#: The one delta type there is.
DELTA_FOSSIL = "fossil"

#: The last publication a node's hub saw in a channel, with its epoch.
Previous = tuple[Publication, str]


class DeltaPush:
    """The pushes of one publication for delta subscribers, each encoded at most once per
    wire format.

    `base` is the data of the publication just before it in the same stream, or None when
    unknown. Lives for one fan-out. The encoders raise `NotEncodable` like the codec's.
    """

    __slots__ = ("_base", "_channel", "_made", "_patch", "pub")

    def __init__(self, channel: str, pub: Publication, base: bytes | None) -> None:
        self.pub = pub
        self._channel = channel
        self._base = base
        self._patch: bytes | None = None
        self._made: dict[tuple[Codec, bool], bytes] = {}

    def full(self, codec: Codec) -> bytes:
        """The push with the whole data."""
        return self._push(codec, delta=False)

    def delta(self, codec: Codec) -> bytes:
        """The push as a delta against the base when that is possible and shorter, else
        `full`."""
        return self._push(codec, delta=self._use_patch())

    def _use_patch(self) -> bool:
        data = self.pub.data
        if self._base is None or not self.pub.use_delta or not data:
            return False
        if self._patch is None:
            self._patch = fossil.create(self._base, data)
        return len(self._patch) < len(data)

    def _push(self, codec: Codec, *, delta: bool) -> bytes:
        key = (codec, delta)
        made = self._made.get(key)
        if made is None:
            data = self._patch if delta and self._patch is not None else self.pub.data
            wire = wire_publication(self.pub, data, codec, delta=delta)
            made = self._made[key] = codec.publication_push(self._channel, wire)
        return made


def wire_publication(pub: Publication, data: bytes, codec: Codec, *, delta: bool) -> Publication:
    """`pub` as a delta subscriber receives it: `data` (the whole data or a delta), marked as
    a delta when it is one, and over JSON written as a JSON string."""
    if not codec.binary:
        try:
            text = data.decode() if data else "null"
        except UnicodeDecodeError:
            raise NotEncodable("payload is not text") from None
        data = orjson.dumps(text)
    return replace(pub, data=data, delta=delta)


def base_for(prev: Previous | None, pub: Publication, sp: StreamPosition) -> bytes | None:
    """The delta base of `pub`: the previous publication's data when it is the one just before
    `pub` in the same epoch."""
    if prev is None or pub.offset == 0:
        return None
    last, epoch = prev
    if epoch != sp.epoch or last.offset != pub.offset - 1:
        return None
    return last.data


def recovered_publications(pubs: Sequence[Publication], codec: Codec) -> list[Publication]:
    """Recovered publications for a delta subscription: the first whole, then deltas."""
    out: list[Publication] = []
    prev: bytes | None = None
    for pub in pubs:
        data = pub.data
        patch = fossil.create(prev, data) if prev is not None and data else None
        if patch is not None and len(patch) < len(data) and _fits(patch, codec):
            out.append(wire_publication(pub, patch, codec, delta=True))
        else:
            out.append(wire_publication(pub, data, codec, delta=False))
        prev = data
    return out


def _fits(patch: bytes, codec: Codec) -> bool:
    """Whether `codec` can carry `patch` (over JSON it must be text; it is for text data)."""
    if codec.binary:
        return True
    try:
        patch.decode()
    except UnicodeDecodeError:
        return False
    return True


class _Loop(Protocol):
    def call_soon(self, callback: Callable[[], None]) -> None: ...


class DeltaSession(Protocol):
    """What delta delivery needs of a client session: its codec, its push, and the node's
    `call_soon` to run a gap's consequences outside the fan-out."""

    @property
    def codec(self) -> Codec: ...

    @property
    def node(self) -> _Loop: ...

    def push(self, message: bytes) -> None: ...


#: Delivery of one publication to one delta subscriber: (pushes, offset, epoch).
DeltaDelivery = Callable[[DeltaPush, int, str], None]


def delta_tracker(s: DeltaSession, sub: Subscription, on_gap: Callable[[], None]) -> DeltaDelivery:
    """Delivery to the delta subscription `sub` of session `s`, with the position checks of
    positioned subscriptions: a gap ends delivery and calls `on_gap` (outside the fan-out).
    Raises `NotEncodable` when the session's format cannot carry the publication."""
    push, codec = s.push, s.codec

    def deliver(p: DeltaPush, offset: int, epoch: str) -> None:
        if sub.ended:
            return
        if offset == 0 or not sub.positioned:
            push(p.full(codec))
        elif epoch != sub.epoch or offset > sub.offset + 1:
            sub.ended = True
            s.node.call_soon(on_gap)
        elif offset > sub.offset:
            data = p.delta(codec) if sub.delta_ready else p.full(codec)
            sub.offset, sub.delta_ready = offset, True
            push(data)

    return deliver
