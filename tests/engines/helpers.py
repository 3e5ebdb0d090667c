"""Shared options and small helpers for the engine contract suite."""

from __future__ import annotations

from rotary.engines.base import Broker, HistoryFilter, Publication, PublishOptions, StreamPosition

__all__ = ["ALL", "HISTORY", "NO_HISTORY", "all_history", "publish_many"]

#: A channel with history: ten publications kept for a minute, meta kept an hour.
HISTORY = PublishOptions(history_size=10, history_ttl=60.0, history_meta_ttl=3600.0)

#: A channel without history.
NO_HISTORY = PublishOptions()

#: A filter returning every publication, oldest first.
ALL = HistoryFilter(limit=-1)


async def publish_many(
    broker: Broker, channel: str, count: int, opts: PublishOptions = HISTORY
) -> list[StreamPosition]:
    """Publish ``{"n": 1}`` … ``{"n": count}`` one after the other."""
    return [await broker.publish(channel, b'{"n":%d}' % n, opts) for n in range(1, count + 1)]


async def all_history(broker: Broker, channel: str) -> list[Publication]:
    """Every publication in `channel`'s history, oldest first."""
    return (await broker.history(channel, ALL)).publications
