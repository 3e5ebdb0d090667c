"""Contract of the map broker: keyed state, its change stream and delivery of changes.

docs/map-subscriptions.md. A map channel holds *entries* (key → latest data) and, in the
``recoverable`` and ``persistent`` modes, a bounded *stream* of changes. Every change (a write
or a removal, including a key expiring) gets the next offset of the channel's stream and is
delivered to the handler once, in offset order per channel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from rotary.channels.maps import MapSettings
from rotary.engines.base import ClientInfo, MapPublication, StreamPosition

__all__ = [
    "KEY_MODES",
    "MapBroker",
    "MapChangeHandler",
    "MapPublication",
    "MapPublishOptions",
    "MapStateResult",
    "MapStreamResult",
    "MapUpdateResult",
    "SettingsOf",
]

#: ``key_mode`` values: always write, write only a new key, write only an existing key.
KEY_MODES = ("", "if_new", "if_exists")


@dataclass(frozen=True, slots=True)
class MapPublishOptions:
    """How one key is written. `key_mode` is one of `KEY_MODES`."""

    info: ClientInfo | None = None
    tags: Mapping[str, str] | None = None
    key_mode: str = ""
    idempotency_key: str = ""
    #: When `key_mode` suppresses the write of an existing key, restart its TTL anyway
    #: (how presence maps keep a subscriber's key alive without a change).
    refresh_ttl_on_suppress: bool = False
    #: Hand the key's previous data along with the change (`MapPublication.prev`), so that
    #: subscribers with fossil delta may get a delta against it (the API's ``delta`` flag or
    #: the namespace's ``delta_publish``).
    use_delta: bool = False
    #: Per-key ordering (Centrifugo's ``version``): when > 0 and the key exists with a
    #: version at least this high, the write is suppressed with ``version`` — unless
    #: `version_epoch` is set and differs from the key's, which starts a new count. A write
    #: without a version keeps the key's stored one. Needs a map mode with a stream.
    version: int = 0
    version_epoch: str = ""


@dataclass(frozen=True, slots=True)
class MapUpdateResult:
    """The stream position after a write or removal; `suppressed` when nothing changed.

    `suppress_reason` is Centrifugo's: ``idempotency``, ``version``, ``key_exists``,
    ``key_not_found``.
    """

    position: StreamPosition
    suppressed: bool = False
    suppress_reason: str = ""


@dataclass(frozen=True, slots=True)
class MapStateResult:
    """One page of entries in key order; `cursor` "" on the last page."""

    entries: list[MapPublication]
    position: StreamPosition
    cursor: str = ""


@dataclass(frozen=True, slots=True)
class MapStreamResult:
    """Changes after the asked position, oldest first, and the stream's top."""

    publications: list[MapPublication]
    position: StreamPosition


#: Called with (channel, change, stream position after it) for every change.
MapChangeHandler = Callable[[str, MapPublication, StreamPosition], None]

#: The map options of a channel, None when it is no longer a map channel.
SettingsOf = Callable[[str], MapSettings | None]


class MapBroker(Protocol):
    """Keyed state of map channels. `settings` always come from the channel's namespace."""

    #: Seconds between two `expire` calls; negative: never call it (keys then stay until
    #: overwritten, removed or cleared).
    expire_interval: float

    def start(self, handler: MapChangeHandler, settings_of: SettingsOf) -> None:
        """Deliver every later change to `handler`, in offset order per channel (the memory
        broker synchronously, others as changes arrive); `settings_of` tells the options of a
        channel whose keys expire."""

    async def wait_ready(self) -> None:
        """Return once changes made from now on reach the handler (a broker that receives
        them from elsewhere has subscribed to them)."""

    async def publish(
        self, channel: str, key: str, data: bytes, settings: MapSettings, opts: MapPublishOptions
    ) -> MapUpdateResult:
        """Write `key`; the write refreshes the key's TTL. Checks run in Centrifugo's order:
        idempotency key, then `MapPublishOptions.version`, then the key mode.

        With `MapPublishOptions.use_delta`, the change delivered to the handler carries the
        key's data before the write in `MapPublication.prev` (when the key existed)."""

    async def remove(
        self,
        channel: str,
        key: str,
        settings: MapSettings,
        *,
        idempotency_key: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> MapUpdateResult:
        """Remove `key`; suppressed with ``key_not_found`` when it is not there. The removal
        carries `tags` (for subscribers' tags filters) when given."""

    async def read_state(
        self,
        channel: str,
        settings: MapSettings,
        *,
        cursor: str = "",
        limit: int = -1,
        key: str = "",
    ) -> MapStateResult:
        """A page of at most `limit` entries (-1: all) after `cursor`, or the one entry `key`."""

    async def read_stream(
        self, channel: str, settings: MapSettings, *, since: StreamPosition | None, limit: int = -1
    ) -> MapStreamResult:
        """Changes after `since` (None: from the oldest kept), at most `limit` (-1: all).

        Raises `UnrecoverablePosition` when `since` names another epoch or changes after it
        have already left the stream.
        """

    async def stats(self, channel: str, settings: MapSettings) -> int:
        """The number of keys."""

    async def clear(self, channel: str) -> None:
        """Forget the channel's entries and stream; the next write starts a new epoch."""

    async def expire(self) -> None:
        """Remove the keys whose TTL has passed, each as a change (called about every second)."""

    async def close(self) -> None:
        """Stop delivering. Idempotent."""
