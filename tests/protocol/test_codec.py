"""The JSON codec: framing rules of docs/protocol.md "Framing", schema of docs/protocol.md
"Messages", and fuzzing."""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from rotary.engines.base import ClientInfo, Publication
from rotary.protocol.codec import (
    PING,
    ProtocolViolation,
    client_info_obj,
    decode_frame,
    encode_error,
    encode_push,
    encode_reply,
    join_frame,
    publication_push,
)
from rotary.protocol.codes import ErrorCode
from rotary.protocol.filters import MAX_DEPTH, TOO_DEEP, TagsFilter
from rotary.protocol.messages import (
    ConnectRequest,
    HistoryRequest,
    PublishRequest,
    SubscribeRequest,
)
from tests.test_jsonbytes import SMALL_ENCODING_BUDGET, traced_bytes_per_item


def test_one_command_decodes_into_its_typed_request() -> None:
    [cmd] = decode_frame(b'{"id":1,"subscribe":{"channel":"news","recover":true,"offset":5}}')
    assert cmd.id == 1
    assert cmd.method == "subscribe"
    assert cmd.request == SubscribeRequest(channel="news", recover=True, offset=5)


def test_several_newline_separated_commands_decode_in_order() -> None:
    frame = b'{"id":1,"connect":{}}\n{"id":2,"publish":{"channel":"a","data":{"x":1}}}'
    cmds = decode_frame(frame)
    assert [c.id for c in cmds] == [1, 2]
    assert cmds[1].request == PublishRequest("a", b'{"x":1}')


def test_one_trailing_newline_is_tolerated() -> None:
    assert len(decode_frame(b'{"id":1,"connect":{}}\n')) == 1


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\n",
        b'{"id":1,"connect":{}}\n\n',
        b'{"id":1,"connect":{}}\n\n{"id":2,"connect":{}}',
        b"\n{}",
        b"not json",
        b"[1,2]",
        b'"string"',
        b'{"id":-1}',
        b'{"id":"1"}',
        b'{"id":1.5}',
        b'{"id":4294967296}',
        b'{"id":1,"subscribe":"news"}',
        b'{"id":1,"subscribe":{"channel":5}}',
        b'{"id":1,"subscribe":{"recover":"yes"}}',
        b'{"id":1,"history":{"channel":"a","limit":true}}',
        b'{"id":1,"connect":{"subs":{"a":1}}}',
        b"\xff\xfe",
    ],
)
def test_framing_or_schema_violations_raise_protocol_violation(frame: bytes) -> None:
    with pytest.raises(ProtocolViolation):
        decode_frame(frame)


def test_unknown_fields_are_ignored() -> None:
    frame = b'{"id":3,"subscribe":{"channel":"a","flag":1,"novel":2},"headers":{"x":"y"}}'
    [cmd] = decode_frame(frame)
    assert cmd.request == SubscribeRequest(channel="a", flag=1)


def test_subscribe_flag_and_type_are_decoded() -> None:
    [cmd] = decode_frame(b'{"id":3,"subscribe":{"channel":"a","flag":3,"type":4}}')
    assert cmd.request == SubscribeRequest(channel="a", flag=3, type=4)


@pytest.mark.parametrize(
    "body", [b'"flag":"1"', b'"type":true', b'"type":2147483648', b'"flag":9223372036854775808']
)
def test_subscribe_flag_or_type_of_the_wrong_type_or_range_is_a_violation(body: bytes) -> None:
    with pytest.raises(ProtocolViolation):
        decode_frame(b'{"id":3,"subscribe":{"channel":"a",' + body + b"}}")


def test_only_the_first_request_field_in_protocol_order_is_used() -> None:
    [cmd] = decode_frame(b'{"id":1,"publish":{"channel":"p"},"subscribe":{"channel":"s"}}')
    assert cmd.method == "subscribe"


def test_null_request_fields_count_as_absent() -> None:
    [cmd] = decode_frame(b'{"id":1,"connect":null,"presence":{"channel":"a"}}')
    assert cmd.method == "presence"


def test_an_empty_command_decodes_as_id_zero_without_method() -> None:
    [cmd] = decode_frame(b"{}")
    assert (cmd.id, cmd.method, cmd.request) == (0, "", None)


def test_connect_subs_carry_recovery_positions() -> None:
    frame = (
        b'{"id":1,"connect":{"token":"t","subs":{"ch":{"recover":true,"offset":2,"epoch":"e"}}}}'
    )
    [cmd] = decode_frame(frame)
    assert isinstance(cmd.request, ConnectRequest)
    assert cmd.request.subs["ch"] == SubscribeRequest(recover=True, offset=2, epoch="e")


def test_history_since_decodes_as_offset_and_epoch() -> None:
    [cmd] = decode_frame(b'{"id":1,"history":{"channel":"a","since":{"offset":3,"epoch":"x"}}}')
    assert cmd.request == HistoryRequest(channel="a", since=(3, "x"))


def test_raw_data_is_reencoded_compactly_on_one_line() -> None:
    [cmd] = decode_frame(b'{"id":1,"publish":{"channel":"a","data":{ "k" : [1, 2] }}}')
    assert isinstance(cmd.request, PublishRequest)
    assert cmd.request.data == b'{"k":[1,2]}'


def test_decoded_data_is_kept_trimmed_to_its_length() -> None:
    frames = [b'{"id":1,"publish":{"channel":"a","data":{"n":%d}}}' % n for n in range(1000)]

    def data(n: int) -> bytes | None:
        request = decode_frame(frames[n])[0].request
        assert isinstance(request, PublishRequest)
        return request.data

    assert traced_bytes_per_item(data) < SMALL_ENCODING_BUDGET


def test_empty_results_are_written_as_empty_objects() -> None:
    assert encode_reply(4, "publish", {}) == b'{"id":4,"publish":{}}'


def test_error_replies_always_carry_code_and_message() -> None:
    assert orjson.loads(encode_error(3, ErrorCode.PERMISSION_DENIED)) == {
        "id": 3,
        "error": {"code": 103, "message": "permission denied"},
    }
    assert orjson.loads(encode_error(3, ErrorCode.INTERNAL))["error"]["temporary"] is True


def test_client_info_always_has_user_and_client() -> None:
    assert client_info_obj(ClientInfo("", "c1")) == {"user": "", "client": "c1"}


def test_raw_payloads_are_embedded_verbatim_without_newlines() -> None:
    pub = Publication(data=b'{"a":\n1}', offset=7, info=ClientInfo("u", "c", b'{"n":\n2}'))
    encoded = publication_push("ch", pub)
    assert b"\n" not in encoded
    assert orjson.loads(encoded) == {
        "push": {
            "channel": "ch",
            "pub": {
                "data": {"a": 1},
                "info": {"user": "u", "client": "c", "conn_info": {"n": 2}},
                "offset": 7,
            },
        }
    }


def test_a_push_without_channel_omits_the_key() -> None:
    assert encode_push("refresh", {}) == b'{"push":{"refresh":{}}}'


def test_joined_frames_split_back_into_valid_json_objects() -> None:
    frame = join_frame([PING, encode_reply(1, "publish", {}), encode_push("join", {}, "c")])
    assert next(orjson.loads(line) for line in frame.split(b"\n")) == {}


def test_random_bytes_never_raise_anything_but_protocol_violation() -> None:
    rng = random.Random(1234)
    alphabet = b'{}[]":,\n 0123456789idconetsubrclphay-.\\\xff'
    for _ in range(5000):
        size = rng.randint(0, 60)
        frame = bytes(rng.choice(alphabet) for _ in range(size))
        with contextlib.suppress(ProtocolViolation):
            decode_frame(frame)


def test_mutated_valid_commands_never_raise_anything_but_protocol_violation() -> None:
    rng = random.Random(99)
    seeds = [
        b'{"id":1,"connect":{"token":"t","subs":{"a":{"recover":true}}}}',
        b'{"id":2,"history":{"channel":"a","since":{"offset":1,"epoch":"e"},"limit":3}}',
        b'{"id":3,"publish":{"channel":"a","data":{"x":[1,2,{"y":null}]}}}',
    ]
    for _ in range(5000):
        frame = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            frame[rng.randrange(len(frame))] = rng.randrange(256)
        with contextlib.suppress(ProtocolViolation):
            decode_frame(bytes(frame))


def test_deeply_nested_data_is_a_violation_not_a_crash() -> None:
    deep = b"[" * 600 + b"]" * 600
    with pytest.raises(ProtocolViolation):
        decode_frame(b'{"id":1,"publish":{"channel":"a","data":' + deep + b"}}")


# The common connect and subscribe requests are checked inline; these pin the inline path to
# the field-by-field one it short-cuts.
_PLAIN_VALUES: list[object] = ["", "a", "$u1", "eyJ.x.y", None, 0, 1, True, [], {}, 1.5]


def _assert_decodes_as_general_path(
    method: str, request: dict[str, object], general: Callable[[dict[str, Any]], object]
) -> None:
    """`decode_frame` gives what `general` gives for `request`, or refuses it as well."""
    frame = orjson.dumps({"id": 1, method: request})
    try:
        expected = general(request)
    except ProtocolViolation:
        with pytest.raises(ProtocolViolation):
            decode_frame(frame)
        return
    [cmd] = decode_frame(frame)
    assert cmd.request == expected
    assert type(cmd.request) is type(expected)


@pytest.mark.parametrize("token", _PLAIN_VALUES)
@pytest.mark.parametrize("channel", _PLAIN_VALUES)
def test_plain_subscribe_decodes_as_the_general_path_does(channel: object, token: object) -> None:
    from rotary.protocol.codec import _any_subscribe

    request = {"channel": channel, "token": token}
    _assert_decodes_as_general_path("subscribe", request, _any_subscribe)


@pytest.mark.parametrize(
    "request_",
    [
        {"token": "t", "name": "js", "version": "5.0"},
        {"token": "t"},
        {},
        {"name": None},
        {"token": 1},
        {"version": ["x"]},
        {"token": "t", "data": {"k": 1}},
        {"token": "t", "subs": {"a": {"recover": True, "offset": 3, "epoch": "e"}}},
        {"token": "t", "other": 1},
    ],
)
def test_plain_connect_decodes_as_the_general_path_does(request_: dict[str, object]) -> None:
    from rotary.protocol.codec import _any_connect

    _assert_decodes_as_general_path("connect", request_, _any_connect)


def test_requests_stay_immutable() -> None:
    [cmd] = decode_frame(b'{"id":1,"subscribe":{"channel":"a","token":"t"}}')
    with pytest.raises(AttributeError):
        cmd.request.channel = "b"  # type: ignore[misc, union-attr]
    with pytest.raises(AttributeError):
        cmd.id = 2  # type: ignore[misc]


def test_a_tags_filter_decodes_into_its_tree() -> None:
    tf = {"op": "and", "nodes": [{"key": "a", "cmp": "in", "vals": ["x", "y"]}, {"cmp": "nex"}]}
    [cmd] = decode_frame(orjson.dumps({"id": 3, "subscribe": {"channel": "c", "tf": tf}}))
    expected = TagsFilter(
        op="and",
        nodes=(TagsFilter(key="a", cmp="in", vals=("x", "y")), TagsFilter(cmp="nex")),
    )
    assert cmd.request == SubscribeRequest(channel="c", tf=expected)


@pytest.mark.parametrize(
    "tf", ['"eq"', '{"key":1}', '{"vals":"x"}', '{"vals":[1]}', '{"nodes":{}}', '{"nodes":[1]}']
)
def test_a_tags_filter_of_the_wrong_shape_is_a_protocol_violation(tf: str) -> None:
    frame = b'{"id":3,"subscribe":{"channel":"c","tf":' + tf.encode() + b"}}"
    with pytest.raises(ProtocolViolation):
        decode_frame(frame)


def test_a_tags_filter_deeper_than_the_limit_is_cut_for_the_subscribe_to_refuse() -> None:
    node: dict[str, object] = {"key": "a", "cmp": "ex"}
    for _ in range(400):  # 800 levels of JSON: within what the JSON parser accepts
        node = {"op": "not", "nodes": [node]}
    frame = json.dumps({"id": 3, "subscribe": {"channel": "c", "tf": node}}).encode()
    [cmd] = decode_frame(frame)
    assert isinstance(cmd.request, SubscribeRequest) and cmd.request.tf is not None
    depth, tf = 1, cmd.request.tf
    while tf.nodes:
        depth, tf = depth + 1, tf.nodes[0]
    assert (depth, tf) == (MAX_DEPTH + 1, TOO_DEEP)
