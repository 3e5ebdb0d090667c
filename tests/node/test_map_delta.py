"""Fossil delta on map subscriptions, without sockets: per-key catch-up chains, the live
pushes of one change per format, and the map hub falling back to whole data after a gap."""

from __future__ import annotations

import orjson

from rotary.engines.base import MapPublication, StreamPosition
from rotary.node.map_delta import MapPush, recovered_map_publications
from rotary.node.maps import MapHub, MapSubscriber
from rotary.protocol import fossil
from rotary.protocol.codec import JSON
from rotary.protocol.protobuf import PROTOBUF

A1, A2, A3 = (b'{"t":"' + b"x" * 60 + tail + b'"}' for tail in (b"1", b"2", b"3"))


def test_catch_up_starts_each_key_whole_and_a_removal_ends_its_chain() -> None:
    pubs = [
        MapPublication("a", A1, 1),
        MapPublication("b", A1, 2),
        MapPublication("a", A2, 3),
        MapPublication("a", b"", 4, removed=True),
        MapPublication("a", A3, 5),
    ]

    out = recovered_map_publications(pubs, PROTOBUF)

    assert [p.delta for p in out] == [False, False, True, False, False]
    assert fossil.apply(A1, out[2].data) == A2
    assert out[4].data == A3


def test_over_json_every_data_is_a_string_holding_the_text_or_the_delta() -> None:
    out = recovered_map_publications([MapPublication("a", A1, 1), MapPublication("a", A2, 2)], JSON)

    assert orjson.loads(out[0].data) == A1.decode()
    assert fossil.apply(A1, orjson.loads(out[1].data).encode()) == A2


def test_a_live_change_is_a_delta_only_for_delta_subscribers_with_a_base() -> None:
    pushes = MapPush("m:1", MapPublication("a", A2, 2, prev=A1))

    plain = orjson.loads(pushes.encode(JSON, delta=False))["push"]["pub"]
    delta = orjson.loads(pushes.encode(JSON, delta=True))["push"]["pub"]

    assert plain == {"data": orjson.loads(A2), "offset": 2, "key": "a"}
    assert delta["delta"] is True
    assert fossil.apply(A1, delta["data"].encode()) == A2
    assert pushes.encode(JSON, delta=True) is pushes.encode(JSON, delta=True)  # made once
    no_base = orjson.loads(MapPush("m:1", MapPublication("b", A2, 3)).encode(JSON, delta=True))
    assert no_base["push"]["pub"]["data"] == A2.decode()


def test_a_subscriber_that_missed_a_change_gets_later_ones_whole() -> None:
    hub, got = MapHub(), []
    hub.add_pending("m:1", "c1", MapSubscriber(got.append, JSON, delta=True))
    hub.activate("m:1", "c1", StreamPosition(1, "e"))

    hub.broadcast("m:1", MapPublication("a", A2, 2, prev=A1), StreamPosition(2, "e"))
    hub.broadcast("m:1", MapPublication("a", A3, 4, prev=A2), StreamPosition(4, "e"))  # 3 lost
    hub.broadcast("m:1", MapPublication("a", A1, 5, prev=A3), StreamPosition(5, "e"))

    assert [orjson.loads(m)["push"]["pub"].get("delta", False) for m in got] == [True, False, False]


def test_a_change_json_cannot_carry_reports_the_json_subscriber_only() -> None:
    hub, got, unencodable = MapHub(), [], []
    hub.add_pending(
        "m:1", "j", MapSubscriber(got.append, JSON, unencodable=lambda: unencodable.append("j"))
    )
    hub.add_pending("m:1", "p", MapSubscriber(got.append, PROTOBUF))
    for client in ("j", "p"):
        hub.activate("m:1", client, StreamPosition(0, "e"))

    hub.broadcast("m:1", MapPublication("a", b"\xff\x00", 1), StreamPosition(1, "e"))

    assert unencodable == ["j"] and len(got) == 1
