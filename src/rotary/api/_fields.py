"""Readers of server API request fields: JSON values in, typed values out.

Every reader takes the decoded request object and a key. An absent key or a JSON ``null``
gives the field's zero value (as protobuf fields have one), a value of the wrong JSON type
raises `RequestDecodeError`, and a value of the right type that cannot be used (bad base64, a
missing required field) raises `ApiError` 107.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from rotary.api.errors import ApiError, RequestDecodeError
from rotary.auth import SubscribeOverride
from rotary.engines.base import StreamPosition
from rotary.jsonbytes import dumps_kept
from rotary.protocol.codes import Disconnect, DisconnectCode

Request = Mapping[str, Any]

#: A WebSocket close frame holds at most 125 bytes: 2 for the code, the rest for the reason.
_MAX_REASON_BYTES = 123
_OVERRIDE_FIELDS = (
    "presence",
    "join_leave",
    "force_push_join_leave",
    "force_recovery",
    "force_positioning",
)


def bad_request(detail: str) -> ApiError:
    """Error 107 with `detail` for the log."""
    return ApiError(107, detail=detail)


def obj(value: object, what: str) -> Request:
    """`value` as a JSON object; RequestDecodeError when it is anything else."""
    if not isinstance(value, Mapping):
        raise RequestDecodeError(f"{what} must be a JSON object")
    return value


def string(req: Request, key: str) -> str:
    """A string field ("" when absent)."""
    value = req.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RequestDecodeError(f"{key} must be a string")
    return value


def required_string(req: Request, key: str) -> str:
    """A string field that must be non-empty (107 otherwise)."""
    value = string(req, key)
    if not value:
        raise bad_request(f"{key} required")
    return value


def boolean(req: Request, key: str) -> bool:
    """A boolean field (False when absent)."""
    value = req.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RequestDecodeError(f"{key} must be a boolean")
    return value


def integer(req: Request, key: str, *, minimum: int | None = None) -> int:
    """An integer field (0 when absent); below `minimum` is a decode error."""
    value = req.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestDecodeError(f"{key} must be an integer")
    if minimum is not None and value < minimum:
        raise RequestDecodeError(f"{key} must be at least {minimum}")
    return value


def string_list(req: Request, key: str) -> list[str]:
    """A list of strings ([] when absent)."""
    value = req.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RequestDecodeError(f"{key} must be a list of strings")
    return value


def string_map(req: Request, key: str) -> dict[str, str] | None:
    """A map of strings to strings (None when absent or empty)."""
    value = req.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise RequestDecodeError(f"{key} must be a map of strings")
    return dict(value) or None


def raw_json(req: Request, key: str) -> bytes | None:
    """A field carrying any JSON, re-encoded compactly (None when absent or null)."""
    value = req.get(key)
    if value is None:
        return None
    try:
        return dumps_kept(value)  # kept: a publication's data may stay in history
    except TypeError as exc:
        raise RequestDecodeError(f"{key} is not encodable JSON") from exc


def base64_bytes(req: Request, key: str) -> bytes | None:
    """A standard-base64 string field, decoded (None when absent or empty; 107 when invalid)."""
    text = string(req, key)
    if not text:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise bad_request(f"{key} is not valid base64") from exc


def payload(req: Request, json_key: str, b64_key: str) -> bytes | None:
    """Raw JSON `json_key`, unless non-empty base64 `b64_key` is given: then its bytes win."""
    decoded = base64_bytes(req, b64_key)
    return decoded if decoded is not None else raw_json(req, json_key)


def position(req: Request, key: str) -> StreamPosition | None:
    """A ``{"offset", "epoch"}`` object (None when absent)."""
    value = req.get(key)
    if value is None:
        return None
    sp = obj(value, key)
    return StreamPosition(offset=integer(sp, "offset", minimum=0), epoch=string(sp, "epoch"))


def override(req: Request, key: str = "override") -> SubscribeOverride | None:
    """Channel option overrides, each ``{"value": bool}`` (None when absent)."""
    value = req.get(key)
    if value is None:
        return None
    fields = obj(value, key)
    flags: dict[str, bool | None] = {}
    for name in _OVERRIDE_FIELDS:
        wrapped = fields.get(name)
        flags[name] = None if wrapped is None else boolean(obj(wrapped, name), "value")
    return SubscribeOverride(**flags)


def disconnect(req: Request, key: str = "disconnect") -> Disconnect:
    """A ``{"code", "reason"}`` object; absent (or code 0) means 3503 "force disconnect".

    Codes outside 3000–4999 and reasons over 123 bytes are refused with 107: they cannot be
    sent in a WebSocket close frame.
    """
    value = req.get(key)
    if value is None:
        return DisconnectCode.FORCE_NO_RECONNECT
    fields = obj(value, key)
    code = integer(fields, "code", minimum=0)
    if code == 0:
        return DisconnectCode.FORCE_NO_RECONNECT
    reason = string(fields, "reason")
    if not 3000 <= code <= 4999 or len(reason.encode()) > _MAX_REASON_BYTES:
        raise bad_request("disconnect code must be 3000-4999 with a reason of <= 123 bytes")
    return Disconnect(code, reason)
