"""Fossil deltas (the format of Fossil SCM's delta encoder), as the SDKs decode them.

Sans-I/O: bytes in, bytes out. A delta turns a *source* into a *target*::

    <target length>\\n  then commands  then <checksum>;

where a command is ``<n>@<offset>,`` (copy n bytes of the source from offset) or
``<n>:<n bytes>`` (insert these bytes). Numbers are written in base 64 with the digits
``0-9 A-Z _ a-z ~``, most significant first. The checksum is the sum, modulo 2**32, of the
target read as big-endian 32-bit words (the last word padded with zero bytes).

`create` finds copies by indexing the source in 16-byte blocks and looking up every position
of the target, then stretching each hit both ways. Copies begin and end on UTF-8 character
boundaries of the target, so the inserted bytes of a delta of UTF-8 text are whole characters
and the delta is UTF-8 itself: JSON clients receive it as a string, which must survive the
round trip through their text decoders. `apply` is the inverse, for tests and tools.
"""

from __future__ import annotations

import struct

from rotary.errors import RotaryError

__all__ = ["DeltaError", "apply", "checksum", "create"]

_DIGITS = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~"
_VALUES = {d: i for i, d in enumerate(_DIGITS)}

#: Block size of the source index: shorter matches are never looked for.
_BLOCK = 16


class DeltaError(RotaryError):
    """A delta does not follow the format or does not fit its source."""


def checksum(data: bytes) -> int:
    """The delta format's checksum of `data`."""
    padded = data + b"\0" * (-len(data) % 4)
    words: tuple[int, ...] = struct.unpack(f">{len(padded) // 4}I", padded)
    return sum(words) & 0xFFFFFFFF


def _number(value: int) -> bytes:
    if value == 0:
        return b"0"
    out = bytearray()
    while value:
        out.append(_DIGITS[value & 63])
        value >>= 6
    out.reverse()
    return bytes(out)


def _is_continuation(byte: int) -> bool:
    return 0x80 <= byte < 0xC0


def create(source: bytes, target: bytes) -> bytes:
    """A delta that rebuilds `target` from `source`."""
    out = [_number(len(target)), b"\n"]
    index = _index(source)
    literal_from = 0
    pos = 0
    end = len(target) - _BLOCK
    while pos <= end:
        found = index.get(target[pos : pos + _BLOCK]) if index else None
        if found is None:
            pos += 1
            continue
        start, src, size = _stretch(source, target, pos, found, literal_from)
        copy = _number(size) + b"@" + _number(src) + b","
        if size <= len(copy) + 2:  # not worth a command
            pos += 1
            continue
        _insert(out, target[literal_from:start])
        out.append(copy)
        pos = literal_from = start + size
    _insert(out, target[literal_from:])
    out += [_number(checksum(target)), b";"]
    return b"".join(out)


def _index(source: bytes) -> dict[bytes, int]:
    """First offset of every whole 16-byte block of `source`."""
    index: dict[bytes, int] = {}
    for offset in range(0, len(source) - _BLOCK + 1, _BLOCK):
        index.setdefault(source[offset : offset + _BLOCK], offset)
    return index


def _stretch(source: bytes, target: bytes, pos: int, src: int, floor: int) -> tuple[int, int, int]:
    """The longest common run around target[pos:] == source[src:] (a block hit), not reaching
    before `floor` in the target, trimmed to UTF-8 boundaries: (target start, source start,
    size)."""
    size = _BLOCK
    limit = min(len(target) - pos, len(source) - src)
    step = 64  # whole slices first: one comparison per 64 bytes instead of 64
    while (
        size + step <= limit
        and target[pos + size : pos + size + step] == source[src + size : src + size + step]
    ):
        size += step
    while size < limit and target[pos + size] == source[src + size]:
        size += 1
    back, room = 0, min(pos - floor, src)
    while back < room and target[pos - back - 1] == source[src - back - 1]:
        back += 1
    start, src, size = pos - back, src - back, size + back
    while size and _is_continuation(target[start]):
        start, src, size = start + 1, src + 1, size - 1
    while size and start + size < len(target) and _is_continuation(target[start + size]):
        size -= 1
    return start, src, size


def _insert(out: list[bytes], data: bytes) -> None:
    if data:
        out += [_number(len(data)), b":", data]


def apply(source: bytes, delta: bytes) -> bytes:
    """The target `delta` rebuilds from `source`; DeltaError when it does not fit."""
    reader = _Reader(delta)
    size = reader.number()
    reader.expect(b"\n")
    out = bytearray()
    while reader.more():
        count = reader.number()
        op = reader.take(1)
        if op == b"@":
            offset = reader.number()
            reader.expect(b",")
            if offset + count > len(source):
                raise DeltaError("copy past the end of the source")
            out += source[offset : offset + count]
        elif op == b":":
            out += reader.take(count)
        elif op == b";":
            if len(out) != size or checksum(bytes(out)) != count:
                raise DeltaError("size or checksum mismatch")
            return bytes(out)
        else:
            raise DeltaError("unknown delta command")
        if len(out) > size:
            raise DeltaError("output longer than announced")
    raise DeltaError("delta without its final checksum")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def more(self) -> bool:
        return self._pos < len(self._data)

    def take(self, n: int) -> bytes:
        if self._pos + n > len(self._data):
            raise DeltaError("truncated delta")
        chunk = self._data[self._pos : self._pos + n]
        self._pos += n
        return chunk

    def expect(self, token: bytes) -> None:
        if self.take(1) != token:
            raise DeltaError(f"expected {token!r}")

    def number(self) -> int:
        value = 0
        start = self._pos
        while self._pos < len(self._data) and self._data[self._pos] in _VALUES:
            value = (value << 6) | _VALUES[self._data[self._pos]]
            self._pos += 1
        if self._pos == start:
            raise DeltaError("expected a number")
        return value
