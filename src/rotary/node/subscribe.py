"""subscribe, unsubscribe, sub_refresh, server-side subscriptions and their expiry.

docs/protocol.md "Commands" (subscribe checks, in that exact order), docs/tokens.md "How a
subscription token is checked" (token outcomes), docs/tokens.md "Subscription expiry" (expiry),
docs/tokens.md "sub_refresh" (sub_refresh), docs/protocol.md "History and recovery" (recovery and
positioning).

sub_refresh is deliberately STRICTER than Centrifugo (docs/tokens.md "sub_refresh",
docs/differences.md quirk 1):
Centrifugo answers a sub_refresh carrying an *expired* subscription token with success and
silently removes the subscription's expiry. Rotary replies ``{}`` and then immediately ends
the subscription with the Unsubscribe push 2501 "subscription expired"; the SDKs
resubscribe on their own, draw 109 for the stale token and fetch a fresh one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from rotary.channels.maps import subscription_type_allowed
from rotary.channels.resolver import ResolvedChannel
from rotary.engines.base import HistoryFilter, StreamPosition, UnrecoverablePosition
from rotary.logs import log_denial
from rotary.node import map_flows, revocation, tags
from rotary.node.auth import (
    Override,
    ServerSubOptions,
    SubscribeCredentials,
    TokenProblem,
    json_payload,
)
from rotary.node.delta import DELTA_FOSSIL, delta_tracker, recovered_publications
from rotary.node.ending import end_subscription, remove_subscription
from rotary.node.hub import TrackedDelivery
from rotary.node.subscription import (
    Subscription,
    add_expiry,
    add_publish_debounce,
    capped_expiry,
)
from rotary.policy.permissions import history_allowed, presence_allowed, subscribe_allowed
from rotary.protocol.base import NotEncodable, ProtocolViolation
from rotary.protocol.codes import (
    CommandError,
    DisconnectCode,
    DisconnectError,
    ErrorCode,
    UnsubscribeCode,
)
from rotary.protocol.messages import (
    FLAG_REJECT_UNRECOVERED,
    SubRefreshRequest,
    SubscribeRequest,
    UnsubscribeRequest,
)

if TYPE_CHECKING:
    from rotary.node.contracts import Session

__all__ = [
    "activate",
    "admit_map",
    "check_subscriptions",
    "establish",
    "handle_sub_refresh",
    "handle_subscribe",
    "handle_unsubscribe",
    "server_subscription",
]

_log = logging.getLogger("rotary.subscribe")

#: What a refused token becomes, by TokenProblem kind. Factories, not instances: a raised
#: exception keeps its traceback, so a shared instance would keep the frames (and the
#: sessions in them) of every refusal alive, its traceback growing with each raise.
_SUB_TOKEN_ERRORS: dict[str, Callable[[], Exception]] = {
    "expired": partial(CommandError, ErrorCode.TOKEN_EXPIRED),
    "invalid": partial(CommandError, ErrorCode.PERMISSION_DENIED),
    "unknown_channel": partial(CommandError, ErrorCode.UNKNOWN_CHANNEL),
    "revoked": partial(CommandError, ErrorCode.TOKEN_EXPIRED),
}


# ---------------------------------------------------------------------------- subscribe


async def handle_subscribe(s: Session, cmd_id: int, req: SubscribeRequest) -> None:
    """validate → authorize → establish → reply, then deliver what arrived meanwhile.

    Plain and server-side-like channels only: the dispatch (client) sends the map types
    to `rotary.node.map_subscribe` before they get here.
    """
    resolved = _validate(s, req)
    creds = await _authorize(s, req, resolved)
    sub = _client_subscription(s, resolved, req, creds)
    now = s.node.clock.now()
    if sub.expire_at and sub.expire_at <= now:
        raise CommandError(ErrorCode.EXPIRED)
    tags.apply_filter(sub, req, resolved.options)
    if creds is not None and not req.token and resolved.options.proxy_sub_refresh:
        sub.server_refresh = _proxy_active(s, "sub_refresh")
    result = await establish(s, sub, req if sub.recoverable else None)
    if sub.delta:
        result["delta"] = True
    add_publish_debounce(result, resolved.options.client_publish_debounce_interval)
    if not sub.server_refresh:
        add_expiry(result, sub.expire_at, now)
    if creds is not None and creds.data:
        result["data"] = creds.data
    s.reply(cmd_id, "subscribe", result)
    activate(s, sub)
    if sub.token_identity is not None:
        revocation.recheck_subscription(s, sub, now)


def _validate(s: Session, req: SubscribeRequest) -> ResolvedChannel:
    """docs/protocol.md "Commands" steps 1–8, in order."""
    channel, node = req.channel, s.node
    if not channel or req.delta not in ("", "fossil"):
        raise ProtocolViolation("bad subscribe request")
    if node.resolver.too_long(channel):
        raise CommandError(ErrorCode.BAD_REQUEST)
    if channel in s.subs or channel in s.subscribing:
        raise CommandError(ErrorCode.ALREADY_SUBSCRIBED)
    if len(s.subs) + len(s.subscribing) >= node.settings.channel_limit:
        raise CommandError(ErrorCode.LIMIT_EXCEEDED)
    resolved = node.resolver.resolve(channel)
    if resolved is None:
        raise CommandError(ErrorCode.UNKNOWN_CHANNEL)
    if not node.resolver.name_valid(resolved):
        raise CommandError(ErrorCode.BAD_REQUEST)
    if not subscription_type_allowed(req.type, resolved.options.subscription_type):
        raise CommandError(ErrorCode.PERMISSION_DENIED)
    if resolved.private and not req.token:
        raise CommandError(ErrorCode.PERMISSION_DENIED)
    return resolved


async def admit_map(s: Session, req: SubscribeRequest) -> tuple[Subscription, bytes | None]:
    """The first request of a map subscribe, checked as any subscribe (steps 1–10).

    Returns the subscription to make live and the token's ``data`` for the reply. A map
    subscription has no stream position of the stream broker, no presence and no join/leave
    of its own: those fields stay off.
    """
    resolved = _validate(s, req)
    creds = await _authorize(s, req, resolved)
    sub = _client_subscription(s, resolved, req, creds)
    sub.presence = sub.emit_join_leave = sub.push_join_leave = False
    sub.positioned = sub.recoverable = False
    tags.apply_filter(sub, req, resolved.options)
    return sub, creds.data if creds is not None else None


async def _authorize(
    s: Session, req: SubscribeRequest, ch: ResolvedChannel
) -> SubscribeCredentials | None:
    """A token alone decides when present (docs/tokens.md "How a subscription token is checked");
    else the namespace rules (docs/tokens.md "Which channels need a token").

    Returns the token's credentials (its info and data fit for a JSON client), or None when
    the namespace rules let the client in without a token.
    """
    if req.token:
        creds = await _verify(s, req.token, req.channel)
        if creds.info is not None:
            json_payload(creds.info, s.codec)
        if creds.data is not None:
            json_payload(creds.data, s.codec)
        return creds
    if ch.options.proxy_subscribe and not ch.user_limited:
        return await _proxied(s, req)
    if subscribe_allowed(ch, user=s.user, insecure=s.node.settings.insecure):
        return None
    _deny(s, "subscribe", req.channel, reason="not_allowed", outcome="permission_denied")
    raise CommandError(ErrorCode.PERMISSION_DENIED)


def _proxy_active(s: Session, kind: str) -> bool:
    return s.node.proxy is not None and s.node.proxy.active(kind)


async def _proxied(s: Session, req: SubscribeRequest) -> SubscribeCredentials:
    """The subscribe proxy decides (docs/backend.md "The proxy"); its info and data must be JSON."""
    proxy = s.node.proxy
    if proxy is None or not proxy.active("subscribe"):
        raise CommandError(ErrorCode.NOT_AVAILABLE)
    creds = await proxy.subscribe(s.proxy_context(), req)
    json_payload(creds.info, s.codec)
    json_payload(creds.data, s.codec)
    return creds


async def _verify(
    s: Session, token: str, channel: str, *, refresh: bool = False
) -> SubscribeCredentials:
    try:
        creds = await s.node.auth.subscribe_token(
            token, now=s.node.clock.now(), channel=channel, user=s.user, client=s.id
        )
    except TokenProblem as exc:
        action = "sub_refresh" if refresh else "subscribe"
        _deny(s, action, channel, reason=exc.reason, outcome=exc.kind, detail=exc.detail)
        if exc.kind == "mismatch" or (refresh and exc.kind == "invalid"):
            raise DisconnectError(DisconnectCode.INVALID_TOKEN) from exc
        raise _SUB_TOKEN_ERRORS[exc.kind]() from exc
    if creds.channel != channel or creds.user != s.user or creds.client not in ("", s.id):
        action = "sub_refresh" if refresh else "subscribe"
        _deny(s, action, channel, reason="binding", outcome="mismatch")
        raise DisconnectError(DisconnectCode.INVALID_TOKEN)
    return creds


def _deny(
    s: Session, action: str, channel: str, *, reason: str, outcome: str, detail: str = ""
) -> None:
    """The one denial line for a refused subscription (`rotary.logs.log_denial`)."""
    log_denial(
        _log,
        action=action,
        reason=reason or outcome,
        user=s.user,
        client=s.id,
        channel=channel,
        outcome=outcome,
        detail=detail,
    )


def _pick(ov: Override | None, name: str, default: bool) -> bool:
    value: bool | None = None if ov is None else getattr(ov, name)
    return default if value is None else value


def _client_subscription(
    s: Session, ch: ResolvedChannel, req: SubscribeRequest, creds: SubscribeCredentials | None
) -> Subscription:
    """Options granted (docs/protocol.md "Commands" step 10), the token's overrides applied."""
    opts, insecure = ch.options, s.node.settings.insecure
    if creds is None:
        sub = _base_subscription(s, ch, None, None)
    else:
        sub = _base_subscription(s, ch, creds.info, creds.override)
        sub.expire_at = creds.expire_at
        sub.token_identity = creds.identity
    history_ok = history_allowed(ch, user=s.user, subscribed=True, insecure=insecure)
    if req.recoverable and (opts.allow_recovery or history_ok):
        sub.recoverable = True
    if req.positioned and (opts.allow_positioning or history_ok):
        sub.positioned = True
    sub.positioned = sub.positioned or sub.recoverable
    presence_ok = presence_allowed(ch, user=s.user, subscribed=True, insecure=insecure)
    if req.join_leave and sub.emit_join_leave and presence_ok:
        sub.push_join_leave = True
    sub.delta = req.delta == DELTA_FOSSIL and DELTA_FOSSIL in opts.allowed_delta_types
    return sub


def _base_subscription(
    s: Session, ch: ResolvedChannel, chan_info: bytes | None, ov: Override | None
) -> Subscription:
    opts = ch.options
    presence, join_leave, push = opts.presence, opts.join_leave, opts.force_push_join_leave
    positioning, recovery = opts.force_positioning, opts.force_recovery
    if ov is not None:  # a token's override (most subscriptions have none)
        presence = _pick(ov, "presence", presence)
        join_leave = _pick(ov, "join_leave", join_leave)
        push = _pick(ov, "force_push_join_leave", push)
        positioning = _pick(ov, "force_positioning", positioning)
        recovery = _pick(ov, "force_recovery", recovery)
    return Subscription(
        channel=ch.name,
        info=s.client_info(chan_info),
        presence=presence,
        emit_join_leave=join_leave,
        push_join_leave=push,
        positioned=positioning or recovery,
        recoverable=recovery,
    )


# ---------------------------------------------------------------------------- establishing


async def establish(
    s: Session, sub: Subscription, recover: SubscribeRequest | None
) -> dict[str, Any]:
    """Join the hub (pending), position or recover, add presence.

    Returns the SubscribeResult fields and nothing else is queued yet: the caller queues
    its reply and then calls `activate` without awaiting in between.
    """
    node, channel = s.node, sub.channel
    s.subscribing.add(channel)
    try:
        await node.hub_subscribe(channel, s.id)
        try:
            result = await _position(s, sub, recover) if sub.positioned else {}
            if sub.presence:
                await node.presence.add_presence(channel, s.id, sub.info, ttl=node.presence_ttl)
        except BaseException:
            node.hub.remove(channel, s.id)
            await node.broker_release(channel)
            raise
    finally:
        s.subscribing.discard(channel)
    return result


async def _position(
    s: Session, sub: Subscription, recover: SubscribeRequest | None
) -> dict[str, Any]:
    """docs/protocol.md "History and recovery": the stream position, and recovered publications
    when asked."""
    node, channel = s.node, sub.channel
    meta_ttl = node.meta_ttl(channel)
    top = (await node.broker.history(channel, HistoryFilter(limit=0), meta_ttl=meta_ttl)).position
    result: dict[str, Any] = {}
    if sub.recoverable:
        result["recoverable"] = True
    result.update(positioned=True, epoch=top.epoch, offset=top.offset)
    sub.epoch, sub.offset = top.epoch, top.offset
    if recover is not None and recover.recover:
        result["was_recovering"] = True
        cache = _cache_mode(s, channel)
        recover_from = _recover_cache if cache else _recover
        if cache and sub.tags_filter is not None:
            recover_from = partial(tags.recover_cache, tf=sub.tags_filter)
        pubs = await recover_from(s, channel, recover, top, meta_ttl)
        if pubs is None and _rejects_unrecovered(recover, not cache):
            raise CommandError(ErrorCode.UNRECOVERABLE_POSITION)
        if pubs is not None:
            result.update(recovered=True, offset=recover.offset)
            if pubs and sub.delta:
                result["publications"] = recovered_publications(pubs, s.codec)
                sub.offset, sub.delta_ready = pubs[-1].offset, True
                s.node.hub.seed_previous(channel, pubs[-1], top.epoch)
            elif pubs:
                # Filtered out ones are passed over: the position still moves past them.
                kept = tags.passing(pubs, sub.tags_filter)
                if kept:
                    result["publications"] = kept
                sub.offset = pubs[-1].offset
    if not result["offset"]:
        del result["offset"]  # Centrifugo leaves a zero offset out (protobuf JSON omits zeros)
    return result


def _rejects_unrecovered(req: SubscribeRequest, stream_mode: bool) -> bool:
    """Whether a failed recovery is refused with 112 rather than answered ``recovered: false``.

    As Centrifugo: only in stream recovery mode, and only when the client set the flag bit.
    """
    return stream_mode and bool(req.flag & FLAG_REJECT_UNRECOVERED)


async def _recover(
    s: Session, channel: str, req: SubscribeRequest, top: StreamPosition, meta_ttl: float
) -> list[Any] | None:
    """Publications after the client's position, or None when it cannot be recovered."""
    if (req.epoch and req.epoch != top.epoch) or req.offset > top.offset:
        return None
    if req.offset == top.offset:
        return []
    limit = s.node.settings.recovery_max_publication_limit
    flt = HistoryFilter(since=StreamPosition(req.offset, top.epoch), limit=limit)
    try:
        hist = await s.node.broker.history(channel, flt, meta_ttl=meta_ttl)
    except UnrecoverablePosition:
        return None
    pubs = hist.publications
    if pubs and pubs[0].offset == req.offset + 1 and pubs[-1].offset == hist.position.offset:
        return pubs
    return None


def _cache_mode(s: Session, channel: str) -> bool:
    resolved = s.node.resolver.resolve(channel)
    return resolved is not None and resolved.options.force_recovery_mode == "cache"


async def _recover_cache(
    s: Session, channel: str, req: SubscribeRequest, top: StreamPosition, meta_ttl: float
) -> list[Any] | None:
    """Cache recovery mode (docs/protocol.md "History and recovery"): only the latest publication,
    whatever the epoch.

    A client already at the top gets nothing; otherwise it gets the latest publication
    while history still holds it. None (not recovered) when history lost it.
    """
    flt = HistoryFilter(limit=1, reverse=True)
    hist = await s.node.broker.history(channel, flt, meta_ttl=meta_ttl)
    current = hist.position  # read after `top`: the latest publication belongs to it
    up_to_date = req.offset > 0 and req.offset == current.offset and req.epoch == current.epoch
    latest = hist.publications[0] if hist.publications else None
    if latest is None:
        return [] if up_to_date else None
    if latest.offset != current.offset:
        return None
    return [] if up_to_date else [latest]


def activate(s: Session, sub: Subscription) -> None:
    """Make `sub` live: deliver publications buffered while subscribing, announce the join."""
    node, channel = s.node, sub.channel
    s.subs[channel] = sub
    activated = _activate_delta(s, sub) if sub.delta else _activate_plain(s, sub)
    if not activated:
        return
    if sub.emit_join_leave:
        s.spawn(node.broker.publish_join(channel, sub.info))
    if node.maps.presence_maps:
        s.spawn(node.maps.join_presence(channel, sub.info))


def _activate_plain(s: Session, sub: Subscription) -> bool:
    tracked = _tracker(s, sub) if sub.positioned else None
    try:
        buffered = s.node.hub.activate(
            sub.channel,
            s.id,
            push=s.push,
            codec=s.codec,
            tracked=tracked,
            join_leave=sub.push_join_leave,
            tags_filter=sub.tags_filter,
        )
    except NotEncodable:
        s.unencodable()
        return False
    for data, offset, epoch in buffered:
        if tracked is not None:
            tracked(data, offset, epoch)
        elif data:  # b"": dropped by the subscriber's tags filter
            s.push(data)
    return True


def _activate_delta(s: Session, sub: Subscription) -> bool:
    give = delta_tracker(s, sub, lambda: _position_lost(s, sub))
    try:
        s.node.hub.activate(
            sub.channel,
            s.id,
            push=s.push,
            codec=s.codec,
            delta=give,
            join_leave=sub.push_join_leave,
        )
    except NotEncodable:
        s.unencodable()
        return False
    return True


def _tracker(s: Session, sub: Subscription) -> TrackedDelivery:
    """Delivery with position checks (docs/protocol.md "History and recovery"): a gap ends the
    subscription (2500/3010)."""
    push = s.push

    def deliver(data: bytes, offset: int, epoch: str) -> None:
        if sub.ended:
            return
        if offset == 0:
            if data:
                push(data)
        elif epoch != sub.epoch or offset > sub.offset + 1:
            sub.ended = True
            # Not from inside the hub's fan-out loop, which must not see the hub change.
            s.node.call_soon(lambda: _position_lost(s, sub))
        elif offset > sub.offset:
            sub.offset = offset
            if data:  # b"": dropped by a tags filter, the position moves on all the same
                push(data)

    return deliver


def _position_lost(s: Session, sub: Subscription) -> None:
    _log.info("client %s: position lost in %r", s.id, sub.channel)
    if sub.server_side:
        s.disconnect(DisconnectCode.INSUFFICIENT_STATE)
    else:
        end_subscription(s, sub, UnsubscribeCode.INSUFFICIENT_STATE)


async def handle_unsubscribe(s: Session, cmd_id: int, req: UnsubscribeRequest) -> dict[str, Any]:
    """Always succeeds, subscribed or not (docs/protocol.md "Connection life cycle" rule 7)."""
    if not req.channel:
        raise ProtocolViolation("unsubscribe without channel")
    map_flows.forget_flow(s, req.channel)
    sub = s.subs.pop(req.channel, None)
    if sub is not None:
        sub.ended = True
        await remove_subscription(s, sub)
    return {}


async def check_subscriptions(s: Session) -> None:
    """The periodic check (docs/tokens.md "Subscription expiry"): end expired subscriptions,
    refresh presence."""
    node = s.node
    now = node.clock.now()
    delay = node.settings.expired_sub_close_delay
    for sub in list(s.subs.values()):
        if sub.server_refresh and sub.expire_at and now >= sub.expire_at:
            if not await _refresh_by_proxy(s, sub):
                return
        elif sub.expire_at and now > sub.expire_at + delay:
            if sub.server_side:
                s.disconnect(DisconnectCode.SUBSCRIPTION_EXPIRED)
                return
            _log.info("client %s: subscription to %r expired", s.id, sub.channel)
            end_subscription(s, sub, UnsubscribeCode.EXPIRED)
    for sub in list(s.subs.values()):
        if sub.presence and not sub.ended:
            await node.presence.add_presence(sub.channel, s.id, sub.info, ttl=node.presence_ttl)
        if node.maps.presence_maps and not sub.ended:
            await node.maps.join_presence(sub.channel, sub.info)


async def _refresh_by_proxy(s: Session, sub: Subscription) -> bool:
    """Refresh an expired proxied subscription through the sub_refresh proxy.

    ``expired`` (or no later ``expire_at``) ends it with unsubscribe 2501 (the SDKs subscribe
    again, through the subscribe proxy); a backend that cannot be asked closes the connection
    with 3004 (the client reconnects), its own ``disconnect`` as it is. False when the
    connection was closed.
    """
    assert s.node.proxy is not None
    try:
        answer = await s.node.proxy.sub_refresh(s.proxy_context(), sub.channel)
        info = json_payload(answer.info, s.codec)
    except DisconnectError as exc:
        s.disconnect(exc.disconnect)
        return False
    except CommandError:
        s.disconnect(DisconnectCode.SERVER_ERROR)
        return False
    if answer.expired or not answer.expire_at > s.node.clock.now():
        end_subscription(s, sub, UnsubscribeCode.EXPIRED)
        return True
    sub.expire_at = answer.expire_at
    if info is not None:
        sub.info = s.client_info(info)
    return True


# ---------------------------------------------------------------------------- sub_refresh


async def handle_sub_refresh(
    s: Session, cmd_id: int, req: SubRefreshRequest
) -> dict[str, Any] | None:
    """docs/tokens.md "sub_refresh", except that an expired token ends the subscription with 2501
    (see above)."""
    if not req.channel:
        raise ProtocolViolation("sub_refresh without channel")
    sub = s.subs.get(req.channel)
    if sub is None:
        raise CommandError(ErrorCode.PERMISSION_DENIED)
    if sub.server_refresh:
        # The sub_refresh proxy refreshes this subscription; a client sub_refresh is a misuse.
        raise DisconnectError(DisconnectCode.BAD_REQUEST)
    if not req.token:
        raise CommandError(ErrorCode.BAD_REQUEST)
    try:
        creds = await _verify(s, req.token, req.channel, refresh=True)
    except CommandError as exc:
        if exc.error is not ErrorCode.TOKEN_EXPIRED:
            raise
        s.reply(cmd_id, "sub_refresh", {})
        end_subscription(s, sub, UnsubscribeCode.EXPIRED)
        return None
    now = s.node.clock.now()
    if creds.expire_at and creds.expire_at <= now:
        raise CommandError(ErrorCode.EXPIRED)
    sub.expire_at = capped_expiry(creds.expire_at, now)
    sub.token_identity = creds.identity
    sub.info = s.client_info(json_payload(creds.info, s.codec))
    result: dict[str, Any] = {}
    add_expiry(result, sub.expire_at, now)
    return result


# ---------------------------------------------------------------------------- server-side


async def server_subscription(
    s: Session,
    ch: ResolvedChannel,
    opts: ServerSubOptions,
    *,
    recover: SubscribeRequest | None = None,
    from_token: bool = False,
    expire_at: int = 0,
) -> tuple[Subscription, dict[str, Any]]:
    """Establish one server-side subscription; the caller queues its result, then activates."""
    sub = _base_subscription(s, ch, json_payload(opts.info, s.codec), opts.override)
    sub.server_side, sub.from_token, sub.expire_at = True, from_token, expire_at
    result = await establish(s, sub, recover if sub.recoverable else None)
    if opts.data:
        result["data"] = json_payload(opts.data, s.codec) or b"null"
    add_expiry(result, expire_at, s.node.clock.now())
    return sub, result


def send_subscribe_push(s: Session, channel: str, result: dict[str, Any]) -> None:
    """Queue the Subscribe push announcing a server-side subscription made while connected."""
    keys = ("recoverable", "epoch", "offset", "positioned", "data")
    s.send_push("subscribe", {k: result[k] for k in keys if k in result}, channel)
