"""An example Django app next to Rotary: session login and the token endpoints the SDKs call.

- ``POST /login`` with ``{"user": "alice"}`` stores the user in the session (a stand-in for
  ``django.contrib.auth``; with it, ``user_of`` would read ``request.user``);
- ``POST /centrifugo/connection_token`` and ``POST /centrifugo/subscription_token`` answer the
  SDKs' ``getToken`` callbacks (`rotary.backend.django.token_urls`);
- ``POST /proxy/connect``, ``/refresh``, ``/subscribe``, ``/sub_refresh``, ``/publish`` and
  ``/rpc`` answer Rotary's proxy (`rotary.backend.django.proxy_urls`): with Rotary's
  ``proxy_http_headers: ["Cookie"]`` the session cookie decides who connects, with no token;
- only members may read ``$gossips`` (with a subscription token) and ``chat:team`` (through
  the subscribe proxy); ``POST /logout`` ends the session.
"""

from __future__ import annotations

import json
import os

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from rotary.backend import ProxyAnswers, TokenIssuer
from rotary.backend.django import proxy_urls, token_urls

MEMBERS = {"$gossips": {"alice", "bob"}, "chat:team": {"alice", "bob"}}


def current_user(request: HttpRequest) -> str | None:
    """Who is the user of this request: the one stored in its session, if any."""
    user = request.session.get("user")
    return user if isinstance(user, str) else None


def may_subscribe(user: str, channel: str) -> bool:
    """Whether `user` may read `channel`."""
    return user in MEMBERS.get(channel, set())


@csrf_exempt  # the example's stand-in login; a real app uses django.contrib.auth's views
@require_POST
def login(request: HttpRequest) -> JsonResponse:
    user = str(json.loads(request.body)["user"])
    request.session["user"] = user
    return JsonResponse({"user": user})


@csrf_exempt
@require_POST
def logout(request: HttpRequest) -> JsonResponse:
    request.session.flush()
    return JsonResponse({"ok": True})


def whoami(user: str, data: object) -> dict[str, object]:
    """An RPC method: the caller's user id, and what it sent."""
    return {"user": user, "echo": data}


issuer = TokenIssuer(key=settings.ROTARY_SECRET, ttl=300)
answers = ProxyAnswers(ttl=int(os.environ.get("PROXY_TTL", "600")), rpc={"whoami": whoami})
urlpatterns = [
    path("login", login),
    path("logout", logout),
    path(
        "centrifugo/",
        include(token_urls(issuer, user_of=current_user, may_subscribe=may_subscribe)),
    ),
    path(
        "proxy/",
        include(proxy_urls(answers, user_of=current_user, may_subscribe=may_subscribe)),
    ),
]
