"""A recording `NodeApi`: remembers every call and answers with canned values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rotary.auth import SubscribeOverride
from rotary.engines.base import (
    ClientInfo,
    HistoryFilter,
    HistoryResult,
    PresenceStats,
    StreamPosition,
)
from rotary.protocol.codes import Disconnect


@dataclass
class RecordingNode:
    """Each call is appended to `calls` as (method name, {argument: value}).

    `failures` maps a method name (``api_publish``…) to an exception it raises; for
    ``api_publish`` a channel name may be used as key too, to fail one channel only.
    """

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    failures: dict[str, BaseException] = field(default_factory=dict)
    position: StreamPosition = field(default_factory=lambda: StreamPosition(3, "abcd"))
    presence_entries: dict[str, ClientInfo] = field(default_factory=dict)
    stats: PresenceStats = field(default_factory=lambda: PresenceStats(2, 1))
    history_result: HistoryResult = field(
        default_factory=lambda: HistoryResult(StreamPosition(0, "epoch"))
    )
    channel_counts: dict[str, int] = field(default_factory=dict)
    nodes: list[dict[str, object]] = field(default_factory=list)

    def _record(self, name: str, key: str = "", **args: Any) -> None:
        self.calls.append((name, args))
        failure = self.failures.get(key) or self.failures.get(name)
        if failure is not None:
            raise failure

    def names(self) -> list[str]:
        """The method names called, in order."""
        return [name for name, _ in self.calls]

    def last(self, name: str) -> dict[str, Any]:
        """Arguments of the last call of `name`."""
        return next(args for n, args in reversed(self.calls) if n == name)

    async def api_publish(
        self,
        channel: str,
        data: bytes,
        *,
        tags: Mapping[str, str] | None = None,
        skip_history: bool = False,
        idempotency_key: str = "",
        delta: bool = False,
    ) -> StreamPosition:
        self._record(
            "api_publish",
            channel,
            channel=channel,
            data=data,
            tags=tags,
            skip_history=skip_history,
            idempotency_key=idempotency_key,
            delta=delta,
        )
        return self.position

    async def api_presence(self, channel: str) -> dict[str, ClientInfo]:
        self._record("api_presence", channel=channel)
        return self.presence_entries

    async def api_presence_stats(self, channel: str) -> PresenceStats:
        self._record("api_presence_stats", channel=channel)
        return self.stats

    async def api_history(self, channel: str, flt: HistoryFilter) -> HistoryResult:
        self._record("api_history", channel=channel, flt=flt)
        return self.history_result

    async def api_history_remove(self, channel: str) -> None:
        self._record("api_history_remove", channel=channel)

    async def api_subscribe(
        self,
        user: str,
        channel: str,
        *,
        client: str = "",
        session: str = "",
        expire_at: int = 0,
        info: bytes | None = None,
        data: bytes | None = None,
        recover_since: StreamPosition | None = None,
        override: SubscribeOverride | None = None,
    ) -> None:
        self._record(
            "api_subscribe",
            user=user,
            channel=channel,
            client=client,
            session=session,
            expire_at=expire_at,
            info=info,
            data=data,
            recover_since=recover_since,
            override=override,
        )

    async def api_unsubscribe(
        self, user: str, channel: str, *, client: str = "", session: str = ""
    ) -> None:
        self._record("api_unsubscribe", user=user, channel=channel, client=client, session=session)

    async def api_disconnect(
        self,
        user: str,
        *,
        client: str = "",
        session: str = "",
        whitelist: Sequence[str] = (),
        disconnect: Disconnect | None = None,
    ) -> None:
        self._record(
            "api_disconnect",
            user=user,
            client=client,
            session=session,
            whitelist=list(whitelist),
            disconnect=disconnect,
        )

    async def api_refresh(
        self,
        user: str,
        *,
        client: str = "",
        session: str = "",
        expired: bool = False,
        expire_at: int = 0,
        info: bytes | None = None,
    ) -> None:
        self._record(
            "api_refresh",
            user=user,
            client=client,
            session=session,
            expired=expired,
            expire_at=expire_at,
            info=info,
        )

    async def api_channels(self, pattern: str = "") -> dict[str, int]:
        self._record("api_channels", pattern=pattern)
        return self.channel_counts

    async def api_info(self) -> list[dict[str, object]]:
        self._record("api_info")
        return self.nodes
