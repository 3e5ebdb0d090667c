"""The Protobuf format of protocol v2 (docs/protobuf.md): Centrifugo's ``client.proto``, package
``centrifugal.centrifuge.protocol``, written and read by hand.

A frame is a run of messages, each prefixed by its length as an unsigned varint; a ping
or a pong is the empty message, the single byte ``0x00``. ``data`` and ``info`` fields
carry raw bytes. Encoders return one message *with* its length prefix, so a frame is
their plain concatenation.

Sans-I/O. `decode_frame` raises only `ProtocolViolation`, whatever the bytes: truncated
varints and lengths, wrong wire types for known fields, invalid UTF-8 in strings and the
group wire types are all violations; unknown fields are skipped, as proto3 requires.
Encoders write proto3 defaults (0, "", false, empty bytes) as absent, except the result
of a reply, which is always present so that the SDKs find it.

Hand-written rather than generated (docs/protobuf.md "Implementation"): the encoders, which
run for every publication, took less than half the time of the official ``protobuf``
runtime building and serializing the same message. Decoding is slower than that runtime's
C parser (a command is decoded once, a publication encoded for every publication); it also
keeps ``protobuf`` out of the server's dependencies, and a
generated module of this package could not be imported next to centrifuge-python, which
registers the same file in protobuf's global pool.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rotary.engines.base import ClientInfo, MapPublication, Publication
from rotary.protocol.base import ProtocolViolation
from rotary.protocol.codes import ProtocolError
from rotary.protocol.filters import MAX_DEPTH, TOO_DEEP, TagsFilter
from rotary.protocol.messages import (
    NO_SUBS,
    Command,
    ConnectRequest,
    HistoryRequest,
    KeyedItem,
    PingRequest,
    PresenceRequest,
    PresenceStatsRequest,
    PublishRequest,
    RefreshRequest,
    Request,
    RpcRequest,
    SendRequest,
    SubRefreshRequest,
    SubscribeRequest,
    TrackBatch,
    UnsubscribeRequest,
)

__all__ = ["PROTOBUF", "ProtobufCodec"]

_U64 = (1 << 64) - 1
_U32 = (1 << 32) - 1

# Wire types.
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5

# ---------------------------------------------------------------------------- writing

#: The one-byte varints, made once: most lengths, tags and numbers are below 128.
_SMALL = [bytes((n,)) for n in range(128)]


def _varint(n: int) -> bytes:
    """`n` (0 ≤ n < 2**64; a negative int64 as its two's complement) as a varint."""
    if n < 128:
        if n >= 0:
            return _SMALL[n]
        n &= _U64
    elif n < 16384:  # two bytes: a ttl, a token's length
        return bytes((n & 0x7F | 0x80, n >> 7))
    out = bytearray()
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _tag(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _message(body: bytes) -> bytes:
    """`body` with its length prefix: one message of a frame."""
    return _varint(len(body)) + body


# A schema maps the keys of a result (as the node builds it) to (tag, writer): the writer
# turns a non-default value into the bytes that follow the tag. A repeated field has an
# empty tag and a writer that tags every item itself.

_Writer = Callable[[Any], bytes]


def _str(value: str) -> bytes:
    data = value.encode()
    return _varint(len(data)) + data


def _bytes(value: bytes) -> bytes:
    return _varint(len(value)) + value


def _bool(value: bool) -> bytes:
    return b"\x01"


#: How `_encode` writes a field's value: inline for the scalar kinds (no call per field),
#: through the schema entry's writer for the others.
_K_STR, _K_BYTES, _K_VARINT, _K_WRITER = 0, 1, 2, 3

_KINDS: dict[str, tuple[int, int]] = {
    "str": (_LEN, _K_STR),
    "bytes": (_LEN, _K_BYTES),
    "bool": (_VARINT, _K_VARINT),
    "uint": (_VARINT, _K_VARINT),
    "int64": (_VARINT, _K_VARINT),
    "int32": (_VARINT, _K_VARINT),
}

#: key → (tag, kind, writer); the writer is used only by `_K_WRITER` fields.
_Schema = dict[str, tuple[bytes, int, _Writer]]


def _schema(**fields: tuple[int, str | _Writer]) -> _Schema:
    """A schema from ``key=(number, kind)``: kind is a name of `_KINDS` or a body writer."""
    out: _Schema = {}
    for key, (number, kind) in fields.items():
        if isinstance(kind, str):
            wire, code = _KINDS[kind]
            out[key] = (_tag(number, wire), code, _bytes)
        else:
            out[key] = (_tag(number, _LEN), _K_WRITER, kind)
    return out


def _encode(schema: _Schema, obj: Mapping[str, Any]) -> bytes:
    """The body of a message from `obj`, fields in the order of `obj`; defaults left out.

    A key missing from `schema` raises KeyError: the node built a field the format does
    not know, a bug that the codec tests catch. Strings, bytes and numbers are written
    here, without a call per field: every reply comes through this loop.
    """
    out = b""
    small = _SMALL
    for key, value in obj.items():
        if not value and not isinstance(value, dict):  # an empty nested message is present
            continue
        tag, kind, writer = schema[key]
        if kind == _K_VARINT:
            if 0 <= value < 128:
                out += tag + small[value]
            elif 0 < value < 16384:  # a ttl: two bytes, no call to `_varint`
                out += tag + bytes((value & 0x7F | 0x80, value >> 7))
            else:
                out += tag + _varint(value)
        elif kind == _K_STR:
            data = value.encode()
            size = len(data)
            out += tag + (small[size] if size < 128 else _varint(size)) + data
        elif kind == _K_BYTES:
            size = len(value)
            out += tag + (small[size] if size < 128 else _varint(size)) + value
        else:
            out += tag + writer(value)
    return out


_INFO_USER, _INFO_CLIENT, _INFO_CONN, _INFO_CHAN = (_tag(n, _LEN) for n in (1, 2, 3, 4))


def _client_info(info: ClientInfo) -> bytes:
    """A ClientInfo body: user and client, and the infos when present."""
    body = b""
    if info.user:
        body = _INFO_USER + _str(info.user)
    if info.client:
        body += _INFO_CLIENT + _str(info.client)
    if info.conn_info:
        body += _INFO_CONN + _bytes(info.conn_info)
    if info.chan_info:
        body += _INFO_CHAN + _bytes(info.chan_info)
    return body


_PUB_DATA, _PUB_INFO, _PUB_TAGS = _tag(4, _LEN), _tag(5, _LEN), _tag(7, _LEN)
_PUB_OFFSET, _PUB_DELTA = _tag(6, _VARINT), _tag(8, _VARINT)
_ENTRY_KEY, _ENTRY_VALUE = _tag(1, _LEN), _tag(2, _LEN)


def _publication(pub: Publication | MapPublication) -> bytes:
    """A Publication body: data, info, offset, tags and delta as the JSON codec writes them."""
    body = _PUB_DATA + _bytes(pub.data) if pub.data else b""
    if pub.info is not None:
        body += _PUB_INFO + _bytes(_client_info(pub.info))
    if pub.offset:
        body += _PUB_OFFSET + _varint(pub.offset)
    if pub.tags:
        for key, value in pub.tags.items():
            entry = _ENTRY_KEY + _str(key) + _ENTRY_VALUE + _str(value)
            body += _PUB_TAGS + _bytes(entry)
    if pub.delta:
        body += _PUB_DELTA + b"\x01"
    return body


_PUB_KEY, _PUB_REMOVED = _tag(11, _LEN), _tag(12, _VARINT)


def _map_publication(pub: MapPublication) -> bytes:
    """A Publication body for a map entry or change: the fields of `_publication`, then key
    and removed, as the JSON codec writes them."""
    body = _publication(pub)
    if pub.key:
        body += _PUB_KEY + _str(pub.key)
    if pub.removed:
        body += _PUB_REMOVED + b"\x01"
    return body


def _publications(pubs: Sequence[Publication | MapPublication]) -> list[bytes]:
    return [
        _bytes(_map_publication(p) if isinstance(p, MapPublication) else _publication(p))
        for p in pubs
    ]


def _map_of(value_writer: Callable[[Any], bytes]) -> Callable[[Mapping[str, Any]], list[bytes]]:
    """A map field: one entry message per key (key 1, value 2), the value always present."""

    def write(entries: Mapping[str, Any]) -> list[bytes]:
        out = []
        for key, value in entries.items():
            entry = _ENTRY_KEY + _str(key) + _ENTRY_VALUE + _bytes(value_writer(value))
            out.append(_bytes(entry))
        return out

    return write


class _Repeated:
    """A repeated field: its tag is written before every item, not once."""

    def __init__(self, number: int, items: Callable[[Any], list[bytes]]) -> None:
        self.tag = _tag(number, _LEN)
        self.items = items

    def __call__(self, value: Any) -> bytes:
        tag = self.tag
        return b"".join(tag + item for item in self.items(value))


def _schema_with_repeated(plain: _Schema, repeated: dict[str, _Repeated]) -> _Schema:
    """`plain` plus repeated fields, each written as its run of tagged items (no tag of its
    own)."""
    return plain | {key: (b"", _K_WRITER, rep) for key, rep in repeated.items()}


_SUBSCRIBE_RESULT = _schema_with_repeated(
    _schema(
        expires=(1, "bool"),
        ttl=(2, "uint"),
        recoverable=(3, "bool"),
        epoch=(6, "str"),
        recovered=(8, "bool"),
        offset=(9, "uint"),
        positioned=(10, "bool"),
        data=(11, "bytes"),
        was_recovering=(12, "bool"),
        delta=(13, "bool"),
        type=(15, "int32"),
        phase=(16, "int32"),
        cursor=(17, "str"),
        publish_debounce=(19, "uint"),
    ),
    {"publications": _Repeated(7, _publications), "state": _Repeated(18, _publications)},
)

#: A Publication of a keyed (shared poll) channel: its key, version, removal, delta flag.
_KEYED_PUB = _schema(
    data=(4, "bytes"),
    delta=(8, "bool"),
    key=(11, "str"),
    removed=(12, "bool"),
    version=(16, "uint"),
)
_SUB_REFRESH_RESULT = _schema_with_repeated(
    _schema(expires=(1, "bool"), ttl=(2, "uint")),
    {"items": _Repeated(3, lambda items: [_bytes(_encode(_KEYED_PUB, i)) for i in items])},
)


def _connect_schema(numbers: Mapping[str, int]) -> _Schema:
    """ConnectResult, or the Connect push (the same fields under other numbers)."""
    kinds = {
        "client": "str",
        "version": "str",
        "expires": "bool",
        "ttl": "uint",
        "data": "bytes",
        "ping": "uint",
        "pong": "bool",
        "session": "str",
        "node": "str",
        "time": "int64",
    }
    plain = _schema(**{key: (numbers[key], kind) for key, kind in kinds.items()})
    subs = _Repeated(numbers["subs"], _map_of(lambda r: _encode(_SUBSCRIBE_RESULT, r)))
    return _schema_with_repeated(plain, {"subs": subs})


_CONNECT_RESULT_NUMBERS = dict(
    client=1, version=2, expires=3, ttl=4, data=5, subs=6, ping=7, pong=8, session=9, node=10
) | {"time": 11}
_CONNECT_PUSH_NUMBERS = dict(
    client=1, version=2, data=3, subs=4, expires=5, ttl=6, ping=7, pong=8, session=9, node=10
) | {"time": 11}

_PRESENCE_RESULT = _schema_with_repeated({}, {"presence": _Repeated(1, _map_of(_client_info))})
_HISTORY_RESULT = _schema_with_repeated(
    _schema(epoch=(2, "str"), offset=(3, "uint")),
    {"publications": _Repeated(1, _publications)},
)
_EXPIRY = _schema(expires=(1, "bool"), ttl=(2, "uint"))

#: Reply field number and result schema, by method.
_RESULTS: dict[str, tuple[bytes, _Schema]] = {
    method: (_tag(number, _LEN), schema)
    for method, number, schema in (
        ("connect", 5, _connect_schema(_CONNECT_RESULT_NUMBERS)),
        ("subscribe", 6, _SUBSCRIBE_RESULT),
        ("unsubscribe", 7, {}),
        ("publish", 8, {}),
        ("presence", 9, _PRESENCE_RESULT),
        ("presence_stats", 10, _schema(num_clients=(1, "uint"), num_users=(2, "uint"))),
        ("history", 11, _HISTORY_RESULT),
        ("rpc", 13, _schema(data=(1, "bytes"))),
        (
            "refresh",
            14,
            _schema(client=(1, "str"), version=(2, "str"), expires=(3, "bool"), ttl=(4, "uint")),
        ),
        ("sub_refresh", 15, _SUB_REFRESH_RESULT),
    )
}

_JOIN_LEAVE = _schema(info=(1, lambda info: _bytes(_client_info(info))))

#: Push field number and body schema, by kind (``pub`` of a stream channel has its own fast
#: path; this one serves keyed publications).
_PUSHES: dict[str, tuple[bytes, _Schema]] = {
    kind: (_tag(number, _LEN), schema)
    for kind, number, schema in (
        ("join", 5, _JOIN_LEAVE),
        ("leave", 6, _JOIN_LEAVE),
        ("unsubscribe", 7, _schema(code=(2, "uint"), reason=(3, "str"))),
        ("message", 8, _schema(data=(1, "bytes"))),
        (
            "subscribe",
            9,
            _schema(
                recoverable=(1, "bool"),
                epoch=(4, "str"),
                offset=(5, "uint"),
                positioned=(6, "bool"),
                data=(7, "bytes"),
            ),
        ),
        ("connect", 10, _connect_schema(_CONNECT_PUSH_NUMBERS)),
        ("disconnect", 11, _schema(code=(1, "uint"), reason=(2, "str"), reconnect=(3, "bool"))),
        ("refresh", 12, _EXPIRY),
        ("pub", 4, _KEYED_PUB),
    )
}

_REPLY_ID = _tag(1, _VARINT)
_REPLY_ERROR = _tag(2, _LEN)
_REPLY_PUSH = _tag(4, _LEN)
_PUSH_CHANNEL = _tag(2, _LEN)
_PUSH_PUB = _tag(4, _LEN)
_ERROR = _schema(code=(1, "uint"), message=(2, "str"), temporary=(3, "bool"))


def encode_reply(cmd_id: int, method: str, result: Mapping[str, Any]) -> bytes:
    """A successful Reply; the result field is present even when empty."""
    if not result and 0 < cmd_id < 128:
        return _EMPTY_REPLIES[method][cmd_id]  # most subscribe replies of a storm
    tag, schema = _RESULTS[method]
    shape = _SHAPES.get((method, *result))
    body = shape(result) if shape is not None else None
    if body is None:
        body = _encode(schema, result)
    size = len(body)
    if size < 128 and 0 < cmd_id < 128:  # one-byte lengths and id: no call to `_varint`
        reply = _HEADS[cmd_id] + tag + _SMALL[size] + body
        return _SMALL[len(reply)] + reply if len(reply) < 128 else _message(reply)
    head = (_REPLY_ID + _varint(cmd_id) if cmd_id else b"") + tag
    return _message(head + _varint(size) + body)


def _short(value: Any) -> bytes | None:
    """A string field's length and bytes when it is a str of 1–127 bytes, else None."""
    if type(value) is not str:
        return None
    data = value.encode()
    return _SMALL[len(data)] + data if 0 < len(data) < 128 else None


def _ttl(value: Any) -> bytes | None:
    """A positive number below 16,384 as its varint, else None."""
    if type(value) is not int or not 0 < value < 16384:
        return None
    return _SMALL[value] if value < 128 else bytes((value & 0x7F | 0x80, value >> 7))


def _plain_connect(result: Mapping[str, Any]) -> bytes | None:
    """The ConnectResult body of ``client, version, ping, pong`` (token checks off, or a
    token without expiry), or None when a value is unusual."""
    client, version, ping, pong = result.values()
    client, version = _short(client), _short(version)
    if client is None or version is None or pong is not True or type(ping) is not int:
        return None
    if not 0 < ping < 128:
        return None
    return b"\x0a%b\x12%b\x38%b\x40\x01" % (client, version, _SMALL[ping])


def _expiring_connect(result: Mapping[str, Any]) -> bytes | None:
    """The ConnectResult body of ``client, version, expires, ttl, ping, pong`` (a token with
    expiry), or None when a value is unusual."""
    client, version, expires, ttl, ping, pong = result.values()
    client, version, ttl = _short(client), _short(version), _ttl(ttl)
    if client is None or version is None or ttl is None or expires is not True:
        return None
    if pong is not True or type(ping) is not int or not 0 < ping < 128:
        return None
    return b"\x0a%b\x12%b\x18\x01\x20%b\x38%b\x40\x01" % (client, version, ttl, _SMALL[ping])


def _expiring(result: Mapping[str, Any]) -> bytes | None:
    """The body ``expires, ttl`` (fields 1 and 2) of a subscribe or sub_refresh result of a
    token with expiry, or None when a value is unusual."""
    expires, ttl = result.values()
    ttl = _ttl(ttl)
    return None if ttl is None or expires is not True else b"\x08\x01\x10" + ttl


#: Bodies of the commonest results, by method and keys in order, written whole from a
#: template (a writer returns None for unusual values; then `_encode` writes the body). The
#: tests check each against the official runtime and against `_encode`.
_SHAPES: dict[tuple[str, ...], Callable[[Mapping[str, Any]], bytes | None]] = {
    ("connect", "client", "version", "ping", "pong"): _plain_connect,
    ("connect", "client", "version", "expires", "ttl", "ping", "pong"): _expiring_connect,
    ("subscribe", "expires", "ttl"): _expiring,
    ("sub_refresh", "expires", "ttl"): _expiring,
}

#: The id field of a Reply, by command id (1–127).
_HEADS = [b""] + [_REPLY_ID + _SMALL[i] for i in range(1, 128)]


#: The reply with an empty result, by method and command id (1–127), made once.
_EMPTY_REPLIES = {
    method: [b""] + [_message(_REPLY_ID + _SMALL[i] + tag + b"\x00") for i in range(1, 128)]
    for method, (tag, _schema) in _RESULTS.items()
}


def encode_error(cmd_id: int, error: ProtocolError) -> bytes:
    """An error Reply: code, message, and temporary when true."""
    body = {"code": error.code, "message": error.message, "temporary": error.temporary}
    head = _REPLY_ID + _varint(cmd_id) if cmd_id else b""
    return _message(head + _REPLY_ERROR + _bytes(_encode(_ERROR, body)))


def encode_push(kind: str, body: Mapping[str, Any], channel: str = "") -> bytes:
    """A Reply holding one Push of `kind` for `channel`."""
    tag, schema = _PUSHES[kind]
    push = _PUSH_CHANNEL + _str(channel) if channel else b""
    push += tag + _bytes(_encode(schema, body))
    return _message(_REPLY_PUSH + _bytes(push))


def publication_push(channel: str, pub: Publication) -> bytes:
    """A Reply holding the publication push of `pub` in `channel`."""
    push = _PUSH_CHANNEL + _str(channel) + _PUSH_PUB + _bytes(_publication(pub))
    return _message(_REPLY_PUSH + _bytes(push))


def map_publication_push(channel: str, pub: MapPublication) -> bytes:
    """A Reply holding the publication push of the map change `pub` in `channel`."""
    push = _PUSH_CHANNEL + _str(channel) + _PUSH_PUB + _bytes(_map_publication(pub))
    return _message(_REPLY_PUSH + _bytes(push))


# ---------------------------------------------------------------------------- reading


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at `pos` and the position after it (at most 10 bytes, as protobuf allows)."""
    result = shift = 0
    end = min(len(data), pos + 10)
    while pos < end:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & _U64, pos
        shift += 7
    raise ProtocolViolation("truncated varint")


#: A decoded message: field number → last value (an int, or the bytes of a LEN field);
#: the numbers in `repeated` collect every value in a list instead.
_Fields = dict[int, Any]


def _scan(
    data: bytes, expect: Mapping[int, int], repeated: frozenset[int] = frozenset()
) -> _Fields:
    """The fields of one message. `expect` gives the wire type of each known field number.

    Single-byte varints (most keys, lengths and numbers) are read inline: this loop is most
    of the cost of decoding a command.
    """
    fields: _Fields = {}
    pos, size = 0, len(data)
    while pos < size:
        key = data[pos]
        pos += 1
        if key >= 0x80:
            key, pos = _read_varint(data, pos - 1)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == _LEN:
            length = data[pos] if pos < size else 0x80
            pos += 1
            if length >= 0x80:
                # Two bytes: a token or a connect request, 128 bytes to 16 KiB.
                second = data[pos] if pos < size else 0x80
                if second < 0x80:
                    length, pos = (length & 0x7F) | second << 7, pos + 1
                else:
                    length, pos = _read_varint(data, pos - 1)
            end = pos + length
            if end > size:
                raise ProtocolViolation("truncated field")
            value, pos = data[pos:end], end
        elif wire == _VARINT:
            value = data[pos] if pos < size else 0x80
            pos += 1
            if value >= 0x80:
                value, pos = _read_varint(data, pos - 1)
        else:
            value, pos = None, _skip_fixed(wire, pos, size)
        known = expect.get(number)
        if known is None:
            if number == 0:
                raise ProtocolViolation("field number 0")
            continue
        if known != wire:
            raise ProtocolViolation(f"field {number} has the wrong wire type")
        if number in repeated:
            fields.setdefault(number, []).append(value)
        else:
            fields[number] = value
    return fields


def _skip_fixed(wire: int, pos: int, size: int) -> int:
    """The position after a 64-bit or 32-bit value at `pos`; other wire types are refused."""
    if wire == _I64:
        pos += 8
    elif wire == _I32:
        pos += 4
    else:
        raise ProtocolViolation(f"wire type {wire} is not supported")
    if pos > size:
        raise ProtocolViolation("truncated field")
    return pos


def _text(fields: _Fields, number: int) -> str:
    value: bytes | None = fields.get(number)
    if not value:
        return ""
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise ProtocolViolation(f"field {number} is not UTF-8") from None


def _payload(fields: _Fields, number: int) -> bytes | None:
    """A ``data`` field: None when absent or empty, as a JSON command without data."""
    return fields.get(number) or None


def _int64(value: int) -> int:
    """A varint read as int64 (two's complement)."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def _int32(value: int) -> int:
    """A varint read as int32 (negative numbers arrive as 64-bit two's complement)."""
    value &= _U32
    return value - (1 << 32) if value >= 1 << 31 else value


_SUBSCRIBE_WIRES = {1: _LEN, 2: _LEN, 3: _VARINT, 6: _LEN, 7: _VARINT, 8: _LEN, 9: _VARINT}
_SUBSCRIBE_WIRES |= {10: _VARINT, 11: _VARINT, 12: _LEN, 14: _VARINT, 15: _VARINT}
_SUBSCRIBE_WIRES |= {13: _LEN, 16: _VARINT, 17: _LEN, 18: _VARINT}


#: The fields of most subscribe requests: channel and token.
_PLAIN_SUBSCRIBE = frozenset((1, 2))


def _subscribe(data: bytes) -> SubscribeRequest:
    """A SubscribeRequest. The common shape, a channel and maybe a token (fields 1 then 2,
    lengths below 16 KiB, nothing else), is read inline; anything else is scanned."""
    size = len(data)
    if size < 2 or data[0] != 0x0A or data[1] >= 0x80:
        return _any_subscribe(data)
    end = 2 + data[1]
    channel = data[2:end]
    token = b""
    if end != size:
        if end + 2 > size or data[end] != 0x12:
            return _any_subscribe(data)
        length, start = data[end + 1], end + 2
        if length >= 0x80:
            if start >= size or data[start] >= 0x80:
                return _any_subscribe(data)
            length, start = (length & 0x7F) | data[start] << 7, start + 1
        if start + length != size:
            return _any_subscribe(data)
        token = data[start:]
    try:
        return SubscribeRequest(channel.decode(), token.decode() if token else "")
    except UnicodeDecodeError:
        raise ProtocolViolation("channel or token is not UTF-8") from None


def _any_subscribe(data: bytes) -> SubscribeRequest:
    f = _scan(data, _SUBSCRIBE_WIRES)
    if f.keys() <= _PLAIN_SUBSCRIBE:
        return SubscribeRequest(_text(f, 1), _text(f, 2))
    return SubscribeRequest(
        channel=_text(f, 1),
        token=_text(f, 2),
        recover=bool(f.get(3)),
        epoch=_text(f, 6),
        offset=f.get(7, 0),
        data=_payload(f, 8),
        positioned=bool(f.get(9)),
        recoverable=bool(f.get(10)),
        join_leave=bool(f.get(11)),
        delta=_text(f, 12),
        flag=_int64(f.get(14, 0)),
        type=_int32(f.get(15, 0)),
        phase=_int32(f.get(16, 0)),
        cursor=_text(f, 17),
        limit=_int32(f.get(18, 0)),
        tf=_tags_filter(f[13]) if 13 in f else None,
    )


_FILTER_WIRES = {1: _LEN, 2: _LEN, 3: _LEN, 4: _LEN, 5: _LEN, 6: _LEN}
_FILTER_REPEATED = frozenset((5, 6))


def _tags_filter(data: bytes, depth: int = 1) -> TagsFilter:
    """A FilterNode; below `MAX_DEPTH` only `TOO_DEEP` (refused later, never descended)."""
    if depth > MAX_DEPTH:
        return TOO_DEEP
    f = _scan(data, _FILTER_WIRES, _FILTER_REPEATED)
    return TagsFilter(
        op=_text(f, 1),
        key=_text(f, 2),
        cmp=_text(f, 3),
        val=_text(f, 4),
        vals=tuple(_text({5: v}, 5) for v in f.get(5, ())),
        nodes=tuple(_tags_filter(n, depth + 1) for n in f.get(6, ())),
    )


#: The string fields of the common connect request by tag byte: token (1), name (4) and
#: version (5), as their position among `ConnectRequest`'s strings.
_PLAIN_CONNECT = {0x0A: 0, 0x22: 1, 0x2A: 2}


def _connect(data: bytes) -> ConnectRequest:
    """A ConnectRequest. The common shape, only token, name and version (each at most once,
    lengths below 16 KiB), is read inline; anything else (data, subs…) is scanned."""
    texts = [b"", b"", b""]
    pos, size = 0, len(data)
    plain = _PLAIN_CONNECT
    while pos < size:
        slot = plain.get(data[pos])
        if slot is None or texts[slot] or pos + 2 > size:
            return _any_connect(data)
        length, pos = data[pos + 1], pos + 2
        if length >= 0x80:
            if pos >= size or data[pos] >= 0x80:
                return _any_connect(data)
            length, pos = (length & 0x7F) | data[pos] << 7, pos + 1
        end = pos + length
        if end > size or not length:
            return _any_connect(data)
        texts[slot], pos = data[pos:end], end
    token, name, version = texts
    try:
        return ConnectRequest(
            token.decode() if token else "",
            None,
            NO_SUBS,
            name.decode() if name else "",
            version.decode() if version else "",
        )
    except UnicodeDecodeError:
        raise ProtocolViolation("token, name or version is not UTF-8") from None


def _any_connect(data: bytes) -> ConnectRequest:
    f = _scan(data, {1: _LEN, 2: _LEN, 3: _LEN, 4: _LEN, 5: _LEN}, frozenset((3,)))
    subs: Mapping[str, SubscribeRequest] = NO_SUBS
    if 3 in f:
        subs = {}
        for entry in f[3]:
            e = _scan(entry, {1: _LEN, 2: _LEN})
            subs[_text(e, 1)] = _subscribe(e.get(2, b""))
    return ConnectRequest(_text(f, 1), _payload(f, 2), subs, _text(f, 4), _text(f, 5))


def _history(data: bytes) -> HistoryRequest:
    f = _scan(data, {1: _LEN, 7: _VARINT, 8: _LEN, 9: _VARINT})
    since = None
    if 8 in f:
        pos = _scan(f[8], {1: _VARINT, 2: _LEN})
        since = (pos.get(1, 0), _text(pos, 2))
    return HistoryRequest(_text(f, 1), _int32(f.get(7, 0)), since, bool(f.get(9)))


def _publish(data: bytes) -> PublishRequest:
    f = _scan(data, {1: _LEN, 2: _LEN, 3: _VARINT, 4: _LEN, 5: _VARINT})
    return PublishRequest(
        _text(f, 1), _payload(f, 2), _int32(f.get(3, 0)), _text(f, 4), bool(f.get(5))
    )


def _channel_only(make: Callable[[str], Request]) -> Callable[[bytes], Request]:
    return lambda data: make(_text(_scan(data, {1: _LEN}), 1))


def _two(
    make: Callable[[Any, Any], Request], first: str, second: str
) -> Callable[[bytes], Request]:
    """A request of two LEN fields (1 and 2), each read as text or payload."""
    readers = {"text": _text, "payload": _payload}

    def decode(data: bytes) -> Request:
        f = _scan(data, {1: _LEN, 2: _LEN})
        return make(readers[first](f, 1), readers[second](f, 2))

    return decode


def _sub_refresh(data: bytes) -> SubRefreshRequest:
    f = _scan(data, {1: _LEN, 2: _LEN, 3: _VARINT, 4: _LEN, 5: _LEN}, frozenset((4, 5)))
    untrack = []
    for raw_key in f.get(5, ()):
        try:
            untrack.append(raw_key.decode())
        except UnicodeDecodeError:
            raise ProtocolViolation("untrack key is not UTF-8") from None
    return SubRefreshRequest(
        channel=_text(f, 1),
        token=_text(f, 2),
        type=_int32(f.get(3, 0)),
        track=tuple(_track_batch(b) for b in f.get(4, ())),
        untrack=tuple(untrack),
    )


def _track_batch(data: bytes) -> TrackBatch:
    f = _scan(data, {1: _LEN, 2: _LEN}, frozenset((2,)))
    items = []
    for raw_item in f.get(2, ()):
        item = _scan(raw_item, {1: _LEN, 2: _VARINT})
        items.append(KeyedItem(_text(item, 1), item.get(2, 0)))
    return TrackBatch(_text(f, 1), tuple(items))


def _ping(fields: _Fields) -> PingRequest:
    return PingRequest()


#: Command field number → (method, decoder), in the order the first present one wins.
_REQUESTS: tuple[tuple[int, str, Callable[[bytes], Request]], ...] = (
    (4, "connect", _connect),
    (5, "subscribe", _subscribe),
    (6, "unsubscribe", _channel_only(UnsubscribeRequest)),
    (7, "publish", _publish),
    (8, "presence", _channel_only(PresenceRequest)),
    (9, "presence_stats", _channel_only(PresenceStatsRequest)),
    (10, "history", _history),
    (13, "rpc", _two(lambda data, method: RpcRequest(data, method), "payload", "text")),
    (12, "send", lambda data: SendRequest(_payload(_scan(data, {1: _LEN}), 1))),
    (14, "refresh", lambda data: RefreshRequest(_text(_scan(data, {1: _LEN}), 1))),
    (15, "sub_refresh", lambda data: _sub_refresh(data)),
    (11, "ping", lambda data: _ping(_scan(data, {}))),
)

_COMMAND_WIRES = {1: _VARINT} | {number: _LEN for number, _, _ in _REQUESTS}


#: Request decoders of the fast path by the tag byte of their Command field.
_BY_TAG = {number << 3 | _LEN: (method, decode) for number, method, decode in _REQUESTS}


def _command(frame: bytes, pos: int, end: int) -> Command:
    """The Command in ``frame[pos:end]``. The common shape, an id below 128 and then one
    request (length below 16 KiB) up to the end, is read inline; anything else is scanned."""
    if end - pos >= 4 and frame[pos] == 0x08 and frame[pos + 1] < 0x80:
        known = _BY_TAG.get(frame[pos + 2])
        if known is not None:
            length, start = frame[pos + 3], pos + 4
            if length >= 0x80:
                if start < end and frame[start] < 0x80:
                    length, start = (length & 0x7F) | frame[start] << 7, start + 1
                else:
                    length = -1  # longer: scanned
            if start + length == end:
                method, decode = known
                return Command(frame[pos + 1], method, decode(frame[start:end]))
    return _any_command(frame[pos:end])


def _any_command(data: bytes) -> Command:
    f = _scan(data, _COMMAND_WIRES)
    cmd_id = f.get(1, 0) & _U32
    for number, method, decode in _REQUESTS:
        body = f.get(number)
        if body is not None:
            return Command(cmd_id, method, decode(body))
    return Command(cmd_id)


def decode_frame(frame: bytes) -> list[Command]:
    """Every length-prefixed Command of one binary frame, in order."""
    if not frame:
        raise ProtocolViolation("empty request")
    commands = []
    pos, size = 0, len(frame)
    while pos < size:
        length = frame[pos]
        if length < 0x80:
            pos += 1
        elif pos + 1 < size and frame[pos + 1] < 0x80:  # two bytes: a command with a token
            length, pos = (length & 0x7F) | frame[pos + 1] << 7, pos + 2
        else:
            length, pos = _read_varint(frame, pos)
        end = pos + length
        if end > size:
            raise ProtocolViolation("truncated message")
        commands.append(_command(frame, pos, end))
        pos = end
    return commands


def _carries(payload: bytes) -> bool:
    return True


_EMULATION_WIRES = {1: _LEN, 2: _LEN, 3: _LEN}


def decode_emulation(body: bytes) -> tuple[str, str, bytes]:
    """(node, session, data) of an ``EmulationRequest`` (client.proto); `data` holds the
    session's commands, length-prefixed. Raises ProtocolViolation for malformed bytes."""
    fields = _scan(body, _EMULATION_WIRES)
    data: bytes = fields.get(3) or b""
    return _text(fields, 1), _text(fields, 2), data


class ProtobufCodec:
    """The Protobuf format (`rotary.protocol.base.Codec`): binary frames of varint-prefixed
    messages. It carries any payload bytes."""

    name = "protobuf"
    binary = True
    ping = b"\x00"
    decode_frame = staticmethod(decode_frame)
    encode_reply = staticmethod(encode_reply)
    encode_error = staticmethod(encode_error)
    encode_push = staticmethod(encode_push)
    publication_push = staticmethod(publication_push)
    map_publication_push = staticmethod(map_publication_push)
    join_frame = staticmethod(b"".join)
    carries = staticmethod(_carries)


#: The one Protobuf codec every Protobuf session shares.
PROTOBUF = ProtobufCodec()
