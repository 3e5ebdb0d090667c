"""Token endpoints for ASGI apps (Starlette, FastAPI): ``pip install rotary[fastapi]``.

    app.mount("/centrifugo", token_routes(issuer, user_of=..., may_subscribe=...))

serves ``POST /centrifugo/connection_token`` → ``{"token": ...}`` and
``POST /centrifugo/subscription_token`` with the body ``{"channel": ...}`` → ``{"token": ...}``;
403 ``{"error": ...}`` on refusal. `user_of(request)` gets the Starlette request (cookies,
headers, session); both callables may be plain or ``async`` functions.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, Router

from rotary.backend import MaySubscribe, Refused, TokenIssuer, UserOf, resolve

__all__ = ["token_routes"]


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


async def _channel_of(request: Request) -> object:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return None
    return body.get("channel") if isinstance(body, dict) else None
