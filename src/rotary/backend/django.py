"""Token and proxy endpoints for Django apps: ``pip install rotary[django]``.

    urlpatterns = [path("centrifugo/", include(token_urls(issuer, user_of=..., may_subscribe=...)))]

serves ``POST centrifugo/connection_token`` → ``{"token": ...}`` and
``POST centrifugo/subscription_token`` with the body ``{"channel": ...}`` → ``{"token": ...}``;
403 ``{"error": ...}`` on refusal. `user_of(request)` gets the Django request (for example
``str(request.user.pk) if request.user.is_authenticated else None``); both callables are
plain functions (Django's synchronous views).

    urlpatterns += [path("proxy/", include(proxy_urls(answers, user_of=..., may_subscribe=...)))]

serves Rotary's proxy calls (``POST proxy/connect``, ``refresh``, ``subscribe``,
``sub_refresh``, ``publish``, ``rpc``) with the same two callables, as
`rotary.backend.asgi.proxy_routes` does (see there: these must be reachable by Rotary only).

The views are exempt from CSRF checks: the token views change nothing, and their answer can
only be read by scripts of the app's own origin (a cross-origin page cannot read the
response); the proxy views are called by Rotary, which has no CSRF token.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from rotary.backend import ProxyAnswers, Refused, TokenIssuer

__all__ = ["proxy_urls", "token_urls"]

_View = Callable[[HttpRequest], HttpResponse]


def token_urls(
    issuer: TokenIssuer,
    *,
    user_of: Callable[[HttpRequest], str | None],
    may_subscribe: Callable[[str, str], bool],
) -> list[URLPattern]:
    """URL patterns of the two token endpoints, to `include` under a prefix."""

    def connection(request: HttpRequest) -> HttpResponse:
        try:
            return JsonResponse(issuer.connection(user_of(request)))
        except Refused as exc:
            return JsonResponse({"error": exc.reason}, status=403)

    def subscription(request: HttpRequest) -> HttpResponse:
        channel = _channel_of(request.body)
        try:
            user = user_of(request)
            allowed = bool(user) and isinstance(channel, str) and channel != ""
            if allowed:
                allowed = bool(may_subscribe(str(user), str(channel)))
            return JsonResponse(issuer.subscription(user, channel, allowed))
        except Refused as exc:
            return JsonResponse({"error": exc.reason}, status=403)

    return [
        path("connection_token", _post_view(connection), name="rotary-connection-token"),
        path("subscription_token", _post_view(subscription), name="rotary-subscription-token"),
    ]


def _post_view(view: _View) -> _View:
    wrapped: _View = csrf_exempt(require_POST(view))
    return wrapped


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _channel_of(raw: bytes) -> Any:
    return _json_object(raw).get("channel")


def proxy_urls(
    answers: ProxyAnswers,
    *,
    user_of: Callable[[HttpRequest], str | None],
    may_subscribe: Callable[[str, str], bool],
) -> list[URLPattern]:
    """URL patterns answering Rotary's proxy calls, to `include` under a prefix."""

    def allowed(body: dict[str, Any]) -> bool:
        user, channel = body.get("user"), body.get("channel")
        if not isinstance(user, str) or not user or not isinstance(channel, str):
            return False
        return bool(may_subscribe(user, channel))

    def connect(request: HttpRequest) -> HttpResponse:
        return JsonResponse(answers.connect(user_of(request)))

    def refresh(request: HttpRequest) -> HttpResponse:
        user = user_of(request)
        still = bool(user) and user == _json_object(request.body).get("user")
        return JsonResponse(answers.refresh(still))

    def subscribe(request: HttpRequest) -> HttpResponse:
        return JsonResponse(answers.subscribe(allowed(_json_object(request.body))))

    def sub_refresh(request: HttpRequest) -> HttpResponse:
        return JsonResponse(answers.sub_refresh(allowed(_json_object(request.body))))

    def publish(request: HttpRequest) -> HttpResponse:
        return JsonResponse(answers.publish(allowed(_json_object(request.body))))

    def rpc(request: HttpRequest) -> HttpResponse:
        body = _json_object(request.body)
        user = body.get("user")
        if not isinstance(user, str) or not user:
            return JsonResponse({"error": {"code": 103, "message": "permission denied"}})
        return JsonResponse(answers.call_sync(user, body.get("method"), body.get("data")))

    views: dict[str, _View] = {
        "connect": connect,
        "refresh": refresh,
        "subscribe": subscribe,
        "sub_refresh": sub_refresh,
        "publish": publish,
        "rpc": rpc,
    }
    return [path(name, _post_view(view)) for name, view in views.items()]
