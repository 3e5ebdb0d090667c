"""Logging set-up (plain or one JSON object per line) and structured denial records.

Tokens never reach the logs: `log_denial` has no parameter for one, and every line written
by a handler `configure_logging` installs goes through `redact`, which replaces anything
shaped like a JWT (``eyJ…`` followed by dot-separated base64url parts) with
``<redacted jwt>``, wherever it hides (a message, an ``extra`` field, a traceback).
"""

from __future__ import annotations

import datetime
import json as _json
import logging
import re
import sys
from typing import Any

from rotary.errors import ConfigError

__all__ = [
    "REDACTED",
    "JsonFormatter",
    "PlainFormatter",
    "configure_logging",
    "log_denial",
    "redact",
]

REDACTED = "<redacted jwt>"
# A JWS/JWE: a base64url JSON header ("eyJ" is '{"'), then at least one dot and more parts;
# or any three long dot-separated base64url parts (a token whose header is spaced oddly).
_JWT = re.compile(
    r"eyJ[A-Za-z0-9_=-]*\.[A-Za-z0-9_=./+-]*"
    r"|[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"
)
_BARE = re.compile(r"[A-Za-z0-9_.:-]+")
#: Longest field value `log_denial` writes; longer ones are cut (client-controlled input).
_FIELD_MAX = 256
_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "none": logging.CRITICAL + 10,
}
_INSTALLED = "_rotary_handler"
# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def redact(text: str) -> str:
    """`text` with every JWT-shaped substring replaced by `REDACTED`."""
    return _JWT.sub(REDACTED, text)


class PlainFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger>: <message>`` (and the traceback), redacted."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, every ``extra`` field, and
    ``exc`` (the traceback) when there is one; redacted."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        return redact(_json.dumps(entry, ensure_ascii=False, default=str))


def _iso_time(created: float) -> str:
    moment = datetime.datetime.fromtimestamp(created, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def configure_logging(level: str, *, json: bool, file: str = "") -> None:
    """Send the root logger's records at `level` and above to stderr or `file`.

    `level` is one of trace (same as debug), debug, info, warn/warning, error, critical,
    none (nothing). `json` writes one JSON object per line, else plain text. Calling it again
    replaces the handler it installed before (and only that one). Raises `ConfigError` for
    an unknown level; `OSError` when `file` cannot be opened.
    """
    numeric = _LEVELS.get(level.strip().lower())
    if numeric is None:
        raise ConfigError([f"log.level: unknown level {level!r} (one of {', '.join(_LEVELS)})"])
    handler = _handler(file)
    handler.setFormatter(JsonFormatter() if json else PlainFormatter())
    setattr(handler, _INSTALLED, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _INSTALLED, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(numeric)


def _handler(file: str) -> logging.Handler:
    if file:
        # Reopens the file when logrotate moved it away.
        from logging.handlers import WatchedFileHandler

        return WatchedFileHandler(file, encoding="utf-8")
    return logging.StreamHandler(sys.stderr)


def log_denial(
    logger: logging.Logger | logging.LoggerAdapter[Any],
    *,
    action: str,
    reason: str,
    user: str,
    client: str,
    channel: str = "",
    outcome: str,
    detail: str = "",
    level: int = logging.INFO,
) -> None:
    """Log ONE line saying that `action` (connect, subscribe, refresh, …) was refused.

    Plain text: ``denied subscribe: reason=signature user="42" client="c1" channel="$x"
    outcome=invalid`` (``channel`` and ``detail`` only when not empty); in JSON mode the same
    fields also appear as keys, with ``"event": "denial"``. There is deliberately no token
    parameter, and every value is redacted (`redact`) and cut to 256 characters anyway.
    """
    fields = {
        "action": action,
        "reason": reason,
        "user": user,
        "client": client,
        "channel": channel,
        "outcome": outcome,
        "detail": detail,
    }
    clean = {key: _clean(value) for key, value in fields.items()}
    logger.log(level, _denial_text(clean), extra={"event": "denial", **clean})


def _clean(value: str) -> str:
    text = redact(str(value))
    return text if len(text) <= _FIELD_MAX else text[: _FIELD_MAX - 1] + "…"


def _denial_text(fields: dict[str, str]) -> str:
    parts = [f"denied {_bare_or_quoted(fields['action'])}:"]
    parts.append(f"reason={_bare_or_quoted(fields['reason'])}")
    parts.append(f"user={_quoted(fields['user'])}")
    parts.append(f"client={_quoted(fields['client'])}")
    if fields["channel"]:
        parts.append(f"channel={_quoted(fields['channel'])}")
    parts.append(f"outcome={_bare_or_quoted(fields['outcome'])}")
    if fields["detail"]:
        parts.append(f"detail={_quoted(fields['detail'])}")
    return " ".join(parts)


def _quoted(value: str) -> str:
    # JSON string syntax escapes quotes and newlines, so a value cannot forge another line.
    return _json.dumps(value, ensure_ascii=False)


def _bare_or_quoted(value: str) -> str:
    return value if _BARE.fullmatch(value) else _quoted(value)
