"""The two wire formats a scenario can run over: JSON text frames or Protobuf binary frames.

Both take command dicts in the JSON protocol's shape and give back replies in that shape, so
one scenario and one comparison serve both. Protobuf messages are written and read with the
official schema (tests/sdk/protobuf_oracle.py, with the map-subscription fields of
tests/sdk/protobuf_map_oracle.py), never with Rotary's codec; payload fields
(``data``) carry the JSON text of the dict's value, as an SDK's Protobuf client sends it.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from tests.sdk.protobuf_map_oracle import decode_map_replies, map_delimited, mpb

__all__ = ["decode", "encode", "to_message"]


def encode(commands: list[dict[str, Any]], *, protobuf: bool) -> str | bytes:
    """One frame holding `commands` (each with its ``id``)."""
    if protobuf:
        return map_delimited(*(to_message(mpb.Command(), c) for c in commands))
    return "\n".join(json.dumps(c) for c in commands)


def decode(frame: str | bytes) -> list[dict[str, Any]]:
    """The replies and pushes of one server frame, pings included (as ``{}``)."""
    if isinstance(frame, bytes):
        return decode_map_replies(frame)
    return [json.loads(line) for line in frame.split("\n") if line.strip()]


def to_message(message: Message, values: dict[str, Any]) -> Message:
    """Fill `message` from `values`, a dict in the JSON protocol's shape; return it."""
    for name, value in values.items():
        field = message.DESCRIPTOR.fields_by_name[name]
        target = getattr(message, name)
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            for key, item in value.items():
                _set_map_item(target, entry.fields_by_name["value"], key, item)
        elif _repeated(field):
            for item in value:
                if field.type == FieldDescriptor.TYPE_MESSAGE:
                    to_message(target.add(), item)
                else:
                    target.append(_scalar(field, item))
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            to_message(target, value)
        else:
            setattr(message, name, _scalar(field, value))
    return message


def _set_map_item(target: Any, value_field: FieldDescriptor, key: str, item: Any) -> None:
    if value_field.type == FieldDescriptor.TYPE_MESSAGE:
        to_message(target[key], item)
    else:
        target[key] = _scalar(value_field, item)


def _scalar(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_BYTES:
        return json.dumps(value).encode()
    return value


def _repeated(field: FieldDescriptor) -> bool:
    # `is_repeated` is new in protobuf 6; `label` is gone in 7.
    repeated = getattr(field, "is_repeated", None)
    if repeated is None:
        return bool(field.label == FieldDescriptor.LABEL_REPEATED)
    return bool(repeated)
