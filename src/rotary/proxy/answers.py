"""Proxy request bodies and the reading of the backend's answers: no I/O.

Request and answer fields are Centrifugo's HTTP proxy JSON (docs/backend.md "The proxy"). An
answer is an object with one of ``result``, ``error`` or ``disconnect``; ``disconnect`` wins
over ``error`` as in Centrifugo, and each becomes what the client gets: ``error`` an error
reply ``{code, message, temporary}``, ``disconnect`` the connection closed with
``{code, reason}``. Anything else malformed is a `ProxyFailure`: the node then answers
error 100, never lets the client in.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import orjson

from rotary.auth.tokens import SubscribeOverride
from rotary.engines.maps import KEY_MODES
from rotary.errors import RotaryError
from rotary.node.auth import ConnectCredentials, ServerSubOptions, SubscribeCredentials
from rotary.node.proxy import ProxiedMapPublish, ProxiedMapRemove, ProxiedRefresh, ProxyContext
from rotary.protocol.codes import (
    CommandError,
    Disconnect,
    DisconnectError,
    ProtocolError,
)

__all__ = [
    "ProxyFailure",
    "connect_result",
    "map_publish_result",
    "map_remove_result",
    "payload_field",
    "publish_result",
    "refresh_result",
    "request_body",
    "result_of",
    "rpc_result",
    "subscribe_result",
]

_OVERRIDES = (
    "presence",
    "join_leave",
    "force_push_join_leave",
    "force_recovery",
    "force_positioning",
)
_UINT32 = 2**32


class ProxyFailure(RotaryError):
    """The backend could not be asked, or its answer makes no sense. `reason` is loggable."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def payload_field(data: bytes) -> dict[str, Any]:
    """``{"data": <the JSON>}``, or ``{"b64data": …}`` for a payload that is not JSON (a
    Protobuf client may send any bytes)."""
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return {"b64data": base64.b64encode(data).decode("ascii")}
    return {"data": orjson.Fragment(data)}


def request_body(
    ctx: ProxyContext, fields: Mapping[str, Any], *, with_user: bool = True, meta: bool = False
) -> bytes:
    """A request: the common fields (client, transport, protocol, encoding, user, and meta
    when asked and present), then `fields` (raw JSON as `orjson.Fragment`). The encoding is
    ``binary`` when the payload went as ``b64data``, else ``json``."""
    body: dict[str, Any] = {
        "client": ctx.client,
        "transport": "websocket",
        "protocol": ctx.protocol,
        "encoding": "binary" if "b64data" in fields else "json",
    }
    if with_user:
        body["user"] = ctx.user
    if meta and ctx.meta is not None:
        body["meta"] = orjson.Fragment(ctx.meta)
    body.update(fields)
    return orjson.dumps(body)


def result_of(answer: bytes) -> dict[str, Any] | None:
    """The ``result`` object of an answer (None when absent); raise the answer's refusal."""
    try:
        doc = orjson.loads(answer)
    except orjson.JSONDecodeError:
        raise ProxyFailure("answer is not JSON") from None
    if type(doc) is not dict:
        raise ProxyFailure("answer is not a JSON object")
    if doc.get("disconnect") is not None:
        raise DisconnectError(_disconnect(doc["disconnect"]))
    if doc.get("error") is not None:
        raise CommandError(_error(doc["error"]))
    result = doc.get("result")
    if result is not None and type(result) is not dict:
        raise ProxyFailure("result is not an object")
    return result


def _code(value: object, what: str) -> int:
    if type(value) is not int or not 0 < value < _UINT32:
        raise ProxyFailure(f"{what}.code must be a positive integer")
    return value


def _disconnect(value: object) -> Disconnect:
    if type(value) is not dict:
        raise ProxyFailure("disconnect is not an object")
    return Disconnect(_code(value.get("code"), "disconnect"), _text(value, "reason"))


def _error(value: object) -> ProtocolError:
    if type(value) is not dict:
        raise ProxyFailure("error is not an object")
    temporary = value.get("temporary", False)
    if type(temporary) is not bool:
        raise ProxyFailure("error.temporary must be a boolean")
    return ProtocolError(_code(value.get("code"), "error"), _text(value, "message"), temporary)


def _text(obj: Mapping[str, Any], name: str) -> str:
    value = obj.get(name)
    if value is None:
        return ""
    if type(value) is not str:
        raise ProxyFailure(f"{name} must be a string")
    return value


def _int(obj: Mapping[str, Any], name: str) -> int:
    value = obj.get(name)
    if value is None:
        return 0
    if type(value) is not int:
        raise ProxyFailure(f"{name} must be an integer")
    return value


def _payload(obj: Mapping[str, Any], name: str) -> bytes | None:
    """``<name>`` as compact JSON, or the decoded ``b64<name>`` when non-empty (it wins)."""
    b64 = _text(obj, f"b64{name}")
    if b64:
        try:
            return base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise ProxyFailure(f"b64{name} is not valid base64") from None
    value = obj.get(name)
    return None if value is None else orjson.dumps(value)


def _override(obj: Mapping[str, Any]) -> SubscribeOverride | None:
    value = obj.get("override")
    if value is None:
        return None
    if type(value) is not dict:
        raise ProxyFailure("override is not an object")
    fields: dict[str, bool] = {}
    for name in _OVERRIDES:
        entry = value.get(name)
        if entry is None:
            continue
        flag = entry.get("value", False) if type(entry) is dict else None
        if type(flag) is not bool:
            raise ProxyFailure(f'override.{name} must be {{"value": bool}}')
        fields[name] = flag
    return SubscribeOverride(**fields)


def connect_result(answer: bytes) -> tuple[ConnectCredentials, bytes | None] | None:
    """Credentials and reply data of a connect answer; None when it has no ``result``."""
    result = result_of(answer)
    if result is None:
        return None
    user = _text(result, "user")
    channels = result.get("channels") or []
    if type(channels) is not list or not all(type(ch) is str for ch in channels):
        raise ProxyFailure("channels must be a list of strings")
    subs = result.get("subs") or {}
    if type(subs) is not dict:
        raise ProxyFailure("subs must be an object")
    options = {channel: _sub_options(entry) for channel, entry in subs.items()}
    meta = result.get("meta")
    creds = ConnectCredentials(
        user=user,
        expire_at=_int(result, "expire_at"),
        info=_payload(result, "info"),
        channels=tuple(channels),
        subs={**{ch: ServerSubOptions() for ch in channels}, **options} if options else {},
        meta=None if meta is None else orjson.dumps(meta),
    )
    return creds, _payload(result, "data")


def _sub_options(entry: object) -> ServerSubOptions:
    if entry is None:
        return ServerSubOptions()
    if type(entry) is not dict:
        raise ProxyFailure("subs entries must be objects")
    return ServerSubOptions(
        info=_payload(entry, "info"), data=_payload(entry, "data"), override=_override(entry)
    )


def refresh_result(answer: bytes) -> ProxiedRefresh:
    """A refresh or sub_refresh answer; no ``result`` keeps the current expiry."""
    result = result_of(answer) or {}
    expired = result.get("expired", False)
    if type(expired) is not bool:
        raise ProxyFailure("expired must be a boolean")
    return ProxiedRefresh(expired, _int(result, "expire_at"), _payload(result, "info"))


def subscribe_result(answer: bytes, ctx: ProxyContext, channel: str) -> SubscribeCredentials:
    """What the subscribe proxy granted: its info, data, expiry and overrides."""
    result = result_of(answer) or {}
    return SubscribeCredentials(
        user=ctx.user,
        channel=channel,
        client=ctx.client,
        expire_at=_int(result, "expire_at"),
        info=_payload(result, "info"),
        data=_payload(result, "data"),
        override=_override(result),
    )


def publish_result(answer: bytes, data: bytes) -> bytes:
    """The data to publish: the backend's ``data``/``b64data`` when given, else `data`."""
    result = result_of(answer) or {}
    replaced = _payload(result, "data")
    return data if replaced is None else replaced


def map_publish_result(answer: bytes, key: str, data: bytes) -> ProxiedMapPublish:
    """A key write as the map_publish proxy decided it: its ``key`` and ``data``/``b64data``
    replace the client's when given; ``tags``, ``key_mode``, ``idempotency_key``, ``delta``,
    ``version`` and ``version_epoch`` are the write's options (``score`` and
    ``stream_data`` are read by no map broker, as in Centrifugo)."""
    result = result_of(answer) or {}
    replaced = _payload(result, "data")
    key_mode = _text(result, "key_mode")
    if key_mode not in KEY_MODES:
        raise ProxyFailure('key_mode must be "", "if_new" or "if_exists"')
    delta = result.get("delta", False)
    if type(delta) is not bool:
        raise ProxyFailure("delta must be a boolean")
    version = _int(result, "version")
    if version < 0:
        raise ProxyFailure("version must not be negative")
    return ProxiedMapPublish(
        key=_text(result, "key") or key,
        data=data if replaced is None else replaced,
        tags=_tags(result),
        key_mode=key_mode,
        idempotency_key=_text(result, "idempotency_key"),
        delta=delta,
        version=version,
        version_epoch=_text(result, "version_epoch"),
    )


def map_remove_result(answer: bytes, key: str) -> ProxiedMapRemove:
    """A key removal as the map_remove proxy decided it (its ``key`` replaces the client's)."""
    result = result_of(answer) or {}
    return ProxiedMapRemove(
        key=_text(result, "key") or key,
        tags=_tags(result),
        idempotency_key=_text(result, "idempotency_key"),
    )


def _tags(obj: Mapping[str, Any]) -> dict[str, str] | None:
    tags = obj.get("tags")
    if tags is None:
        return None
    if type(tags) is not dict or not all(type(v) is str for v in tags.values()):
        raise ProxyFailure("tags must be an object of strings")
    return tags or None


def rpc_result(answer: bytes) -> bytes | None:
    """The RPC reply's data."""
    return _payload(result_of(answer) or {}, "data")
