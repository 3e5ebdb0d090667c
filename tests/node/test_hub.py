"""The hub's fan-out across codecs: one encoding per publication and codec in use, whatever
the number of subscribers; subscribers whose codec cannot carry a publication are reported,
not sent anything."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from rotary.engines.base import ClientInfo, Publication, StreamPosition
from rotary.node.hub import Hub
from rotary.protocol.codec import JSON
from rotary.protocol.codes import ProtocolError
from rotary.protocol.filters import TagsFilter
from rotary.protocol.messages import Command
from rotary.protocol.protobuf import PROTOBUF

SP = StreamPosition(0, "")


class Counting:
    """A codec that counts the encodings asked of it and delegates to `inner`."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name, self.binary, self.ping = inner.name, inner.binary, inner.ping
        self.calls: Counter[str] = Counter()

    def decode_frame(self, frame: bytes) -> list[Command]:
        return list(self.inner.decode_frame(frame))

    def encode_reply(self, cmd_id: int, method: str, result: Mapping[str, Any]) -> bytes:
        return bytes(self.inner.encode_reply(cmd_id, method, result))

    def encode_error(self, cmd_id: int, error: ProtocolError) -> bytes:
        return bytes(self.inner.encode_error(cmd_id, error))

    def encode_push(self, kind: str, body: Mapping[str, Any], channel: str = "") -> bytes:
        self.calls[kind] += 1
        return bytes(self.inner.encode_push(kind, body, channel))

    def publication_push(self, channel: str, pub: Publication) -> bytes:
        self.calls["pub"] += 1
        return bytes(self.inner.publication_push(channel, pub))

    def join_frame(self, messages: Sequence[bytes]) -> bytes:
        return bytes(self.inner.join_frame(messages))

    def carries(self, payload: bytes) -> bool:
        return bool(self.inner.carries(payload))


def subscribe(
    hub: Hub, channel: str, client: str, codec: Any, *, join_leave: bool = False
) -> list[bytes]:
    """Add an active subscriber; return the list its pushes land in."""
    got: list[bytes] = []
    hub.add_pending(channel, client)
    hub.activate(channel, client, push=got.append, codec=codec, join_leave=join_leave)
    return got


def test_a_publication_is_encoded_once_per_codec_not_once_per_subscriber() -> None:
    hub, json_codec, pb_codec = Hub(), Counting(JSON), Counting(PROTOBUF)
    inboxes = [subscribe(hub, "c", f"j{n}", json_codec) for n in range(5)]
    inboxes += [subscribe(hub, "c", f"p{n}", pb_codec) for n in range(5)]
    pub = Publication(b'{"n":1}', offset=0)
    hub.broadcast_publication("c", pub, SP)
    assert (json_codec.calls["pub"], pb_codec.calls["pub"]) == (1, 1)
    assert all(box == [JSON.publication_push("c", pub)] for box in inboxes[:5])
    assert all(box == [PROTOBUF.publication_push("c", pub)] for box in inboxes[5:])


def test_join_and_leave_are_encoded_once_per_codec_for_their_receivers() -> None:
    hub, json_codec, pb_codec = Hub(), Counting(JSON), Counting(PROTOBUF)
    json_box = subscribe(hub, "c", "j", json_codec, join_leave=True)
    pb_box = subscribe(hub, "c", "p", pb_codec, join_leave=True)
    quiet = subscribe(hub, "c", "q", pb_codec)
    hub.broadcast_join_leave("c", "join", ClientInfo("u", "x"))
    assert (json_codec.calls["join"], pb_codec.calls["join"]) == (1, 1)
    assert len(json_box) == len(pb_box) == 1 and not quiet


def test_subscribers_whose_codec_cannot_carry_a_publication_are_reported_not_sent() -> None:
    reported: list[str] = []
    hub = Hub(on_unencodable=reported.append)
    json_box = subscribe(hub, "c", "j", JSON)
    pb_box = subscribe(hub, "c", "p", PROTOBUF)
    hub.broadcast_publication("c", Publication(b"\xff"), SP)
    assert reported == ["j"] and json_box == []
    assert pb_box == [PROTOBUF.publication_push("c", Publication(b"\xff"))]


def test_publications_buffered_while_pending_are_encoded_with_the_subscribers_codec() -> None:
    hub = Hub()
    hub.add_pending("c", "p")
    pub = Publication(b"[1]", offset=3)
    hub.broadcast_publication("c", pub, StreamPosition(3, "e"))
    buffered = hub.activate("c", "p", push=lambda _: None, codec=PROTOBUF)
    assert buffered == [(PROTOBUF.publication_push("c", pub), 3, "e")]


def test_a_codec_group_left_empty_is_reused_and_removal_counts_every_group() -> None:
    hub = Hub()
    subscribe(hub, "c", "j", JSON)
    subscribe(hub, "c", "p", PROTOBUF)
    assert hub.channels() == {"c": 2} and hub.num_subs == 2
    assert hub.remove("c", "j") is False
    later = subscribe(hub, "c", "p2", PROTOBUF)
    hub.broadcast_publication("c", Publication(b"1"), SP)
    assert later == [PROTOBUF.publication_push("c", Publication(b"1"))]
    assert hub.remove("c", "p") is False and hub.remove("c", "p2") is True
    assert hub.num_subs == 0 and not hub.has_channel("c")


ENG = TagsFilter(key="team", cmp="eq", val="eng")


def test_filtered_subscribers_share_the_one_encoding_and_get_only_what_passes() -> None:
    hub, codec = Hub(), Counting(JSON)
    everything = subscribe(hub, "c", "all", codec)
    filtered: list[list[bytes]] = [[], []]
    for n, box in enumerate(filtered):
        hub.add_pending("c", f"f{n}")
        # Equal filters from different requests: one group, one evaluation per publication.
        tf = TagsFilter(key="team", cmp="eq", val="eng")
        hub.activate("c", f"f{n}", push=box.append, codec=codec, tags_filter=tf)
    eng, sales = Publication(b"1", tags={"team": "eng"}), Publication(b"2", tags={"team": "x"})
    hub.broadcast_publication("c", eng, SP)
    hub.broadcast_publication("c", sales, SP)
    assert codec.calls["pub"] == 2
    assert everything == [JSON.publication_push("c", p) for p in (eng, sales)]
    assert filtered == [[JSON.publication_push("c", eng)]] * 2
    assert hub.remove("c", "f0") is False and hub.remove("c", "f1") is False
    assert hub.channels() == {"c": 1}


def test_a_positioned_filtered_subscriber_is_told_the_offset_of_what_its_filter_drops() -> None:
    hub, seen = Hub(), []
    hub.add_pending("c", "p")
    held = Publication(b"0", offset=1, tags={"team": "x"})
    hub.broadcast_publication("c", held, StreamPosition(1, "e"))

    def track(data: bytes, offset: int, epoch: str) -> None:
        seen.append((data, offset, epoch))

    buffered = hub.activate(
        "c", "p", push=lambda _: None, codec=JSON, tracked=track, tags_filter=ENG
    )
    eng = Publication(b"1", offset=2, tags={"team": "eng"})
    hub.broadcast_publication("c", eng, StreamPosition(2, "e"))
    hub.broadcast_publication("c", Publication(b"2", offset=3), StreamPosition(3, "e"))
    assert buffered == [(b"", 1, "e")]
    assert seen == [(JSON.publication_push("c", eng), 2, "e"), (b"", 3, "e")]


def test_an_unencodable_publication_reports_only_filtered_subscribers_it_would_reach() -> None:
    reported: list[str] = []
    hub = Hub(on_unencodable=reported.append)
    for client, tf in (("eng", ENG), ("ops", TagsFilter(key="team", cmp="eq", val="ops"))):
        hub.add_pending("c", client)
        hub.activate("c", client, push=lambda _: None, codec=JSON, tags_filter=tf)
    hub.broadcast_publication("c", Publication(b"\xff", tags={"team": "eng"}), SP)
    assert reported == ["eng"]
