"""connect and refresh (docs/tokens.md "How a connection token is checked" connect-handler part,
docs/tokens.md "Anonymous connections", docs/tokens.md "Connection expiry and refresh").

Rotary fixes Centrifugo's refresh quirk (docs/tokens.md "Connection expiry and refresh",
docs/differences.md quirk 4): a refresh whose token
has no expiry removes the connection's expiry and cancels its timer, instead of keeping the
old deadline and closing the connection with 3005 later.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from rotary.channels.resolver import ResolvedChannel
from rotary.logs import log_denial
from rotary.node import single_connection
from rotary.node.auth import ConnectCredentials, ServerSubOptions, TokenProblem, json_payload
from rotary.node.state import Mode, State
from rotary.node.subscribe import activate, server_subscription
from rotary.node.subscription import add_expiry, capped_expiry
from rotary.policy.permissions import subscribe_allowed
from rotary.protocol.base import ProtocolViolation
from rotary.protocol.codes import CommandError, DisconnectCode, DisconnectError, ErrorCode
from rotary.protocol.messages import ConnectRequest, RefreshRequest

if TYPE_CHECKING:
    from rotary.node.contracts import Session

__all__ = ["VERSION", "handle_connect", "handle_refresh", "refresh_by_proxy"]

#: The Centrifugo version Rotary reports to clients.
VERSION = "5.4.9"

_log = logging.getLogger("rotary.connect")

#: What a refused token becomes, by TokenProblem kind. Factories, not instances: a raised
#: exception keeps its traceback, so a shared instance would keep the frames (and the
#: sessions in them) of every refusal alive, its traceback growing with each raise.
_CONNECT_TOKEN_ERRORS: dict[str, Callable[[], Exception]] = {
    "invalid": partial(DisconnectError, DisconnectCode.INVALID_TOKEN),
    "mismatch": partial(DisconnectError, DisconnectCode.INVALID_TOKEN),
    "expired": partial(CommandError, ErrorCode.TOKEN_EXPIRED),
    "unknown_channel": partial(CommandError, ErrorCode.UNKNOWN_CHANNEL),
    "revoked": partial(CommandError, ErrorCode.TOKEN_EXPIRED),
}

_REFRESH_TOKEN_ERRORS: dict[str, Callable[[], Exception]] = {
    "invalid": partial(DisconnectError, DisconnectCode.INVALID_TOKEN),
    "mismatch": partial(DisconnectError, DisconnectCode.INVALID_TOKEN),
    "expired": partial(DisconnectError, DisconnectCode.EXPIRED),
    "unknown_channel": partial(CommandError, ErrorCode.UNKNOWN_CHANNEL),
    "revoked": partial(DisconnectError, DisconnectCode.EXPIRED),
}

#: A server-side channel to subscribe at connect: (resolved, options, from connection token).
_Planned = tuple[ResolvedChannel, ServerSubOptions, bool]


async def handle_connect(s: Session, cmd_id: int, req: ConnectRequest) -> None:
    """validate → authenticate → plan server-side channels → subscribe them → reply."""
    if s.state is not State.CONNECTING:
        raise DisconnectError(DisconnectCode.BAD_REQUEST)
    node = s.node
    now = node.clock.now()
    # The proxy's coroutine is made only when there is a proxy: most connects have none.
    answer = await _proxied(s, req) if node.proxy is not None else None
    creds, data = answer or (await _credentials(s, req.token, now), None)
    planned = _plan_channels(s, creds, req)
    if len(planned) > node.settings.channel_limit:
        raise DisconnectError(DisconnectCode.CHANNEL_LIMIT)
    limit = node.settings.user_connection_limit
    if limit > 0 and creds.user and node.user_connections(creds.user) >= limit:
        raise DisconnectError(DisconnectCode.CONNECTION_LIMIT)
    expire_at = 0 if node.settings.insecure else capped_expiry(creds.expire_at, now)
    if expire_at and expire_at <= now:
        raise CommandError(ErrorCode.EXPIRED)
    s.meta = creds.meta
    s.token_identity = creds.identity
    # With a refresh proxy every connection is refreshed by the server (Centrifugo's rule).
    s.server_refresh = node.proxy is not None and node.proxy.active("refresh")
    s.authenticated(user=creds.user, info=json_payload(creds.info, s.codec), expire_at=expire_at)
    _log.debug("client %s: connected as user %r", s.id, creds.user)
    subs, results = [], {}
    for ch, opts, from_token in planned:
        sub, result = await server_subscription(
            s, ch, opts, recover=req.subs.get(ch.name), from_token=from_token
        )
        subs.append(sub)
        results[ch.name] = result
    result = _connect_result(s, results, now)
    if data is not None:
        result["data"] = json_payload(data, s.codec) or b"null"
    s.reply(cmd_id, "connect", result)
    for sub in subs:
        activate(s, sub)
    s.start_timers()
    single_connection.after_connect(s)


async def _proxied(
    s: Session, req: ConnectRequest
) -> tuple[ConnectCredentials, bytes | None] | None:
    """The connect proxy's answer for a connect without a token (None: no proxy, or the
    backend gave no result, which counts as no token: anonymous if allowed, else 3501)."""
    proxy = s.node.proxy
    if req.token or proxy is None or not proxy.active("connect"):
        return None
    return await proxy.connect(s.proxy_context(), req)


async def _credentials(s: Session, token: str, now: float) -> ConnectCredentials:
    settings = s.node.settings
    if not token:
        if settings.allow_anonymous_connect_without_token or settings.insecure:
            return ConnectCredentials(user="")
        _deny(s, "connect", TokenProblem("invalid", "no_token"), user="")
        raise DisconnectError(DisconnectCode.BAD_REQUEST)
    try:
        creds = await s.node.auth.connect_token(token, now=now)
    except TokenProblem as exc:
        _deny(s, "connect", exc, user=exc.user)
        raise _CONNECT_TOKEN_ERRORS[exc.kind]() from exc
    if settings.disallow_anonymous_connection_tokens and not creds.user:
        _deny(s, "connect", TokenProblem("invalid", "anonymous_token"), user="")
        raise DisconnectError(DisconnectCode.PERMISSION_DENIED)
    return creds


def _plan_channels(s: Session, creds: ConnectCredentials, req: ConnectRequest) -> list[_Planned]:
    """Token channels, the personal channel, then permitted channels of ConnectRequest.subs."""
    node = s.node
    planned: dict[str, _Planned] = {}
    for name, opts in creds.server_channels().items():
        planned[name] = (_resolve_or_102(s, name), opts, True)
    settings = node.settings
    if settings.subscribe_to_personal and creds.user:
        name = node.resolver.personal_channel(creds.user, settings.personal_channel_namespace)
        planned.setdefault(name, (_resolve_or_102(s, name), ServerSubOptions(), False))
    for name in req.subs:
        if name not in planned:
            ch = _requested_channel(s, name, creds.user)
            if ch is not None:
                planned[name] = (ch, ServerSubOptions(), False)
    return list(planned.values())


def _resolve_or_102(s: Session, name: str) -> ResolvedChannel:
    resolved = s.node.resolver.resolve(name)
    if resolved is None:
        raise CommandError(ErrorCode.UNKNOWN_CHANNEL)
    return resolved


def _requested_channel(s: Session, name: str, user: str) -> ResolvedChannel | None:
    """A ConnectRequest.subs channel the client may have (docs/tokens.md "How a connection token is
    checked"); unknown ns → 3501."""
    resolver = s.node.resolver
    ch = resolver.resolve(name)
    if ch is None:
        raise DisconnectError(DisconnectCode.BAD_REQUEST)
    if ch.private or not resolver.name_valid(ch):
        return None
    allowed = subscribe_allowed(ch, user=user, insecure=s.node.settings.insecure)
    return ch if allowed else None


def _connect_result(s: Session, subs: dict[str, Any], now: float) -> dict[str, Any]:
    settings = s.node.settings
    result: dict[str, Any] = {"client": s.id, "version": VERSION}
    if not s.server_refresh:
        add_expiry(result, s.expire_at, now)
    if subs:
        result["subs"] = subs
    if s.app_pings and settings.ping_interval > 0:
        result["ping"] = max(1, math.ceil(settings.ping_interval))
        if settings.pong_timeout > 0 and s.mode is not Mode.UNIDIRECTIONAL:
            result["pong"] = True
    if s.mode is not Mode.BIDIRECTIONAL:
        # The emulation endpoint finds the session by these two (Centrifugo sends `node`
        # to emulated clients only).
        result["session"] = s.session_id
        if s.mode is Mode.EMULATED:
            result["node"] = s.node.uid
    if settings.connect_include_server_time:
        result["time"] = int(now * 1000)
    return result


# ---------------------------------------------------------------------------- refresh


async def handle_refresh(s: Session, cmd_id: int, req: RefreshRequest) -> dict[str, Any]:
    """Client-side refresh (docs/tokens.md "Connection expiry and refresh"), with expiry 0 meaning
    "no expiry" (docs/differences.md quirk 4)."""
    if s.server_refresh:
        # The refresh proxy refreshes this connection; a client refresh is a misuse (3501).
        raise DisconnectError(DisconnectCode.BAD_REQUEST)
    if not req.token:
        raise ProtocolViolation("refresh without token")
    node = s.node
    now = node.clock.now()
    try:
        creds = await node.auth.connect_token(req.token, now=now)
    except TokenProblem as exc:
        _deny(s, "refresh", exc, user=s.user)
        raise _REFRESH_TOKEN_ERRORS[exc.kind]() from exc
    if creds.user != s.user:
        _deny(s, "refresh", TokenProblem("mismatch", "user_mismatch"), user=s.user)
        raise DisconnectError(DisconnectCode.INVALID_TOKEN)
    if creds.meta is not None:
        s.meta = creds.meta
    token_channels = set(creds.server_channels())
    current = {ch for ch, sub in s.subs.items() if sub.from_token}
    if token_channels != current:
        raise DisconnectError(DisconnectCode.INSUFFICIENT_STATE)
    expire_at = 0 if node.settings.insecure else creds.expire_at
    if expire_at and expire_at <= now:
        raise CommandError(ErrorCode.EXPIRED)
    info = json_payload(creds.info, s.codec)
    s.token_identity = creds.identity
    return refresh_connection(s, expire_at=expire_at, info=info, now=now)


def _deny(s: Session, action: str, exc: TokenProblem, *, user: str) -> None:
    """The one denial line for a refused connection token (`rotary.logs.log_denial`)."""
    reason = exc.reason or exc.kind
    log_denial(
        _log,
        action=action,
        reason=reason,
        user=user,
        client=s.id,
        outcome=exc.kind,
        detail=exc.detail,
    )


def refresh_connection(
    s: Session, *, expire_at: int, info: bytes | None, now: float
) -> dict[str, Any]:
    """Store a new expiry (0: none; capped a year ahead) and info, re-arm the timer; return
    the refresh result."""
    expire_at = capped_expiry(expire_at, now)
    s.expire_at = expire_at
    if info:
        s.conn_info = info
    s.arm_expiry()
    result: dict[str, Any] = {"client": s.id, "version": VERSION}
    add_expiry(result, expire_at, now)
    return result


async def refresh_by_proxy(s: Session) -> None:
    """Server-side refresh of an expired connection through the refresh proxy.

    ``expired`` closes it with 3005; a later ``expire_at`` extends it (and ``info`` replaces the
    connection info); an answer that does neither leaves it expired (3005). A backend that
    cannot be asked closes it with 3004, so that the client reconnects (and connects anew
    through the connect proxy); the backend's own ``disconnect`` is used as it is.
    """
    node = s.node
    assert node.proxy is not None
    try:
        answer = await node.proxy.refresh(s.proxy_context())
        info = json_payload(answer.info, s.codec)
    except DisconnectError as exc:
        s.disconnect(exc.disconnect)
        return
    except CommandError:
        s.disconnect(DisconnectCode.SERVER_ERROR)
        return
    if answer.expired or not answer.expire_at > node.clock.now():
        s.disconnect(DisconnectCode.EXPIRED)
        return
    s.expire_at = answer.expire_at
    if info is not None:
        s.conn_info = info
    s.arm_expiry()
