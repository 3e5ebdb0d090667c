"""Wire shapes of the streaming transports (rotary.protocol.framing), without sockets."""

from __future__ import annotations

import orjson
import pytest

from rotary.protocol import framing
from rotary.protocol.codec import PING, ProtocolViolation, encode_push, encode_reply
from rotary.protocol.codes import DisconnectCode

PUB = encode_push("pub", {"data": {"a": 1}}, "news")
CONNECT = encode_reply(framing.UNI_CONNECT_ID, "connect", {"client": "c", "session": "s"})


def test_http_streaming_ends_every_message_with_a_newline() -> None:
    assert framing.ndjson(PUB + b"\n" + PING) == PUB + b"\n" + PING + b"\n"


def test_sse_makes_one_data_event_per_message() -> None:
    assert framing.sse(PUB + b"\n" + PING) == b"data: " + PUB + b"\n\ndata: {}\n\n"


def test_unidirectional_clients_get_pushes_unwrapped_and_the_connect_reply_as_a_push() -> None:
    assert orjson.loads(framing.unidirectional(PUB)) == {
        "channel": "news",
        "pub": {"data": {"a": 1}},
    }
    assert orjson.loads(framing.unidirectional(CONNECT)) == {
        "connect": {"client": "c", "session": "s"}
    }
    assert framing.unidirectional(PING) == b"{}"


def test_unidirectional_framings_split_a_batch_into_messages() -> None:
    batch = CONNECT + b"\n" + PUB
    lines = framing.uni_ndjson(batch).split(b"\n")
    assert [orjson.loads(line) for line in lines if line] == [
        {"connect": {"client": "c", "session": "s"}},
        {"channel": "news", "pub": {"data": {"a": 1}}},
    ]
    assert framing.uni_sse(batch).count(b"data: ") == 2


def test_the_disconnect_push_carries_code_and_reason() -> None:
    push = framing.disconnect_push(DisconnectCode.SHUTDOWN)
    assert orjson.loads(push) == {"push": {"disconnect": {"code": 3001, "reason": "shutdown"}}}
    assert orjson.loads(framing.unidirectional(push)) == {
        "disconnect": {"code": 3001, "reason": "shutdown"}
    }


def test_a_unidirectional_connect_request_becomes_a_connect_command() -> None:
    command = orjson.loads(framing.uni_connect_command(b'{"token":"t"}'))
    assert command == {"id": framing.UNI_CONNECT_ID, "connect": {"token": "t"}}
    assert orjson.loads(framing.uni_connect_command(b""))["connect"] == {}


@pytest.mark.parametrize("body", [b"{", b"[]", b'"t"', b"1"])
def test_a_connect_request_that_is_not_a_json_object_is_a_violation(body: bytes) -> None:
    with pytest.raises(ProtocolViolation):
        framing.uni_connect_command(body)


def test_an_emulation_request_carries_its_commands_as_a_string() -> None:
    req = framing.decode_emulation(b'{"session":"s","node":"n","data":"{\\"id\\":2}"}')
    assert req == framing.EmulationRequest("s", "n", b'{"id":2}')


@pytest.mark.parametrize(
    "body",
    [
        b"nope",
        b"[]",
        b'{"node":"n","data":"{}"}',
        b'{"session":"s","node":"","data":"{}"}',
        b'{"session":"s","node":"n","data":{"id":1}}',
    ],
)
def test_a_malformed_emulation_request_is_a_violation(body: bytes) -> None:
    with pytest.raises(ProtocolViolation):
        framing.decode_emulation(body)
