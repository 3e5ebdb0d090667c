"""Wire shapes of the HTTP-streaming, SSE, emulation and unidirectional transports, without I/O
(docs/transports.md).

A batch is what the outbox hands a transport: one or more encoded messages joined by ``\\n``.
No encoded message holds a raw newline (compact JSON escapes them, and embedded payloads are
stripped of them by `rotary.protocol.codec.raw`), so splitting a batch on ``\\n`` gives the
messages back.

- HTTP-streaming sends each message followed by ``\\n`` (newline-delimited JSON).
- SSE sends each message as one event: ``data: <message>\\n\\n``.
- HTTP-streaming in Protobuf sends the messages as they are: each already carries its varint
  length.
- A unidirectional client reads pushes only: it gets each push without its ``{"push": …}``
  wrapper, and the result of its connect as a ``{"connect": …}`` push.
"""

from __future__ import annotations

from typing import NamedTuple

import orjson

from rotary.protocol import protobuf
from rotary.protocol.base import Codec
from rotary.protocol.codec import JSON, ProtocolViolation
from rotary.protocol.codes import Disconnect

__all__ = [
    "UNI_CONNECT_ID",
    "EmulationRequest",
    "decode_emulation",
    "decode_protobuf_emulation",
    "disconnect_push",
    "ndjson",
    "sse",
    "uni_connect_command",
    "uni_messages",
    "uni_ndjson",
    "uni_sse",
    "unidirectional",
]

#: The command id of the connect command run for a unidirectional client (its reply becomes
#: the connect push).
UNI_CONNECT_ID = 1

_PUSH_PREFIX = b'{"push":'
_CONNECT_REPLY_PREFIX = b'{"id":%d,"connect":' % UNI_CONNECT_ID


def ndjson(batch: bytes) -> bytes:
    """HTTP-streaming: every message of `batch` followed by a newline."""
    return batch + b"\n"


def sse(batch: bytes) -> bytes:
    """SSE: every message of `batch` as one ``data:`` event."""
    return b"".join(b"data: %b\n\n" % message for message in batch.split(b"\n"))


def unidirectional(message: bytes) -> bytes:
    """`message` as a unidirectional client gets it: a push unwrapped, the connect reply as
    a connect push; anything else (the ``{}`` ping) unchanged."""
    if message.startswith(_PUSH_PREFIX):
        return message[len(_PUSH_PREFIX) : -1]
    if message.startswith(_CONNECT_REPLY_PREFIX):
        return b'{"connect":' + message[len(_CONNECT_REPLY_PREFIX) :]
    return message


def uni_messages(batch: bytes) -> list[bytes]:
    """Every message of `batch` in its unidirectional form."""
    return [unidirectional(message) for message in batch.split(b"\n")]


def uni_ndjson(batch: bytes) -> bytes:
    """Unidirectional HTTP-streaming: unidirectional messages, each followed by a newline."""
    return b"".join(message + b"\n" for message in uni_messages(batch))


def uni_sse(batch: bytes) -> bytes:
    """Unidirectional SSE: one ``data:`` event per unidirectional message."""
    return b"".join(b"data: %b\n\n" % message for message in uni_messages(batch))


def disconnect_push(disconnect: Disconnect, codec: Codec = JSON) -> bytes:
    """The disconnect push a streaming client reads before its stream ends."""
    return codec.encode_push("disconnect", {"code": disconnect.code, "reason": disconnect.reason})


def uni_connect_command(body: bytes) -> bytes:
    """The connect command of a unidirectional client's connect request `body`.

    `body` is a JSON ConnectRequest object (``{"token": …, "subs": …}``); empty means ``{}``.
    Raises ProtocolViolation when it is not a JSON object. Its fields are checked when the
    session decodes the command.
    """
    try:
        request = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise ProtocolViolation(f"connect request is not JSON: {exc}") from None
    if not isinstance(request, dict):
        raise ProtocolViolation("connect request must be a JSON object")
    return orjson.dumps({"id": UNI_CONNECT_ID, "connect": request})


class EmulationRequest(NamedTuple):
    """Commands for the emulated session `session` living on node `node`."""

    session: str
    node: str
    #: The commands, newline-delimited JSON, as the session's transport would carry them.
    data: bytes


def decode_emulation(body: bytes) -> EmulationRequest:
    """An emulation request ``{"session": …, "node": …, "data": "<commands>"}``.

    ``data`` is a JSON string holding the commands (centrifuge-js sends them so). Raises
    ProtocolViolation for anything else.
    """
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProtocolViolation(f"emulation request is not JSON: {exc}") from None
    if not isinstance(request, dict):
        raise ProtocolViolation("emulation request must be a JSON object")
    session, node, data = request.get("session"), request.get("node"), request.get("data")
    if not isinstance(session, str) or not session or not isinstance(node, str) or not node:
        raise ProtocolViolation("emulation request needs session and node strings")
    if not isinstance(data, str):
        raise ProtocolViolation("emulation request data must be a string of commands")
    return EmulationRequest(session, node, data.encode())


def decode_protobuf_emulation(body: bytes) -> EmulationRequest:
    """An ``EmulationRequest`` in Protobuf (a Protobuf client's emulation request: its
    ``data`` holds length-prefixed Protobuf commands). Raises ProtocolViolation."""
    node, session, data = protobuf.decode_emulation(body)
    if not session or not node:
        raise ProtocolViolation("emulation request needs session and node")
    return EmulationRequest(session, node, data)
