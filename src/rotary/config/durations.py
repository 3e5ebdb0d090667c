"""Go duration strings (``"25s"``, ``"1h30m"``, ``"500ms"``): parsing and formatting.

Centrifugo writes every duration option as a Go duration string; Rotary keeps them as seconds
(floats). Formatting reproduces Go's `time.Duration.String()` so that CLI output matches
Centrifugo's word for word (``168h0m0s``, ``10m0s``, ``1.5s``, ``500ms``, ``0s``).
"""

from __future__ import annotations

import re
from decimal import Decimal

__all__ = ["format_duration", "parse_duration"]

_UNITS_NS: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in the Go duration `text`; ValueError with a short reason if it is not one.

    Accepts an optional sign, then one or more ``<number><unit>`` parts (units ns, us, µs,
    ms, s, m, h), or exactly ``"0"``. A number without a unit is refused, as Go does.
    """
    body = text.strip()
    sign = -1 if body.startswith("-") else 1
    body = body[1:] if body[:1] in "+-" else body
    if body == "0":
        return 0.0
    if not body:
        raise ValueError(f"invalid duration {text!r}")
    total = Decimal(0)
    pos = 0
    while pos < len(body):
        match = _PART.match(body, pos)
        if match is None:
            raise ValueError(_why_not(text, body[pos:]))
        total += Decimal(match.group(1)) * _UNITS_NS[match.group(2)]
        pos = match.end()
    return sign * float(total / 1_000_000_000)


def _why_not(text: str, tail: str) -> str:
    if re.fullmatch(r"[\d.]+", tail):
        return f"missing unit in duration {text!r}"
    return f"invalid duration {text!r}"


def format_duration(seconds: float) -> str:
    """Go's `time.Duration.String()` of `seconds` (rounded to whole nanoseconds)."""
    ns = round(Decimal(str(seconds)) * 1_000_000_000)
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns == 0:
        return "0s"
    if ns < 1_000_000_000:
        return sign + _small(ns)
    hours, rem = divmod(ns, 3_600_000_000_000)
    minutes, rem = divmod(rem, 60_000_000_000)
    secs = _fraction(rem, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}"
    if minutes:
        return f"{sign}{minutes}m{secs}"
    return sign + secs


def _small(ns: int) -> str:
    if ns < 1_000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return _fraction(ns, 1_000) + "µs"
    return _fraction(ns, 1_000_000) + "ms"


def _fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"
