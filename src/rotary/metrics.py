"""Prometheus metrics of one node, in a registry of its own.

Every metric is named ``rotary_…``; docs/metrics.md lists them with their labels. Each
`Metrics` owns a fresh `CollectorRegistry` (never the process-global one), so several nodes
or tests in one process never clash. Label values come from fixed vocabularies: a value
outside its vocabulary is counted as ``"other"``, so a client can never grow the number of
time series.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

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
#: Client protocol commands (docs/protocol.md "Messages"): the protocol's own list, ``ping``
#: included.
COMMAND_METHODS = frozenset(REQUEST_ORDER)
PUBLICATION_SOURCES = frozenset({"client", "api"})
PROXY_KINDS = frozenset(
    {
        "connect",
        "refresh",
        "subscribe",
        "sub_refresh",
        "publish",
        "rpc",
        "map_publish",
        "map_remove",
    }
)
PROXY_OUTCOMES = frozenset({"ok", "error", "disconnect", "failure"})
#: What became of the items of shared poll backend answers (Centrifugo's ``items_count``).
POLL_ITEM_RESULTS = frozenset({"polled", "changed", "unchanged", "removed"})
#: Backend calls of shared poll channels: answered, or failed (logged, retried next cycle).
POLL_CALL_OUTCOMES = frozenset({"ok", "failure"})
#: Server-API shared poll publications as a node applied them: pushed, or an old version.
POLL_PUBLISH_RESULTS = frozenset({"applied", "skipped"})
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
    """A labelled counter kept as plain integers, exposed as one counter family on collect.

    prometheus_client's ``Counter`` takes a lock on every increment (and ``labels()`` builds
    and validates a key besides): about 1.5 µs a count, and a storm client is counted a dozen
    times. A node's counts all happen on its event loop thread, so a dict of integers keyed by
    the (small, bounded: `_bounded`) label tuple is enough; `family` builds the exposition
    with each series' creation time, the ``_created`` sample ``Counter`` would give.
    """

    __slots__ = ("_counts", "_created", "documentation", "labelnames", "name")

    def __init__(self, name: str, documentation: str, labelnames: tuple[str, ...]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self._counts: dict[tuple[str, ...], int] = {}
        self._created: dict[tuple[str, ...], float] = {}

    def inc(self, *labels: str) -> None:
        counts = self._counts
        if labels in counts:
            counts[labels] += 1
        else:
            self.touch(*labels)
            counts[labels] = 1

    def add(self, count: int, *labels: str) -> None:
        """Count `count` at once (items of one answer)."""
        self.touch(*labels)
        self._counts[labels] += count

    def touch(self, *labels: str) -> None:
        """Create the series for `labels` (it then reads 0 instead of missing)."""
        if labels not in self._counts:
            self._counts[labels] = 0
            self._created[labels] = time.time()

    def family(self) -> CounterMetricFamily:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, count in self._counts.items():
            family.add_metric(labels, count, created=self._created[labels])
        return family


class _Level:
    """A gauge kept as a plain integer (same reasoning as `_Series`)."""

    __slots__ = ("documentation", "name", "value")

    def __init__(self, name: str, documentation: str) -> None:
        self.name, self.documentation, self.value = name, documentation, 0

    def family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.documentation, value=self.value)


class _Collector(Collector):
    """Hands the registry the families of one `Metrics`, read at the moment of a scrape."""

    def __init__(self, metrics: Iterable[_Series | _Level]) -> None:
        self._metrics = tuple(metrics)

    def collect(self) -> Iterator[Metric]:
        for metric in self._metrics:
            yield metric.family()


class Metrics:
    """The counters and gauges of one node; call the methods, then `render` for /metrics.

    Not thread-safe: every method is called from the node's event loop thread (the counts
    are plain integers, see `_Series`).
    """

    def __init__(self) -> None:
        self._connections = _Level("rotary_connections", "Open client connections.")
        self._subscriptions = _Level(
            "rotary_subscriptions", "Client subscriptions (one per client and channel)."
        )
        self._publications = _Series(
            "rotary_publications", "Publications accepted, by source.", ("source",)
        )
        self._commands = _Series(
            "rotary_client_commands", "Client protocol commands received.", ("method",)
        )
        self._verifications = _Series(
            "rotary_token_verifications",
            "Token checks and their outcome.",
            ("kind", "outcome", "reason"),
        )
        self._cache = _Series("rotary_token_cache", "Verified-token cache look-ups.", ("result",))
        self._revocation = _Series(
            "rotary_revocation_checks", "Revocation checks of verified tokens.", ("result",)
        )
        self._engine_errors = _Series(
            "rotary_engine_errors", "Engine operations that failed.", ("op",)
        )
        self._disconnects = _Series(
            "rotary_disconnects", "Connections closed by the server, by code.", ("code",)
        )
        self._proxy_calls = _Series(
            "rotary_proxy_calls",
            "Calls to the app's proxy endpoints, by outcome.",
            ("kind", "outcome"),
        )
        self._poll_channels = _Level(
            "rotary_shared_poll_channels", "Shared poll channels with state on this node."
        )
        self._poll_keys = _Level("rotary_shared_poll_keys", "Keys this node polls.")
        self._poll_calls = _Series(
            "rotary_shared_poll_calls", "Shared poll backend calls, by outcome.", ("outcome",)
        )
        self._poll_items = _Series(
            "rotary_shared_poll_items",
            "Items asked of the shared poll backend (polled) and what its answers held.",
            ("result",),
        )
        self._poll_publications = _Series(
            "rotary_shared_poll_publications",
            "Server-API shared poll publications received by this node, by result.",
            ("result",),
        )
        self._filtered = _Series(
            "rotary_tags_filter_dropped_publications",
            "Live publications not delivered to a subscriber because its tags filter dropped "
            "them, one per subscriber.",
            (),
        )
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(
            _Collector(
                (
                    self._connections,
                    self._subscriptions,
                    self._publications,
                    self._commands,
                    self._verifications,
                    self._cache,
                    self._revocation,
                    self._engine_errors,
                    self._disconnects,
                    self._proxy_calls,
                    self._poll_channels,
                    self._poll_keys,
                    self._poll_calls,
                    self._poll_items,
                    self._poll_publications,
                    self._filtered,
                )
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
        for outcome in POLL_CALL_OUTCOMES:
            self._poll_calls.touch(outcome)
        for result in POLL_ITEM_RESULTS:
            self._poll_items.touch(result)
        for result in POLL_PUBLISH_RESULTS:
            self._poll_publications.touch(result)
        self._filtered.touch()

    def connection_opened(self) -> None:
        self._connections.value += 1

    def connection_closed(self) -> None:
        self._connections.value -= 1

    def set_connections(self, count: int) -> None:
        self._connections.value = count

    def subscription_added(self) -> None:
        self._subscriptions.value += 1

    def subscription_removed(self) -> None:
        self._subscriptions.value -= 1

    def set_subscriptions(self, count: int) -> None:
        self._subscriptions.value = count

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

    def proxy_call(self, kind: str, outcome: str) -> None:
        """One proxy call: ``ok``, the backend's ``error`` or ``disconnect``, or ``failure``
        (unreachable, too slow, or an answer that makes no sense)."""
        self._proxy_calls.inc(_bounded(kind, PROXY_KINDS), _bounded(outcome, PROXY_OUTCOMES))

    def set_shared_poll(self, channels: int, keys: int) -> None:
        """The shared poll channels with state on the node and the keys it polls."""
        self._poll_channels.value, self._poll_keys.value = channels, keys

    def shared_poll_call(self, outcome: str, items: int) -> None:
        """One shared poll backend call asking for `items` keys: ``ok`` or ``failure``."""
        self._poll_calls.inc(_bounded(outcome, POLL_CALL_OUTCOMES))
        self.shared_poll_items("polled", items)

    def shared_poll_items(self, result: str, count: int = 1) -> None:
        """`count` answered items that were ``changed``, ``unchanged`` or ``removed``."""
        if count > 0:
            self._poll_items.add(count, _bounded(result, POLL_ITEM_RESULTS))

    def shared_poll_publication(self, *, applied: bool) -> None:
        """A server-API publication pushed to this node's clients, or skipped as old."""
        self._poll_publications.inc("applied" if applied else "skipped")

    def tags_filter_dropped(self, count: int) -> None:
        """`count` subscribers' tags filters dropped one live publication."""
        self._filtered.add(count)

    def disconnected(self, code: int) -> None:
        """The server closed a connection with `code`."""
        self._disconnects.inc(_disconnect_label(code))

    def render(self) -> tuple[bytes, str]:
        """The text exposition of every metric and its content type, for ``GET /metrics``."""
        return generate_latest(self.registry), CONTENT_TYPE
