"""Turning raw configuration values into typed ones, one key at a time.

A value comes either from a file (already typed by JSON/YAML/TOML: ``true`` is a bool) or
from text (environment variables and command-line flags: ``"true"``, ``"25s"``,
``"a,b"``). Every failure is a `ValueError` whose message says what was expected.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rotary.config.durations import parse_duration
from rotary.config.keys import Kind

__all__ = ["Raw", "convert"]


@dataclass(frozen=True, slots=True)
class Raw:
    """A value as given, with the name it was given under (dotted key or variable name)."""

    value: object
    label: str
    from_text: bool = False


def convert(kind: Kind, raw: Raw) -> object:
    """The typed value of `raw` for a key of `kind`; ValueError when it does not fit."""
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
        raise ValueError(f"expected true, false, 1 or 0, got {text!r}")
    if kind in ("int", "port", "unix"):
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError(f"expected an integer, got {text!r}") from None
    if kind in ("strs", "addrs", "namespaces"):
        return _text_list(kind, text)
    return text


def _text_list(kind: Kind, text: str) -> object:
    stripped = text.strip()
    if kind == "namespaces" or stripped.startswith("["):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ValueError(f"expected a JSON list: {exc}") from None
    return [part.strip() for part in stripped.split(",") if part.strip()]


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"expected true or false, got {_show(value)}")


def _int(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(f"expected an integer, got {_show(value)}")


def _port(value: object) -> int:
    # Centrifugo v5 configs often write the port as a string ("8000").
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    port = _int(value)
    if not 0 <= port <= 65535:
        raise ValueError(f"expected a port number from 0 to 65535, got {port}")
    return port


def _str(value: object) -> str:
    if isinstance(value, str):
        return value
    raise ValueError(f"expected a string, got {_show(value)}")


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
    raise ValueError(f"expected a list of strings, got {_show(value)}")


def _addrs(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(a.strip() for a in value.split(",") if a.strip())
    return _strs(value)


def _namespaces(value: object) -> list[Mapping[str, object]]:
    if isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
        return value
    raise ValueError(f"expected a list of namespace objects, got {_show(value)}")


def _show(value: object) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


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
    "ignored": _any,
}
