"""Routes of the demo page: the page, its script, centrifuge-js's browser build, tokens.

- ``GET /demo/``: the page (the WebSocket path written in); ``GET /demo/demo.js``,
  ``/demo/demo.css``: its files from the package's ``static/`` folder.
- ``GET /demo/centrifuge.js`` (and its source map): the official SDK's browser build, read
  from an installed npm package (``web/node_modules`` after ``npm ci``), never shipped here.
- ``POST /demo/token`` with ``{"user": NAME, "ttl": SECONDS}``: an HS256 connection token
  for NAME signed with the configured HMAC secret, valid `ttl` seconds (clamped to
  `DemoSettings.min_ttl` … one day; default `DemoSettings.token_ttl`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import orjson
from aiohttp import web

from rotary.auth import sign_token
from rotary.clock import Clock

__all__ = ["DemoSettings", "add_demo_routes"]

_log = logging.getLogger("rotary.demo")

_USER = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_MAX_TTL = 86_400
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class DemoSettings:
    """What the demo needs beyond the config.

    `sdk_path` is centrifuge-js's ``dist/centrifuge.js``; `hmac_secret` signs the tokens;
    `websocket_path` is where the page connects.
    """

    sdk_path: Path
    hmac_secret: str
    websocket_path: str = "/connection/websocket"
    token_ttl: int = 60
    min_ttl: int = 5


def add_demo_routes(app: web.Application, settings: DemoSettings, *, clock: Clock) -> None:
    """Mount the demo page under ``/demo/``."""
    folder = resources.files("rotary.demo").joinpath("static")
    page = folder.joinpath("index.html").read_text("utf-8")
    page = page.replace("{{websocket_path}}", _attribute(settings.websocket_path))
    app.router.add_get("/demo", _redirect)
    app.router.add_get("/demo/", _static(page.encode(), "text/html"))
    for name, kind in (("demo.js", "text/javascript"), ("demo.css", "text/css")):
        app.router.add_get(f"/demo/{name}", _static(folder.joinpath(name).read_bytes(), kind))
    for name, kind in (
        ("centrifuge.js", "text/javascript"),
        ("centrifuge.js.map", "application/json"),
    ):
        app.router.add_get(f"/demo/{name}", _sdk_file(settings.sdk_path.with_name(name), kind))
    app.router.add_post("/demo/token", _token_handler(settings, clock))
    if not settings.sdk_path.is_file():
        _log.warning(
            "demo page: %s is missing; run `npm ci` in web/ (make run does)", settings.sdk_path
        )


def _attribute(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


async def _redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/demo/")


def _static(body: bytes, content_type: str) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type=content_type, headers=_HEADERS)

    return handle


def _sdk_file(path: Path, content_type: str) -> Handler:
    try:
        body: bytes | None = path.read_bytes()
    except OSError:
        body = None

    async def handle(request: web.Request) -> web.StreamResponse:
        if body is None:
            return web.Response(status=404, text=f"{path.name} is not installed: npm ci in web/")
        return web.Response(body=body, content_type=content_type, headers=_HEADERS)

    return handle


def _token_handler(settings: DemoSettings, clock: Clock) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            body = None
        user = body.get("user") if isinstance(body, dict) else None
        if not isinstance(user, str) or not _USER.match(user):
            return web.json_response({"error": "user: 1-32 of A-Z a-z 0-9 _ . -"}, status=400)
        if not settings.hmac_secret:
            return web.json_response({"error": "no HMAC secret configured"}, status=503)
        ttl = _ttl(body.get("ttl"), settings)
        now = int(clock.now())
        claims = {"sub": user, "iat": now, "exp": now + ttl}
        token = sign_token(claims, alg="HS256", key=settings.hmac_secret)
        return web.json_response({"token": token, "ttl": ttl})

    return handle


def _ttl(value: object, settings: DemoSettings) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        return settings.token_ttl
    return min(max(value, settings.min_ttl), _MAX_TTL)
