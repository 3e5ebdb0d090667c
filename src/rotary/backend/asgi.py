"""Token and proxy endpoints for ASGI apps (Starlette, FastAPI): ``pip install rotary[fastapi]``.

    app.mount("/centrifugo", token_routes(issuer, user_of=..., may_subscribe=...))

serves ``POST /centrifugo/connection_token`` → ``{"token": ...}`` and
``POST /centrifugo/subscription_token`` with the body ``{"channel": ...}`` → ``{"token": ...}``;
403 ``{"error": ...}`` on refusal. `user_of(request)` gets the Starlette request (cookies,
headers, session); both callables may be plain or ``async`` functions.

    app.mount("/proxy", proxy_routes(ProxyAnswers(ttl=600), user_of=..., may_subscribe=...))

serves Rotary's proxy calls (``POST /proxy/connect``, ``/refresh``, ``/subscribe``,
``/sub_refresh``, ``/publish``, ``/rpc``) with the same two callables: connect asks
`user_of` about the request Rotary forwards (with the client's cookies when
``proxy_http_headers`` lists ``Cookie``); the others trust the ``user`` Rotary names, so these
routes must be reachable by Rotary only.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, Router

from rotary.backend import MaySubscribe, ProxyAnswers, Refused, TokenIssuer, UserOf, resolve

__all__ = ["proxy_routes", "token_routes"]


def token_routes(issuer: TokenIssuer, *, user_of: UserOf, may_subscribe: MaySubscribe) -> Router:
    """A router with the two token endpoints, ready to mount."""

    async def connection(request: Request) -> JSONResponse:
        try:
            body = issuer.connection(await resolve(user_of(request)))
        except Refused as exc:
            return JSONResponse({"error": exc.reason}, status_code=403)
        return JSONResponse(body)

    async def subscription(request: Request) -> JSONResponse:
        channel = await _channel_of(request)
        try:
            user = await resolve(user_of(request))
            allowed = bool(user) and isinstance(channel, str) and channel != ""
            if allowed:
                allowed = bool(await resolve(may_subscribe(str(user), str(channel))))
            body = issuer.subscription(user, channel, allowed)
        except Refused as exc:
            return JSONResponse({"error": exc.reason}, status_code=403)
        return JSONResponse(body)

    return Router(
        routes=[
            Route("/connection_token", connection, methods=["POST"]),
            Route("/subscription_token", subscription, methods=["POST"]),
        ]
    )


async def _json_object(request: Request) -> dict[str, object]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


async def _channel_of(request: Request) -> object:
    return (await _json_object(request)).get("channel")


def proxy_routes(answers: ProxyAnswers, *, user_of: UserOf, may_subscribe: MaySubscribe) -> Router:
    """A router answering Rotary's proxy calls, ready to mount (see the module docstring)."""

    async def allowed(body: dict[str, object]) -> bool:
        user, channel = body.get("user"), body.get("channel")
        if not isinstance(user, str) or not user or not isinstance(channel, str):
            return False
        return bool(await resolve(may_subscribe(user, channel)))

    async def connect(request: Request) -> JSONResponse:
        return JSONResponse(answers.connect(await resolve(user_of(request))))

    async def refresh(request: Request) -> JSONResponse:
        body = await _json_object(request)
        user = await resolve(user_of(request))
        return JSONResponse(answers.refresh(bool(user) and user == body.get("user")))

    async def subscribe(request: Request) -> JSONResponse:
        return JSONResponse(answers.subscribe(await allowed(await _json_object(request))))

    async def sub_refresh(request: Request) -> JSONResponse:
        return JSONResponse(answers.sub_refresh(await allowed(await _json_object(request))))

    async def publish(request: Request) -> JSONResponse:
        return JSONResponse(answers.publish(await allowed(await _json_object(request))))

    async def rpc(request: Request) -> JSONResponse:
        body = await _json_object(request)
        user = body.get("user")
        if not isinstance(user, str) or not user:
            return JSONResponse({"error": {"code": 103, "message": "permission denied"}})
        return JSONResponse(await answers.call(user, body.get("method"), body.get("data")))

    handlers = {
        "connect": connect,
        "refresh": refresh,
        "subscribe": subscribe,
        "sub_refresh": sub_refresh,
        "publish": publish,
        "rpc": rpc,
    }
    return Router(routes=[Route(f"/{n}", h, methods=["POST"]) for n, h in handlers.items()])
