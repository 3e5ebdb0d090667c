"""Bare broadcast on aiohttp: POST /publish sends its body to every WebSocket at /ws.

No protocol and no auth; the body goes out once per connection with `send_str`. It is the
ceiling for anything built on aiohttp's WebSocket writer (as Rotary is), and the baseline
for the memory scenario (a connection held, nothing else).
"""

from __future__ import annotations

import argparse

from aiohttp import WSMsgType, web

__all__ = ["main"]

_SOCKETS = web.AppKey("sockets", set)


async def _ws(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(autoping=True)
    await ws.prepare(request)
    sockets = request.app[_SOCKETS]
    sockets.add(ws)
    try:
        async for msg in ws:
            if msg.type is WSMsgType.ERROR:
                break
    finally:
        sockets.discard(ws)
    return ws


async def _publish(request: web.Request) -> web.Response:
    text = await request.text()
    for ws in list(request.app[_SOCKETS]):
        if not ws.closed:
            await ws.send_str(text)
    return web.json_response({"result": {}})


async def _health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    app = web.Application()
    app[_SOCKETS] = set()
    app.add_routes([web.get("/ws", _ws), web.post("/publish", _publish)])
    app.add_routes([web.get("/health", _health)])
    web.run_app(app, host="127.0.0.1", port=parser.parse_args().port, print=None, backlog=1024)


if __name__ == "__main__":
    main()
