"""States of a client session."""

from __future__ import annotations

import enum

__all__ = ["State"]


class State(enum.Enum):
    """CONNECTING → CONNECTED → CLOSED, or CONNECTING → UNUSABLE → CLOSED."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    UNUSABLE = "unusable"
    CLOSED = "closed"
