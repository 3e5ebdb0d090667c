"""permessage-deflate (RFC 7692) for the WebSocket endpoints (docs/transports.md "Compression").

aiohttp negotiates the extension and inflates what clients send; Rotary deflates what it sends
itself, because it writes its data frames straight to the socket (`rotary.node.outbox`) and
shares one framed copy of a publication among all its subscribers. Every message is deflated
on its own (the compressor's window is reset after each, as with ``server_no_context_takeover``,
which is how Centrifugo compresses too): the deflated bytes then do not depend on the
connection, so a fan-out deflates a message once rather than once per subscriber.

A message of ``compression_min_size`` bytes or fewer goes uncompressed (0: every message is
compressed), as in Centrifugo.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

__all__ = ["Deflate", "DeflateFramer", "deflate_offered"]

#: Centrifugo's default for ``decompressed_message_size_limit``: ten times the wire limit.
_DECOMPRESSED_LIMIT_FACTOR = 10

#: The tail every sync-flushed deflate block ends with; RFC 7692 §7.2.1 has it left out.
_SYNC_TAIL = b"\x00\x00\xff\xff"

#: The RSV1 bit of a frame's first byte: "this message is compressed".
_RSV1 = 0x40

_FIN_TEXT = 0x81
_FIN_BINARY = 0x82


@dataclass(frozen=True, slots=True)
class Deflate:
    """The compression settings of one WebSocket endpoint (``<endpoint>.compression*``).

    `enabled`: offer permessage-deflate to clients that ask for it. `min_size`: messages of
    at most this many bytes go uncompressed (0: none). `level`: Go's flate level, -2 … 9.
    `decompressed_size_limit`: the largest message a client may send once inflated (0: ten
    times the endpoint's ``message_size_limit``).
    """

    enabled: bool = False
    min_size: int = 0
    level: int = 1
    decompressed_size_limit: int = 0

    def read_limit(self, message_size_limit: int) -> int:
        """The largest message, once inflated, a client that negotiated compression may send."""
        if self.decompressed_size_limit > 0:
            return self.decompressed_size_limit
        return message_size_limit * _DECOMPRESSED_LIMIT_FACTOR


def deflate_offered(extensions: str) -> bool:
    """Whether a ``Sec-WebSocket-Extensions`` header offers permessage-deflate."""
    return any(
        offer.split(";", 1)[0].strip().lower() == "permessage-deflate"
        for offer in extensions.split(",")
    )


class DeflateFramer:
    """Frames whole messages, deflating those above the minimum size.

    One framer serves every connection that negotiated the same window size: the
    compressor is fully flushed after each message, so no message refers to another.
    Not thread-safe (the event loop is the only caller).
    """

    __slots__ = ("_compressor", "_min_size")

    def __init__(self, deflate: Deflate, wbits: int) -> None:
        level, strategy = _zlib_level(deflate.level)
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, -wbits, 8, strategy)
        self._min_size = deflate.min_size

    def text(self, payload: bytes) -> bytes:
        """One final text frame of `payload`, deflated above the minimum size."""
        return self.frame(payload, _FIN_TEXT)

    def binary(self, payload: bytes) -> bytes:
        """As `text`, a binary frame (the Protobuf format)."""
        return self.frame(payload, _FIN_BINARY)

    def frame(self, payload: bytes, first: int) -> bytes:
        """One final frame of `payload`; `first` is the FIN bit and opcode. Above the minimum
        size the payload is deflated and RSV1 set."""
        if len(payload) <= self._min_size and self._min_size > 0:
            return _header(first, len(payload)) + payload
        compressor = self._compressor
        body = compressor.compress(payload) + compressor.flush(zlib.Z_FULL_FLUSH)
        # An empty message deflates to the tail alone; RFC 7692 §7.2.3.6 sends one 0 byte.
        body = (body[:-4] if body.endswith(_SYNC_TAIL) else body) or b"\x00"
        return _header(first | _RSV1, len(body)) + body


def _zlib_level(level: int) -> tuple[int, int]:
    """zlib's level and strategy for Go's flate `level`."""
    if level == -2:
        return 1, zlib.Z_HUFFMAN_ONLY
    return level, zlib.Z_DEFAULT_STRATEGY


def _header(first: int, size: int) -> bytes:
    """The header of an unmasked server frame carrying `size` payload bytes."""
    if size < 126:
        return bytes((first, size))
    if size < 65536:
        return bytes((first, 126)) + size.to_bytes(2, "big")
    return bytes((first, 127)) + size.to_bytes(8, "big")
