"""Server API method of shared poll channels: ``shared_poll_publish``
(docs/shared-poll.md "Publishing").

Registered into the executor on import (the package imports this module). The request has
Centrifugo's fields: ``channel``, ``key``, ``version`` (above 0), ``epoch`` (optional),
``data`` or ``b64data``; the result is ``{}``.
"""

from __future__ import annotations

from typing import Protocol, cast

from rotary.api import _fields as f
from rotary.api.errors import api_error
from rotary.api.executor import ApiExecutor, Request, Result, api_method

__all__ = ["SharedPollApi"]


class SharedPollApi(Protocol):
    """What the method needs of the node (`rotary.node.node.Node`)."""

    async def api_shared_poll_publish(
        self, channel: str, key: str, version: int, epoch: str, data: bytes
    ) -> None:
        """Raises `CommandError` 107 (bad request, not a shared poll channel), 102 (unknown
        namespace), 108 (publishing not enabled)."""


@api_method("shared_poll_publish")
async def shared_poll_publish(executor: ApiExecutor, request: Request) -> Result:
    """Push `key`'s new version to the clients tracking it on every node; ``{}``."""
    node = _node(executor)
    # No data is no error (as in Centrifugo): the clients get the new version without data.
    data = f.payload(request, "data", "b64data") or b""
    await node.api_shared_poll_publish(
        f.string(request, "channel"),
        f.string(request, "key"),
        f.integer(request, "version", minimum=0),
        f.string(request, "epoch"),
        data,
    )
    return {}


def _node(executor: ApiExecutor) -> SharedPollApi:
    """The executor's node; 108 for a node without shared poll (a test double)."""
    if not hasattr(executor.node, "api_shared_poll_publish"):
        raise api_error(108)
    return cast(SharedPollApi, executor.node)
