"""JSON codec of protocol v2 (docs/protocol.md "Framing", docs/protocol.md "Messages"): frames in,
commands out; replies out as bytes.

Sans-I/O. `decode_frame` raises only `ProtocolViolation` (the session answers it with
disconnect 3501), whatever bytes it is given. Encoders return one line of compact JSON each;
raw payloads (``data``, ``conn_info``, ``chan_info``) are embedded verbatim with newlines
removed, so every encoded message stays a single line (the SDKs split frames on ``\\n``).
Empty results are written as ``{}`` and the fields the SDKs index are always present
(docs/protocol.md "Messages").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn

import orjson

from rotary.engines.base import ClientInfo, MapPublication, Publication
from rotary.jsonbytes import dumps_kept
from rotary.protocol.base import NotEncodable, ProtocolViolation
from rotary.protocol.codes import ProtocolError
from rotary.protocol.filters import MAX_DEPTH, TOO_DEEP, TagsFilter
from rotary.protocol.messages import (
    NO_SUBS,
    REQUEST_ORDER,
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

__all__ = [
    "JSON",
    "PING",
    "JsonCodec",
    "NotEncodable",
    "ProtocolViolation",
    "client_info_obj",
    "decode_frame",
    "encode_error",
    "encode_push",
    "encode_reply",
    "join_frame",
    "map_publication_obj",
    "map_publication_push",
    "publication_obj",
    "publication_push",
    "raw",
]

#: A server ping: the empty Reply.
PING = b"{}"

_UINT32 = 0xFFFFFFFF
_UINT64 = 0xFFFFFFFFFFFFFFFF


# ---------------------------------------------------------------------------- decoding


def decode_frame(frame: bytes) -> list[Command]:
    """Every command of one text frame, in order.

    One trailing newline is tolerated; an empty frame, a blank line, a line that is not a
    JSON object or a field of the wrong type raises `ProtocolViolation`.
    """
    if frame.endswith(b"\n"):
        frame = frame[:-1]
    if not frame:
        raise ProtocolViolation("empty request")
    return [_decode_command(line) for line in frame.split(b"\n")]


def _decode_command(line: bytes) -> Command:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ProtocolViolation("malformed JSON") from exc
    if not isinstance(obj, dict):
        raise ProtocolViolation("command is not an object")
    cmd_id = _uint(obj, "id", _UINT32)
    for method in REQUEST_ORDER:
        value = obj.get(method)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise ProtocolViolation(f"{method} is not an object")
        return Command(cmd_id, method, _DECODERS[method](value))
    return Command(cmd_id)


def _field(obj: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = obj.get(key)
    if value is None:
        return default
    # bool is an int subclass in Python; JSON keeps them apart.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProtocolViolation(f"{key} has the wrong type")
    return value


def _str(obj: dict[str, Any], key: str) -> str:
    value: str = _field(obj, key, str, "")
    return value


def _bool(obj: dict[str, Any], key: str) -> bool:
    value: bool = _field(obj, key, bool, False)
    return value


def _uint(obj: dict[str, Any], key: str, top: int) -> int:
    value: int = _field(obj, key, int, 0)
    if not 0 <= value <= top:
        raise ProtocolViolation(f"{key} out of range")
    return value


def _int32(obj: dict[str, Any], key: str) -> int:
    value: int = _field(obj, key, int, 0)
    if not -(2**31) <= value < 2**31:
        raise ProtocolViolation(f"{key} out of range")
    return value


def _int64(obj: dict[str, Any], key: str) -> int:
    value: int = _field(obj, key, int, 0)
    if not -(2**63) <= value < 2**63:
        raise ProtocolViolation(f"{key} out of range")
    return value


def _raw(obj: dict[str, Any], key: str) -> bytes | None:
    value = obj.get(key)
    if value is None:
        return None
    try:
        return dumps_kept(value)  # kept: a publication's data may stay in history
    except orjson.JSONEncodeError as exc:  # nesting deeper than the encoder allows
        raise ProtocolViolation(f"{key} cannot be re-encoded") from exc


#: Keys of the common subscribe (a channel, maybe a token) and connect requests, which are
#: checked inline; anything else takes the field-by-field path.
_PLAIN_SUBSCRIBE = frozenset(("channel", "token"))
_PLAIN_CONNECT = frozenset(("token", "name", "version"))


def _subscribe(obj: dict[str, Any]) -> SubscribeRequest:
    """A subscribe request; raise ProtocolViolation for a field of the wrong type."""
    channel, token = obj.get("channel", ""), obj.get("token", "")
    if obj.keys() <= _PLAIN_SUBSCRIBE and type(channel) is str and type(token) is str:
        return SubscribeRequest(channel, token)
    return _any_subscribe(obj)


def _any_subscribe(obj: dict[str, Any]) -> SubscribeRequest:
    return SubscribeRequest(
        channel=_str(obj, "channel"),
        token=_str(obj, "token"),
        recover=_bool(obj, "recover"),
        epoch=_str(obj, "epoch"),
        offset=_uint(obj, "offset", _UINT64),
        data=_raw(obj, "data"),
        positioned=_bool(obj, "positioned"),
        recoverable=_bool(obj, "recoverable"),
        join_leave=_bool(obj, "join_leave"),
        delta=_str(obj, "delta"),
        flag=_int64(obj, "flag"),
        type=_int32(obj, "type"),
        phase=_int32(obj, "phase"),
        cursor=_str(obj, "cursor"),
        limit=_int32(obj, "limit"),
        tf=_tags_filter(obj),
    )


def _tags_filter(obj: dict[str, Any]) -> TagsFilter | None:
    value = obj.get("tf")
    return None if value is None else _filter_node(value, 1)


def _filter_node(obj: object, depth: int) -> TagsFilter:
    """A ``tf`` node; below `MAX_DEPTH` only `TOO_DEEP` (refused later, never descended)."""
    if not isinstance(obj, dict):
        raise ProtocolViolation("tf node is not an object")
    if depth > MAX_DEPTH:
        return TOO_DEEP
    vals: list[Any] = _field(obj, "vals", list, [])
    nodes: list[Any] = _field(obj, "nodes", list, [])
    if not all(type(v) is str for v in vals):
        raise ProtocolViolation("vals has the wrong type")
    return TagsFilter(
        op=_str(obj, "op"),
        key=_str(obj, "key"),
        cmp=_str(obj, "cmp"),
        val=_str(obj, "val"),
        vals=tuple(vals),
        nodes=tuple(_filter_node(n, depth + 1) for n in nodes),
    )


def _connect(obj: dict[str, Any]) -> ConnectRequest:
    """A connect request; raise ProtocolViolation for a field of the wrong type."""
    get = obj.get
    token, name, version = get("token", ""), get("name", ""), get("version", "")
    plain = type(token) is str and type(name) is str and type(version) is str
    if plain and obj.keys() <= _PLAIN_CONNECT:
        return ConnectRequest(token, None, NO_SUBS, name, version)
    return _any_connect(obj)


def _any_connect(obj: dict[str, Any]) -> ConnectRequest:
    subs_obj = _field(obj, "subs", dict, {})
    subs: dict[str, SubscribeRequest] = {}
    for channel, sub in subs_obj.items():
        if not isinstance(sub, dict):
            raise ProtocolViolation("subs entry is not an object")
        subs[channel] = _subscribe(sub)
    return ConnectRequest(
        token=_str(obj, "token"),
        data=_raw(obj, "data"),
        subs=subs,
        name=_str(obj, "name"),
        version=_str(obj, "version"),
    )


def _history(obj: dict[str, Any]) -> HistoryRequest:
    since_obj = _field(obj, "since", dict, None)
    since = None
    if since_obj is not None:
        since = (_uint(since_obj, "offset", _UINT64), _str(since_obj, "epoch"))
    return HistoryRequest(
        channel=_str(obj, "channel"),
        limit=_int32(obj, "limit"),
        since=since,
        reverse=_bool(obj, "reverse"),
    )


def _sub_refresh(obj: dict[str, Any]) -> SubRefreshRequest:
    batches = _field(obj, "track", list, [])
    untrack = _field(obj, "untrack", list, [])
    if not all(type(key) is str for key in untrack):
        raise ProtocolViolation("untrack holds a key that is not a string")
    return SubRefreshRequest(
        channel=_str(obj, "channel"),
        token=_str(obj, "token"),
        type=_int32(obj, "type"),
        track=tuple(_track_batch(b) for b in batches),
        untrack=tuple(untrack),
    )


def _track_batch(obj: object) -> TrackBatch:
    if not isinstance(obj, dict):
        raise ProtocolViolation("track batch is not an object")
    items = []
    for item in _field(obj, "items", list, []):
        if not isinstance(item, dict):
            raise ProtocolViolation("track item is not an object")
        items.append(KeyedItem(_str(item, "key"), _uint(item, "version", _UINT64)))
    return TrackBatch(_str(obj, "signature"), tuple(items))


_DECODERS: dict[str, Callable[[dict[str, Any]], Request]] = {
    "connect": _connect,
    "subscribe": _subscribe,
    "unsubscribe": lambda o: UnsubscribeRequest(_str(o, "channel")),
    "publish": lambda o: PublishRequest(
        _str(o, "channel"), _raw(o, "data"), _int32(o, "type"), _str(o, "key"), _bool(o, "removed")
    ),
    "presence": lambda o: PresenceRequest(_str(o, "channel")),
    "presence_stats": lambda o: PresenceStatsRequest(_str(o, "channel")),
    "history": _history,
    "rpc": lambda o: RpcRequest(_raw(o, "data"), _str(o, "method")),
    "send": lambda o: SendRequest(_raw(o, "data")),
    "refresh": lambda o: RefreshRequest(_str(o, "token")),
    "sub_refresh": _sub_refresh,
    "ping": lambda o: PingRequest(),
}


# ---------------------------------------------------------------------------- encoding


def raw(payload: bytes) -> orjson.Fragment:
    """`payload` (JSON bytes) embedded verbatim, newlines removed so it stays one line.

    Raises `NotEncodable` when `payload` is not JSON (bytes a Protobuf client or a
    ``b64data`` brought in). Removing newline bytes is safe for valid JSON: a raw newline can
    only be whitespace outside strings.
    """
    try:
        orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise NotEncodable("payload is not JSON") from None
    if b"\n" in payload:
        payload = payload.replace(b"\n", b"")
    return orjson.Fragment(payload)


def client_info_obj(info: ClientInfo) -> dict[str, Any]:
    """ClientInfo as JSON: `user` and `client` always, the infos only when present."""
    obj: dict[str, Any] = {"user": info.user, "client": info.client}
    if info.conn_info:
        obj["conn_info"] = raw(info.conn_info)
    if info.chan_info:
        obj["chan_info"] = raw(info.chan_info)
    return obj


def publication_obj(pub: Publication) -> dict[str, Any]:
    """A Publication as JSON (``data``, then ``info``, ``offset``, ``tags``, ``delta`` when
    set)."""
    return _with_set_fields({"data": raw(pub.data) if pub.data else raw(b"null")}, pub)


def _with_set_fields(obj: dict[str, Any], pub: Publication | MapPublication) -> dict[str, Any]:
    """`obj` with the optional Publication fields that `pub` sets: ``info``, ``offset``,
    ``tags``, ``delta``."""
    if pub.info is not None:
        obj["info"] = client_info_obj(pub.info)
    if pub.offset:
        obj["offset"] = pub.offset
    if pub.tags:
        obj["tags"] = dict(pub.tags)
    if pub.delta:
        obj["delta"] = True
    return obj


def map_publication_obj(pub: MapPublication) -> dict[str, Any]:
    """A map entry or change as JSON: the Publication fields that are set, with ``key`` and
    ``removed``; no ``data`` when it is empty (a removal). No ``time``: Centrifugo's
    publications do not carry it either (the server API's map reads do)."""
    obj = _with_set_fields({"data": raw(pub.data)} if pub.data else {}, pub)
    obj["key"] = pub.key
    if pub.removed:
        obj["removed"] = True
    return obj


def _default(value: object) -> object:
    """orjson's hook for the values of the codec seam that JSON has no type for."""
    if isinstance(value, bytes):
        return raw(value)
    if isinstance(value, Publication):
        return publication_obj(value)
    if isinstance(value, MapPublication):
        return map_publication_obj(value)
    if isinstance(value, ClientInfo):
        return client_info_obj(value)
    raise TypeError(f"{type(value).__name__} is not a protocol value")


def _dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj, default=_default, option=orjson.OPT_PASSTHROUGH_DATACLASS)
    except orjson.JSONEncodeError as exc:
        _reraise(exc)


def _reraise(exc: orjson.JSONEncodeError) -> NoReturn:
    """Raise what made orjson fail: `NotEncodable` from `_default`, else `exc` itself."""
    if isinstance(exc.__cause__, NotEncodable):
        raise exc.__cause__ from None
    raise exc


def publication_push(channel: str, pub: Publication) -> bytes:
    """The push of one publication, encoded once for every subscriber of `channel`."""
    return orjson.dumps({"push": {"channel": channel, "pub": publication_obj(pub)}})


def map_publication_push(channel: str, pub: MapPublication) -> bytes:
    """The push of one change of a map channel, encoded once for its subscribers."""
    return orjson.dumps({"push": {"channel": channel, "pub": map_publication_obj(pub)}})


def encode_push(kind: str, body: Mapping[str, Any], channel: str = "") -> bytes:
    """A push ``{"push":{"channel":…, kind: body}}`` (no channel key when `channel` is "")."""
    push: dict[str, Any] = {"channel": channel} if channel else {}
    push[kind] = body
    return _dumps({"push": push})


def encode_reply(cmd_id: int, method: str, result: Mapping[str, Any]) -> bytes:
    """A successful reply; an empty `result` is written as ``{}``, never omitted."""
    # `_dumps` written out: every command's answer comes here, one Python call less.
    try:
        return orjson.dumps(
            {"id": cmd_id, method: result},
            default=_default,
            option=orjson.OPT_PASSTHROUGH_DATACLASS,
        )
    except orjson.JSONEncodeError as exc:
        _reraise(exc)


def encode_error(cmd_id: int, error: ProtocolError) -> bytes:
    """An error reply; `code` and `message` always, `temporary` only when true."""
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.temporary:
        body["temporary"] = True
    return orjson.dumps({"id": cmd_id, "error": body})


#: Several encoded messages as one frame: joined by ``\n``, no trailing newline.
join_frame: Callable[[Iterable[bytes]], bytes] = b"\n".join


def _carries(payload: bytes) -> bool:
    try:
        orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    return True


class JsonCodec:
    """The JSON format (`rotary.protocol.base.Codec`): text frames, one message per line.

    Raw payloads are embedded as JSON values, so bytes that are not JSON raise
    `NotEncodable`.
    """

    name = "json"
    binary = False
    ping = PING
    decode_frame = staticmethod(decode_frame)
    encode_reply = staticmethod(encode_reply)
    encode_error = staticmethod(encode_error)
    encode_push = staticmethod(encode_push)
    publication_push = staticmethod(publication_push)
    map_publication_push = staticmethod(map_publication_push)
    join_frame = staticmethod(join_frame)
    carries = staticmethod(_carries)


#: The one JSON codec every JSON session shares.
JSON = JsonCodec()
