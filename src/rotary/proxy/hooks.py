"""`HttpProxy`: the node's `ProxyHooks` over HTTP (docs/backend.md "The proxy").

Each hook builds the request (`rotary.proxy.answers`), POSTs it (`rotary.proxy.caller`) and
reads the answer. The backend's ``error`` and ``disconnect`` reach the client as they are. A
backend that cannot be asked, or answers nonsense, gives error 100 "internal server error"
(temporary: the SDKs retry); the client is never let in on a failure. Each failure is one
log line with the kind, the client and the reason, never a header value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from rotary.node.auth import ConnectCredentials, SubscribeCredentials
from rotary.node.proxy import ProxiedMapPublish, ProxiedMapRemove, ProxiedRefresh, ProxyContext
from rotary.protocol.codes import CommandError, DisconnectError, ErrorCode
from rotary.protocol.messages import ConnectRequest, SubscribeRequest
from rotary.proxy import answers
from rotary.proxy.answers import ProxyFailure
from rotary.proxy.caller import AiohttpCaller, Caller
from rotary.proxy.settings import PROXY_KINDS, ProxySettings

if TYPE_CHECKING:
    from rotary.metrics import Metrics

__all__ = ["HttpProxy"]

_log = logging.getLogger("rotary.proxy")
_T = TypeVar("_T")


class HttpProxy:
    """The proxies of `settings`, called through `caller` (default: aiohttp); each call's
    outcome is counted in `metrics` when given."""

    def __init__(
        self,
        settings: ProxySettings,
        *,
        caller: Caller | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._caller: Caller = caller or AiohttpCaller()
        self._active = frozenset(k for k in PROXY_KINDS if settings.endpoint(k).active)
        self._headers = {kind: frozenset(settings.headers_of(kind)) for kind in PROXY_KINDS}
        self.header_names = settings.header_names()

    def active(self, kind: str) -> bool:
        return kind in self._active

    async def connect(
        self, ctx: ProxyContext, req: ConnectRequest
    ) -> tuple[ConnectCredentials, bytes | None] | None:
        fields: dict[str, Any] = {"name": req.name, "version": req.version}
        if req.data is not None:
            fields.update(answers.payload_field(req.data))
        if req.subs:
            fields["channels"] = list(req.subs)
        answer = await self._call("connect", ctx, fields, with_user=False)
        return self._read("connect", ctx, answers.connect_result, answer)

    async def refresh(self, ctx: ProxyContext) -> ProxiedRefresh:
        answer = await self._call("refresh", ctx, {})
        return self._read("refresh", ctx, answers.refresh_result, answer)

    async def subscribe(self, ctx: ProxyContext, req: SubscribeRequest) -> SubscribeCredentials:
        fields: dict[str, Any] = {"channel": req.channel}
        if req.token:
            fields["token"] = req.token
        if req.data is not None:
            fields.update(answers.payload_field(req.data))
        answer = await self._call("subscribe", ctx, fields)
        return self._read("subscribe", ctx, answers.subscribe_result, answer, ctx, req.channel)

    async def sub_refresh(self, ctx: ProxyContext, channel: str) -> ProxiedRefresh:
        answer = await self._call("sub_refresh", ctx, {"channel": channel})
        return self._read("sub_refresh", ctx, answers.refresh_result, answer)

    async def publish(self, ctx: ProxyContext, channel: str, data: bytes) -> bytes:
        fields = {"channel": channel, **answers.payload_field(data)}
        answer = await self._call("publish", ctx, fields)
        return self._read("publish", ctx, answers.publish_result, answer, data)

    async def rpc(self, ctx: ProxyContext, method: str, data: bytes | None) -> bytes | None:
        fields: dict[str, Any] = {"method": method}
        if data is not None:
            fields.update(answers.payload_field(data))
        answer = await self._call("rpc", ctx, fields)
        return self._read("rpc", ctx, answers.rpc_result, answer)

    async def map_publish(
        self, ctx: ProxyContext, channel: str, key: str, data: bytes
    ) -> ProxiedMapPublish:
        fields = {"channel": channel, "key": key, **answers.payload_field(data)}
        answer = await self._call("map_publish", ctx, fields)
        return self._read("map_publish", ctx, answers.map_publish_result, answer, key, data)

    async def map_remove(self, ctx: ProxyContext, channel: str, key: str) -> ProxiedMapRemove:
        answer = await self._call("map_remove", ctx, {"channel": channel, "key": key})
        return self._read("map_remove", ctx, answers.map_remove_result, answer, key)

    async def close(self) -> None:
        await self._caller.close()

    # ------------------------------------------------------------------ internals

    async def _call(
        self, kind: str, ctx: ProxyContext, fields: Mapping[str, Any], *, with_user: bool = True
    ) -> bytes:
        settings = self._settings
        proxy = settings.endpoint(kind)
        meta = proxy.include_connection_meta or settings.include_connection_meta
        body = answers.request_body(ctx, fields, with_user=with_user, meta=meta)
        try:
            return await self._caller.post(
                proxy.endpoint, body, self._request_headers(kind, ctx), proxy.timeout
            )
        except ProxyFailure as exc:
            raise self._failure(kind, ctx, exc.reason) from None

    def _request_headers(self, kind: str, ctx: ProxyContext) -> dict[str, str]:
        allowed = self._headers[kind]
        headers = {name: value for name, value in ctx.headers.items() if name in allowed}
        headers["Content-Type"] = "application/json"
        return headers

    def _read(
        self, kind: str, ctx: ProxyContext, reader: Callable[..., _T], answer: bytes, *args: Any
    ) -> _T:
        """`reader(answer, *args)`; a malformed answer becomes error 100 (logged)."""
        try:
            found = reader(answer, *args)
        except ProxyFailure as exc:
            raise self._failure(kind, ctx, exc.reason) from None
        except CommandError:
            self._count(kind, "error")
            raise
        except DisconnectError:
            self._count(kind, "disconnect")
            raise
        self._count(kind, "ok")
        return found

    def _count(self, kind: str, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.proxy_call(kind, outcome)

    def _failure(self, kind: str, ctx: ProxyContext, reason: str) -> CommandError:
        self._count(kind, "failure")
        _log.warning("%s proxy failed for client %s: %s", kind, ctx.client, reason)
        return CommandError(ErrorCode.INTERNAL)
