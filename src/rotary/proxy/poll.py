"""`PollProxy`: the shared poll refresh call over HTTP, to the named proxies (docs/shared-poll.md
"The backend call").

The request is ``{"channel": …, "items": [{"key": …, "version": …}]}`` (version left out when
0), POSTed as JSON to the endpoint of the proxy the namespace names; the answer is
``{"result": {"items": [{"key", "data", "version", "removed"}], "epoch": …}}`` or
``{"error": {…}}``. Anything else is a `PollFailure`: the node logs it and asks again at the
next cycle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from rotary.node.shared_poll import PollAnswer, PolledItem, PollFailure
from rotary.proxy.answers import ProxyFailure
from rotary.proxy.caller import AiohttpCaller, Caller
from rotary.proxy.settings import ProxyEndpoint

__all__ = ["PollProxy", "poll_answer", "poll_request"]

_HEADERS = {"Content-Type": "application/json"}


class PollProxy:
    """The named proxies of `endpoints` (name → endpoint), called through `caller`."""

    def __init__(self, endpoints: Mapping[str, ProxyEndpoint], *, caller: Caller | None = None):
        self._endpoints = dict(endpoints)
        self._caller: Caller = caller or AiohttpCaller()

    async def refresh(
        self, proxy_name: str, channel: str, items: Sequence[tuple[str, int]]
    ) -> PollAnswer:
        proxy = self._endpoints.get(proxy_name)
        if proxy is None:
            raise PollFailure(f"no proxy named {proxy_name!r}")
        body = poll_request(channel, items)
        try:
            answer = await self._caller.post(proxy.endpoint, body, _HEADERS, proxy.timeout)
        except ProxyFailure as exc:
            raise PollFailure(exc.reason) from None
        return poll_answer(answer)

    async def close(self) -> None:
        await self._caller.close()


def poll_request(channel: str, items: Sequence[tuple[str, int]]) -> bytes:
    """The request body for `items` (key, version) of `channel`."""
    listed = [{"key": key, "version": v} if v else {"key": key} for key, v in items]
    return orjson.dumps({"channel": channel, "items": listed})


def poll_answer(answer: bytes) -> PollAnswer:
    """The items and epoch of an answer; `PollFailure` for an error or a malformed one."""
    try:
        doc = orjson.loads(answer)
    except orjson.JSONDecodeError:
        raise PollFailure("answer is not JSON") from None
    if type(doc) is not dict:
        raise PollFailure("answer is not a JSON object")
    if doc.get("error") is not None:
        raise PollFailure("the backend answered with an error")
    result = doc.get("result") or {}
    if type(result) is not dict:
        raise PollFailure("result is not an object")
    items = result.get("items") or []
    epoch = result.get("epoch") or ""
    if type(items) is not list or type(epoch) is not str:
        raise PollFailure("result.items must be a list and result.epoch a string")
    return PollAnswer(tuple(_item(i) for i in items), epoch)


def _item(obj: Any) -> PolledItem:
    if type(obj) is not dict:
        raise PollFailure("an item is not an object")
    key, version, removed = obj.get("key"), obj.get("version", 0), obj.get("removed", False)
    if type(key) is not str or not key:
        raise PollFailure("an item has no key")
    if type(version) is not int or not 0 <= version < 2**64:
        raise PollFailure("an item's version must be an unsigned integer")
    if type(removed) is not bool:
        raise PollFailure("an item's removed must be a boolean")
    prev = obj.get("prev_data")
    prev_data = None if prev is None else orjson.dumps(prev)
    return PolledItem(key, orjson.dumps(obj.get("data")), version, removed, prev_data)
