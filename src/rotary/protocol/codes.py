"""Every client-facing code of the protocol, as named values.

Ranges (docs/protocol.md "Codes"):

- error codes (in ``Reply.error``): 100–113 are the protocol's own; 400–1999 are left to
  applications.
- unsubscribe push codes: 2000–2499 end the subscription (the SDK goes to "unsubscribed");
  2500–2999 make the SDK resubscribe. 0 and 1 are internal and never sent.
- disconnect codes (WebSocket close codes): 3000–3499 make the SDK reconnect; 3500–3999 are
  terminal. 4000–4499 (reconnect) and 4500–4999 (terminal) are left to applications.
"""

from __future__ import annotations

from dataclasses import dataclass

from rotary.errors import RotaryError

__all__ = [
    "CodeTransform",
    "CommandError",
    "Disconnect",
    "DisconnectCode",
    "DisconnectError",
    "ErrorCode",
    "ProtocolError",
    "Unsubscribe",
    "UnsubscribeCode",
    "disconnect_for",
    "error_for",
    "unidirectional_disconnect",
    "unsubscribe_for",
]


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """An error sent in a command reply: ``{"code": …, "message": …, "temporary": …}``."""

    code: int
    message: str
    temporary: bool = False


@dataclass(frozen=True, slots=True)
class Disconnect:
    """A reason to close the connection; on WebSocket the close frame's code and text."""

    code: int
    reason: str

    @property
    def reconnect(self) -> bool:
        """Whether the official SDKs reconnect after this code."""
        return self.code < 3500 or 4000 <= self.code < 4500 or self.code >= 5000


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """A reason the server ends one subscription (an Unsubscribe push)."""

    code: int
    reason: str

    @property
    def resubscribe(self) -> bool:
        """Whether the official SDKs resubscribe after this code."""
        return self.code >= 2500


class ErrorCode:
    """Error codes of command replies (docs/protocol.md "Error codes")."""

    INTERNAL = ProtocolError(100, "internal server error", temporary=True)
    UNAUTHORIZED = ProtocolError(101, "unauthorized")
    UNKNOWN_CHANNEL = ProtocolError(102, "unknown channel")
    PERMISSION_DENIED = ProtocolError(103, "permission denied")
    METHOD_NOT_FOUND = ProtocolError(104, "method not found")
    ALREADY_SUBSCRIBED = ProtocolError(105, "already subscribed")
    LIMIT_EXCEEDED = ProtocolError(106, "limit exceeded")
    BAD_REQUEST = ProtocolError(107, "bad request")
    NOT_AVAILABLE = ProtocolError(108, "not available")
    TOKEN_EXPIRED = ProtocolError(109, "token expired")
    EXPIRED = ProtocolError(110, "expired")
    TOO_MANY_REQUESTS = ProtocolError(111, "too many requests", temporary=True)
    UNRECOVERABLE_POSITION = ProtocolError(112, "unrecoverable position")


class UnsubscribeCode:
    """Unsubscribe push codes (docs/protocol.md "Unsubscribe codes")."""

    SERVER = Unsubscribe(2000, "server unsubscribe")
    INSUFFICIENT_STATE = Unsubscribe(2500, "insufficient state")
    EXPIRED = Unsubscribe(2501, "subscription expired")
    STATE_INVALIDATED = Unsubscribe(2502, "state invalidated")


class DisconnectCode:
    """Disconnect codes (docs/protocol.md "Disconnect codes")."""

    CONNECTION_CLOSED = Disconnect(3000, "connection closed")
    SHUTDOWN = Disconnect(3001, "shutdown")
    SERVER_ERROR = Disconnect(3004, "internal server error")
    EXPIRED = Disconnect(3005, "connection expired")
    SUBSCRIPTION_EXPIRED = Disconnect(3006, "subscription expired")
    SLOW = Disconnect(3008, "slow")
    WRITE_ERROR = Disconnect(3009, "write error")
    INSUFFICIENT_STATE = Disconnect(3010, "insufficient state")
    FORCE_RECONNECT = Disconnect(3011, "force reconnect")
    NO_PONG = Disconnect(3012, "no pong")
    TOO_MANY_REQUESTS = Disconnect(3013, "too many requests")
    STATE_INVALIDATED = Disconnect(3014, "state invalidated")
    INVALID_TOKEN = Disconnect(3500, "invalid token")
    BAD_REQUEST = Disconnect(3501, "bad request")
    STALE = Disconnect(3502, "stale")
    FORCE_NO_RECONNECT = Disconnect(3503, "force disconnect")
    CONNECTION_LIMIT = Disconnect(3504, "connection limit")
    CHANNEL_LIMIT = Disconnect(3505, "channel limit")
    INAPPROPRIATE_PROTOCOL = Disconnect(3506, "inappropriate protocol")
    PERMISSION_DENIED = Disconnect(3507, "permission denied")
    NOT_AVAILABLE = Disconnect(3508, "not available")
    TOO_MANY_ERRORS = Disconnect(3509, "too many errors")


def _index(
    holder: type, kind: type[ProtocolError] | type[Disconnect] | type[Unsubscribe]
) -> dict[int, object]:
    return {v.code: v for v in vars(holder).values() if isinstance(v, kind)}


_ERRORS = _index(ErrorCode, ProtocolError)
_DISCONNECTS = _index(DisconnectCode, Disconnect)
_UNSUBSCRIBES = _index(UnsubscribeCode, Unsubscribe)


def error_for(code: int) -> ProtocolError:
    """The named error for `code`; raises KeyError for a code the protocol does not define."""
    value = _ERRORS[code]
    assert isinstance(value, ProtocolError)
    return value


def disconnect_for(code: int) -> Disconnect:
    """The named disconnect for `code`; raises KeyError for an unknown code."""
    value = _DISCONNECTS[code]
    assert isinstance(value, Disconnect)
    return value


#: Connect errors that a unidirectional client gets as a disconnect of their own (it reads no
#: replies); any other error becomes 3004 (Centrifugo's table).
_UNIDIRECTIONAL_DISCONNECTS = {
    ErrorCode.EXPIRED.code: DisconnectCode.EXPIRED,
    ErrorCode.TOKEN_EXPIRED.code: DisconnectCode.EXPIRED,
    ErrorCode.TOO_MANY_REQUESTS.code: DisconnectCode.TOO_MANY_REQUESTS,
    ErrorCode.PERMISSION_DENIED.code: DisconnectCode.PERMISSION_DENIED,
}


@dataclass(frozen=True, slots=True)
class CodeTransform:
    """One configured rewrite of a failed connect's `code` (error or disconnect code).

    For ``connect_code_to_unidirectional_disconnect`` `to_code`/`to_text` are the disconnect
    code and reason; for ``connect_code_to_http_response`` the HTTP status and body (an
    empty body: the error's own message).
    """

    code: int
    to_code: int
    to_text: str = ""


def unidirectional_disconnect(
    error: ProtocolError, transforms: tuple[CodeTransform, ...] = ()
) -> Disconnect:
    """The disconnect that ends a unidirectional connection whose connect failed with `error`:
    the first of `transforms` for its code, else Centrifugo's table, else 3004."""
    for t in transforms:
        if t.code == error.code:
            return Disconnect(t.to_code, t.to_text)
    return _UNIDIRECTIONAL_DISCONNECTS.get(error.code, DisconnectCode.SERVER_ERROR)


def unsubscribe_for(code: int) -> Unsubscribe:
    """The named unsubscribe for `code`; raises KeyError for an unknown code."""
    value = _UNSUBSCRIBES[code]
    assert isinstance(value, Unsubscribe)
    return value


class CommandError(RotaryError):
    """A command fails with `error`: the client (or API caller) gets an error reply."""

    def __init__(self, error: ProtocolError) -> None:
        self.error = error
        super().__init__(f"{error.code}: {error.message}")


class DisconnectError(RotaryError):
    """A command ends the connection with `disconnect`."""

    def __init__(self, disconnect: Disconnect) -> None:
        self.disconnect = disconnect
        super().__init__(f"{disconnect.code}: {disconnect.reason}")
