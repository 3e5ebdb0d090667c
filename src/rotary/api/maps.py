"""Server API methods of map channels: map_publish, map_remove, map_read_state,
map_read_stream, map_stats, map_clear (docs/map-subscriptions.md "Server API").

Registered into the executor on import (the package imports this module). Requests and
results use Centrifugo's field names; a channel that is not a map channel gets 107.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from rotary.api import _fields as f
from rotary.api.errors import api_error
from rotary.api.executor import ApiExecutor, Request, Result, api_method
from rotary.engines.base import StreamPosition
from rotary.engines.maps import (
    KEY_MODES,
    MapPublication,
    MapPublishOptions,
    MapStateResult,
    MapStreamResult,
    MapUpdateResult,
)

__all__ = ["MapsApi"]


class MapsApi(Protocol):
    """What these methods need of the node (`rotary.node.maps.MapNode`)."""

    async def publish(
        self, channel: str, key: str, data: bytes, opts: MapPublishOptions
    ) -> MapUpdateResult: ...

    async def remove(
        self, channel: str, key: str, *, idempotency_key: str = ""
    ) -> MapUpdateResult: ...

    async def read_state(
        self,
        channel: str,
        *,
        cursor: str = "",
        limit: int = 0,
        key: str = "",
        revision: StreamPosition | None = None,
    ) -> MapStateResult: ...

    async def read_stream(
        self, channel: str, *, since: StreamPosition | None, limit: int = 0, reverse: bool = False
    ) -> MapStreamResult: ...

    async def stats(self, channel: str) -> int: ...

    async def clear(self, channel: str) -> None: ...


def _maps(executor: ApiExecutor) -> MapsApi:
    maps: MapsApi | None = getattr(executor.node, "maps", None)
    if maps is None:
        raise api_error(108)
    return maps


def _channel_and_key(request: Request) -> tuple[str, str]:
    channel, key = f.string(request, "channel"), f.string(request, "key")
    if not channel or not key:
        raise f.bad_request("channel and key required")
    return channel, key


def _update_json(result: MapUpdateResult) -> Result:
    out: Result = {"offset": result.position.offset, "epoch": result.position.epoch}
    if result.suppressed:
        out.update(suppressed=True, suppress_reason=result.suppress_reason)
    return out


def _entry_json(pub: MapPublication) -> Result:
    out: Result = {"key": pub.key}
    if pub.data:
        out["data"] = orjson.Fragment(pub.data)
    if pub.tags:
        out["tags"] = dict(pub.tags)
    out["offset"] = pub.offset
    if pub.removed:
        out["removed"] = True
    if pub.time:
        out["time"] = pub.time
    return out


def _since(request: Request, offset_key: str, epoch_key: str) -> StreamPosition | None:
    offset = f.integer(request, offset_key, minimum=0)
    epoch = f.string(request, epoch_key)
    return StreamPosition(offset, epoch) if offset or epoch else None


@api_method("map_publish")
async def map_publish(executor: ApiExecutor, request: Request) -> Result:
    """Write one key; ``{"offset", "epoch"}`` and ``suppressed``/``suppress_reason`` when
    nothing changed."""
    channel, key = _channel_and_key(request)
    data = f.payload(request, "data", "b64data") or b""
    key_mode = f.string(request, "key_mode")
    if key_mode not in KEY_MODES:
        raise f.bad_request('key_mode must be "if_new" or "if_exists"')
    opts = MapPublishOptions(
        tags=f.string_map(request, "tags"),
        key_mode=key_mode,
        idempotency_key=f.string(request, "idempotency_key"),
        use_delta=f.boolean(request, "delta"),
        version=f.integer(request, "version", minimum=0),
        version_epoch=f.string(request, "version_epoch"),
    )
    return _update_json(await _maps(executor).publish(channel, key, data, opts))


@api_method("map_remove")
async def map_remove(executor: ApiExecutor, request: Request) -> Result:
    """Remove one key; suppressed with ``key_not_found`` when it is not there."""
    channel, key = _channel_and_key(request)
    idem = f.string(request, "idempotency_key")
    return _update_json(await _maps(executor).remove(channel, key, idempotency_key=idem))


@api_method("map_read_state")
async def map_read_state(executor: ApiExecutor, request: Request) -> Result:
    """A page of entries: ``limit`` 0 gives only the position, -1 every entry."""
    channel = f.required_string(request, "channel")
    page = await _maps(executor).read_state(
        channel,
        cursor=f.string(request, "cursor"),
        limit=f.integer(request, "limit", minimum=-1),
        key=f.string(request, "key"),
        revision=_since(request, "revision_offset", "revision_epoch"),
    )
    out: dict[str, Any] = {
        "entries": [_entry_json(p) for p in page.entries],
        "offset": page.position.offset,
        "epoch": page.position.epoch,
    }
    if page.cursor:
        out["cursor"] = page.cursor
    return out


@api_method("map_read_stream")
async def map_read_stream(executor: ApiExecutor, request: Request) -> Result:
    """Changes after ``since_offset``/``since_epoch``; 112 when they are gone."""
    channel = f.required_string(request, "channel")
    result = await _maps(executor).read_stream(
        channel,
        since=_since(request, "since_offset", "since_epoch"),
        limit=f.integer(request, "limit", minimum=-1),
        reverse=f.boolean(request, "reverse"),
    )
    return {
        "entries": [_entry_json(p) for p in result.publications],
        "offset": result.position.offset,
        "epoch": result.position.epoch,
    }


@api_method("map_stats")
async def map_stats(executor: ApiExecutor, request: Request) -> Result:
    """``{"num_keys"}``."""
    channel = f.required_string(request, "channel")
    return {"num_keys": await _maps(executor).stats(channel)}


@api_method("map_clear")
async def map_clear(executor: ApiExecutor, request: Request) -> Result:
    """Forget every key and the stream; the channel starts a new epoch."""
    channel = f.required_string(request, "channel")
    await _maps(executor).clear(channel)
    return {}
