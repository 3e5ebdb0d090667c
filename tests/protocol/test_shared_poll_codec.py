"""The shared poll fields of protocol v0.21 in both codecs: track/untrack requests in, keyed
publications and the track reply out. Protobuf bytes are written here by hand from
client.proto's field numbers, independently of the codec."""

from __future__ import annotations

import orjson
import pytest

from rotary.protocol.base import ProtocolViolation
from rotary.protocol.codec import JSON
from rotary.protocol.messages import KeyedItem, SubRefreshRequest, TrackBatch
from rotary.protocol.protobuf import PROTOBUF


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, value: bytes | int) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


EXPECTED = SubRefreshRequest(
    channel="poll:1",
    type=1,
    track=(TrackBatch("1:2:ab", (KeyedItem("k1"), KeyedItem("k2", 7))),),
    untrack=("old",),
)


def test_json_track_request_is_decoded_with_batches_and_untrack() -> None:
    line = orjson.dumps(
        {
            "id": 3,
            "sub_refresh": {
                "channel": "poll:1",
                "type": 1,
                "track": [
                    {"signature": "1:2:ab", "items": [{"key": "k1"}, {"key": "k2", "version": 7}]}
                ],
                "untrack": ["old"],
            },
        }
    )
    (cmd,) = JSON.decode_frame(line)
    assert cmd.request == EXPECTED


def test_protobuf_track_request_is_decoded_with_batches_and_untrack() -> None:
    items = field(2, field(1, b"k1")) + field(2, field(1, b"k2") + field(2, 7))
    body = field(1, b"poll:1") + field(3, 1) + field(4, field(1, b"1:2:ab") + items)
    body += field(5, b"old")
    command = field(1, 3) + field(15, body)
    (cmd,) = PROTOBUF.decode_frame(varint(len(command)) + command)
    assert cmd.request == EXPECTED


@pytest.mark.parametrize(
    "sub_refresh",
    [
        {"channel": "c", "type": 1, "track": {}},
        {"channel": "c", "type": 1, "track": ["x"]},
        {"channel": "c", "type": 1, "track": [{"items": [{"key": 1}]}]},
        {"channel": "c", "type": 2, "untrack": [1]},
    ],
)
def test_malformed_json_track_requests_are_protocol_violations(sub_refresh: dict) -> None:
    with pytest.raises(ProtocolViolation):
        JSON.decode_frame(orjson.dumps({"id": 1, "sub_refresh": sub_refresh}))


def test_keyed_publication_push_carries_key_and_version_in_json() -> None:
    push = JSON.encode_push("pub", {"data": b'{"a":1}', "key": "k", "version": 9}, "poll:1")
    assert orjson.loads(push) == {
        "push": {"channel": "poll:1", "pub": {"data": {"a": 1}, "key": "k", "version": 9}}
    }


def test_keyed_publication_push_carries_key_version_and_removed_in_protobuf() -> None:
    push = PROTOBUF.encode_push("pub", {"data": b"{}", "key": "k", "version": 9}, "poll:1")
    pub = field(4, b"{}") + field(11, b"k") + field(16, 9)
    reply = field(4, field(2, b"poll:1") + field(4, pub))
    assert push == varint(len(reply)) + reply
    removal = PROTOBUF.encode_push("pub", {"key": "k", "removed": True}, "c")
    reply = field(4, field(2, b"c") + field(4, field(11, b"k") + field(12, 1)))
    assert removal == varint(len(reply)) + reply


def test_track_reply_lists_items_after_the_ttl_in_protobuf() -> None:
    result = {"expires": True, "ttl": 60, "items": [{"data": b"1", "key": "k", "version": 2}]}
    encoded = PROTOBUF.encode_reply(4, "sub_refresh", result)
    item = field(4, b"1") + field(11, b"k") + field(16, 2)
    body = field(1, 1) + field(2, 60) + field(3, item)
    reply = field(1, 4) + field(15, body)
    assert encoded == varint(len(reply)) + reply


def test_shared_poll_subscribe_reply_echoes_type_4_in_protobuf() -> None:
    encoded = PROTOBUF.encode_reply(2, "subscribe", {"epoch": "abcdefgh", "type": 4})
    reply = field(1, 2) + field(6, field(6, b"abcdefgh") + field(15, 4))
    assert encoded == varint(len(reply)) + reply
