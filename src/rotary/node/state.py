"""States of a client session."""

from __future__ import annotations

import enum

__all__ = ["Mode", "State"]


class State(enum.Enum):
    """CONNECTING → CONNECTED → CLOSED, or CONNECTING → UNUSABLE → CLOSED."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    UNUSABLE = "unusable"
    CLOSED = "closed"


class Mode(enum.Enum):
    """How a session's client talks to it (docs/transports.md).

    BIDIRECTIONAL: commands and replies on one connection (WebSocket). EMULATED: replies and
    pushes on a stream (HTTP-streaming, SSE), commands through the emulation endpoint, which
    finds the session by its session id. UNIDIRECTIONAL: one connect request, then pushes
    only; errors of that connect end the connection as disconnects.
    """

    BIDIRECTIONAL = "bidirectional"
    EMULATED = "emulated"
    UNIDIRECTIONAL = "unidirectional"
