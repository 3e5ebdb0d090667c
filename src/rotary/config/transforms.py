"""Reading the connect-code transform groups of the unidirectional transports.

Two keys hold one: ``client.connect_code_to_unidirectional_disconnect`` (a connect error
becomes a chosen disconnect) and ``uni_sse.connect_code_to_http_response`` /
``uni_http_stream.connect_code_to_http_response`` (a connect error becomes an HTTP answer).
Each is ``{"enabled": bool, "transforms": [{"code": …, "to": {…}}, …]}``, as in Centrifugo.
Every failure is a ValueError naming the item and field at fault.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from rotary.protocol.codes import CodeTransform

__all__ = ["code_to_disconnect", "code_to_http"]

#: Checks the target code of one transform (its label, its value); ValueError when unfit.
_Check = Callable[[str, object], None]


def code_to_http(value: object) -> tuple[CodeTransform, ...] | None:
    """The HTTP transforms of an enabled group (``to: {status_code, body}``); None when the
    group is not enabled."""
    items = _enabled_items(value)
    if items is None:
        return None
    return tuple(_item(i, item, ("status_code", "body"), _http_status) for i, item in items)


def code_to_disconnect(value: object) -> tuple[CodeTransform, ...]:
    """The disconnect transforms of an enabled group (``to: {code, reason}``); empty when
    the group is not enabled."""
    items = _enabled_items(value)
    if items is None:
        return ()
    return tuple(_item(i, item, ("code", "reason"), _disconnect_code) for i, item in items)


def _enabled_items(value: object) -> list[tuple[int, object]] | None:
    if not isinstance(value, Mapping):
        raise ValueError('expected an object {"enabled": …, "transforms": [...]}')
    unknown = set(value) - {"enabled", "transforms"}
    if unknown:
        raise ValueError(f"unknown field {sorted(unknown)[0]!r} (enabled, transforms)")
    enabled = value.get("enabled", False)
    if not isinstance(enabled, bool):
        raise ValueError("enabled: expected true or false")
    transforms = value.get("transforms", [])
    if not isinstance(transforms, list):
        raise ValueError("transforms: expected a list")
    return list(enumerate(transforms)) if enabled else None


def _item(index: int, item: object, fields: tuple[str, str], check_to: _Check) -> CodeTransform:
    where = f"transforms[{index}]"
    if not isinstance(item, Mapping) or not isinstance(item.get("to"), Mapping):
        raise ValueError(f'{where}: expected {{"code": …, "to": {{…}}}}')
    code = item.get("code")
    if not _positive(code):
        raise ValueError(f"{where}.code: expected a positive integer (a connect code)")
    to: Mapping[str, object] = item["to"]
    to_code, text = to.get(fields[0]), to.get(fields[1], "")
    check_to(f"{where}.to.{fields[0]}", to_code)
    if not isinstance(text, str) or not text.isascii():
        raise ValueError(f"{where}.to.{fields[1]}: expected an ASCII string")
    assert isinstance(code, int) and isinstance(to_code, int)
    return CodeTransform(code, to_code, text)


def _positive(value: object) -> bool:
    return _in_range(value, 1, 2**32 - 1)


def _in_range(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _http_status(where: str, value: object) -> None:
    if not _in_range(value, 200, 599):
        raise ValueError(f"{where}: expected an HTTP status from 200 to 599")


def _disconnect_code(where: str, value: object) -> None:
    # Below 3000 the codes belong to WebSocket itself (RFC 6455): no close frame may carry them.
    if not _in_range(value, 3000, 4999):
        raise ValueError(f"{where}: expected a disconnect code from 3000 to 4999")
