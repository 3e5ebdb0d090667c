"""The official Protobuf schema as a test oracle: Centrifugo's ``client.proto`` as compiled into
centrifuge-python (``centrifuge.protocol.client_pb2``), run by the ``protobuf`` package.

That module registers the schema in protobuf's default pool, so it is used as is rather than
next to a second generated copy (which could not be imported in the same process).
`to_plain` turns a message into the dict the JSON protocol would carry, so one assertion fits
both protocols: payload bytes become the JSON value they hold (``{"base64": …}`` when they
are not JSON), maps become dicts, and absent fields stay absent.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from centrifuge.protocol import client_pb2 as pb
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

__all__ = [
    "decode_commands",
    "decode_replies",
    "delimited",
    "pb",
    "plain_payload",
    "split_frame",
    "to_plain",
]


def delimited(*messages: Message) -> bytes:
    """`messages` as one frame: each prefixed by its varint length."""
    out = b""
    for message in messages:
        body = message.SerializeToString()
        out += _varint(len(body)) + body
    return out


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def split_frame(frame: bytes) -> list[bytes]:
    """The messages of a frame of varint-prefixed messages (written independently of Rotary)."""
    messages, pos = [], 0
    while pos < len(frame):
        size = shift = 0
        while True:
            byte = frame[pos]
            pos += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        messages.append(frame[pos : pos + size])
        pos += size
    return messages


def plain_payload(data: bytes) -> Any:
    """The JSON value `data` holds, or ``{"base64": …}`` when it is not JSON."""
    try:
        return json.loads(data)
    except ValueError:
        return {"base64": base64.b64encode(data).decode()}


def to_plain(message: Message) -> dict[str, Any]:
    """`message` as the JSON protocol would show it."""
    return {field.name: _field(field, value) for field, value in message.ListFields()}


def _field(field: FieldDescriptor, value: Any) -> Any:
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        value_field = entry.fields_by_name["value"]
        return {key: _single(value_field, item) for key, item in value.items()}
    if _repeated(field):
        return [_single(field, item) for item in value]
    return _single(field, value)


def _repeated(field: FieldDescriptor) -> bool:
    # `is_repeated` is new in protobuf 6; `label` is gone in 7.
    repeated = getattr(field, "is_repeated", None)
    if repeated is None:
        return bool(field.label == FieldDescriptor.LABEL_REPEATED)
    return bool(repeated)


def _single(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return to_plain(value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return plain_payload(value)
    return value


def decode_replies(frame: bytes) -> list[dict[str, Any]]:
    """Every Reply of a server frame, as plain dicts."""
    return [to_plain(_parse(pb.Reply(), m)) for m in split_frame(frame)]


def decode_commands(frame: bytes) -> list[dict[str, Any]]:
    """Every Command of a client frame, as plain dicts."""
    return [to_plain(_parse(pb.Command(), m)) for m in split_frame(frame)]


def _parse(message: Message, data: bytes) -> Message:
    message.ParseFromString(data)
    return message
