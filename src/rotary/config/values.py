"""Turning raw configuration values into typed ones, one key at a time.

A value comes either from a file (already typed by JSON/YAML/TOML: ``true`` is a bool) or
from text (environment variables and command-line flags: ``"true"``, ``"25s"``,
``"a,b"``). Every failure is a `ValueError` whose message says what was expected.

A key whose name contains ``secret``, ``key``, ``password`` or ``token`` may hold a secret, so
its failure messages name only the type of the value given ("expected a string, got a list"),
never the value itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rotary.config.durations import parse_duration
from rotary.config.keys import Kind
from rotary.config.transforms import code_to_disconnect, code_to_http

__all__ = ["Raw", "convert", "is_sensitive"]

#: Words that mark a key as possibly holding a secret (matched in its last name segment).
_SENSITIVE_WORDS = ("secret", "key", "password", "token")


@dataclass(frozen=True, slots=True)
class Raw:
    """A value as given, with the name it was given under (dotted key or variable name)."""

    value: object
    label: str
    from_text: bool = False


def is_sensitive(label: str) -> bool:
    """Whether the key named `label` (dotted path or variable name) may hold a secret."""
    name = label.rsplit(".", 1)[-1].lower()
    return any(word in name for word in _SENSITIVE_WORDS)


class _Mismatch(ValueError):
    """A value of the wrong type or range; keeps what was expected and the value apart."""

    def __init__(self, expected: str, value: object, shown: str | None = None) -> None:
        super().__init__(f"expected {expected}, got {_show(value) if shown is None else shown}")
        self.expected, self.value = expected, value


def convert(kind: Kind, raw: Raw) -> object:
    """The typed value of `raw` for a key of `kind`; ValueError when it does not fit.

    The error message never contains the value when `is_sensitive(raw.label)`.
    """
    try:
        return _convert(kind, raw)
    except _Mismatch as exc:
        if is_sensitive(raw.label):
            raise ValueError(f"expected {exc.expected}, got {_type_name(exc.value)}") from None
        raise
    except ValueError:
        if is_sensitive(raw.label):
            raise ValueError(f"not a valid {kind} value (not shown: it may be a secret)") from None
        raise


def _convert(kind: Kind, raw: Raw) -> object:
    value = raw.value
    if raw.from_text and isinstance(value, str) and kind not in ("str", "ignored"):
        value = _from_text(kind, value)
    return _CHECKS[kind](value)


def _from_text(kind: Kind, text: str) -> object:
    if kind == "bool":
        lowered = text.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise _Mismatch("true, false, 1 or 0", text, repr(text))
    if kind in ("int", "port", "unix"):
        try:
            return int(text.strip())
        except ValueError:
            raise _Mismatch("an integer", text, repr(text)) from None
    if kind in ("strs", "addrs", "namespaces", "proxies"):
        return _text_list(kind, text)
    if kind in ("code_to_http", "code_to_disconnect"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"expected a JSON object: {exc}") from None
    return text


def _text_list(kind: Kind, text: str) -> object:
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ValueError(f"expected a JSON list: {exc}") from None
    if kind == "namespaces":  # v6: only the names; options come item by item
        return [{"name": name} for name in stripped.replace(",", " ").split()]
    return [part.strip() for part in stripped.split(",") if part.strip()]


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise _Mismatch("true or false", value)


def _int(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _Mismatch("an integer", value)


def _port(value: object) -> int:
    # Centrifugo v5 configs often write the port as a string ("8000").
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    port = _int(value)
    if not 0 <= port <= 65535:
        raise _Mismatch("a port number from 0 to 65535", port, str(port))
    return port


def _str(value: object) -> str:
    if isinstance(value, str):
        return value
    raise _Mismatch("a string", value)


def _duration(value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError(
            f'a bare number ({value}) is not a duration: write a duration string such as "25s"'
        )
    try:
        return parse_duration(_str(value))
    except ValueError as exc:
        raise ValueError(
            f'{exc}: write a duration string such as "25s", "1h30m" or "500ms"'
        ) from None


def _strs(value: object) -> tuple[str, ...]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise _Mismatch("a list of strings", value)


def _addrs(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(a.strip() for a in value.split(",") if a.strip())
    return _strs(value)


def _namespaces(value: object) -> list[Mapping[str, object]]:
    if isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
        return value
    raise _Mismatch("a list of namespace objects", value)


def _proxies(value: object) -> list[Mapping[str, object]]:
    if isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
        return value
    raise _Mismatch("a list of proxy objects", value)


def _show(value: object) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _type_name(value: object) -> str:
    """A value's JSON type in words ("a list"), for messages that must not show the value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "an object" if isinstance(value, Mapping) else f"a {type(value).__name__}"


def _any(value: object) -> object:
    return value


_CHECKS: dict[str, Callable[[object], object]] = {
    "bool": _bool,
    "int": _int,
    "unix": _int,
    "port": _port,
    "str": _str,
    "duration": _duration,
    "strs": _strs,
    "addrs": _addrs,
    "namespaces": _namespaces,
    "proxies": _proxies,
    "ignored": _any,
    "code_to_http": code_to_http,
    "code_to_disconnect": code_to_disconnect,
}
