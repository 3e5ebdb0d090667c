"""Compact JSON bytes that are kept: `dumps_kept` returns them trimmed to their length.

orjson hands back its output in the buffer it wrote into and never gives back the unused
end. That buffer is at least 4 KiB from orjson 3.12 on (1 KiB before), however short the
JSON: a 100-byte publication kept in history, or a token's ``info`` kept for the life of a
connection and in the verified-token cache, would each hold 4 KiB of memory. `dumps_kept`
copies the output into a bytes object of exactly its length (one small copy, a fraction of
a microsecond). Use it for every encoding that outlives the request that made it. Output
written and dropped within the event loop's turn (replies, pushes, API responses) needs no
trimming; a client's outbox trims (`trimmed`) only what it must keep while its connection
is backed up, where its limit counts message lengths (untrimmed, a limit of 1 MB of
100-byte replies would hold 40 MB).

A module of its own, at the bottom of the package: the protocol codec, the token claims and
the server API all keep JSON bytes, and none of them may import the others.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["dumps_kept", "trimmed"]


def dumps_kept(value: Any) -> bytes:
    """``orjson.dumps(value)`` copied to a bytes object of its own length.

    Raises what ``orjson.dumps`` raises (`orjson.JSONEncodeError`, a `TypeError`).
    """
    return trimmed(orjson.dumps(value))


def trimmed(data: bytes) -> bytes:
    """A copy of `data` in a bytes object of its own length (for bytes that will be kept)."""
    return memoryview(data).tobytes()
