"""A client's writes to map channels: ``publish`` with ``type`` 1, a ``key`` and maybe
``removed`` (docs/map-subscriptions.md "Client writes").

As Centrifugo: the map group's ``allow_publish_*`` / ``allow_remove_*`` options (or
``client_insecure``) decide, and ``client_key`` may replace the key the client names with
its client id or user id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rotary.channels.maps import map_settings
from rotary.channels.options import ChannelOptions
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
    if not _allowed(s, opts, removing=req.removed, subscribed=sub is not None):
        raise CommandError(ErrorCode.PERMISSION_DENIED)
    key = _key(s, opts, req.key)
    maps = s.node.maps
    if req.removed:
        await maps.remove(req.channel, key)
    else:
        info = sub.info if sub is not None else s.client_info()
        await maps.publish(req.channel, key, req.data or b"", MapPublishOptions(info=info))
    return {}


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
