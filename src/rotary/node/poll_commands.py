"""Shared poll commands: the subscribe of type 4, and track / untrack (``sub_refresh`` types 1
and 2). docs/shared-poll.md "Subscribing" and "Tracking keys".

A shared poll subscription has no stream, history, presence or recovery: the subscribe is
checked as any subscribe and answered with the channel's epoch; the client then tracks keys
with signed batches and gets each key's current data, then every new version, as
publications carrying ``key`` and ``version`` (or ``removed``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from rotary.auth.track_signature import check_track_signature
from rotary.channels.shared_poll import PollSettings, poll_settings
from rotary.errors import RotaryError
from rotary.logs import log_denial
from rotary.node import subscribe
from rotary.node.delta import DELTA_FOSSIL
from rotary.node.ending import end_subscription
from rotary.node.shared_poll import TRACKERS, KeyState, SharedPollManager, Tracker
from rotary.node.subscription import add_expiry
from rotary.protocol.codes import CommandError, ErrorCode, UnsubscribeCode
from rotary.protocol.messages import (
    SUB_REFRESH_TRACK,
    TYPE_SHARED_POLL,
    SubRefreshRequest,
    SubscribeRequest,
    TrackBatch,
)

if TYPE_CHECKING:
    from rotary.node.contracts import Session

__all__ = ["check_type", "expire_tracked", "handle_keyed_refresh", "handle_subscribe", "is_keyed"]

_log = logging.getLogger("rotary.shared_poll")


async def handle_subscribe(s: Session, cmd_id: int, req: SubscribeRequest) -> None:
    """Subscribe to a shared poll channel (`check_type` passed): the checks of any
    subscribe, then the epoch."""
    manager = s.node.shared_poll
    if manager is None:
        raise CommandError(ErrorCode.NOT_AVAILABLE)
    sub, data = await subscribe.admit_map(s, req)
    settings = _settings(s, req.channel)
    now = s.node.clock.now()
    if sub.expire_at and sub.expire_at <= now:
        raise CommandError(ErrorCode.EXPIRED)
    if req.channel in s.subs:  # subscribed while the token was checked
        raise CommandError(ErrorCode.ALREADY_SUBSCRIBED)
    result: dict[str, Any] = {}
    epoch = manager.epoch(req.channel, settings)
    if epoch:
        result["epoch"] = epoch
    delta = req.delta == DELTA_FOSSIL and settings.delta_allowed
    if delta:
        result["delta"] = True
    result["type"] = TYPE_SHARED_POLL
    add_expiry(result, sub.expire_at, now)
    if data:
        result["data"] = data
    s.reply(cmd_id, "subscribe", result)
    s.subs[req.channel] = sub
    TRACKERS.setdefault(s, {})[req.channel] = Tracker(
        channel=req.channel,
        codec=s.codec,
        push=s.push,
        unencodable=s.unencodable,
        reset=lambda: end_subscription(s, sub, UnsubscribeCode.INSUFFICIENT_STATE),
        settings=settings,
        delta=delta,
    )


def check_type(s: Session, req: SubscribeRequest) -> None:
    """Before any other check, as Centrifugo: type 4 outside shared poll channels gets 108,
    another type in a shared poll channel 107."""
    if not req.channel:
        return  # the subscribe's own checks refuse it
    if s.node.shared_poll is None:  # no shared poll namespace: spare every subscribe a lookup
        if req.type == TYPE_SHARED_POLL:
            raise CommandError(ErrorCode.NOT_AVAILABLE)
        return
    resolved = s.node.resolver.resolve(req.channel)
    shared = resolved is not None and resolved.options.subscription_type == "shared_poll"
    if req.type == TYPE_SHARED_POLL and not shared:
        raise CommandError(ErrorCode.NOT_AVAILABLE)
    if shared and req.type != TYPE_SHARED_POLL:
        raise CommandError(ErrorCode.BAD_REQUEST)


def is_keyed(s: Session, channel: str) -> bool:
    """Whether `channel` is a shared poll subscription of `s`."""
    trackers = TRACKERS.get(s)
    return trackers is not None and channel in trackers


async def handle_keyed_refresh(
    s: Session, cmd_id: int, req: SubRefreshRequest
) -> dict[str, Any] | None:
    """Track (type 1) or untrack (type 2) keys of a shared poll subscription."""
    manager = s.node.shared_poll
    tracker = TRACKERS.get(s, {}).get(req.channel)
    if manager is None or tracker is None:
        raise CommandError(ErrorCode.PERMISSION_DENIED)
    if req.type == SUB_REFRESH_TRACK:
        await _track(s, cmd_id, req, manager, tracker)
        return None
    if not req.untrack:
        raise CommandError(ErrorCode.BAD_REQUEST)
    _untrack(manager, tracker, req.untrack)
    return {}


def _settings(s: Session, channel: str) -> PollSettings:
    resolved = s.node.resolver.resolve(channel)
    settings = poll_settings(resolved.options) if resolved is not None else None
    if settings is None:
        raise CommandError(ErrorCode.NOT_AVAILABLE)
    return settings


async def _track(
    s: Session, cmd_id: int, req: SubRefreshRequest, manager: SharedPollManager, tracker: Tracker
) -> None:
    """validate → verify every batch → listen to new keys' publications (channels that take
    them) → register → reply → join → poll what is missing."""
    flat = _flatten(req.track)
    if not flat:
        raise CommandError(ErrorCode.BAD_REQUEST)
    dropped = set(req.untrack)
    added = sum(1 for k in flat if k not in tracker.keys and k not in dropped)
    freed = sum(1 for k in dropped if k in tracker.keys)
    if len(tracker.keys) - freed + added > tracker.settings.max_keys_per_connection:
        raise CommandError(ErrorCode.LIMIT_EXCEEDED)
    expiries = _verify(s, req)
    routes = manager.routes if tracker.settings.publish_enabled else None
    if routes is None:
        _register(s, cmd_id, req, manager=manager, tracker=tracker, flat=flat, expiries=expiries)
        return
    # As in Centrifugo, the track succeeds only once the node listens to every new key, so
    # that no publication made after the reply can miss this client.
    fresh = [key for key in flat if not manager.tracks(req.channel, key)]
    try:
        await routes.reserve(req.channel, fresh)
    except RotaryError as exc:
        _log.warning("listening to shared poll keys of %s failed: %s", req.channel, exc)
        raise CommandError(ErrorCode.INTERNAL) from None
    try:
        if TRACKERS.get(s, {}).get(req.channel) is not tracker:  # unsubscribed meanwhile
            raise CommandError(ErrorCode.PERMISSION_DENIED)
        _register(s, cmd_id, req, manager=manager, tracker=tracker, flat=flat, expiries=expiries)
    finally:
        routes.settle(req.channel, fresh, reserved=True)


def _register(
    s: Session,
    cmd_id: int,
    req: SubRefreshRequest,
    *,
    manager: SharedPollManager,
    tracker: Tracker,
    flat: dict[str, tuple[int, int]],
    expiries: list[int],
) -> None:
    """The track's one synchronous step: register, reply, join, poll what is missing."""
    keys = list(flat)
    held = manager.track(req.channel, tracker.settings, keys)
    cold, warm = [], []
    for key, entry_version in zip(keys, held, strict=True):
        version, batch = flat[key]
        if entry_version is None and version == 0:
            cold.append(key)
        elif entry_version is not None and (version == 0 or entry_version > version):
            warm.append(key)
        tracker.keys[key] = KeyState(version, expiries[batch])
    result: dict[str, Any] = {}
    soonest = min((e for e in expiries if e), default=0)
    add_expiry(result, soonest, s.node.clock.now())
    s.reply(cmd_id, "sub_refresh", result)
    manager.add(tracker, keys)
    manager.poll_soon(req.channel, cold)
    manager.rebroadcast(req.channel, warm)
    if req.untrack:
        _untrack(manager, tracker, req.untrack)


def _flatten(batches: tuple[TrackBatch, ...]) -> dict[str, tuple[int, int]]:
    """key → (version, batch index); a key in several batches takes the last one."""
    flat: dict[str, tuple[int, int]] = {}
    for index, batch in enumerate(batches):
        for item in batch.items:
            flat[item.key] = (item.version, index)
    return flat


def _verify(s: Session, req: SubRefreshRequest) -> list[int]:
    """The expiry of each batch's signature; 103 (invalid) or 109 (expired) for the first
    bad one, 100 when no secret is configured."""
    secrets = s.node.track_secrets
    if secrets is None:
        raise CommandError(ErrorCode.INTERNAL)
    now = s.node.clock.now()
    expiries = []
    for batch in req.track:
        keys = [item.key for item in batch.items]
        verdict, expiry = check_track_signature(
            secrets, batch.signature, channel=req.channel, user=s.user, keys=keys, now=now
        )
        if verdict != "ok":
            outcome = "permission_denied" if verdict == "invalid" else "token_expired"
            log_denial(
                _log,
                action="track",
                reason=f"signature_{verdict}",
                user=s.user,
                client=s.id,
                channel=req.channel,
                outcome=outcome,
            )
            code = ErrorCode.PERMISSION_DENIED if verdict == "invalid" else ErrorCode.TOKEN_EXPIRED
            raise CommandError(code)
        expiries.append(expiry)
    return expiries


def _untrack(manager: SharedPollManager, tracker: Tracker, keys: tuple[str, ...]) -> None:
    """Stop `keys` that `tracker` tracks; others are ignored, as Centrifugo does."""
    gone = [key for key in keys if tracker.keys.pop(key, None) is not None]
    if gone:
        manager.remove(tracker, gone)


def expire_tracked(s: Session) -> None:
    """Drop keys whose signature expired more than the channel's extra delay ago (silently:
    the SDK refreshes signatures before they expire)."""
    manager = s.node.shared_poll
    trackers = TRACKERS.get(s)
    if manager is None or not trackers:
        return
    now = s.node.clock.now()
    for tracker in trackers.values():
        late = now - tracker.settings.track_expired_extra_delay
        gone = [k for k, st in tracker.keys.items() if st.expire_at and st.expire_at < late]
        for key in gone:
            del tracker.keys[key]
        if gone:
            manager.remove(tracker, gone)
