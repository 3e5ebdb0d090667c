"""What the node asks the app's backend when a proxy is configured (docs/backend.md "The proxy").

The node knows nothing of HTTP: `ProxyHooks` is the seam, implemented by
`rotary.proxy.hooks.HttpProxy`. A hook either answers, or raises `CommandError` /
`DisconnectError` carrying what the client gets: the backend's own ``error`` or
``disconnect``, or error 100 (temporary: the SDKs retry) when the backend is down, slow or
answers nonsense. A hook never lets a client in on a failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from rotary.node.auth import ConnectCredentials, SubscribeCredentials
from rotary.protocol.messages import ConnectRequest, SubscribeRequest

__all__ = [
    "NO_HEADERS",
    "ProxiedMapPublish",
    "ProxiedMapRemove",
    "ProxiedRefresh",
    "ProxyContext",
    "ProxyHooks",
]

NO_HEADERS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ProxyContext:
    """Who is asking: the client, its user ("" before connect), its connection meta, the
    HTTP headers of its WebSocket upgrade request that some proxy passes on (lower-case), and
    its wire protocol (``json`` or ``protobuf``)."""

    client: str
    user: str = ""
    meta: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: NO_HEADERS)
    protocol: str = "json"


@dataclass(frozen=True, slots=True)
class ProxiedRefresh:
    """A refresh or sub_refresh answer: `expired` ends it; else `expire_at` > 0 extends it."""

    expired: bool = False
    expire_at: int = 0
    info: bytes | None = None


@dataclass(frozen=True, slots=True)
class ProxiedMapPublish:
    """What the map_publish proxy decided a client's key write becomes: the key and data
    (the client's unless replaced) and the write's options, as the API's ``map_publish``."""

    key: str
    data: bytes
    tags: Mapping[str, str] | None = None
    key_mode: str = ""
    idempotency_key: str = ""
    delta: bool = False
    version: int = 0
    version_epoch: str = ""


@dataclass(frozen=True, slots=True)
class ProxiedMapRemove:
    """What the map_remove proxy decided a client's key removal becomes."""

    key: str
    tags: Mapping[str, str] | None = None
    idempotency_key: str = ""


class ProxyHooks(Protocol):
    """The proxies of one node. `active(kind)` says whether the `kind` proxy is configured
    (``connect``, ``refresh``, ``subscribe``, ``publish``, ``sub_refresh``, ``rpc``,
    ``map_publish``, ``map_remove``); the namespace switches are the caller's to check."""

    @property
    def header_names(self) -> frozenset[str]:
        """Lower-case names of the client headers some proxy passes on."""
        ...

    def active(self, kind: str) -> bool: ...

    async def connect(
        self, ctx: ProxyContext, req: ConnectRequest
    ) -> tuple[ConnectCredentials, bytes | None] | None:
        """The connection's credentials and the connect reply's ``data`` (raw JSON or None);
        None when the backend answered without a result (as if there were no token)."""
        ...

    async def refresh(self, ctx: ProxyContext) -> ProxiedRefresh:
        """Server-side refresh of an expiring connection."""
        ...

    async def subscribe(self, ctx: ProxyContext, req: SubscribeRequest) -> SubscribeCredentials:
        """Whether (and with which options) the client may subscribe to ``req.channel``."""
        ...

    async def sub_refresh(self, ctx: ProxyContext, channel: str) -> ProxiedRefresh:
        """Server-side refresh of an expiring subscription the subscribe proxy admitted."""
        ...

    async def publish(self, ctx: ProxyContext, channel: str, data: bytes) -> bytes:
        """The data to publish (the client's, or the backend's replacement)."""
        ...

    async def rpc(self, ctx: ProxyContext, method: str, data: bytes | None) -> bytes | None:
        """The RPC reply's ``data`` (raw JSON or None)."""
        ...

    async def map_publish(
        self, ctx: ProxyContext, channel: str, key: str, data: bytes
    ) -> ProxiedMapPublish:
        """Whether, and as what, the client may write `key` of the map channel."""
        ...

    async def map_remove(self, ctx: ProxyContext, channel: str, key: str) -> ProxiedMapRemove:
        """Whether, and as what, the client may remove `key` of the map channel."""
        ...

    async def close(self) -> None:
        """Release HTTP connections (at server shutdown)."""
        ...
