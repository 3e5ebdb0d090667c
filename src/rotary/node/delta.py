"""Fossil delta compression of publications (docs/features-6.9.md "Delta compression").

A subscription negotiates delta with ``"delta": "fossil"`` in its subscribe request, in a
namespace whose ``allowed_delta_types`` lists ``fossil``; its subscribe result then says
``"delta": true``. From then on, as the SDKs expect, every publication it receives carries its
``data`` as a JSON *string* holding the JSON text, and some carry instead, with
``"delta": true``, a Fossil delta (`rotary.protocol.fossil`) that turns the previous
publication's data into this one's.

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
publication, whatever the number of subscribers (`DeltaPush`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from rotary.engines.base import Publication, StreamPosition
from rotary.protocol import fossil
from rotary.protocol.codec import publication_obj

if TYPE_CHECKING:
    from rotary.node.client import ClientSession
    from rotary.node.subscription import Subscription

__all__ = [
    "DELTA_FOSSIL",
    "DeltaDelivery",
    "DeltaPush",
    "base_for",
    "delta_tracker",
    "recovered_objs",
]

#: The one delta type there is.
DELTA_FOSSIL = "fossil"

#: The last publication a node's hub saw in a channel, with its epoch.
Previous = tuple[Publication, str]


class DeltaPush:
    """The pushes of one publication for delta subscribers, each encoded at most once.

    `base` is the data of the publication just before it in the same stream, or None when
    unknown. Not thread-safe; lives for one fan-out.
    """

    __slots__ = ("_base", "_channel", "_delta", "_full", "pub")

    def __init__(self, channel: str, pub: Publication, base: bytes | None) -> None:
        self.pub = pub
        self._channel = channel
        self._base = base
        self._full: bytes | None = None
        self._delta: bytes | None = None

    def full(self) -> bytes:
        """The push with the whole data as a JSON string."""
        if self._full is None:
            self._full = self._encode(_text(self.pub.data), delta=False)
        return self._full

    def delta(self) -> bytes:
        """The push as a delta against the base when that is possible and shorter, else
        `full`."""
        if self._delta is None:
            self._delta = self._make_delta()
        return self._delta

    def _make_delta(self) -> bytes:
        data = self.pub.data
        if self._base is None or not self.pub.delta or not data:
            return self.full()
        patch = fossil.create(self._base, data)
        if len(patch) >= len(data):
            return self.full()
        try:
            text = patch.decode()
        except UnicodeDecodeError:  # data that is not UTF-8 text: no delta
            return self.full()
        return self._encode(text, delta=True)

    def _encode(self, data: str, *, delta: bool) -> bytes:
        obj = _string_obj(self.pub, data, delta=delta)
        return orjson.dumps({"push": {"channel": self._channel, "pub": obj}})


def _text(data: bytes) -> str:
    # JSON payloads are UTF-8 text; anything else must not break a fan-out.
    return data.decode(errors="replace") if data else "null"


def _string_obj(pub: Publication, data: str, *, delta: bool) -> dict[str, Any]:
    obj = publication_obj(pub)
    obj["data"] = data  # same key, same place: data stays first
    if delta:
        obj["delta"] = True
    return obj


def _is_text(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def base_for(prev: Previous | None, pub: Publication, sp: StreamPosition) -> bytes | None:
    """The delta base of `pub`: the previous publication's data when it is the one just before
    `pub` in the same epoch."""
    if prev is None or pub.offset == 0:
        return None
    last, epoch = prev
    if epoch != sp.epoch or last.offset != pub.offset - 1:
        return None
    return last.data


def recovered_objs(pubs: Sequence[Publication]) -> list[dict[str, Any]]:
    """Recovered publications for a delta subscription: the first whole, then deltas."""
    objs: list[dict[str, Any]] = []
    prev: bytes | None = None
    for pub in pubs:
        data = pub.data
        patch = fossil.create(prev, data) if prev is not None and data else None
        if patch is not None and len(patch) < len(data) and _is_text(patch):
            objs.append(_string_obj(pub, patch.decode(), delta=True))
        else:
            objs.append(_string_obj(pub, _text(data), delta=False))
        prev = data
    return objs


#: Delivery of one publication to one delta subscriber: (pushes, offset, epoch).
DeltaDelivery = Callable[[DeltaPush, int, str], None]


def delta_tracker(s: ClientSession, sub: Subscription, on_gap: Callable[[], None]) -> DeltaDelivery:
    """Delivery to the delta subscription `sub` of session `s`, with the position checks of
    positioned subscriptions: a gap ends delivery and calls `on_gap` (outside the fan-out)."""
    push = s.push

    def deliver(p: DeltaPush, offset: int, epoch: str) -> None:
        if sub.ended:
            return
        if offset == 0 or not sub.positioned:
            push(p.full())
        elif epoch != sub.epoch or offset > sub.offset + 1:
            sub.ended = True
            s.node.call_soon(on_gap)
        elif offset > sub.offset:
            sub.offset = offset
            push(p.delta() if sub.delta_ready else p.full())
            sub.delta_ready = True

    return deliver
