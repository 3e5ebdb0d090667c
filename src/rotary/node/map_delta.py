"""Fossil delta on map subscriptions (docs/map-subscriptions.md "Delta compression").

A map subscription negotiates delta as a stream subscription does (``"delta": "fossil"`` in
a namespace whose ``allowed_delta_types`` lists it). Deltas are per key: a change of a key
may carry a Fossil delta against that key's previous data, which the subscriber holds from
the state, an earlier change or its catch-up. As Centrifugo:

- over JSON, every ``data`` such a subscription receives (state entries, stream pages,
  catch-up and live changes) is a JSON *string* holding the JSON text or the delta; over
  Protobuf it is the bytes themselves;
- in the catch-up of the live reply, the first change of each key is whole and the later
  ones of the same key deltas against the one before; a removal ends the key's chain;
- a live change is a delta when the broker handed along the key's previous data (it was
  published with delta allowed over an existing key) and the delta is shorter than the
  data; otherwise it goes whole (a live removal over JSON with the empty string as data).

Every encoding of a live change is made once per wire format and kind of subscriber
(`MapPush`), whatever the number of subscribers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import orjson

from rotary.engines.base import MapPublication
from rotary.protocol import fossil
from rotary.protocol.base import Codec, NotEncodable

__all__ = ["MapPush", "delta_state", "recovered_map_publications", "wire_map_publication"]


def wire_map_publication(
    pub: MapPublication, data: bytes, codec: Codec, *, delta: bool
) -> MapPublication:
    """`pub` as a delta subscriber receives it: `data` (whole or a delta) marked as a delta
    when it is one, over JSON as a JSON string. Raises `NotEncodable` for data that is not
    text, which a JSON string cannot hold."""
    if data and not codec.binary:
        try:
            data = orjson.dumps(data.decode())
        except UnicodeDecodeError:
            raise NotEncodable("payload is not text") from None
    return replace(pub, data=data, delta=delta, prev=None)


def delta_state(entries: Sequence[MapPublication], codec: Codec) -> list[MapPublication]:
    """State entries or stream-page changes for a delta subscriber: whole, in its form."""
    return [wire_map_publication(e, e.data, codec, delta=False) for e in entries]


def recovered_map_publications(
    pubs: Sequence[MapPublication], codec: Codec
) -> list[MapPublication]:
    """The catch-up of a delta subscriber's live reply: per key, the first change whole and
    each next a delta against the one before (when shorter); removals are never deltas."""
    out: list[MapPublication] = []
    prev_by_key: dict[str, bytes] = {}
    for pub in pubs:
        prev = prev_by_key.pop(pub.key, None)
        if not pub.removed:
            prev_by_key[pub.key] = pub.data
        patch = _patch(prev, pub, codec)
        if patch is not None:
            out.append(wire_map_publication(pub, patch, codec, delta=True))
        else:
            out.append(wire_map_publication(pub, pub.data, codec, delta=False))
    return out


def _patch(base: bytes | None, pub: MapPublication, codec: Codec) -> bytes | None:
    """The delta from `base` to `pub`'s data when there is a base, it is shorter than the
    data, and `codec` can carry it (over JSON it must be text); else None."""
    patch = _raw_patch(base, pub)
    return patch if patch is not None and (codec.binary or _is_text(patch)) else None


def _raw_patch(base: bytes | None, pub: MapPublication) -> bytes | None:
    """The delta from `base` to `pub`'s data when there is a base and it is shorter."""
    if base is None or pub.removed or not pub.data:
        return None
    patch = fossil.create(base, pub.data)
    return patch if len(patch) < len(pub.data) else None


class MapPush:
    """The pushes of one map change, each encoded at most once per (format, delta).

    Lives for one fan-out. `encode` raises `NotEncodable` like the codec's encoders.
    """

    __slots__ = ("_channel", "_made", "_patch", "pub")

    def __init__(self, channel: str, pub: MapPublication) -> None:
        self.pub = pub
        self._channel = channel
        self._made: dict[tuple[Codec, bool], bytes] = {}
        self._patch: bytes | bool | None = False  # False: not computed yet

    def encode(self, codec: Codec, *, delta: bool) -> bytes:
        """The push for a subscriber of `codec`, with fossil delta negotiated or not."""
        key = (codec, delta)
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = codec.map_publication_push(self._channel, self._wire(key))
        return made

    def _wire(self, key: tuple[Codec, bool]) -> MapPublication:
        codec, delta = key
        pub = self.pub
        if not delta:
            return replace(pub, prev=None) if pub.prev is not None else pub
        if self._patch is False:
            self._patch = _raw_patch(pub.prev, pub)
        patch = self._patch
        if isinstance(patch, bytes) and (codec.binary or _is_text(patch)):
            return wire_map_publication(pub, patch, codec, delta=True)
        if not pub.data and not codec.binary:  # a removal: Centrifugo sends the empty string
            return replace(pub, data=b'""', prev=None)
        return wire_map_publication(pub, pub.data, codec, delta=False)


def _is_text(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True
