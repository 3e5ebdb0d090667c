"""Contracts every engine fulfils: `Broker`, `PresenceManager` and their values.

Payloads travel as bytes holding one line of compact JSON (``data``, ``conn_info``,
``chan_info``), so the node can embed them in replies without parsing them again.

One contract test suite (tests/engines) runs unchanged against every engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from rotary.errors import RotaryError

__all__ = [
    "Broker",
    "BrokerEventHandler",
    "ClientInfo",
    "HistoryFilter",
    "HistoryResult",
    "MapPublication",
    "PresenceManager",
    "PresenceStats",
    "Publication",
    "PublishOptions",
    "StreamPosition",
    "UnrecoverablePosition",
]


@dataclass(frozen=True, slots=True)
class StreamPosition:
    """A place in a channel's history stream: `offset` within the stream incarnation `epoch`."""

    offset: int = 0
    epoch: str = ""


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Who a connection is, as shown in presence, join/leave and client publications.

    `conn_info` comes from the connection token's ``info``; `chan_info` from the subscription
    token's ``info``. Each is compact JSON bytes, or None when absent.
    """

    user: str
    client: str
    conn_info: bytes | None = None
    chan_info: bytes | None = None


@dataclass(frozen=True, slots=True)
class Publication:
    """One message in a channel. `offset` is 0 for channels without history."""

    data: bytes
    offset: int = 0
    info: ClientInfo | None = None
    tags: Mapping[str, str] | None = None
    #: Unix milliseconds when the broker accepted it (0 when unknown).
    time: int = 0
    #: Published with delta compression allowed: subscribers that negotiated it may get a
    #: delta against the channel's previous publication instead of the whole data.
    use_delta: bool = False
    #: `data` is a Fossil delta against the previous publication's data. Set only on the
    #: copies made for delta subscribers (`rotary.node.delta`); the codecs write it out.
    delta: bool = False


@dataclass(frozen=True, slots=True)
class MapPublication:
    """One entry of a map channel's state, or one change of its stream (`removed` for a
    removal). Defined here, beside `Publication`, because the codecs write both."""

    key: str
    data: bytes
    offset: int = 0
    removed: bool = False
    info: ClientInfo | None = None
    tags: Mapping[str, str] | None = None
    #: Unix milliseconds when the broker accepted it.
    time: int = 0
    #: `data` is a Fossil delta against the key's previous data. Set only on the copies made
    #: for delta subscribers; the codecs write it out.
    delta: bool = False
    #: On a change delivered to the node: the key's data before this write, when it was
    #: published with delta allowed and the key existed (the delta base); None otherwise.
    #: Never stored, never written to the wire.
    prev: bytes | None = None


@dataclass(frozen=True, slots=True)
class PublishOptions:
    """How one publication is stored. History is kept when both size and ttl are positive."""

    history_size: int = 0
    history_ttl: float = 0.0
    history_meta_ttl: float = 0.0
    info: ClientInfo | None = None
    tags: Mapping[str, str] | None = None
    idempotency_key: str = ""
    #: Keep it out of history even when the channel has history.
    skip_history: bool = False
    #: Becomes `Publication.use_delta`, on every node.
    use_delta: bool = False


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    """Which publications `Broker.history` returns.

    `limit`: 0 returns only the current position, -1 every publication, N at most N.
    `since`: only publications after that position (its epoch must be current; an empty
    epoch is not compared, as Centrifugo does for a client that never learnt one).
    `reverse`: newest first.
    """

    since: StreamPosition | None = None
    limit: int = 0
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class HistoryResult:
    """The stream's current top position and the publications the filter selected."""

    position: StreamPosition
    publications: list[Publication] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PresenceStats:
    """Counts of a channel's presence."""

    num_clients: int
    num_users: int


class BrokerEventHandler(Protocol):
    """What a broker calls when something arrives for a channel this node subscribed to.

    Calls happen on the event loop, never concurrently, and must not block: the node queues
    the work and returns.
    """

    def handle_publication(self, channel: str, pub: Publication, sp: StreamPosition) -> None:
        """A publication; `sp` is the stream position after it (offset 0 without history)."""

    def handle_join(self, channel: str, info: ClientInfo) -> None:
        """A client joined `channel` on some node."""

    def handle_leave(self, channel: str, info: ClientInfo) -> None:
        """A client left `channel` on some node."""

    def handle_control(self, data: bytes) -> None:
        """A control message from some node (including this one)."""


class Broker(Protocol):
    """Publishes to channels, keeps their history, and delivers to subscribed nodes.

    Contract:
    - `publish` stores the publication in history (when the options ask for it) and delivers
      it in one atomic step: a publication is in history if and only if it is delivered, and
      subscribers see publications of one channel in offset order.
    - Offsets start at 1 and grow by 1 per publication kept in history.
    - An epoch changes only when the stream's state was lost (expiry of the meta TTL, a Redis
      restart); history asked with `since` of another (non-empty) epoch raises
      `UnrecoverablePosition`.
    - After `subscribe(channel)` returns, every later publication to it reaches the handler.
    - An `idempotency_key` seen within the last few minutes for a channel publishes nothing and
      returns the first result.
    """

    async def start(self, handler: BrokerEventHandler) -> None:
        """Begin delivering events to `handler`."""

    async def close(self) -> None:
        """Stop delivering and release connections. Idempotent."""

    async def subscribe(self, channel: str) -> None:
        """Deliver `channel`'s publications and join/leave to this node."""

    async def unsubscribe(self, channel: str) -> None:
        """Stop delivering `channel` to this node."""

    async def publish(self, channel: str, data: bytes, opts: PublishOptions) -> StreamPosition:
        """Publish `data`; return the position after it (offset 0 without history)."""

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        """Tell every node subscribed to `channel` that `info` joined."""

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        """Tell every node subscribed to `channel` that `info` left."""

    async def publish_control(self, data: bytes) -> None:
        """Send `data` to every node, this one included."""

    async def history(
        self, channel: str, flt: HistoryFilter, *, meta_ttl: float = 0.0
    ) -> HistoryResult:
        """The current position and the publications selected by `flt`.

        Creates the stream's epoch if the channel has none yet, so that a position is
        always returned.
        """

    async def remove_history(self, channel: str) -> None:
        """Forget the publications of `channel`; the position and epoch stay."""


class PresenceManager(Protocol):
    """Who is subscribed to a channel, across every node.

    Contract: an entry added with `add_presence` stays visible until removed, or until `ttl`
    seconds pass without it being added again (nodes refresh their entries periodically, so
    entries of a dead node disappear by themselves).
    """

    async def add_presence(
        self, channel: str, client_id: str, info: ClientInfo, *, ttl: float
    ) -> None:
        """Add or refresh one client's entry."""

    async def remove_presence(self, channel: str, client_id: str, user: str) -> None:
        """Remove one client's entry; removing a missing entry is not an error."""

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        """Every live entry, by client id."""

    async def presence_stats(self, channel: str) -> PresenceStats:
        """Numbers of live clients and of distinct users."""

    async def close(self) -> None:
        """Release resources. Idempotent."""


class UnrecoverablePosition(RotaryError):
    """History was asked `since` a position whose epoch is no longer the stream's."""
