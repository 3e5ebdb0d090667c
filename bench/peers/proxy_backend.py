"""A minimal proxy backend for `bench proxystorm`: aiohttp, Centrifugo's proxy JSON.

POST /connect answers with the user named by the ``user`` cookie Rotary passes on (4501 with
none); POST /subscribe admits every subscription. The least work a backend can do, so that
the scenario measures what the proxy round trips cost Rotary, not an app's own logic.
"""

from __future__ import annotations

import argparse

import orjson
from aiohttp import web

__all__ = ["main"]

_ALLOW = orjson.dumps({"result": {}})
_NO_USER = orjson.dumps({"disconnect": {"code": 4501, "reason": "unauthorized"}})


async def _connect(request: web.Request) -> web.Response:
    user = request.cookies.get("user", "")
    body = orjson.dumps({"result": {"user": user}}) if user else _NO_USER
    return web.Response(body=body, content_type="application/json")


async def _subscribe(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=_ALLOW, content_type="application/json")


async def _health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    app = web.Application()
    app.add_routes([web.post("/connect", _connect), web.post("/subscribe", _subscribe)])
    app.add_routes([web.get("/health", _health)])
    web.run_app(app, host="127.0.0.1", port=parser.parse_args().port, print=None, backlog=1024)


if __name__ == "__main__":
    main()
