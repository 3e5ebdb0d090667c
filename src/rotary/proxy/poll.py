"""`PollProxy`: the shared poll refresh call over HTTP, to the named proxies (docs/shared-poll.md
"The backend call").

The request is ``{"channel": …, "items": [{"key": …, "version": …}]}`` (version left out when
0), POSTed as JSON to the endpoint of the proxy the namespace names; the answer is
``{"result": {"items": [{"key", "data", "version", "removed"}], "epoch": …}}`` or
``{"error": {…}}``. Anything else is a `PollFailure`: the node logs it and asks again at the
next cycle. An item's ``b64data`` (and ``b64prev_data``), base64, replaces its ``data`` (and
``prev_data``): binary items, which Centrifugo carries over its gRPC proxies only.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
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
    data = _payload(obj, "data")
    prev_data = _payload(obj, "prev_data")
    if prev_data == b"null":  # a null prev_data is none (the base would be the text "null")
        prev_data = None
    return PolledItem(key, b"" if data is None else data, version, removed, prev_data)


def _payload(obj: dict[str, Any], name: str) -> bytes | None:
    """The item's `name` payload: the bytes of ``b64<name>`` when it is a non-empty string,
    else the JSON of `name` as written compactly; None when the item has neither (an item
    without data reaches clients without ``data``, as in Centrifugo)."""
    encoded = obj.get(f"b64{name}")
    if encoded is not None and encoded != "":
        if type(encoded) is not str:
            raise PollFailure(f"an item's b64{name} must be a string")
        try:
            return b64decode(encoded, validate=True)
        except binascii.Error:
            raise PollFailure(f"an item's b64{name} is not base64") from None
    if name not in obj:
        return None
    return orjson.dumps(obj[name])
