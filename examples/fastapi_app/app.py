"""A FastAPI app next to Rotary: session-cookie login, the token endpoints the SDKs call, and
the proxy endpoints Rotary calls (both ways of docs/backend.md in one app).

Run (with Rotary's HMAC secret, the config's token_hmac_secret_key):

    ROTARY_EXAMPLE_SECRET=... uvicorn examples.fastapi_app.app:app --port 5000

- ``POST /login`` with ``{"user": "alice"}`` sets the session cookie (a stand-in for the app's
  real login);
- ``POST /centrifugo/connection_token`` and ``POST /centrifugo/subscription_token`` answer the
  SDKs' ``getToken`` callbacks (`rotary.backend.asgi.token_routes`);
- ``POST /proxy/connect``, ``/refresh``, ``/subscribe``, ``/sub_refresh``, ``/publish`` and
  ``/rpc`` answer Rotary's proxy (`rotary.backend.asgi.proxy_routes`): with Rotary's
  ``proxy_http_headers: ["Cookie"]`` the session cookie decides who connects, with no token;
- only members may read ``$gossips`` (with a subscription token) and ``chat:team`` (through
  the subscribe proxy); ``POST /logout`` ends the session (the refresh proxy then lets the
  connection expire).
"""

from __future__ import annotations

import os
import secrets

from fastapi import FastAPI, Request, Response

from rotary.backend import ProxyAnswers, TokenIssuer
from rotary.backend.asgi import proxy_routes, token_routes

#: The channels only members may read, and who they are.
MEMBERS = {"$gossips": {"alice", "bob"}, "chat:team": {"alice", "bob"}}
SESSION_COOKIE = "sessionid"

app = FastAPI()
# session id → user id; a real app keeps sessions in its database or a signed cookie.
sessions: dict[str, str] = {}


def current_user(request: Request) -> str | None:
    """Who is the user of this request: the owner of its session cookie, if any."""
    return sessions.get(request.cookies.get(SESSION_COOKIE, ""))


def may_subscribe(user: str, channel: str) -> bool:
    """Whether `user` may read `channel`."""
    return user in MEMBERS.get(channel, set())


@app.post("/login")
async def login(request: Request, response: Response) -> dict[str, str]:
    user = str((await request.json())["user"])
    session = secrets.token_urlsafe(16)
    sessions[session] = user
    response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="lax")
    return {"user": user}


@app.post("/logout")
async def logout(request: Request) -> dict[str, bool]:
    sessions.pop(request.cookies.get(SESSION_COOKIE, ""), None)
    return {"ok": True}


def whoami(user: str, data: object) -> dict[str, object]:
    """An RPC method: the caller's user id, and what it sent."""
    return {"user": user, "echo": data}


issuer = TokenIssuer(key=os.environ["ROTARY_EXAMPLE_SECRET"], ttl=300)
app.mount("/centrifugo", token_routes(issuer, user_of=current_user, may_subscribe=may_subscribe))
# Connections and subscriptions granted through the proxy last PROXY_TTL seconds, then Rotary
# asks /proxy/refresh and /proxy/sub_refresh again.
answers = ProxyAnswers(ttl=int(os.environ.get("PROXY_TTL", "600")), rpc={"whoami": whoami})
app.mount("/proxy", proxy_routes(answers, user_of=current_user, may_subscribe=may_subscribe))
