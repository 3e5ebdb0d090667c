"""The Protobuf codec against the official schema run by the ``protobuf`` package (the oracle):
every command the oracle writes decodes to the request the JSON codec would give, every
reply and push Rotary writes parses with the oracle into the fields the JSON codec writes,
and no byte string makes the decoder raise anything but ProtocolViolation."""

from __future__ import annotations

import contextlib
import random
from typing import Any

import orjson
import pytest

from rotary.engines.base import ClientInfo, Publication
from rotary.protocol import codec as json_codec
from rotary.protocol.base import NotEncodable, ProtocolViolation
from rotary.protocol.codec import JSON
from rotary.protocol.codes import ErrorCode
from rotary.protocol.filters import MAX_DEPTH, TOO_DEEP
from rotary.protocol.messages import (
    NO_SUBS,
    Command,
    ConnectRequest,
    HistoryRequest,
    PingRequest,
    PresenceRequest,
    PresenceStatsRequest,
    PublishRequest,
    RefreshRequest,
    RpcRequest,
    SendRequest,
    SubRefreshRequest,
    SubscribeRequest,
    UnsubscribeRequest,
)
from rotary.protocol.protobuf import PROTOBUF
from tests.sdk.protobuf_oracle import decode_replies, delimited, pb, split_frame, to_plain

# ---------------------------------------------------------------------------- commands

COMMANDS: list[tuple[Any, Command]] = [
    (
        pb.Command(id=1, connect=pb.ConnectRequest(token="t", name="js", version="5", data=b"{}")),
        Command(1, "connect", ConnectRequest("t", b"{}", NO_SUBS, "js", "5")),
    ),
    (
        pb.Command(
            id=2,
            connect=pb.ConnectRequest(
                subs={"news": pb.SubscribeRequest(recover=True, offset=7, epoch="ep")},
                headers={"x": "y"},
                flag=3,
            ),
        ),
        Command(
            2,
            "connect",
            ConnectRequest(subs={"news": SubscribeRequest(recover=True, epoch="ep", offset=7)}),
        ),
    ),
    (
        pb.Command(
            id=3,
            subscribe=pb.SubscribeRequest(
                channel="c",
                token="tok",
                recover=True,
                epoch="e",
                offset=2**64 - 1,
                data=b"\x00\xff",
                positioned=True,
                recoverable=True,
                join_leave=True,
                delta="fossil",
                flag=3,
            ),
        ),
        Command(
            3,
            "subscribe",
            SubscribeRequest(
                "c",
                "tok",
                True,
                "e",
                2**64 - 1,
                b"\x00\xff",
                True,
                True,
                True,
                "fossil",
                flag=3,
            ),
        ),
    ),
    (
        pb.Command(id=4, unsubscribe=pb.UnsubscribeRequest(channel="c")),
        Command(4, "unsubscribe", UnsubscribeRequest("c")),
    ),
    (
        pb.Command(id=5, publish=pb.PublishRequest(channel="c", data=b"\x01binary")),
        Command(5, "publish", PublishRequest("c", b"\x01binary")),
    ),
    (
        pb.Command(id=6, presence=pb.PresenceRequest(channel="c")),
        Command(6, "presence", PresenceRequest("c")),
    ),
    (
        pb.Command(id=7, presence_stats=pb.PresenceStatsRequest(channel="c")),
        Command(7, "presence_stats", PresenceStatsRequest("c")),
    ),
    (
        pb.Command(
            id=8,
            history=pb.HistoryRequest(
                channel="c", limit=-1, since=pb.StreamPosition(offset=4, epoch="e"), reverse=True
            ),
        ),
        Command(8, "history", HistoryRequest("c", -1, (4, "e"), True)),
    ),
    (
        pb.Command(id=9, history=pb.HistoryRequest(channel="c", limit=10)),
        Command(9, "history", HistoryRequest("c", 10, None, False)),
    ),
    (
        pb.Command(id=10, rpc=pb.RPCRequest(data=b"x", method="m")),
        Command(10, "rpc", RpcRequest(b"x", "m")),
    ),
    (pb.Command(send=pb.SendRequest(data=b"hi")), Command(0, "send", SendRequest(b"hi"))),
    (
        pb.Command(id=11, refresh=pb.RefreshRequest(token="t")),
        Command(11, "refresh", RefreshRequest("t")),
    ),
    (
        pb.Command(id=12, sub_refresh=pb.SubRefreshRequest(channel="c", token="t")),
        Command(12, "sub_refresh", SubRefreshRequest("c", "t")),
    ),
    (pb.Command(id=13, ping=pb.PingRequest()), Command(13, "ping", PingRequest())),
    (pb.Command(id=14, publish=pb.PublishRequest()), Command(14, "publish", PublishRequest())),
    (pb.Command(), Command(0)),
]


@pytest.mark.parametrize(("message", "expected"), COMMANDS, ids=lambda v: str(v)[:20])
def test_every_command_of_the_official_schema_decodes_to_its_typed_request(
    message: Any, expected: Command
) -> None:
    assert PROTOBUF.decode_frame(delimited(message)) == [expected]


def test_several_length_prefixed_commands_in_one_frame_decode_in_order() -> None:
    frame = delimited(*(message for message, _ in COMMANDS))
    assert PROTOBUF.decode_frame(frame) == [expected for _, expected in COMMANDS]


def test_a_single_zero_byte_is_a_pong_an_empty_command_with_id_0() -> None:
    assert PROTOBUF.decode_frame(b"\x00") == [Command(0)]


def test_the_first_request_in_protocol_order_wins_like_the_json_codec() -> None:
    both = pb.Command(
        id=1, publish=pb.PublishRequest(channel="p"), subscribe=pb.SubscribeRequest(channel="s")
    )
    [cmd] = PROTOBUF.decode_frame(delimited(both))
    [json_cmd] = JSON.decode_frame(
        b'{"id":1,"publish":{"channel":"p"},"subscribe":{"channel":"s"}}'
    )
    assert cmd == json_cmd == Command(1, "subscribe", SubscribeRequest("s"))


def test_unknown_fields_of_a_newer_schema_are_skipped() -> None:
    body = pb.Command(id=1, subscribe=pb.SubscribeRequest(channel="c")).SerializeToString()
    # Field 99 as varint, 64-bit and 32-bit values, and a length-delimited field 100.
    extra = b"\x98\x06\x05" + b"\x99\x06" + bytes(8) + b"\x9d\x06" + bytes(4) + b"\xa2\x06\x02ab"
    frame = bytes((len(body + extra),)) + body + extra
    assert PROTOBUF.decode_frame(frame) == [Command(1, "subscribe", SubscribeRequest("c"))]


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x05\x08",  # length beyond the frame
        b"\x80",  # truncated length varint
        b"\x02\x08\x80",  # truncated id varint
        b"\x02\x0b\x00",  # wire type 3 (start group)
        b"\x02\x0a\x01",  # id (varint field) sent as length-delimited, truncated
        b"\x03\x0a\x01\x00",  # id sent as length-delimited
        b"\x02\x20\x01",  # connect (message field) sent as a varint
        b"\x04\x2a\x02\x0a\xff",  # subscribe channel with a truncated string
        b"\x05\x2a\x03\x0a\x01\xff",  # subscribe channel that is not UTF-8
        b"\x02\x00\x00",  # field number 0
        b"\x01\x0d",  # 32-bit value cut short
        b"\x0b" + b"\x08" + b"\xff" * 10,  # varint longer than ten bytes
    ],
)
def test_malformed_frames_raise_protocol_violation(frame: bytes) -> None:
    with pytest.raises(ProtocolViolation):
        PROTOBUF.decode_frame(frame)


def test_random_bytes_never_raise_anything_but_protocol_violation() -> None:
    rng = random.Random(17)
    valid = delimited(*(message for message, _ in COMMANDS))
    for _ in range(3000):
        frame = bytearray(valid[: rng.randrange(1, len(valid))])
        for _ in range(rng.randrange(1, 4)):
            frame[rng.randrange(len(frame))] = rng.randrange(256)
        with contextlib.suppress(ProtocolViolation):
            PROTOBUF.decode_frame(bytes(frame))
    for _ in range(2000):
        noise = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        with contextlib.suppress(ProtocolViolation):
            PROTOBUF.decode_frame(noise)


# ---------------------------------------------------------------------------- replies

INFO = ClientInfo("alice", "c1", b'{"name":"Alice"}', b'{"role":"x"}')
PUB = Publication(b'{"text":"hi"}', offset=5, info=INFO, tags={"k": "v"})

#: (method, result as the node builds it). Each is encoded by both codecs and compared.
RESULTS: list[tuple[str, dict[str, Any]]] = [
    (
        "connect",
        {
            "client": "c1",
            "version": "0.1.0",
            "expires": True,
            "ttl": 30,
            "data": b'{"a":1}',
            "subs": {"news": {"recoverable": True, "epoch": "e", "offset": 3, "positioned": True}},
            "ping": 25,
            "pong": True,
            "session": "s",
            "node": "n",
            "time": 1700000000000,
        },
    ),
    ("connect", {"client": "c1", "version": "0.1.0", "subs": {"plain": {}}}),
    (
        "subscribe",
        {
            "expires": True,
            "ttl": 10,
            "recoverable": True,
            "positioned": True,
            "epoch": "e",
            "offset": 2**64 - 1,
            "was_recovering": True,
            "recovered": True,
            "publications": [PUB, Publication(b"[1]", offset=6)],
            "data": b'"d"',
        },
    ),
    ("subscribe", {}),
    ("unsubscribe", {}),
    ("publish", {}),
    ("presence", {"presence": {"c1": INFO, "c2": ClientInfo("", "c2")}}),
    ("presence", {"presence": {}}),
    ("presence_stats", {"num_clients": 2, "num_users": 1}),
    ("history", {"publications": [PUB], "epoch": "e", "offset": 5}),
    ("rpc", {"data": b'{"ok":true}'}),
    ("rpc", {}),
    ("refresh", {"client": "c1", "version": "0.1.0", "expires": True, "ttl": 60}),
    ("sub_refresh", {"expires": True, "ttl": 60}),
]


def _json_message(message: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = orjson.loads(message)
    return parsed


#: Map and repeated fields: Protobuf cannot tell an empty one from an absent one.
_COLLECTIONS = frozenset(("presence", "publications", "subs", "tags"))


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


@pytest.mark.parametrize(("method", "result"), RESULTS, ids=[m for m, _ in RESULTS])
def test_every_reply_parses_with_the_official_schema_into_what_json_carries(
    method: str, result: dict[str, Any]
) -> None:
    [reply] = decode_replies(PROTOBUF.encode_reply(42, method, result))
    assert reply == _zeros_dropped(_json_message(JSON.encode_reply(42, method, result)))
    assert method in reply, "the result is present even when empty"


def test_error_reply_carries_code_message_and_temporary() -> None:
    error = ErrorCode.INTERNAL
    [reply] = decode_replies(PROTOBUF.encode_error(3, error))
    assert reply == _zeros_dropped(_json_message(JSON.encode_error(3, error)))
    assert reply["error"]["code"] == error.code


PUSHES: list[tuple[str, dict[str, Any], str]] = [
    ("join", {"info": INFO}, "c"),
    ("leave", {"info": ClientInfo("u", "c2")}, "c"),
    ("unsubscribe", {"code": 2500, "reason": "insufficient state"}, "c"),
    ("message", {"data": b'{"m":1}'}, ""),
    ("subscribe", {"recoverable": True, "epoch": "e", "offset": 1, "positioned": True}, "c"),
    ("subscribe", {"data": b"null"}, "c"),
    ("disconnect", {"code": 3001, "reason": "shutdown"}, ""),
    ("refresh", {"expires": True, "ttl": 30}, ""),
    ("connect", {"client": "c1", "version": "1", "subs": {"a": {}}, "ttl": 3}, ""),
]


@pytest.mark.parametrize(("kind", "body", "channel"), PUSHES, ids=[k for k, _, _ in PUSHES])
def test_every_push_parses_with_the_official_schema_into_what_json_carries(
    kind: str, body: dict[str, Any], channel: str
) -> None:
    [reply] = decode_replies(PROTOBUF.encode_push(kind, body, channel))
    assert reply == _zeros_dropped(_json_message(JSON.encode_push(kind, body, channel)))


def test_connect_push_uses_its_own_field_numbers() -> None:
    message = PROTOBUF.encode_push("connect", {"expires": True, "ttl": 3, "data": b"1"})
    reply = pb.Reply()
    reply.ParseFromString(split_frame(message)[0])
    assert (reply.push.connect.expires, reply.push.connect.ttl, reply.push.connect.data) == (
        True,
        3,
        b"1",
    )


def test_publication_push_parses_into_what_json_carries() -> None:
    for pub in (PUB, Publication(b""), Publication(b"1", tags={"a": "b", "c": "d"})):
        [reply] = decode_replies(PROTOBUF.publication_push("chan", pub))
        expected = _zeros_dropped(_json_message(JSON.publication_push("chan", pub)))
        if not pub.data:
            del expected["push"]["pub"]["data"]  # JSON writes null for no data
        assert reply == expected


def test_binary_payloads_reach_protobuf_as_their_bytes_and_are_refused_by_json() -> None:
    binary = Publication(b"\x00\xffraw", info=ClientInfo("u", "c", b"\x01", None))
    reply = pb.Reply()
    reply.ParseFromString(split_frame(PROTOBUF.publication_push("c", binary))[0])
    assert reply.push.pub.data == b"\x00\xffraw"
    assert reply.push.pub.info.conn_info == b"\x01"
    with pytest.raises(NotEncodable):
        JSON.publication_push("c", binary)
    with pytest.raises(NotEncodable):
        JSON.encode_reply(1, "history", {"publications": [binary]})
    with pytest.raises(NotEncodable):
        JSON.encode_push("join", {"info": binary.info}, "c")
    assert PROTOBUF.carries(b"\x00") and not JSON.carries(b"\x00") and JSON.carries(b"{}")


def test_ping_is_the_single_zero_byte_and_messages_join_by_concatenation() -> None:
    assert PROTOBUF.ping == b"\x00"
    first = PROTOBUF.encode_reply(1, "publish", {})
    second = PROTOBUF.publication_push("c", PUB)
    frame = PROTOBUF.join_frame([first, PROTOBUF.ping, second])
    replies = decode_replies(frame)
    assert [r.get("id") for r in replies] == [1, None, None]
    assert replies[1] == {}


def test_large_messages_carry_multi_byte_lengths() -> None:
    big = Publication(b'"' + b"x" * 70000 + b'"', offset=2**40)
    reply = pb.Reply()
    [message] = split_frame(PROTOBUF.publication_push("c", big))
    reply.ParseFromString(message)
    assert len(reply.push.pub.data) == 70002 and reply.push.pub.offset == 2**40


def test_decoded_commands_round_trip_through_the_oracle() -> None:
    for message, expected in COMMANDS:
        reparsed = pb.Command()
        reparsed.ParseFromString(split_frame(delimited(message))[0])
        assert to_plain(reparsed) == to_plain(message)
        assert PROTOBUF.decode_frame(delimited(reparsed)) == [expected]


def test_json_codec_output_is_unchanged_by_the_seam() -> None:
    # The bytes the JSON codec wrote before Protobuf existed, for the hot messages.
    assert JSON.publication_push("c", Publication(b'{"a":1}', offset=1)) == (
        b'{"push":{"channel":"c","pub":{"data":{"a":1},"offset":1}}}'
    )
    assert JSON.encode_reply(1, "subscribe", {}) == b'{"id":1,"subscribe":{}}'
    assert JSON.join_frame([b"{}", b"{}"]) == b"{}\n{}"
    assert JSON.ping == json_codec.PING == b"{}"


@pytest.mark.parametrize("size", [127, 128, 300, 16383, 16384, 70000])
def test_fields_of_every_length_prefix_size_decode(size: int) -> None:
    token, data = "t" * size, bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    message = pb.Command(id=2**32 - 1, subscribe=pb.SubscribeRequest(token=token, data=data))
    [cmd] = PROTOBUF.decode_frame(delimited(message))
    assert cmd == Command(2**32 - 1, "subscribe", SubscribeRequest(token=token, data=data))


def test_a_delta_publication_carries_the_delta_field_in_both_formats() -> None:
    pub = Publication(b'"patch"', offset=2, delta=True)
    reply = pb.Reply()
    reply.ParseFromString(split_frame(PROTOBUF.publication_push("c", pub))[0])
    assert (reply.push.pub.delta, reply.push.pub.data) == (True, b'"patch"')
    assert orjson.loads(JSON.publication_push("c", pub))["push"]["pub"]["delta"] is True
    assert b"delta" not in JSON.publication_push("c", Publication(b"1", use_delta=True))


def test_subscribe_type_and_flag_decode_from_protobuf() -> None:
    # The oracle's schema predates `type` (field 15): appended by hand.
    body = pb.SubscribeRequest(channel="c", flag=2).SerializeToString() + b"\x78\x04"
    command = pb.Command(id=7).SerializeToString() + b"\x2a" + bytes([len(body)]) + body
    [cmd] = PROTOBUF.decode_frame(bytes([len(command)]) + command)
    assert cmd == Command(7, "subscribe", SubscribeRequest("c", flag=2, type=4))


def test_a_tags_filter_from_the_official_schema_decodes_as_its_json_form() -> None:
    tf = {"op": "or", "nodes": [{"key": "a", "cmp": "nin", "vals": ["x", "é"]}, {"cmp": "ex"}]}
    node = pb.FilterNode(
        op="or",
        nodes=[pb.FilterNode(key="a", cmp="nin", vals=["x", "é"]), pb.FilterNode(cmp="ex")],
    )
    [cmd] = PROTOBUF.decode_frame(
        delimited(pb.Command(id=4, subscribe=pb.SubscribeRequest(channel="c", tf=node)))
    )
    [as_json] = JSON.decode_frame(orjson.dumps({"id": 4, "subscribe": {"channel": "c", "tf": tf}}))
    assert cmd == as_json
    assert isinstance(cmd.request, SubscribeRequest) and cmd.request.tf is not None


def test_a_tags_filter_deeper_than_the_limit_is_cut_in_protobuf_too() -> None:
    node = pb.FilterNode(key="a", cmp="ex")
    for _ in range(60):  # the oracle itself refuses about 100 levels
        node = pb.FilterNode(op="not", nodes=[node])
    frame = delimited(pb.Command(id=4, subscribe=pb.SubscribeRequest(channel="c", tf=node)))
    [cmd] = PROTOBUF.decode_frame(frame)
    assert isinstance(cmd.request, SubscribeRequest) and cmd.request.tf is not None
    depth, tf = 1, cmd.request.tf
    while tf.nodes:
        depth, tf = depth + 1, tf.nodes[0]
    assert (depth, tf) == (MAX_DEPTH + 1, TOO_DEEP)


def test_publish_debounce_is_field_19_of_the_subscribe_result() -> None:
    # The oracle's schema predates `publish_debounce` (19): the protobuf package keeps it as
    # an unknown field, read back here from the serialized form it preserves.
    reply = pb.Reply()
    reply.ParseFromString(
        split_frame(PROTOBUF.encode_reply(5, "subscribe", {"publish_debounce": 300}))[0]
    )
    assert reply.subscribe.SerializeToString() == b"\x98\x01" + bytes([0xAC, 0x02])
    as_json = orjson.loads(JSON.encode_reply(5, "subscribe", {"publish_debounce": 300}))
    assert as_json["subscribe"] == {"publish_debounce": 300}
