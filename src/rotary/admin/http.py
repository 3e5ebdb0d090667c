"""The admin routes (docs/admin.md), mounted only when ``admin.enabled`` is on.

- ``GET /``: the UI's page; ``GET /admin/ui/<file>``: its script and style sheet, read once
  from the package's ``static/`` folder (no file-system path is ever built from a request).
- ``/admin/init`` (any method): ``{"insecure", "edition", "authenticated"}`` as Centrifugo
  answers it.
- ``POST /admin/auth``: form field ``password`` (urlencoded or multipart) → ``{"token"}``;
  400 on a wrong password, 429 with ``Retry-After`` once an address failed too often.
- ``POST /admin/api``: ``Authorization: token <t>``, then any server-API method in the
  legacy ``{"method", "params"}`` form; 401 without a valid token. The token is read from
  that header only, never from the query string (where it would land in access logs).

With ``admin.insecure`` the token checks are skipped (the login still needs the password).
"""

from __future__ import annotations

import hmac
import logging
import math
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import web

from rotary.admin.throttle import LoginThrottle
from rotary.admin.tokens import issue_admin_token, valid_admin_token
from rotary.api.executor import ApiExecutor
from rotary.api.http import unguarded_legacy_handler
from rotary.clock import Clock
from rotary.config.model import AdminSettings

__all__ = ["STATIC_FILES", "add_admin_routes"]

_log = logging.getLogger("rotary.admin")

#: The UI's files and their content types; nothing else under ``static/`` is served.
STATIC_FILES = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "style.css": "text/css",
}

#: The UI runs only its own files: no inline script, no third-party origin, no framing.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_admin_routes(
    app: web.Application, executor: ApiExecutor, settings: AdminSettings, *, clock: Clock
) -> None:
    """Mount the UI and the admin endpoints on `app` (the caller checks ``enabled``)."""
    if settings.insecure:
        _log.warning(
            "INSECURE admin mode: the admin UI and /admin/api need no password or token; "
            "anyone who reaches this port can publish, disconnect and revoke"
        )
    admin = _Admin(settings, clock, unguarded_legacy_handler(executor))
    files = _static_files()
    app.router.add_get("/", _static(files["index.html"], STATIC_FILES["index.html"]))
    for name, content_type in STATIC_FILES.items():
        app.router.add_get(f"/admin/ui/{name}", _static(files[name], content_type))
    app.router.add_route("*", "/admin/init", admin.init)  # any method, as Centrifugo
    app.router.add_post("/admin/auth", admin.auth)
    app.router.add_post("/admin/api", admin.api)


def _static_files() -> dict[str, bytes]:
    folder = resources.files("rotary.admin").joinpath("static")
    return {name: folder.joinpath(name).read_bytes() for name in STATIC_FILES}


def _static(body: bytes, content_type: str) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        response = web.Response(body=body, content_type=content_type, headers=_HEADERS)
        if content_type.startswith("text/"):
            response.charset = "utf-8"
        return response

    return handle


class _Admin:
    """The three endpoints' shared state: settings, clock, throttle, the API handler."""

    def __init__(self, settings: AdminSettings, clock: Clock, api_handler: Handler) -> None:
        self._settings = settings
        self._clock = clock
        self._api_handler = api_handler
        self._throttle = LoginThrottle()

    async def init(self, request: web.Request) -> web.StreamResponse:
        """GET /admin/init: whether the caller's token (if any) is good."""
        body: dict[str, Any] = {
            "insecure": self._settings.insecure,
            "edition": "oss",
            "authenticated": self._authenticated(request),
        }
        return web.json_response(body)

    async def auth(self, request: web.Request) -> web.StreamResponse:
        """POST /admin/auth: a token for the right password."""
        address = request.remote or ""
        wait = self._throttle.retry_after(address, self._clock.monotonic())
        if wait > 0:
            _log.warning("admin login from %s refused: too many failed attempts", address)
            headers = {"Retry-After": str(math.ceil(wait))}
            return web.Response(status=429, text="Too Many Requests", headers=headers)
        settings = self._settings
        if not settings.password or not settings.secret:
            _log.error("admin login refused: admin_password and admin_secret must be set")
            return web.Response(status=400, text="Bad Request")
        if not self._password_matches((await request.post()).get("password")):
            self._throttle.failed(address, self._clock.monotonic())
            _log.info("admin login from %s refused: wrong password", address)
            return web.Response(status=400, text="Bad Request")
        self._throttle.succeeded(address)
        token = issue_admin_token(settings.secret, now=self._clock.now(), ttl=settings.token_ttl)
        return web.json_response({"token": token})

    def _password_matches(self, given: object) -> bool:
        if not isinstance(given, str):  # absent, or a file part of a multipart form
            return False
        return hmac.compare_digest(given.encode(), self._settings.password.encode())

    async def api(self, request: web.Request) -> web.StreamResponse:
        """POST /admin/api: the server API in the legacy form, for an authenticated admin."""
        if not self._authenticated(request):
            return web.Response(status=401)
        return await self._api_handler(request)

    def _authenticated(self, request: web.Request) -> bool:
        if self._settings.insecure:
            return True
        parts = request.headers.get("Authorization", "").split()
        if len(parts) != 2 or parts[0].lower() != "token":
            return False
        return valid_admin_token(self._settings.secret, parts[1], now=self._clock.now())
