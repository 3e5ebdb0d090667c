"""Normalise two transcripts and list where they differ; check differences against the list.

Normalising removes what legitimately differs between two servers: each client id becomes
``<client:CONN>`` (the connection that got it), epochs, server versions and server times
become placeholders, and ``ttl`` values compare equal within two seconds (the servers sign
and answer at slightly different instants). Everything else must be equal.

Expected differences live in tests/compat/differences.toml, one table per difference:
``scenario``, ``path`` (a prefix of the differing path, e.g. ``"3/connect/expires"``),
``why``, and ``doc`` (the heading of the user page that explains it).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.compat.runner import Transcript

__all__ = ["Difference", "Listed", "diff", "listed_differences", "normalise", "unexplained"]

DIFFERENCES_FILE = Path(__file__).with_name("differences.toml")
# Server clocks (connect `time`, publication `time`) differ by design, like epochs.
# Streaming sessions and node ids are random per run, like client ids.
_PLACEHOLDER_KEYS = {
    "epoch": "<epoch>",
    "version": "<version>",
    "time": "<time>",
    "session": "<session>",
    "node": "<node>",
}
_TTL_SLACK = 2
ABSENT = "<absent>"


@dataclass(frozen=True)
class Difference:
    """At `path` Centrifugo showed `centrifugo` and Rotary `rotary`."""

    path: str
    centrifugo: Any
    rotary: Any

    def __str__(self) -> str:
        return f"{self.path}: centrifugo={self.centrifugo!r} rotary={self.rotary!r}"


@dataclass(frozen=True)
class Listed:
    """One entry of differences.toml."""

    scenario: str
    path: str
    why: str
    doc: str

    def covers(self, scenario: str, difference: Difference) -> bool:
        if scenario != self.scenario:
            return False
        return difference.path == self.path or difference.path.startswith(self.path + "/")


def normalise(transcript: Transcript) -> list[Any]:
    """The transcript's entries with client ids, epochs and versions replaced."""
    names = {client: f"<client:{conn}>" for conn, client in transcript.clients.items()}
    return [_normalise(entry, names) for entry in transcript.entries]


def _normalise(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            new_key = names.get(key, key)
            out[new_key] = _PLACEHOLDER_KEYS.get(key) or _normalise(item, names)
        return out
    if isinstance(value, list):
        return [_normalise(item, names) for item in value]
    if isinstance(value, str):
        return names.get(value, value)
    return value


def diff(centrifugo: Any, rotary: Any, path: str = "") -> list[Difference]:
    """Every path where the two normalised values differ (leaves, missing keys, lengths)."""
    if isinstance(centrifugo, dict) and isinstance(rotary, dict):
        out: list[Difference] = []
        for key in sorted(set(centrifugo) | set(rotary)):
            sub = _join(path, key)
            out += diff(centrifugo.get(key, ABSENT), rotary.get(key, ABSENT), sub)
        return out
    if isinstance(centrifugo, list) and isinstance(rotary, list):
        if len(centrifugo) != len(rotary):
            return [Difference(_join(path, "len"), len(centrifugo), len(rotary))]
        out = []
        for i, (c, r) in enumerate(zip(centrifugo, rotary, strict=True)):
            out += diff(c, r, _join(path, i))
        return out
    if _same(centrifugo, rotary, path):
        return []
    return [Difference(path, centrifugo, rotary)]


def _join(path: str, part: object) -> str:
    return f"{path}/{part}" if path else str(part)


def _same(centrifugo: Any, rotary: Any, path: str) -> bool:
    if path.endswith("/ttl") and isinstance(centrifugo, int) and isinstance(rotary, int):
        return abs(centrifugo - rotary) <= _TTL_SLACK
    return bool(centrifugo == rotary) and type(centrifugo) is type(rotary)


def listed_differences(path: Path = DIFFERENCES_FILE) -> list[Listed]:
    """Every expected difference of differences.toml."""
    data = tomllib.loads(path.read_text())
    return [Listed(**entry) for entry in data.get("difference", [])]


def unexplained(
    scenario: str, differences: list[Difference], listed: list[Listed]
) -> tuple[list[Difference], list[Listed]]:
    """(differences no entry covers, entries of `scenario` that covered nothing)."""
    mine = [entry for entry in listed if entry.scenario == scenario]
    left = [d for d in differences if not any(e.covers(scenario, d) for e in mine)]
    stale = [e for e in mine if not any(e.covers(scenario, d) for d in differences)]
    return left, stale
