"""Token endpoints for Django apps: ``pip install rotary[django]``.

    urlpatterns = [path("centrifugo/", include(token_urls(issuer, user_of=..., may_subscribe=...)))]

serves ``POST centrifugo/connection_token`` → ``{"token": ...}`` and
``POST centrifugo/subscription_token`` with the body ``{"channel": ...}`` → ``{"token": ...}``;
403 ``{"error": ...}`` on refusal. `user_of(request)` gets the Django request (for example
``str(request.user.pk) if request.user.is_authenticated else None``); both callables are
plain functions (Django's synchronous views).

The views are exempt from CSRF checks: they change nothing, and their answer can only be read
by scripts of the app's own origin (a cross-origin page cannot read the response).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from rotary.backend import Refused, TokenIssuer

__all__ = ["token_urls"]

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


def _channel_of(raw: bytes) -> Any:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return None
    return body.get("channel") if isinstance(body, dict) else None
