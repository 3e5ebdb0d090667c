"""Errors of the server HTTP API: ``{"code": …, "message": …}`` objects (docs/api.md "Errors").

API errors are not client-protocol errors: they have no ``temporary`` field, and two codes read
differently (104 is ``not found``, 113 is ``conflict``).
"""

from __future__ import annotations

from rotary.errors import RotaryError

__all__ = [
    "API_MESSAGES",
    "ApiError",
    "RequestDecodeError",
    "api_error",
]

#: The message Centrifugo's server API gives for each of its error codes.
API_MESSAGES: dict[int, str] = {
    100: "internal server error",
    102: "unknown channel",
    104: "not found",
    107: "bad request",
    108: "not available",
    112: "unrecoverable position",
    113: "conflict",
}


class ApiError(RotaryError):
    """A server API call failed with `code` and `message`.

    `detail` says why in plain words for the log; it is never sent to the caller.
    """

    def __init__(self, code: int, message: str = "", *, detail: str = "") -> None:
        self.code = code
        self.message = message or API_MESSAGES.get(code, "")
        self.detail = detail
        super().__init__(f"{self.code}: {self.message}" + (f" ({detail})" if detail else ""))

    def to_json(self) -> dict[str, object]:
        """The error object exactly as the API sends it."""
        return {"code": self.code, "message": self.message}


class RequestDecodeError(ApiError):
    """A request field has the wrong JSON type (a string where a number belongs, …).

    It is error 107 wherever errors are reported per command (batch, legacy ``/api``); the
    per-method HTTP endpoints answer it with a plain ``400 Bad Request``, as Centrifugo's
    decoder does.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(107, detail=detail)


def api_error(code: int, *, detail: str = "") -> ApiError:
    """The API error for `code`, with Centrifugo's API message when it has one."""
    return ApiError(code, detail=detail)
