"""One subscription of one client session: what was granted and where its stream stands."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rotary.engines.base import ClientInfo
from rotary.engines.revocation import TokenIdentity
from rotary.protocol.filters import TagsFilter

__all__ = ["MAX_TTL_S", "Subscription", "add_expiry", "add_publish_debounce", "capped_expiry"]


@dataclass(slots=True, eq=False)
class Subscription:
    """Mutable state of one subscription, owned by its client session.

    `server_side` subscriptions come from the connection token, the personal channel, the
    connect request or the server API; ending them badly disconnects (3006, 3010) instead
    of sending an unsubscribe push. `from_token` marks those the connection token lists
    (a refresh must list the same set). `offset`/`epoch` are the last position delivered
    when `positioned`; `position_failures` counts periodic stream-top checks failed in a
    row (see `rotary.node.position`). `expire_at` 0 means no expiry. `ended`: no more deliveries;
    `released`: hub, presence and broker interest are all let go. `delta`: Fossil delta
    compression negotiated; `delta_ready`: its chain has begun, so the next publication may
    be a delta (see `rotary.node.delta`).
    """

    channel: str
    info: ClientInfo
    #: The subscription token that granted it (client-side, with a token), for revocation.
    token_identity: TokenIdentity | None = None
    server_side: bool = False
    from_token: bool = False
    expire_at: int = 0
    #: Expiry handled by the sub_refresh proxy, not by the client's sub_refresh command.
    server_refresh: bool = False
    presence: bool = False
    emit_join_leave: bool = False
    push_join_leave: bool = False
    positioned: bool = False
    recoverable: bool = False
    epoch: str = ""
    offset: int = 0
    position_failures: int = 0
    delta: bool = False
    delta_ready: bool = False
    #: The subscriber's tags filter: publications it drops are not delivered.
    tags_filter: TagsFilter | None = None
    ended: bool = False
    released: bool = False


#: The longest a connection or a refreshed subscription may live without a refresh, as in
#: Centrifugo v6: a longer expiry is most likely a mistake in the token.
MAX_TTL_S = 365 * 24 * 3600


def capped_expiry(expire_at: int, now: float) -> int:
    """`expire_at` (unix seconds, 0 = never) brought down to at most a year from `now`.

    Applied where Centrifugo v6 applies it: connect, refresh (client and server API) and
    sub_refresh; a subscribe keeps its token's expiry as it is.
    """
    return min(expire_at, int(now) + MAX_TTL_S) if expire_at > 0 else expire_at


def add_expiry(result: dict[str, Any], expire_at: int, now: float) -> None:
    """Add ``expires`` and ``ttl`` to a reply's `result` when `expire_at` > 0.

    ``ttl`` is the whole seconds left, counted as Centrifugo does (from the current whole
    second), so an expiry in the future always leaves at least 1.
    """
    if expire_at > 0:
        left = expire_at - int(now)
        result["expires"] = True
        result["ttl"] = left if left > 0 else 0


def add_publish_debounce(result: dict[str, Any], interval: float) -> None:
    """Add ``publish_debounce`` (whole milliseconds, as Centrifugo truncates) to a subscribe
    `result` when the namespace's `interval` (seconds) asks the SDKs to debounce."""
    ms = int(interval * 1000)
    if ms > 0:
        result["publish_debounce"] = min(ms, 0xFFFFFFFF)
