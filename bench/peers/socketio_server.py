"""python-socketio peer: AsyncServer on aiohttp, PyJWT checks, rooms.

- CONNECT carries ``{"token": <connection JWT>}`` as auth; the connect handler verifies it
  with `jwt.decode` (HS256) and refuses the connection otherwise.
- A ``join`` event carries ``{"tokens": [<subscription JWT>, …]}``; each is verified the
  same way, must name the connection's user, and its ``channel`` claim is the room entered.
  The event is acknowledged with ``["ok"]`` or ``["denied"]``.
The HMAC secret comes from the BENCH_SECRET environment variable; BENCH_PING_INTERVAL sets
engine.io's ping interval in seconds (default 25, engine.io's own).

- POST /publish ``{"room": …, "data": …}`` emits ``msg`` with `data` to the room (the
  socket.io equivalent of Rotary's HTTP publish).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
from typing import Any

import jwt
import socketio
from aiohttp import web

__all__ = ["main"]


def _build(secret: str) -> tuple[socketio.AsyncServer, web.Application]:
    ping = float(os.environ.get("BENCH_PING_INTERVAL", "25"))  # engine.io's default: 25 s
    sio = socketio.AsyncServer(
        async_mode="aiohttp", logger=False, engineio_logger=False, ping_interval=ping
    )
    app = web.Application()
    sio.attach(app)

    def verify(token: str) -> dict[str, Any]:
        return dict(jwt.decode(token, secret, algorithms=["HS256"]))

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: dict[str, Any] | None) -> None:
        try:
            claims = verify((auth or {})["token"])
        except (KeyError, jwt.InvalidTokenError) as exc:
            raise socketio.exceptions.ConnectionRefusedError("invalid token") from exc
        await sio.save_session(sid, {"user": claims.get("sub", "")})

    @sio.on("join")
    async def join(sid: str, data: dict[str, Any]) -> str:
        user = (await sio.get_session(sid))["user"]
        try:
            rooms = [verify(t) for t in data["tokens"]]
        except (KeyError, TypeError, jwt.InvalidTokenError):
            return "denied"
        if any(c.get("sub", "") != user or not c.get("channel") for c in rooms):
            return "denied"
        for claims in rooms:
            entered = sio.enter_room(sid, claims["channel"])
            if inspect.isawaitable(entered):
                await entered
        return "ok"

    async def publish(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        await sio.emit("msg", body["data"], room=body["room"])
        return web.json_response({"result": {}})

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.add_routes([web.post("/publish", publish), web.get("/health", health)])
    return sio, app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    _, app = _build(os.environ["BENCH_SECRET"])
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, backlog=1024)


if __name__ == "__main__":
    main()
