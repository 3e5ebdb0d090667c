"""Publishing into shared poll channels (the server API's ``shared_poll_publish``).

docs/shared-poll.md "Publishing". A publication goes to every node as a control message of
the engine (memory: this node; Redis: every node, this one included); each node applies it
to the clients that track the key there. Nodes that track nothing of the channel drop it.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import orjson

from rotary.channels.shared_poll import poll_settings
from rotary.protocol.codes import CommandError, ErrorCode

if TYPE_CHECKING:
    from rotary.node.contracts import NodeServices

__all__ = ["OP", "apply", "publish"]

#: The control message's ``op``.
OP = "shared_poll_publish"


async def publish(
    node: NodeServices, channel: str, key: str, version: int, epoch: str, data: bytes
) -> None:
    """Send `key` of `channel` at `version` to every node.

    Raises `CommandError`: 107 for an empty channel or key, a version of 0 or a channel that
    is not shared poll; 102 for an unknown namespace; 108 when the namespace does not enable
    publishing (Centrifugo's checks, in its order).
    """
    if not channel or not key or version <= 0:
        raise CommandError(ErrorCode.BAD_REQUEST)
    resolved = node.resolver.resolve(channel)
    if resolved is None:
        raise CommandError(ErrorCode.UNKNOWN_CHANNEL)
    settings = poll_settings(resolved.options)
    if settings is None:
        raise CommandError(ErrorCode.BAD_REQUEST)
    if not settings.publish_enabled:
        raise CommandError(ErrorCode.NOT_AVAILABLE)
    message = {
        "op": OP,
        "channel": channel,
        "key": key,
        "version": version,
        "epoch": epoch,
        # base64 keeps binary payloads (b64data) intact inside the JSON message.
        "data": base64.b64encode(data).decode(),
    }
    await node.broker.publish_control(orjson.dumps(message))


def apply(node: NodeServices, msg: dict[str, Any]) -> None:
    """Apply one publication received from the engine to this node's trackers."""
    manager = node.shared_poll
    if manager is None:
        return
    data = base64.b64decode(str(msg["data"]))
    version = int(msg["version"])
    manager.published(str(msg["channel"]), str(msg["key"]), version, str(msg["epoch"]), data)
