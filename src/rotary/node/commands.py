"""publish, presence, presence_stats, history, rpc and send (docs/protocol.md "Commands").

Each handler is validate → authorize → apply → reply; errors are raised as `CommandError`
(an error reply) or `DisconnectError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rotary.channels.resolver import ResolvedChannel
from rotary.engines.base import HistoryFilter, StreamPosition, UnrecoverablePosition
from rotary.node.auth import json_payload
from rotary.node.map_publish import handle_map_publish
from rotary.policy.permissions import history_allowed, presence_allowed, publish_allowed
from rotary.protocol.base import ProtocolViolation
from rotary.protocol.codes import CommandError, DisconnectCode, DisconnectError, ErrorCode
from rotary.protocol.messages import (
    TYPE_MAP,
    HistoryRequest,
    PresenceRequest,
    PresenceStatsRequest,
    PublishRequest,
    RpcRequest,
    SendRequest,
)

if TYPE_CHECKING:
    from rotary.node.contracts import Session

__all__ = [
    "handle_history",
    "handle_presence",
    "handle_presence_stats",
    "handle_publish",
    "handle_rpc",
    "handle_send",
]


def _resolve(s: Session, channel: str) -> ResolvedChannel:
    """Unknown namespace → 102, invalid name → 107."""
    resolved = s.node.resolver.resolve(channel)
    if resolved is None:
        raise CommandError(ErrorCode.UNKNOWN_CHANNEL)
    if not s.node.resolver.name_valid(resolved):
        raise CommandError(ErrorCode.BAD_REQUEST)
    return resolved


def _require(allowed: bool) -> None:
    if not allowed:
        raise CommandError(ErrorCode.PERMISSION_DENIED)


async def handle_publish(s: Session, cmd_id: int, req: PublishRequest) -> dict[str, Any]:
    """Publish with the namespace's history settings and the publisher's ClientInfo."""
    if req.type == TYPE_MAP:
        return await handle_map_publish(s, req)
    if not req.channel or not req.data:
        raise ProtocolViolation("publish without channel or data")
    ch = _resolve(s, req.channel)
    sub = s.subs.get(req.channel)
    data = req.data
    if ch.options.proxy_publish:  # the publish proxy decides, and may replace the data
        proxy = s.node.proxy
        if proxy is None or not proxy.active("publish"):
            raise CommandError(ErrorCode.NOT_AVAILABLE)
        replaced = await proxy.publish(s.proxy_context(), req.channel, data)
        data = json_payload(replaced, s.codec) or data
    else:
        insecure = s.node.settings.insecure
        _require(publish_allowed(ch, user=s.user, subscribed=sub is not None, insecure=insecure))
    info = sub.info if sub is not None else s.client_info()
    await s.node.publish(ch, data, info=info)
    return {}


def _presence_channel(s: Session, channel: str) -> str:
    if not channel:
        raise ProtocolViolation("presence without channel")
    ch = _resolve(s, channel)
    if not ch.options.presence:
        raise CommandError(ErrorCode.NOT_AVAILABLE)
    subscribed = channel in s.subs
    insecure = s.node.settings.insecure
    _require(presence_allowed(ch, user=s.user, subscribed=subscribed, insecure=insecure))
    return channel


async def handle_presence(s: Session, cmd_id: int, req: PresenceRequest) -> dict[str, Any]:
    """Every client in the channel's presence: ``{"presence": {client: ClientInfo}}``."""
    channel = _presence_channel(s, req.channel)
    entries = await s.node.presence.presence(channel)
    return {"presence": dict(entries)}


async def handle_presence_stats(
    s: Session, cmd_id: int, req: PresenceStatsRequest
) -> dict[str, Any]:
    """``{"num_clients": N, "num_users": M}``, both always present."""
    channel = _presence_channel(s, req.channel)
    stats = await s.node.presence.presence_stats(channel)
    return {"num_clients": stats.num_clients, "num_users": stats.num_users}


async def handle_history(s: Session, cmd_id: int, req: HistoryRequest) -> dict[str, Any]:
    """History with the client limits of docs/protocol.md "Commands" (limit capped, 112 on another
    epoch)."""
    if not req.channel:
        raise ProtocolViolation("history without channel")
    ch = _resolve(s, req.channel)
    if not ch.options.history_enabled:
        raise CommandError(ErrorCode.NOT_AVAILABLE)
    subscribed = req.channel in s.subs
    insecure = s.node.settings.insecure
    _require(history_allowed(ch, user=s.user, subscribed=subscribed, insecure=insecure))
    if req.since is not None and req.reverse and req.since[0] == 0:
        raise CommandError(ErrorCode.BAD_REQUEST)
    top_limit = s.node.settings.history_max_publication_limit
    limit = top_limit if req.limit < 0 or req.limit > top_limit else req.limit
    since = StreamPosition(*req.since) if req.since is not None else None
    flt = HistoryFilter(since=since, limit=limit, reverse=req.reverse)
    try:
        hist = await s.node.broker.history(req.channel, flt, meta_ttl=s.node.meta_ttl(req.channel))
    except UnrecoverablePosition as exc:
        raise CommandError(ErrorCode.UNRECOVERABLE_POSITION) from exc
    return {
        "publications": list(hist.publications),
        "epoch": hist.position.epoch,
        "offset": hist.position.offset,
    }


async def handle_rpc(s: Session, cmd_id: int, req: RpcRequest) -> dict[str, Any]:
    """The optional built-in ping method, else the RPC proxy; 108 without either."""
    settings = s.node.settings
    if settings.rpc_ping and req.method == settings.rpc_ping_method:
        return {}
    proxy = s.node.proxy
    if proxy is None or not proxy.active("rpc"):
        raise CommandError(ErrorCode.NOT_AVAILABLE)
    data = json_payload(await proxy.rpc(s.proxy_context(), req.method, req.data), s.codec)
    return {} if data is None else {"data": data}


async def handle_send(s: Session, cmd_id: int, req: SendRequest) -> None:
    """No message handler is registered, as in Centrifugo: disconnect 3508."""
    raise DisconnectError(DisconnectCode.NOT_AVAILABLE)
