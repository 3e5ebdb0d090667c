"""The server API over HTTP (docs/api.md "Transport and auth", docs/api.md "Errors"): aiohttp
routes around an `ApiExecutor`.

Routes, both POST only (any other method gets 405 with an empty body):

- ``{prefix}/{method}``: the request body is the method's JSON object; the reply is
  ``{"result": …}`` or ``{"error": …}`` (batch replies ``{"replies": […]}`` unwrapped, as
  Centrifugo's batch response has no result field). A method the executor does not serve is
  404, as in Centrifugo OSS.
- ``{prefix}`` (legacy): one or more ``{"id", "method", "params"}`` objects separated by
  whitespace; one reply line per command, errors always HTTP-200 style. Once
  `shutting_down()` is true it answers 503 with an empty body (docs/api.md "Transport and auth").

Authorization unless ``insecure``: ``X-API-Key`` header; when that header is absent,
``Authorization: apikey KEY``; failing both, the ``api_key`` query parameter. Keys are
compared in constant time; an empty configured key refuses every request (401, empty body).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from rotary.api.errors import ApiError, RequestDecodeError, api_error
from rotary.api.executor import ApiExecutor, Result
from rotary.config.model import ApiSettings

__all__ = ["LEGACY_METHOD_NUMBERS", "MAX_BODY_SIZE", "add_api_routes", "unguarded_legacy_handler"]

_log = logging.getLogger("rotary.api")

#: Largest request body accepted, in bytes; larger ones get 413.
MAX_BODY_SIZE = 10 * 1024 * 1024

#: Centrifugo's numeric method enum, accepted by the legacy endpoint in place of a name.
LEGACY_METHOD_NUMBERS: Mapping[int, str] = {
    0: "publish",
    1: "broadcast",
    2: "unsubscribe",
    3: "disconnect",
    4: "presence",
    5: "presence_stats",
    6: "history",
    7: "history_remove",
    8: "channels",
    9: "info",
    10: "rpc",
    11: "subscribe",
    12: "refresh",
    14: "connections",
    15: "update_user_status",
    16: "get_user_status",
    17: "delete_user_status",
    18: "block_user",
    19: "unblock_user",
    20: "revoke_token",
    21: "invalidate_user_tokens",
}
_LEGACY_NAMES = frozenset(LEGACY_METHOD_NUMBERS.values())

#: Methods whose result is the whole response body rather than ``{"result": …}``.
_UNWRAPPED = frozenset({"batch"})

#: HTTP status of each API error code in transport error mode (others: 500).
_TRANSPORT_STATUS = {100: 500, 102: 404, 104: 404, 107: 400, 108: 400, 112: 416, 113: 409}

_JSON = "application/json"


def add_api_routes(
    app: web.Application,
    executor: ApiExecutor,
    settings: ApiSettings,
    *,
    max_body_size: int = MAX_BODY_SIZE,
    shutting_down: Callable[[], bool] = lambda: False,
    body_timeout: float = 0.0,
) -> None:
    """Mount the per-method endpoints and the legacy endpoint under ``settings.handler_prefix``.

    A request body that has not fully arrived within `body_timeout` seconds (0: no bound)
    is answered 408: a client trickling its body must not hold a handler for ever.
    """
    binding = _ApiBinding(executor, settings, max_body_size)
    binding.shutting_down = shutting_down
    binding.body_timeout = body_timeout
    prefix = settings.handler_prefix.rstrip("/")
    names = "|".join(re.escape(name) for name in sorted(executor.methods))
    app.router.add_route("*", f"{prefix}/{{method:(?:{names})}}", binding.handle_method)
    app.router.add_route("*", prefix or "/", binding.handle_legacy)


def unguarded_legacy_handler(
    executor: ApiExecutor, *, max_body_size: int = MAX_BODY_SIZE
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The legacy endpoint's handler with no key check: the caller authorizes every request.

    The admin UI's ``/admin/api`` speaks this form, behind its own token check.
    """
    return _ApiBinding(executor, ApiSettings(insecure=True), max_body_size).handle_legacy


class _ApiBinding:
    """Request handling shared by both endpoints."""

    def __init__(self, executor: ApiExecutor, settings: ApiSettings, max_body: int) -> None:
        self._executor = executor
        self._settings = settings
        self._max_body = max_body
        self.body_timeout = 0.0
        self._key = settings.key.encode()
        self.shutting_down: Callable[[], bool] = lambda: False

    async def handle_method(self, request: web.Request) -> web.StreamResponse:
        """POST {prefix}/{method}: one call, HTTP-200 or transport error mode."""
        body = await self._admit(request)
        if isinstance(body, web.StreamResponse):
            return body
        method = request.match_info["method"]
        try:
            params = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _plain(400, "Bad Request")
        if not isinstance(params, dict):
            return _plain(400, "Bad Request")
        try:
            result = await self._executor.call(method, params)
        except RequestDecodeError as exc:
            _log.info("server API %s: undecodable request: %s", method, exc.detail)
            return _plain(400, "Bad Request")
        except ApiError as exc:
            _log_error(method, exc)
            return self._error_response(request, exc)
        return _json(200, result if method in _UNWRAPPED else {"result": result})

    async def handle_legacy(self, request: web.Request) -> web.StreamResponse:
        """POST {prefix}: whitespace-separated commands, one reply line each."""
        body = await self._admit(request)
        if isinstance(body, web.StreamResponse):
            return body
        if self.shutting_down():  # after the key check, as Centrifugo's auth middleware
            return web.Response(status=503)
        try:
            commands = _split_commands(body)
        except ValueError:
            return _plain(400, "Bad Request")
        lines = [orjson.dumps(await self._legacy_reply(cmd)) for cmd in commands]
        return web.Response(body=b"\n".join(lines), content_type=_JSON)

    async def _legacy_reply(self, command: Mapping[str, Any]) -> Result:
        reply: Result = {}
        if command.get("id"):
            reply["id"] = command["id"]
        method = _legacy_method(command.get("method"))
        try:
            if method not in self._executor.methods or method in _UNWRAPPED:
                raise api_error(104, detail=f"legacy method {command.get('method')!r}")
            reply["result"] = await self._executor.call(method, command.get("params") or {})
        except ApiError as exc:
            _log_error(method or "?", exc)
            reply["error"] = exc.to_json()
        return reply

    async def _admit(self, request: web.Request) -> bytes | web.StreamResponse:
        """The request body, or the response refusing the request (405, 401, 413, 500)."""
        if request.method != "POST":
            return web.Response(status=405, headers={"Allow": "POST"})
        if not self._authorized(request):
            return web.Response(status=401)
        return await self._read_body(request)

    def _authorized(self, request: web.Request) -> bool:
        if self._settings.insecure:
            return True
        if not self._key:
            _log.error("server API key is empty: every API request is refused")
            return False
        header = request.headers.get("X-API-Key", "")
        if header:
            valid = self._matches(header)
        else:
            parts = request.headers.get("Authorization", "").split()
            valid = len(parts) == 2 and parts[0].lower() == "apikey" and self._matches(parts[1])
        if not valid and request.query_string:
            valid = self._matches(request.query.get("api_key", ""))
        return valid

    def _matches(self, candidate: str) -> bool:
        return hmac.compare_digest(self._key, candidate.encode())

    async def _read_body(self, request: web.Request) -> bytes | web.StreamResponse:
        if request.content_length is not None and request.content_length > self._max_body:
            return _plain(413, "Request Entity Too Large")
        try:
            async with asyncio.timeout(self.body_timeout or None):
                return await self._collect_body(request)
        except TimeoutError:
            _log.info("server API: request body not received within %.3g s", self.body_timeout)
            return _plain(408, "Request Timeout")

    async def _collect_body(self, request: web.Request) -> bytes | web.StreamResponse:
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.content.iter_any():
                size += len(chunk)
                if size > self._max_body:
                    return _plain(413, "Request Entity Too Large")
                chunks.append(chunk)
        except (OSError, HttpProcessingError) as exc:
            _log.warning("server API: error reading request body: %s", exc)
            return _plain(500, "Internal Server Error")
        return b"".join(chunks)

    def _error_response(self, request: web.Request, exc: ApiError) -> web.Response:
        mode = request.headers.get("X-Centrifugo-Error-Mode", "")
        if self._settings.error_mode == "transport" or mode == "transport":
            return _json(_TRANSPORT_STATUS.get(exc.code, 500), exc.to_json())
        return _json(200, {"error": exc.to_json()})


def _legacy_method(value: object) -> str:
    """The method name a legacy command asks for ("" when it names none we know of)."""
    if isinstance(value, str):
        name = value.lower()
        return name if name in _LEGACY_NAMES else ""
    if isinstance(value, int) and not isinstance(value, bool):
        return LEGACY_METHOD_NUMBERS.get(value, "")
    return ""


def _split_commands(body: bytes) -> list[Mapping[str, Any]]:
    """The JSON objects of a legacy body; ValueError when it holds anything else.

    Every command is parsed before any runs, so a malformed body changes nothing.
    """
    if not body.strip():
        raise ValueError("empty body")
    try:
        values = [orjson.loads(body)]
    except orjson.JSONDecodeError:
        values = _json_sequence(body.decode())
    if not all(isinstance(v, dict) for v in values):
        raise ValueError("every command must be a JSON object")
    return values


def _json_sequence(text: str) -> list[Any]:
    decoder = json.JSONDecoder(parse_constant=_refuse_constant)
    values: list[Any] = []
    pos = _skip_space(text, 0)
    while pos < len(text):
        value, pos = decoder.raw_decode(text, pos)
        values.append(value)
        pos = _skip_space(text, pos)
    return values


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _log_error(method: str, exc: ApiError) -> None:
    level = logging.ERROR if exc.code == 100 else logging.INFO
    _log.log(level, "server API %s: error %d %s", method, exc.code, exc.detail or exc.message)


def _json(status: int, body: object) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type=_JSON)


def _plain(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text)
