"""The Protobuf codec's fast paths (the common connect, subscribe and command shapes read
inline, scalar reply fields written inline, empty replies made once) against the official
``protobuf`` package (the oracle) and against the codec's own field-by-field scanner: the
same bytes give the same command or the same ProtocolViolation (disconnect 3501), whichever
path reads them."""

from __future__ import annotations

import random
from typing import Any

import pytest
from google.protobuf.message import DecodeError

from rotary.node.auth import ConnectCredentials, SubscribeCredentials
from rotary.protocol import protobuf
from rotary.protocol.base import ProtocolViolation
from rotary.protocol.messages import NO_SUBS, Command, ConnectRequest, SubscribeRequest
from rotary.protocol.protobuf import PROTOBUF
from tests.node.fakes import Harness
from tests.sdk.protobuf_oracle import decode_replies, delimited, pb

# ---------------------------------------------------------------------------- decoding


def _scanned(frame: bytes) -> list[Command]:
    """`frame` decoded by the scanner alone: every field of every message scanned, as before
    the fast paths (the reference they must agree with)."""
    commands, pos = [], 0
    while pos < len(frame):
        length, pos = protobuf._read_varint(frame, pos)
        if length > len(frame) - pos:
            raise ProtocolViolation("truncated message")
        commands.append(_scanned_command(frame[pos : pos + length]))
        pos += length
    if not commands:
        raise ProtocolViolation("empty request")
    return commands


def _scanned_command(data: bytes) -> Command:
    slow = {"connect": protobuf._any_connect, "subscribe": protobuf._any_subscribe}
    fields = protobuf._scan(data, protobuf._COMMAND_WIRES)
    cmd_id = fields.get(1, 0) & 0xFFFFFFFF
    for number, method, decode in protobuf._REQUESTS:
        if number in fields:
            return Command(cmd_id, method, slow.get(method, decode)(fields[number]))
    return Command(cmd_id)


def _outcome(decode: Any, frame: bytes) -> Any:
    try:
        return decode(frame)
    except ProtocolViolation:
        return "violation"


def _oracle(frame: bytes) -> Any:
    """What the official runtime reads: (id, channel, token) of each subscribe and (id,
    token, name, version) of each connect, or "violation" when it refuses the bytes."""
    out: list[tuple[Any, ...]] = []
    pos = 0
    try:
        while pos < len(frame):
            length, pos = protobuf._read_varint(frame, pos)
            if length > len(frame) - pos:
                return "violation"
            cmd = pb.Command.FromString(frame[pos : pos + length])
            pos += length
            if cmd.HasField("subscribe"):
                out.append((cmd.id, cmd.subscribe.channel, cmd.subscribe.token))
            elif cmd.HasField("connect"):
                c = cmd.connect
                out.append((cmd.id, c.token, c.name, c.version))
            else:
                out.append((cmd.id,))
    except (DecodeError, ProtocolViolation):
        return "violation"
    return out


def _as_oracle(commands: list[Command]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for cmd in commands:
        req = cmd.request
        if isinstance(req, SubscribeRequest):
            out.append((cmd.id, req.channel, req.token))
        elif isinstance(req, ConnectRequest):
            out.append((cmd.id, req.token, req.name, req.version))
        else:
            out.append((cmd.id,))
    return out


#: Commands of the fast paths' shapes, and their neighbours that must take the scanner.
SHAPES = [
    pb.Command(id=1, connect=pb.ConnectRequest()),
    pb.Command(id=1, connect=pb.ConnectRequest(token="t" * 200)),
    pb.Command(id=1, connect=pb.ConnectRequest(token="tok", name="js", version="5.4.9")),
    pb.Command(id=1, connect=pb.ConnectRequest(name="go")),
    pb.Command(id=1, connect=pb.ConnectRequest(token="t", data=b"{}")),
    pb.Command(id=1, connect=pb.ConnectRequest(token="t", subs={"a": pb.SubscribeRequest()})),
    pb.Command(id=2, subscribe=pb.SubscribeRequest(channel="lobby")),
    pb.Command(id=3, subscribe=pb.SubscribeRequest(channel="$u1", token="x" * 180)),
    pb.Command(id=127, subscribe=pb.SubscribeRequest(channel="c" * 127, token="t")),
    pb.Command(id=128, subscribe=pb.SubscribeRequest(channel="c" * 128)),
    pb.Command(id=4, subscribe=pb.SubscribeRequest(channel="ä", token="ü" * 9000)),
    pb.Command(id=5, subscribe=pb.SubscribeRequest(channel="c", recover=True, offset=3)),
    pb.Command(id=6, subscribe=pb.SubscribeRequest(token="only a token")),
    pb.Command(id=7, unsubscribe=pb.UnsubscribeRequest(channel="c")),
    pb.Command(subscribe=pb.SubscribeRequest(channel="no id")),
]


@pytest.mark.parametrize("message", SHAPES, ids=lambda m: str(m)[:40].replace("\n", " "))
def test_common_shapes_decode_as_the_scanner_and_the_official_runtime_read_them(
    message: Any,
) -> None:
    frame = delimited(message)
    commands = PROTOBUF.decode_frame(frame)
    assert commands == _scanned(frame)
    assert _as_oracle(commands) == _oracle(frame)


def test_a_storm_clients_frames_decode_to_its_plain_requests() -> None:
    connect = delimited(pb.Command(id=1, connect=pb.ConnectRequest(token="a.b.c")))
    subscribes = delimited(
        pb.Command(id=2, subscribe=pb.SubscribeRequest(channel="$lobby", token="t2")),
        pb.Command(id=3, subscribe=pb.SubscribeRequest(channel="$u7", token="t3")),
    )
    assert PROTOBUF.decode_frame(connect) == [
        Command(1, "connect", ConnectRequest("a.b.c", None, NO_SUBS, "", ""))
    ]
    assert PROTOBUF.decode_frame(subscribes) == [
        Command(2, "subscribe", SubscribeRequest("$lobby", "t2")),
        Command(3, "subscribe", SubscribeRequest("$u7", "t3")),
    ]


def _raw(cmd_id: int, tag: int, body: bytes) -> bytes:
    """One length-prefixed Command written by hand: id, then `body` under `tag`."""
    inner = b"\x08" + bytes((cmd_id,)) + bytes((tag,)) + protobuf._varint(len(body)) + body
    return protobuf._varint(len(inner)) + inner


_SUB, _CONN = 0x2A, 0x22


@pytest.mark.parametrize(
    "frame",
    [
        _raw(2, _SUB, b"\x0a\x05ab"),  # channel longer than the request
        _raw(2, _SUB, b"\x0a\x01c\x12\x85"),  # token length varint cut short
        _raw(2, _SUB, b"\x0a\x01c\x12\x85\x01ab"),  # token longer than the request
        _raw(2, _SUB, b"\x0a\x01c\x12\x01\xff"),  # token that is not UTF-8
        _raw(2, _SUB, b"\x0a\x01\xff"),  # channel that is not UTF-8
        _raw(2, _SUB, b"\x0a\x01c\x10\x01"),  # token (a string) sent as a varint
        _raw(2, _SUB, b"\x0a\x01c\x12\x01t\x0b"),  # a group after the token
        _raw(1, _CONN, b"\x0a\x03ab"),  # token longer than the request
        _raw(1, _CONN, b"\x0a\x01\xfe"),  # token that is not UTF-8
        _raw(1, _CONN, b"\x22\x01\xc3"),  # name that is not UTF-8
        _raw(1, _CONN, b"\x2a\x81"),  # version length cut short
        _raw(1, _CONN, b"\x08\x01"),  # token (a string) sent as a varint
        b"\x85\x01\x08\x01\x2a",  # message length beyond the frame (two-byte prefix)
        b"\x04\x08\x01\x2a\x85",  # request length cut short
        b"\x05\x08\x01\x2a\x85\x01",  # request length beyond the message
        b"\x04\x08\x01\x2a\xff",  # request length of more than two bytes, cut short
    ],
)
def test_malformed_fast_path_shapes_are_violations_on_both_paths(frame: bytes) -> None:
    with pytest.raises(ProtocolViolation):
        PROTOBUF.decode_frame(frame)
    with pytest.raises(ProtocolViolation):
        _scanned(frame)


def test_unknown_fields_after_a_subscribes_token_are_skipped_as_the_scanner_does() -> None:
    body = b"\x0a\x01c\x12\x01t" + b"\xa2\x06\x02ab"  # field 100, two bytes
    frame = _raw(2, _SUB, body)
    assert PROTOBUF.decode_frame(frame) == _scanned(frame)
    assert PROTOBUF.decode_frame(frame) == [Command(2, "subscribe", SubscribeRequest("c", "t"))]


def test_a_repeated_string_field_keeps_its_last_value_as_proto3_says() -> None:
    frame = _raw(1, _CONN, b"\x0a\x01a\x0a\x01b")
    [cmd] = PROTOBUF.decode_frame(frame)
    assert cmd.request == ConnectRequest("b")
    assert _as_oracle([cmd]) == _oracle(frame)


def test_mutated_common_shapes_decode_alike_on_every_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Random damage to the common shapes: the fast paths and the scanner agree on what each
    frame holds or refuse it alike, and what the fast paths read alone (no scanner) is what
    the official runtime reads. (Where the scanner reads, the runtime may differ on purpose:
    it merges a repeated message field, the scanner keeps the last one.)"""
    scanned: list[str] = []
    for name in ("_any_command", "_any_connect", "_any_subscribe"):
        slow = getattr(protobuf, name)
        monkeypatch.setattr(
            protobuf, name, lambda data, slow=slow: (scanned.append(""), slow(data))[1]
        )
    rng = random.Random(1717)
    seeds = [delimited(m) for m in SHAPES[:9]]
    fast_only = 0
    for _ in range(4000):
        frame = bytearray(rng.choice(seeds))
        for _ in range(rng.randrange(1, 4)):
            frame[rng.randrange(len(frame))] = rng.choice((0, 1, 0x0A, 0x12, 0x80, 0xFF, 0x7F))
        frame = frame[: rng.randrange(1, len(frame) + 1)] if rng.random() < 0.3 else frame
        scanned.clear()
        fast = _outcome(PROTOBUF.decode_frame, bytes(frame))
        if not scanned:
            fast_only += 1
            assert (fast if fast == "violation" else _as_oracle(fast)) == _oracle(bytes(frame))
        assert fast == _outcome(_scanned, bytes(frame)), bytes(frame)
    assert fast_only > 1000, "the damage should leave many frames to the fast paths"


# ---------------------------------------------------------------------------- encoding


@pytest.mark.parametrize("cmd_id", [0, 1, 2, 127, 128, 2**32 - 1])
@pytest.mark.parametrize("method", ["subscribe", "unsubscribe", "publish", "rpc", "connect"])
def test_empty_results_parse_with_the_official_runtime(method: str, cmd_id: int) -> None:
    [reply] = decode_replies(PROTOBUF.encode_reply(cmd_id, method, {}))
    assert reply.get("id", 0) == cmd_id
    assert reply[method] == {}


@pytest.mark.parametrize("ttl", [1, 127, 128, 3600, 16383, 16384, 2**21, 2**32 - 1])
def test_numbers_of_every_varint_size_parse_with_the_official_runtime(ttl: int) -> None:
    result = {"client": "c" * 130, "version": "v", "expires": True, "ttl": ttl, "ping": 25}
    [reply] = decode_replies(PROTOBUF.encode_reply(300, "connect", result))
    assert reply == {"id": 300, "connect": result}


def test_a_negative_int64_and_false_or_empty_fields_are_written_as_protobuf_says() -> None:
    result = {"client": "", "version": "1", "expires": False, "time": -5, "data": b'{"a":1}'}
    [reply] = decode_replies(PROTOBUF.encode_reply(1, "connect", result))
    assert reply == {"id": 1, "connect": {"version": "1", "time": -5, "data": {"a": 1}}}


def _connect_result(**changes: Any) -> dict[str, Any]:
    result = {"client": "c-1", "version": "5.4.9", "expires": True, "ttl": 3600}
    return result | {"ping": 25, "pong": True} | changes


#: Results of the templated shapes, usual and unusual (values a template must leave to the
#: field-by-field encoder: false flags, zero or large numbers, long or non-ASCII strings).
SHAPED: list[tuple[str, dict[str, Any]]] = [
    ("connect", _connect_result()),
    ("connect", {"client": "c-1", "version": "5.4.9", "ping": 25, "pong": True}),
    ("connect", {"client": "c-1", "version": "5.4.9", "ping": 0, "pong": False}),
    ("connect", {"client": "ü" * 70, "version": "", "ping": 200, "pong": True}),
    ("connect", _connect_result(ttl=127)),
    ("connect", _connect_result(ttl=16384)),
    ("connect", _connect_result(ttl=0, expires=False)),
    ("connect", _connect_result(client="c" * 127, version="v" * 128)),
    ("connect", _connect_result(pong=False, ping=127)),
    ("subscribe", {"expires": True, "ttl": 3600}),
    ("subscribe", {"expires": True, "ttl": 1}),
    ("subscribe", {"expires": True, "ttl": 2**32 - 1}),
    ("subscribe", {"expires": False, "ttl": 0}),
    ("sub_refresh", {"expires": True, "ttl": 60}),
]


@pytest.mark.parametrize(("method", "result"), SHAPED, ids=lambda v: str(v)[:30])
@pytest.mark.parametrize("cmd_id", [1, 127, 128])
def test_templated_results_match_the_field_by_field_encoder_and_the_official_runtime(
    method: str, result: dict[str, Any], cmd_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    templated = PROTOBUF.encode_reply(cmd_id, method, result)
    monkeypatch.setattr(protobuf, "_SHAPES", {})
    assert templated == PROTOBUF.encode_reply(cmd_id, method, result)
    [reply] = decode_replies(templated)
    expected = {k: v for k, v in result.items() if v}
    assert reply == {"id": cmd_id, method: expected}


async def test_the_templates_serve_the_results_the_node_builds() -> None:
    """A template that no longer matches the node's results (another key order, a new key)
    would silently leave them to the slower encoder: the results of a connect and a
    subscribe, with token expiry and without, must each hit one."""
    harness = Harness()
    await harness.node.start()
    try:
        expiring = {"expire_at": harness.now + 3600}
        for creds in ({}, expiring):
            harness.auth.connect["t"] = ConnectCredentials(user="1", **creds)  # type: ignore[arg-type]
            harness.auth.subscribe["s"] = SubscribeCredentials("1", "$a", **creds)  # type: ignore[arg-type]
            conn = await harness.open()
            connect = await conn.request({"id": 1, "connect": {"token": "t"}})
            subscribe = await conn.request({"id": 2, "subscribe": {"channel": "$a", "token": "s"}})
            for method, reply in (("connect", connect), ("subscribe", subscribe)):
                result = reply[method]
                if result:
                    shape = protobuf._SHAPES[(method, *result)]
                    assert shape(result) is not None, (method, result)
            await conn.close()
    finally:
        harness.node.disconnect_all()
        await harness.node.close()
