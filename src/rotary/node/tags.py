"""Tags filters on subscriptions (docs/channels.md "Tags filters"): admitting a subscriber's
filter, and applying it to what a subscribe hands over at once (recovered publications, map
state and stream pages). Live publications are filtered by the hubs.

A filtered subscriber is not told which publications it missed: positioned subscriptions
still move past them, so a dropped publication is never mistaken for a gap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

from rotary.channels.options import ChannelOptions
from rotary.engines.base import HistoryFilter, Publication, StreamPosition
from rotary.protocol.codes import CommandError, ErrorCode
from rotary.protocol.filters import TagsFilter, matches, problem
from rotary.protocol.messages import SubscribeRequest

if TYPE_CHECKING:
    from rotary.node.contracts import Session
    from rotary.node.subscription import Subscription

__all__ = ["admit_filter", "apply_filter", "passing", "recover_cache"]


class _Tagged(Protocol):
    @property
    def tags(self) -> Mapping[str, str] | None: ...


_P = TypeVar("_P", bound=_Tagged)


def admit_filter(req: SubscribeRequest, options: ChannelOptions) -> TagsFilter | None:
    """The filter `req` asks for, or None; error 107 when the channel's namespace does not
    allow tags filters or the filter is malformed (as Centrifugo answers both)."""
    tf = req.tf
    if tf is None:
        return None
    if not options.allow_tags_filter or problem(tf) is not None:
        raise CommandError(ErrorCode.BAD_REQUEST)
    return tf


def apply_filter(sub: Subscription, req: SubscribeRequest, options: ChannelOptions) -> None:
    """Give `sub` the filter `req` asks for (`admit_filter`).

    A filtered subscription never gets delta compression: a delta is made against the
    channel's previous publication, which the filter may have kept from this subscriber.
    """
    sub.tags_filter = admit_filter(req, options)
    if sub.tags_filter is not None:
        sub.delta = False


def passing(pubs: Sequence[_P], tf: TagsFilter | None) -> list[_P]:
    """The publications of `pubs` that `tf` lets through (all of them without a filter)."""
    if tf is None:
        return list(pubs)
    return [p for p in pubs if matches(tf, p.tags)]


async def recover_cache(
    s: Session,
    channel: str,
    req: SubscribeRequest,
    top: StreamPosition,
    meta_ttl: float,
    *,
    tf: TagsFilter,
) -> list[Publication] | None:
    """Cache recovery with a filter: the newest publication the filter passes, as Centrifugo
    looks for it (among the newest `recovery_max_publication_limit` of history).

    Returns None (not recovered) when history lost the newest publication or none passes and
    the client is behind; [] when the client is at the top; otherwise the publications from
    the one found up to the newest, oldest first: only the first of them passes the filter,
    and the last one is where the subscription's position stands.
    """
    limit = s.node.settings.recovery_max_publication_limit
    flt = HistoryFilter(limit=limit if limit > 0 else -1, reverse=True)
    hist = await s.node.broker.history(channel, flt, meta_ttl=meta_ttl)
    current, newest_first = hist.position, hist.publications
    up_to_date = req.offset > 0 and req.offset == current.offset and req.epoch == current.epoch
    for index, pub in enumerate(newest_first):
        if matches(tf, pub.tags):
            if newest_first[0].offset != current.offset:
                return None
            return [] if up_to_date else list(reversed(newest_first[: index + 1]))
    return [] if up_to_date else None
