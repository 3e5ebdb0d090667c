"""Prometheus metrics of one node, in a registry of its own.

Every metric is named ``rotary_…``; docs/metrics.md lists them with their labels. Each
`Metrics` owns a fresh `CollectorRegistry` (never the process-global one), so several nodes
or tests in one process never clash. Label values come from fixed vocabularies: a value
outside its vocabulary is counted as ``"other"``, so a client can never grow the number of
time series.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import generate_latest

from rotary.protocol.codes import DisconnectCode
from rotary.protocol.messages import REQUEST_ORDER

__all__ = [
    "COMMAND_METHODS",
    "CONTENT_TYPE",
    "ENGINE_OPS",
    "OTHER",
    "PUBLICATION_SOURCES",
    "TOKEN_KINDS",
    "TOKEN_OUTCOMES",
    "TOKEN_REASONS",
    "Metrics",
]

#: What `generate_latest` writes: the classic text format, which every Prometheus version
#: scrapes (newer client releases advertise 1.0.0 as "latest", which old servers refuse).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: The label value for anything outside a vocabulary.
OTHER = "other"
#: Client protocol commands (spec §1.4): the protocol's own list, ``ping`` included.
COMMAND_METHODS = frozenset(REQUEST_ORDER)
PUBLICATION_SOURCES = frozenset({"client", "api"})
TOKEN_KINDS = frozenset({"connection", "subscription"})
TOKEN_OUTCOMES = frozenset({"ok", "invalid", "expired", "unknown_channel", "mismatch", "revoked"})
#: `rotary.auth.TokenRejected.reason` values, the revocation reasons, and "none" (accepted).
TOKEN_REASONS = frozenset(
    {
        "none",
        "signature",
        "expired",
        "not_yet_valid",
        "audience",
        "issuer",
        "algorithm",
        "malformed",
        "claims",
        "channel_claim",
        "missing_channel",
        "channel_mismatch",
        "user_mismatch",
        "client_mismatch",
        "unknown_key",
        "unknown_channel",
        "jwks_unavailable",
        "too_large",
        "b64",
        "revoked_jti",
        "revoked_user",
    }
)
#: Broker, presence manager and revocation store operations.
ENGINE_OPS = frozenset(
    {
        "subscribe",
        "unsubscribe",
        "publish",
        "publish_join",
        "publish_leave",
        "publish_control",
        "history",
        "remove_history",
        "add_presence",
        "remove_presence",
        "presence",
        "presence_stats",
        "revoke_token",
        "invalidate_user_tokens",
    }
)
_DISCONNECT_CODES = frozenset(
    str(value.code) for value in vars(DisconnectCode).values() if hasattr(value, "code")
)


def _bounded(value: str, vocabulary: frozenset[str]) -> str:
    return value if value in vocabulary else OTHER


def _disconnect_label(code: int) -> str:
    """Protocol codes as themselves; application codes by range, so they stay few."""
    text = str(code)
    if text in _DISCONNECT_CODES:
        return text
    if 4000 <= code < 4500:
        return "4000-4499"
    if 4500 <= code < 5000:
        return "4500-4999"
    return OTHER


class _Series:
    """A labelled Counter whose children are found by a dict look-up after their first use.

    prometheus_client's ``labels()`` validates, takes a lock and builds a key on every call;
    Rotary counts several times per connect and subscribe, always over small bounded label
    sets (`_bounded`), so each child is asked for once and kept.
    """

    __slots__ = ("_children", "_counter")

    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self._children: dict[tuple[str, ...], Any] = {}

    def inc(self, *labels: str) -> None:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self._counter.labels(*labels)
        child.inc()

    def touch(self, *labels: str) -> None:
        """Create the series for `labels` (it then reads 0 instead of missing)."""
        if labels not in self._children:
            self._children[labels] = self._counter.labels(*labels)


class Metrics:
    """The counters and gauges of one node; call the methods, then `render` for /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._connections = Gauge("rotary_connections", "Open client connections.", registry=r)
        self._subscriptions = Gauge(
            "rotary_subscriptions", "Client subscriptions (one per client and channel).", registry=r
        )
        self._publications = _Series(
            Counter(
                "rotary_publications", "Publications accepted, by source.", ["source"], registry=r
            )
        )
        self._commands = _Series(
            Counter(
                "rotary_client_commands",
                "Client protocol commands received.",
                ["method"],
                registry=r,
            )
        )
        self._verifications = _Series(
            Counter(
                "rotary_token_verifications",
                "Token checks and their outcome.",
                ["kind", "outcome", "reason"],
                registry=r,
            )
        )
        self._cache = _Series(
            Counter("rotary_token_cache", "Verified-token cache look-ups.", ["result"], registry=r)
        )
        self._revocation = _Series(
            Counter(
                "rotary_revocation_checks",
                "Revocation checks of verified tokens.",
                ["result"],
                registry=r,
            )
        )
        self._engine_errors = _Series(
            Counter("rotary_engine_errors", "Engine operations that failed.", ["op"], registry=r)
        )
        self._disconnects = _Series(
            Counter(
                "rotary_disconnects",
                "Connections closed by the server, by code.",
                ["code"],
                registry=r,
            )
        )
        self._init_series()

    def _init_series(self) -> None:
        """Create the small label sets up front, so that they read 0 instead of missing."""
        for source in PUBLICATION_SOURCES:
            self._publications.touch(source)
        for result in ("hit", "miss"):
            self._cache.touch(result)
        for result in ("revoked", "ok"):
            self._revocation.touch(result)

    def connection_opened(self) -> None:
        self._connections.inc()

    def connection_closed(self) -> None:
        self._connections.dec()

    def set_connections(self, count: int) -> None:
        self._connections.set(count)

    def subscription_added(self) -> None:
        self._subscriptions.inc()

    def subscription_removed(self) -> None:
        self._subscriptions.dec()

    def set_subscriptions(self, count: int) -> None:
        self._subscriptions.set(count)

    def publication(self, source: str) -> None:
        """One publication accepted; `source` is ``"client"`` or ``"api"``."""
        self._publications.inc(_bounded(source, PUBLICATION_SOURCES))

    def command(self, method: str) -> None:
        """One client command received (`method` as named in the protocol)."""
        self._commands.inc(_bounded(method, COMMAND_METHODS))

    def token_verified(self, kind: str, outcome: str, reason: str = "") -> None:
        """One token check: `outcome` ``ok`` (reason "") or the refusal's outcome and reason."""
        self._verifications.inc(
            _bounded(kind, TOKEN_KINDS),
            _bounded(outcome, TOKEN_OUTCOMES),
            _bounded(reason or "none", TOKEN_REASONS),
        )

    def token_cache(self, *, hit: bool) -> None:
        self._cache.inc("hit" if hit else "miss")

    def revocation_checked(self, *, revoked: bool) -> None:
        self._revocation.inc("revoked" if revoked else "ok")

    def engine_error(self, op: str) -> None:
        """One failed engine operation (a method name of Broker, PresenceManager or store)."""
        self._engine_errors.inc(_bounded(op, ENGINE_OPS))

    def disconnected(self, code: int) -> None:
        """The server closed a connection with `code`."""
        self._disconnects.inc(_disconnect_label(code))

    def render(self) -> tuple[bytes, str]:
        """The text exposition of every metric and its content type, for ``GET /metrics``."""
        return generate_latest(self.registry), CONTENT_TYPE
