"""A client's writes to map channels: ``publish`` with ``type`` 1, a ``key`` and maybe
``removed`` (docs/map-subscriptions.md "Client writes").

As Centrifugo: the map group's ``allow_publish_*`` / ``allow_remove_*`` options (or
``client_insecure``) decide, and ``client_key`` may replace the key the client names with
its client id or user id. In a namespace with ``map.publish_proxy_enabled``
(``map.remove_proxy_enabled``) the backend decides instead, through the map_publish
(map_remove) proxy, and may replace the key and data and set the write's options.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rotary.channels.maps import map_settings
from rotary.channels.options import ChannelOptions
from rotary.engines.base import ClientInfo
from rotary.engines.maps import MapPublishOptions
from rotary.protocol.base import ProtocolViolation
from rotary.protocol.codes import CommandError, ErrorCode
from rotary.protocol.messages import PublishRequest

if TYPE_CHECKING:
    from rotary.node.contracts import Session

__all__ = ["handle_map_publish"]


async def handle_map_publish(s: Session, req: PublishRequest) -> dict[str, Any]:
    """validate → authorize → write or remove; ``{}`` also when nothing changed."""
    if not req.channel:
        raise ProtocolViolation("map publish without channel")
    resolved = s.node.resolver.resolve(req.channel)
    if resolved is None:
        raise CommandError(ErrorCode.UNKNOWN_CHANNEL)
    if not s.node.resolver.name_valid(resolved) or map_settings(resolved.options) is None:
        raise CommandError(ErrorCode.BAD_REQUEST)
    opts = resolved.options
    sub = s.subs.get(req.channel)
    info = sub.info if sub is not None else s.client_info()
    if opts.map_remove_proxy_enabled if req.removed else opts.map_publish_proxy_enabled:
        await _proxied(s, req, info)
        return {}
    if not _allowed(s, opts, removing=req.removed, subscribed=sub is not None):
        raise CommandError(ErrorCode.PERMISSION_DENIED)
    key = _key(s, opts, req.key)
    maps = s.node.maps
    if req.removed:
        await maps.remove(req.channel, key)
    else:
        await maps.publish(req.channel, key, req.data or b"", MapPublishOptions(info=info))
    return {}


async def _proxied(s: Session, req: PublishRequest, info: ClientInfo) -> None:
    """The write or removal as the backend decides it; 108 when the proxy is not configured."""
    proxy = s.node.proxy
    kind = "map_remove" if req.removed else "map_publish"
    if proxy is None or not proxy.active(kind):
        raise CommandError(ErrorCode.NOT_AVAILABLE)
    maps, ctx = s.node.maps, s.proxy_context()
    if req.removed:
        removal = await proxy.map_remove(ctx, req.channel, req.key)
        await maps.remove(
            req.channel, removal.key, idempotency_key=removal.idempotency_key, tags=removal.tags
        )
        return
    write = await proxy.map_publish(ctx, req.channel, req.key, req.data or b"")
    options = MapPublishOptions(
        info=info,
        tags=write.tags,
        key_mode=write.key_mode,
        idempotency_key=write.idempotency_key,
        use_delta=write.delta,
        version=write.version,
        version_epoch=write.version_epoch,
    )
    await maps.publish(req.channel, write.key, write.data, options)


def _allowed(s: Session, opts: ChannelOptions, *, removing: bool, subscribed: bool) -> bool:
    verb = "remove" if removing else "publish"
    anonymous_ok = bool(s.user) or getattr(opts, f"map_allow_{verb}_for_anonymous")
    if getattr(opts, f"map_allow_{verb}_for_client") and anonymous_ok:
        return True
    if getattr(opts, f"map_allow_{verb}_for_subscriber") and subscribed and anonymous_ok:
        return True
    return s.node.settings.insecure


def _key(s: Session, opts: ChannelOptions, asked: str) -> str:
    """The key written: the client's id or user id when ``client_key`` says so; 107 if none."""
    if opts.map_client_key == "client_id":
        return s.id
    if opts.map_client_key == "user_id":
        if not s.user:
            raise CommandError(ErrorCode.PERMISSION_DENIED)
        return s.user
    if not asked:
        raise CommandError(ErrorCode.BAD_REQUEST)
    return asked
