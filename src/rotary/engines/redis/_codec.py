"""The bytes Rotary stores in Redis and sends over its PUB/SUB: a small framed binary format.

Every variable-length field is a 4-byte big-endian length followed by that many bytes, so
payloads need not be valid JSON or UTF-8 and nothing is parsed twice.

`ClientInfo` ("info frame")::

    flags:u8  user:str  client:str  [conn_info:bytes]  [chan_info:bytes]

with flag bit 0 set when `conn_info` is present, bit 1 when `chan_info` is.

`Publication` without its offset ("publication body", also the history stream entry)::

    flags:u8  time:u64  data:bytes  [info frame]  [tags]

with flag bit 0 set when `info` is present, bit 1 when `tags` are, bit 2 when it was published
with delta compression allowed (`Publication.use_delta`); tags are a u32 count
followed by that many (key:str, value:str) pairs. The offset lives in the stream entry id
and in the PUB/SUB header, never in the body.

PUB/SUB messages on a channel's Redis channel start with one kind byte:

- ``p<offset>:<epoch>:<publication body>`` — a publication; offset in ASCII decimal (0
  without history), epoch ASCII (empty without history). The publish script writes this
  header, because only it knows the offset.
- ``j<info frame>`` / ``l<info frame>`` — a join / a leave.

Control messages travel on their own Redis channel as ``c<data>``.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from rotary.engines.base import ClientInfo, Publication, StreamPosition
from rotary.errors import RotaryError

__all__ = [
    "KIND_CONTROL",
    "KIND_JOIN",
    "KIND_LEAVE",
    "KIND_PUBLICATION",
    "CodecError",
    "decode_info",
    "decode_publication",
    "decode_publication_message",
    "decode_user",
    "encode_info",
    "encode_publication",
]

KIND_PUBLICATION = b"p"
KIND_JOIN = b"j"
KIND_LEAVE = b"l"
KIND_CONTROL = b"c"

_U8 = struct.Struct(">B")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")

_HAS_CONN_INFO = 1
_HAS_CHAN_INFO = 2
_HAS_INFO = 1
_HAS_TAGS = 2
_DELTA = 4


class CodecError(RotaryError):
    """Bytes read from Redis do not follow the documented format."""


def encode_info(info: ClientInfo) -> bytes:
    """The info frame of `info`."""
    flags = (_HAS_CONN_INFO if info.conn_info is not None else 0) | (
        _HAS_CHAN_INFO if info.chan_info is not None else 0
    )
    parts = [_U8.pack(flags), _blob(info.user.encode()), _blob(info.client.encode())]
    if info.conn_info is not None:
        parts.append(_blob(info.conn_info))
    if info.chan_info is not None:
        parts.append(_blob(info.chan_info))
    return b"".join(parts)


def encode_publication(
    data: bytes,
    *,
    time_ms: int,
    info: ClientInfo | None,
    tags: Mapping[str, str] | None,
    use_delta: bool = False,
) -> bytes:
    """The publication body of a publication (its offset is added by whoever stores it)."""
    flags = (_HAS_INFO if info is not None else 0) | (_HAS_TAGS if tags is not None else 0)
    flags |= _DELTA if use_delta else 0
    parts = [_U8.pack(flags), _U64.pack(max(time_ms, 0)), _blob(data)]
    if info is not None:
        parts.append(encode_info(info))
    if tags is not None:
        parts.append(_U32.pack(len(tags)))
        for key, value in tags.items():
            parts += (_blob(key.encode()), _blob(value.encode()))
    return b"".join(parts)


def decode_info(raw: bytes) -> ClientInfo:
    """The `ClientInfo` an info frame holds."""
    reader = _Reader(raw)
    info = reader.info()
    reader.finish()
    return info


def decode_user(raw: bytes) -> str:
    """Only the user of an info frame (presence stats need nothing else)."""
    reader = _Reader(raw)
    reader.u8()
    return reader.text()


def decode_publication(body: bytes, offset: int = 0) -> Publication:
    """The `Publication` a publication body holds, numbered `offset`."""
    reader = _Reader(body)
    flags = reader.u8()
    time_ms = reader.u64()
    data = reader.blob()
    info = reader.info() if flags & _HAS_INFO else None
    tags = reader.tags() if flags & _HAS_TAGS else None
    reader.finish()
    use_delta = bool(flags & _DELTA)
    return Publication(
        data=data, offset=offset, info=info, tags=tags, time=time_ms, use_delta=use_delta
    )


def decode_publication_message(payload: bytes) -> tuple[Publication, StreamPosition]:
    """A ``p`` PUB/SUB message without its kind byte: the publication and its position."""
    try:
        offset_raw, epoch_raw, body = payload.split(b":", 2)
        offset = int(offset_raw)
    except ValueError as exc:
        raise CodecError("malformed publication header") from exc
    return decode_publication(body, offset), StreamPosition(offset, epoch_raw.decode())


def _blob(value: bytes) -> bytes:
    return _U32.pack(len(value)) + value


class _Reader:
    """Walks a frame field by field; any overrun raises `CodecError`."""

    def __init__(self, raw: bytes) -> None:
        self._raw = memoryview(raw)
        self._pos = 0

    def _take(self, n: int) -> memoryview:
        end = self._pos + n
        if end > len(self._raw):
            raise CodecError("truncated frame")
        chunk = self._raw[self._pos : end]
        self._pos = end
        return chunk

    def u8(self) -> int:
        return int(self._take(1)[0])

    def u64(self) -> int:
        value: int = _U64.unpack(self._take(8))[0]
        return value

    def blob(self) -> bytes:
        size: int = _U32.unpack(self._take(4))[0]
        return bytes(self._take(size))

    def text(self) -> str:
        try:
            return self.blob().decode()
        except UnicodeDecodeError as exc:
            raise CodecError("text field is not UTF-8") from exc

    def info(self) -> ClientInfo:
        flags = self.u8()
        user = self.text()
        client = self.text()
        conn_info = self.blob() if flags & _HAS_CONN_INFO else None
        chan_info = self.blob() if flags & _HAS_CHAN_INFO else None
        return ClientInfo(user=user, client=client, conn_info=conn_info, chan_info=chan_info)

    def tags(self) -> dict[str, str]:
        count: int = _U32.unpack(self._take(4))[0]
        return {self.text(): self.text() for _ in range(count)}

    def finish(self) -> None:
        if self._pos != len(self._raw):
            raise CodecError("trailing bytes after frame")
