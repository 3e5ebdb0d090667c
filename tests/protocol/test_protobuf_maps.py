"""The map-subscription parts of the Protobuf codec against the official schema run by the
``protobuf`` package (the oracle, extended with the map fields of protocol v0.21.0): map
subscribe and publish commands decode to the requests the JSON codec gives, and map results
and pushes parse into the fields the JSON codec writes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from rotary.engines.base import ClientInfo, MapPublication
from rotary.protocol.codec import JSON
from rotary.protocol.messages import Command, PublishRequest, SubscribeRequest
from rotary.protocol.protobuf import PROTOBUF
from tests.sdk.protobuf_map_oracle import decode_map_replies, map_delimited, mpb
from tests.sdk.protobuf_oracle import split_frame

INFO = ClientInfo("alice", "c1", b'{"name":"Alice"}', None)
ENTRY = MapPublication("seat1", b'{"v":1}', 7, info=INFO, tags={"t": "x"}, time=1765100000000)
REMOVAL = MapPublication("seat2", b"", 8, removed=True, time=1765100000001)
DELTA = MapPublication("seat1", b"\x01patch", 9, delta=True, time=1765100000002)


def test_map_subscribe_requests_decode_with_type_phase_cursor_and_limit() -> None:
    message = mpb.Command(
        id=3,
        subscribe=mpb.SubscribeRequest(
            channel="game:1", type=1, phase=2, cursor="k9", limit=-1, epoch="e", offset=4,
            delta="fossil", asc=True,
        ),
    )  # fmt: skip

    [cmd] = PROTOBUF.decode_frame(map_delimited(message))

    expected = SubscribeRequest(
        "game:1", epoch="e", offset=4, delta="fossil", type=1, phase=2, cursor="k9", limit=-1
    )
    assert cmd == Command(3, "subscribe", expected)
    as_json = {"channel": "game:1", "type": 1, "phase": 2, "cursor": "k9", "limit": -1}
    as_json |= {"epoch": "e", "offset": 4, "delta": "fossil"}
    assert JSON.decode_frame(orjson.dumps({"id": 3, "subscribe": as_json})) == [cmd]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"type": 1, "key": "k", "data": b'{"a":1}'}, PublishRequest("c", b'{"a":1}', 1, "k")),
        ({"type": 1, "key": "k", "removed": True}, PublishRequest("c", None, 1, "k", True)),
        ({"data": b"\x00raw"}, PublishRequest("c", b"\x00raw")),
    ],
)
def test_map_publish_requests_decode_with_type_key_and_removed(
    fields: dict[str, Any], expected: PublishRequest
) -> None:
    message = mpb.Command(id=5, publish=mpb.PublishRequest(channel="c", **fields))

    assert PROTOBUF.decode_frame(map_delimited(message)) == [Command(5, "publish", expected)]


#: Map subscribe results as the node builds them: a state page, a stream page, live.
RESULTS: list[dict[str, Any]] = [
    {"type": 1, "phase": 2, "epoch": "e", "offset": 8, "state": [ENTRY], "cursor": "seat1"},
    {"type": 1, "phase": 1, "epoch": "e", "offset": 8, "publications": [ENTRY, REMOVAL]},
    {
        "type": 1,
        "epoch": "e",
        "offset": 9,
        "recoverable": True,
        "delta": True,
        "state": [ENTRY],
        "publications": [MapPublication("seat1", b'"x"', 9, delta=True)],
        "was_recovering": True,
        "recovered": True,
        "expires": True,
        "ttl": 30,
        "data": b'{"d":1}',
    },
    {"type": 1, "epoch": "", "offset": 0},
]

#: Repeated and map fields: Protobuf cannot tell an empty one from an absent one.
_COLLECTIONS = frozenset(("publications", "state", "tags"))


def _zeros_dropped(value: Any) -> Any:
    """The JSON codec's output without proto3 default values (Protobuf cannot tell them)."""
    if isinstance(value, dict):
        return {
            k: _zeros_dropped(v)
            for k, v in value.items()
            if v not in (0, "", False) and not (k in _COLLECTIONS and not v)
        }
    if isinstance(value, list):
        return [_zeros_dropped(v) for v in value]
    return value


@pytest.mark.parametrize("result", RESULTS, ids=["state", "stream", "live", "empty"])
def test_map_subscribe_results_parse_with_the_official_schema_into_what_json_carries(
    result: dict[str, Any],
) -> None:
    [reply] = decode_map_replies(PROTOBUF.encode_reply(4, "subscribe", result))

    assert reply == _zeros_dropped(orjson.loads(JSON.encode_reply(4, "subscribe", result)))


@pytest.mark.parametrize("pub", [ENTRY, REMOVAL], ids=["write", "removal"])
def test_map_change_pushes_parse_into_what_json_carries(pub: MapPublication) -> None:
    [push] = decode_map_replies(PROTOBUF.map_publication_push("game:1", pub))

    assert push == _zeros_dropped(orjson.loads(JSON.map_publication_push("game:1", pub)))


def test_a_delta_change_carries_its_bytes_and_the_delta_flag() -> None:
    [push] = decode_map_replies(PROTOBUF.map_publication_push("game:1", DELTA))

    pub = push["push"]["pub"]
    assert (pub["delta"], pub["key"], pub["offset"]) == (True, "seat1", 9)
    reply = mpb.Reply()
    reply.ParseFromString(split_frame(PROTOBUF.map_publication_push("game:1", DELTA))[0])
    assert reply.push.pub.data == b"\x01patch"


def test_json_map_push_carries_key_and_removed_but_no_time_as_centrifugo() -> None:
    assert JSON.map_publication_push("g:1", MapPublication("a", b'{"s":3}', 7, time=5)) == (
        b'{"push":{"channel":"g:1","pub":{"data":{"s":3},"offset":7,"key":"a"}}}'
    )
    assert JSON.map_publication_push("g:1", REMOVAL) == (
        b'{"push":{"channel":"g:1","pub":{"offset":8,"key":"seat2","removed":true}}}'
    )
