"""Control messages: server-API operations on users and clients, applied on every node.

A message is one JSON object with an ``op``; `apply` runs it against this node's sessions.
Unknown ops are ignored (a newer node may send them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from rotary.engines.base import StreamPosition
from rotary.node.auth import Override, ServerSubOptions
from rotary.node.connect import refresh_connection
from rotary.node.ending import end_subscription
from rotary.node.subscribe import (
    activate,
    send_subscribe_push,
    server_subscription,
)
from rotary.protocol.codes import Disconnect, DisconnectCode, UnsubscribeCode
from rotary.protocol.messages import SubscribeRequest

if TYPE_CHECKING:
    from rotary.node.contracts import NodeServices, Session

__all__ = ["apply", "force_recover", "subscribe_message"]

_OVERRIDE_FIELDS = (
    "presence",
    "join_leave",
    "force_push_join_leave",
    "force_recovery",
    "force_positioning",
)


@dataclass(frozen=True, slots=True)
class _Override:
    presence: bool | None = None
    join_leave: bool | None = None
    force_push_join_leave: bool | None = None
    force_recovery: bool | None = None
    force_positioning: bool | None = None


def subscribe_message(
    user: str,
    channel: str,
    *,
    client: str,
    session: str = "",
    expire_at: int,
    info: bytes | None,
    data: bytes | None,
    recover_since: StreamPosition | None,
    override: Override | None,
) -> bytes:
    """The control message of a server-API subscribe."""
    msg: dict[str, Any] = {
        "op": "subscribe",
        "user": user,
        "channel": channel,
        "client": client,
        "session": session,
        "expire_at": expire_at,
        "info": info.decode() if info else None,
        "data": data.decode() if data else None,
    }
    if recover_since is not None:
        msg["since"] = [recover_since.offset, recover_since.epoch]
    if override is not None:
        msg["override"] = {k: getattr(override, k) for k in _OVERRIDE_FIELDS}
    return orjson.dumps(msg)


def apply(node: NodeServices, data: bytes) -> None:
    """Run one control message against this node's sessions."""
    msg = orjson.loads(data)
    op = msg.get("op")
    sessions = node.sessions(msg.get("user", ""), msg.get("client", ""), msg.get("session", ""))
    for s in sessions:
        if op == "disconnect" and s.id not in msg.get("whitelist", ()):
            s.disconnect(Disconnect(int(msg["code"]), str(msg["reason"])))
        elif op == "unsubscribe":
            _unsubscribe(s, msg["channel"])
        elif op == "refresh":
            _refresh(s, msg)
        elif op == "subscribe":
            s.spawn(_subscribe(s, msg))


def _unsubscribe(s: Session, channel: str) -> None:
    """End `s`'s subscription to `channel`, or every subscription when `channel` is ""."""
    subs = list(s.subs.values()) if not channel else [s.subs.get(channel)]
    for sub in subs:
        if sub is not None:
            end_subscription(s, sub, UnsubscribeCode.SERVER)


def _refresh(s: Session, msg: dict[str, Any]) -> None:
    now = s.node.clock.now()
    expire_at = int(msg.get("expire_at") or 0)
    if msg.get("expired") or (expire_at and expire_at <= now):
        s.disconnect(DisconnectCode.EXPIRED)
        return
    info = msg.get("info")
    result = refresh_connection(
        s, expire_at=expire_at, info=info.encode() if info else None, now=now
    )
    body = {k: v for k, v in result.items() if k in ("expires", "ttl")}
    s.send_push("refresh", body)


async def _subscribe(s: Session, msg: dict[str, Any]) -> None:
    channel = msg["channel"]
    resolved = s.node.resolver.resolve(channel)
    if resolved is None or channel in s.subs or channel in s.subscribing or s.closed:
        return
    ov = msg.get("override")
    opts = ServerSubOptions(
        info=msg["info"].encode() if msg.get("info") else None,
        data=msg["data"].encode() if msg.get("data") else None,
        override=_Override(**ov) if ov else None,
    )
    since = msg.get("since")
    recover = SubscribeRequest(recover=True, offset=since[0], epoch=since[1]) if since else None
    expire_at = int(msg.get("expire_at") or 0)
    sub, result = await server_subscription(s, resolved, opts, recover=recover, expire_at=expire_at)
    send_subscribe_push(s, channel, result)
    activate(s, sub)


def force_recover(s: Session, affected: Callable[[str], bool] = lambda _: True) -> None:
    """Make positioned subscriptions of `s` to `affected` channels recover (after a broker
    reconnect): client-side ones get Unsubscribe 2500, a server-side one disconnects 3010."""
    for sub in list(s.subs.values()):
        if not sub.positioned or not affected(sub.channel):
            continue
        if sub.server_side:
            s.disconnect(DisconnectCode.INSUFFICIENT_STATE)
            return
        end_subscription(s, sub, UnsubscribeCode.INSUFFICIENT_STATE)
