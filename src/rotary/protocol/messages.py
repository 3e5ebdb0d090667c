"""Typed client commands of protocol v2 (docs/protocol.md "Messages"), as the codec hands them to
the node.

Raw JSON payloads (``data``) are carried as compact one-line JSON bytes, or None when the
client sent none. Unknown JSON fields are dropped by the codec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from rotary.protocol.filters import TagsFilter

__all__ = [
    "FLAG_REJECT_UNRECOVERED",
    "MAP_PHASE_LIVE",
    "MAP_PHASE_STATE",
    "MAP_PHASE_STREAM",
    "NO_SUBS",
    "REQUEST_ORDER",
    "SUB_REFRESH_TOKEN",
    "SUB_REFRESH_TRACK",
    "SUB_REFRESH_UNTRACK",
    "TYPE_MAP",
    "TYPE_SHARED_POLL",
    "TYPE_STREAM",
    "Command",
    "ConnectRequest",
    "HistoryRequest",
    "KeyedItem",
    "PresenceRequest",
    "PresenceStatsRequest",
    "PublishRequest",
    "RefreshRequest",
    "Request",
    "RpcRequest",
    "SendRequest",
    "SubRefreshRequest",
    "SubscribeRequest",
    "TrackBatch",
    "UnsubscribeRequest",
]

#: Request fields of a Command, in the order the first non-null one is chosen (docs/protocol.md
#: "Messages").
REQUEST_ORDER = (
    "connect",
    "subscribe",
    "unsubscribe",
    "publish",
    "presence",
    "presence_stats",
    "history",
    "rpc",
    "send",
    "refresh",
    "sub_refresh",
    "ping",
)


class SubscribeRequest(NamedTuple):
    """``subscribe`` (also the value type of ``ConnectRequest.subs``).

    This, `ConnectRequest` and `Command` are named tuples rather than frozen dataclasses like
    the other requests: every client of a reconnect storm makes them, and a frozen
    dataclass's ``__init__`` (one ``object.__setattr__`` per field) took 2.8 µs for this
    one against 0.5 µs for the tuple. They are just as immutable.
    """

    channel: str = ""
    token: str = ""
    recover: bool = False
    epoch: str = ""
    offset: int = 0
    data: bytes | None = None
    positioned: bool = False
    recoverable: bool = False
    join_leave: bool = False
    delta: str = ""
    flag: int = 0
    type: int = 0
    #: Map subscriptions (docs/map-subscriptions.md): the phase asked for (`MAP_PHASE_*`),
    #: the state page cursor and the page size.
    phase: int = 0
    cursor: str = ""
    limit: int = 0
    #: A tags filter: only publications whose tags pass it are delivered (``tf``).
    tf: TagsFilter | None = None


#: `SubscribeRequest.flag` bit asking for error 112 instead of ``recovered: false`` when a
#: recovery fails (the SDKs set it for subscriptions with ``getState``).
FLAG_REJECT_UNRECOVERED = 2

#: `SubscribeRequest.type` of a plain stream subscription; map types are 1–3, shared poll 4.
TYPE_STREAM = 0
TYPE_SHARED_POLL = 4
#: `SubscribeRequest.type` of a map subscription (2 and 3 are its presence forms).
TYPE_MAP = 1

#: Phases of a map subscribe: live (the last request), stream catch-up, state pages.
MAP_PHASE_LIVE = 0
MAP_PHASE_STREAM = 1
MAP_PHASE_STATE = 2


#: `ConnectRequest.subs` when the client asked for no recovery (shared, read-only).
NO_SUBS: Mapping[str, SubscribeRequest] = MappingProxyType({})


class ConnectRequest(NamedTuple):
    """``connect``: `subs` asks recovery of server-side subscriptions, by channel."""

    token: str = ""
    data: bytes | None = None
    subs: Mapping[str, SubscribeRequest] = NO_SUBS
    name: str = ""
    version: str = ""


@dataclass(frozen=True, slots=True)
class UnsubscribeRequest:
    channel: str = ""


@dataclass(frozen=True, slots=True)
class PublishRequest:
    channel: str = ""
    data: bytes | None = None
    #: `TYPE_MAP` writes (or, `removed`, removes) `key` of a map channel.
    type: int = 0
    key: str = ""
    removed: bool = False


@dataclass(frozen=True, slots=True)
class PresenceRequest:
    channel: str = ""


@dataclass(frozen=True, slots=True)
class PresenceStatsRequest:
    channel: str = ""


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """``history``: `since` is (offset, epoch) or None."""

    channel: str = ""
    limit: int = 0
    since: tuple[int, str] | None = None
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class RpcRequest:
    data: bytes | None = None
    method: str = ""


@dataclass(frozen=True, slots=True)
class SendRequest:
    data: bytes | None = None


@dataclass(frozen=True, slots=True)
class RefreshRequest:
    token: str = ""


#: `SubRefreshRequest.type`: a token refresh, or (shared poll channels) track / untrack keys.
SUB_REFRESH_TOKEN = 0
SUB_REFRESH_TRACK = 1
SUB_REFRESH_UNTRACK = 2


@dataclass(frozen=True, slots=True)
class KeyedItem:
    """One key a shared poll client tracks, with the version of it the client holds."""

    key: str
    version: int = 0


@dataclass(frozen=True, slots=True)
class TrackBatch:
    """Keys tracked under one signature: `items` is the whole key set it was made over."""

    signature: str = ""
    items: tuple[KeyedItem, ...] = ()


@dataclass(frozen=True, slots=True)
class SubRefreshRequest:
    """``sub_refresh``: `type` 0 refreshes the token; 1 tracks the keys of the `track`
    batches (and then drops `untrack`), 2 untracks `untrack` (shared poll channels)."""

    channel: str = ""
    token: str = ""
    type: int = SUB_REFRESH_TOKEN
    track: tuple[TrackBatch, ...] = ()
    untrack: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PingRequest:
    """The legacy ``ping`` command: decoded only so that it can be refused (docs/protocol.md
    "Pings")."""


Request = (
    ConnectRequest
    | SubscribeRequest
    | UnsubscribeRequest
    | PublishRequest
    | PresenceRequest
    | PresenceStatsRequest
    | HistoryRequest
    | RpcRequest
    | SendRequest
    | RefreshRequest
    | SubRefreshRequest
    | PingRequest
)


class Command(NamedTuple):
    """One decoded command: `method` is the JSON key of `request`, or "" with no request.

    `id` 0 with a method other than ``send`` is a pong by the protocol's rules; the codec
    does not decide that, the client session does.
    """

    id: int
    method: str = ""
    request: Request | None = None
