"""The differential suite's Protobuf writer: a command dict survives the official schema."""

from __future__ import annotations

from tests.compat.wire import decode, encode
from tests.sdk.protobuf_oracle import decode_commands


def test_commands_written_as_protobuf_read_back_as_the_same_dicts() -> None:
    commands = [
        {"id": 1, "connect": {"token": "t", "data": {"hello": [1, 2]}}},
        {"id": 2, "subscribe": {"channel": "chat:x", "recover": True, "offset": 3}},
        {"id": 3, "publish": {"channel": "chat:x", "data": {"n": 1}}},
    ]
    frame = encode(commands, protobuf=True)
    assert isinstance(frame, bytes)
    assert decode_commands(frame) == commands


def test_json_frames_hold_one_command_per_line_and_decode_back() -> None:
    commands = [{"id": 1, "connect": {}}, {"id": 2, "rpc": {"method": "x"}}]
    frame = encode(commands, protobuf=False)
    assert frame == '{"id": 1, "connect": {}}\n{"id": 2, "rpc": {"method": "x"}}'
    assert decode(frame) == commands
