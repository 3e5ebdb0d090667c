"""A FastAPI app next to Rotary: session-cookie login, and the token endpoints the SDKs call.

Run (with Rotary's HMAC secret, the config's token_hmac_secret_key):

    ROTARY_EXAMPLE_SECRET=... uvicorn examples.fastapi_app.app:app --port 5000

- ``POST /login`` with ``{"user": "alice"}`` sets the session cookie (a stand-in for the app's
  real login);
- ``POST /centrifugo/connection_token`` and ``POST /centrifugo/subscription_token`` answer the
  SDKs' ``getToken`` callbacks (`rotary.backend.asgi.token_routes`);
- only members may subscribe to the private channel ``$gossips``.
"""

from __future__ import annotations

import os
import secrets

from fastapi import FastAPI, Request, Response

from rotary.backend import TokenIssuer
from rotary.backend.asgi import token_routes

#: The channel only members may read, and who they are.
MEMBERS = {"$gossips": {"alice", "bob"}}
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


issuer = TokenIssuer(key=os.environ["ROTARY_EXAMPLE_SECRET"], ttl=300)
app.mount("/centrifugo", token_routes(issuer, user_of=current_user, may_subscribe=may_subscribe))
