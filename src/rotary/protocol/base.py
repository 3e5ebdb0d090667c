"""The codec seam: what a client session needs from a wire format (JSON or Protobuf).

A codec is sans-I/O and stateless: one instance serves every session that speaks its format,
and the hub uses the instance itself as the key of its per-format encodings. The node builds
replies and pushes as plain mappings whose values are str, int, bool, lists, mappings, raw
payload ``bytes`` (``data``, ``info``), `rotary.engines.base.Publication`,
`rotary.engines.base.MapPublication` and `rotary.engines.base.ClientInfo`; the codec alone
decides how they look on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from rotary.engines.base import MapPublication, Publication
from rotary.errors import RotaryError
from rotary.protocol.codes import ProtocolError
from rotary.protocol.messages import Command

__all__ = ["Codec", "NotEncodable", "ProtocolViolation"]


class ProtocolViolation(RotaryError):
    """The client broke the framing or schema rules (answered with disconnect 3501)."""


class NotEncodable(RotaryError):
    """A payload this format cannot carry: bytes that are not JSON, for a JSON client.

    Whoever meant to send the message disconnects that client with 3506 (inappropriate
    protocol) instead.
    """


class Codec(Protocol):
    """One wire format of protocol v2.

    Every ``encode_*`` method returns one whole *message*: what `join_frame` puts together
    into a frame, and what a transport that frames messages itself (one per event, one per
    line) sends on its own. Encoders raise `NotEncodable` for a payload the format cannot
    carry, and nothing else for values of the documented shapes.
    """

    #: A short name for logs and metrics: ``json`` or ``protobuf``.
    name: str
    #: Frames of this format are binary (WebSocket opcode 2), not text.
    binary: bool
    #: The server ping: the encoded empty Reply.
    ping: bytes

    def decode_frame(self, frame: bytes) -> list[Command]:
        """Every command of one inbound frame, in order; at least one.

        Raises only `ProtocolViolation`, whatever the bytes.
        """
        ...

    def encode_reply(self, cmd_id: int, method: str, result: Mapping[str, Any]) -> bytes:
        """The successful reply to command `cmd_id`: its `method` result is always present,
        even when empty."""
        ...

    def encode_error(self, cmd_id: int, error: ProtocolError) -> bytes:
        """The error reply to command `cmd_id`."""
        ...

    def encode_push(self, kind: str, body: Mapping[str, Any], channel: str = "") -> bytes:
        """A push of `kind` (``join``, ``unsubscribe``, ``refresh``…) for `channel` ("": none)."""
        ...

    def publication_push(self, channel: str, pub: Publication) -> bytes:
        """The push of one publication: made once per format and shared by every subscriber."""
        ...

    def map_publication_push(self, channel: str, pub: MapPublication) -> bytes:
        """The push of one change of a map channel (``key``, ``removed``, ``time``)."""
        ...

    def join_frame(self, messages: Sequence[bytes]) -> bytes:
        """Several messages of this format as one frame, in order."""
        ...

    def carries(self, payload: bytes) -> bool:
        """Whether this format can carry `payload` as a ``data`` or ``info`` value."""
        ...
