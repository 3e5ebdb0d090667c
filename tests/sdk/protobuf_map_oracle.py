"""The official Protobuf schema with the map-subscription fields, as a test oracle.

centrifuge-python's compiled ``client.proto`` (tests/sdk/protobuf_oracle.py) predates map
subscriptions. This module takes that file's descriptor, adds the fields (and messages) that
Centrifugo's protocol v0.21.0 ``client.proto`` defines for maps and shared poll tracking
(numbers and types copied from that schema), and builds it in a pool of its own, so that the
``protobuf`` runtime parses and writes them and the SDK's copy in the default pool is untouched.
"""

from __future__ import annotations

from typing import Any

from centrifuge.protocol import client_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from tests.sdk.protobuf_oracle import split_frame, to_plain

__all__ = ["decode_map_replies", "map_delimited", "mpb"]

_F = descriptor_pb2.FieldDescriptorProto

#: message → fields added: (name, number, type, label, message type name or "").
_MAP_FIELDS: dict[str, list[tuple[str, int, int, int, str]]] = {
    "SubscribeRequest": [
        ("type", 15, _F.TYPE_INT32, _F.LABEL_OPTIONAL, ""),
        ("phase", 16, _F.TYPE_INT32, _F.LABEL_OPTIONAL, ""),
        ("cursor", 17, _F.TYPE_STRING, _F.LABEL_OPTIONAL, ""),
        ("limit", 18, _F.TYPE_INT32, _F.LABEL_OPTIONAL, ""),
        ("asc", 19, _F.TYPE_BOOL, _F.LABEL_OPTIONAL, ""),
    ],
    "SubscribeResult": [
        ("type", 15, _F.TYPE_INT32, _F.LABEL_OPTIONAL, ""),
        ("phase", 16, _F.TYPE_INT32, _F.LABEL_OPTIONAL, ""),
        ("cursor", 17, _F.TYPE_STRING, _F.LABEL_OPTIONAL, ""),
        ("state", 18, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, "Publication"),
        ("publish_debounce", 19, _F.TYPE_UINT32, _F.LABEL_OPTIONAL, ""),
    ],
    "Publication": [
        ("key", 11, _F.TYPE_STRING, _F.LABEL_OPTIONAL, ""),
        ("removed", 12, _F.TYPE_BOOL, _F.LABEL_OPTIONAL, ""),
        ("score", 13, _F.TYPE_SINT64, _F.LABEL_OPTIONAL, ""),
        ("epoch", 14, _F.TYPE_STRING, _F.LABEL_OPTIONAL, ""),
        ("prev_data", 15, _F.TYPE_BYTES, _F.LABEL_OPTIONAL, ""),
        ("version", 16, _F.TYPE_UINT64, _F.LABEL_OPTIONAL, ""),
    ],
    "PublishRequest": [
        ("type", 3, _F.TYPE_INT32, _F.LABEL_OPTIONAL, ""),
        ("key", 4, _F.TYPE_STRING, _F.LABEL_OPTIONAL, ""),
        ("removed", 5, _F.TYPE_BOOL, _F.LABEL_OPTIONAL, ""),
    ],
    # Shared poll tracking (sub_refresh types 1 and 2).
    "SubRefreshRequest": [
        ("type", 3, _F.TYPE_INT32, _F.LABEL_OPTIONAL, ""),
        ("track", 4, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, "TrackBatch"),
        ("untrack", 5, _F.TYPE_STRING, _F.LABEL_REPEATED, ""),
    ],
    "SubRefreshResult": [
        ("items", 3, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, "Publication"),
    ],
}

#: Messages the SDK's file lacks altogether: name → fields, as above.
_NEW_MESSAGES: dict[str, list[tuple[str, int, int, int, str]]] = {
    "KeyedItem": [
        ("key", 1, _F.TYPE_STRING, _F.LABEL_OPTIONAL, ""),
        ("version", 2, _F.TYPE_UINT64, _F.LABEL_OPTIONAL, ""),
    ],
    "TrackBatch": [
        ("signature", 1, _F.TYPE_STRING, _F.LABEL_OPTIONAL, ""),
        ("items", 2, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, "KeyedItem"),
    ],
}


class _Messages:
    """The extended schema's message classes, by name (``mpb.Command``…)."""

    def __init__(self) -> None:
        proto = descriptor_pb2.FileDescriptorProto.FromString(client_pb2.DESCRIPTOR.serialized_pb)
        proto.name = "rotary_tests_client_maps.proto"
        for name in _NEW_MESSAGES:
            proto.message_type.add(name=name)
        for message in proto.message_type:
            added = _MAP_FIELDS.get(message.name, []) + _NEW_MESSAGES.get(message.name, [])
            for name, number, kind, label, type_name in added:
                field = message.field.add(name=name, number=number, type=kind, label=label)
                if type_name:
                    field.type_name = f".{proto.package}.{type_name}"
        pool = descriptor_pool.DescriptorPool()
        pool.Add(proto)
        self._classes: dict[str, type[Message]] = {
            m.name: message_factory.GetMessageClass(
                pool.FindMessageTypeByName(f"{proto.package}.{m.name}")
            )
            for m in proto.message_type
        }

    def __getattr__(self, name: str) -> Any:
        try:
            return self._classes[name]
        except KeyError:
            raise AttributeError(name) from None


mpb = _Messages()


def map_delimited(*messages: Message) -> bytes:
    """`messages` as one frame, each prefixed by its varint length."""
    out = b""
    for message in messages:
        body = message.SerializeToString()
        size, prefix = len(body), bytearray()
        while size >= 0x80:
            prefix.append(size & 0x7F | 0x80)
            size >>= 7
        prefix.append(size)
        out += bytes(prefix) + body
    return out


def decode_map_replies(frame: bytes) -> list[dict[str, Any]]:
    """Every Reply of a server frame, parsed with the extended schema, as plain dicts."""
    replies = []
    for data in split_frame(frame):
        reply = mpb.Reply()
        reply.ParseFromString(data)
        replies.append(to_plain(reply))
    return replies
