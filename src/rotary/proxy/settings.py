"""Settings of the proxies (docs/backend.md "The proxy"): frozen values built by `rotary.config`.

One `ProxyEndpoint` per kind of event. A proxy is in use when its endpoint is set and it is
not switched off (`enabled` False, v6 ``client.proxy.connect.enabled: false``); the subscribe,
publish and sub_refresh proxies are further used only in namespaces that turn them on
(``proxy_subscribe`` / ``subscribe_proxy_enabled`` and the like), the map_publish and
map_remove proxies only in map namespaces with ``map.publish_proxy_enabled`` /
``map.remove_proxy_enabled``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PROXY_KINDS", "ProxyEndpoint", "ProxySettings"]

#: Every kind of proxied event, in the order of the configuration reference.
PROXY_KINDS = (
    "connect",
    "refresh",
    "subscribe",
    "publish",
    "sub_refresh",
    "rpc",
    "map_publish",
    "map_remove",
)


@dataclass(frozen=True, slots=True)
class ProxyEndpoint:
    """One backend endpoint: an ``http://`` or ``https://`` URL that takes JSON POSTs.

    `timeout` bounds one call, in seconds. `http_headers` names the client's HTTP headers
    (of its WebSocket upgrade request) passed on to the backend, ``Cookie`` included when
    listed; empty takes the list shared by all proxies. `include_connection_meta` adds the
    connection's ``meta`` to the request (not for connect, which sets it).
    """

    endpoint: str = ""
    timeout: float = 1.0
    http_headers: tuple[str, ...] = ()
    include_connection_meta: bool = False
    enabled: bool = True

    @property
    def active(self) -> bool:
        """Whether this proxy is called at all."""
        return self.enabled and bool(self.endpoint)


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """Every proxy, and the header list shared by those that name none (v5 proxy_http_headers)."""

    connect: ProxyEndpoint = field(default_factory=ProxyEndpoint)
    refresh: ProxyEndpoint = field(default_factory=ProxyEndpoint)
    subscribe: ProxyEndpoint = field(default_factory=ProxyEndpoint)
    publish: ProxyEndpoint = field(default_factory=ProxyEndpoint)
    sub_refresh: ProxyEndpoint = field(default_factory=ProxyEndpoint)
    rpc: ProxyEndpoint = field(default_factory=ProxyEndpoint)
    map_publish: ProxyEndpoint = field(default_factory=ProxyEndpoint)
    map_remove: ProxyEndpoint = field(default_factory=ProxyEndpoint)
    http_headers: tuple[str, ...] = ()
    include_connection_meta: bool = False
    #: The top-level ``proxies`` list: name → endpoint (they serve shared poll channels).
    named: tuple[tuple[str, ProxyEndpoint], ...] = ()
    #: The proxy of shared poll channels that name none (v6 channel.proxy.shared_poll_refresh).
    shared_poll_refresh: ProxyEndpoint = field(default_factory=ProxyEndpoint)

    def endpoint(self, kind: str) -> ProxyEndpoint:
        """The settings of `kind` (one of `PROXY_KINDS`)."""
        found: ProxyEndpoint = getattr(self, kind)
        return found

    def headers_of(self, kind: str) -> tuple[str, ...]:
        """Lower-case names of the client headers passed to the `kind` proxy."""
        names = self.endpoint(kind).http_headers or self.http_headers
        return tuple(name.lower() for name in names)

    def header_names(self) -> frozenset[str]:
        """Lower-case names of every client header some active proxy passes on."""
        return frozenset(
            name
            for kind in PROXY_KINDS
            if self.endpoint(kind).active
            for name in self.headers_of(kind)
        )

    @property
    def any_active(self) -> bool:
        return any(self.endpoint(kind).active for kind in PROXY_KINDS)
