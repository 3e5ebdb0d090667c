"""Centrifugo's permission rules for client commands without tokens (docs/protocol.md "Commands",
docs/tokens.md "Which channels need a token", docs/channels.md "Channel options").

Pure functions of a resolved channel, the connection's user, whether the connection is
subscribed to the channel, and the ``client_insecure`` switch.
"""

from __future__ import annotations

from rotary.channels.resolver import ResolvedChannel

__all__ = [
    "history_allowed",
    "presence_allowed",
    "publish_allowed",
    "subscribe_allowed",
]


def _for(client: bool, subscriber: bool, anonymous: bool, *, user: str, subscribed: bool) -> bool:
    if user == "" and not anonymous:
        return False
    return client or (subscriber and subscribed)


def subscribe_allowed(ch: ResolvedChannel, *, user: str, insecure: bool) -> bool:
    """Subscribe without a token (branches b, e, f of docs/protocol.md "Commands" step 9).

    A private channel never passes here: it needs a token (checked before).
    """
    if ch.private:
        return False
    if ch.user_limited:
        return ch.user_allowed(user) or insecure
    opts = ch.options
    if opts.allow_subscribe_for_client and (user != "" or opts.allow_subscribe_for_anonymous):
        return True
    return insecure


def publish_allowed(ch: ResolvedChannel, *, user: str, subscribed: bool, insecure: bool) -> bool:
    """``allow_publish_for_client`` / ``_for_subscriber`` (+ ``_for_anonymous``), or insecure."""
    o = ch.options
    allowed = _for(
        o.allow_publish_for_client,
        o.allow_publish_for_subscriber,
        o.allow_publish_for_anonymous,
        user=user,
        subscribed=subscribed,
    )
    return allowed or insecure


def presence_allowed(ch: ResolvedChannel, *, user: str, subscribed: bool, insecure: bool) -> bool:
    """``allow_presence_for_client`` / ``_for_subscriber`` (+ ``_for_anonymous``), or insecure."""
    o = ch.options
    allowed = _for(
        o.allow_presence_for_client,
        o.allow_presence_for_subscriber,
        o.allow_presence_for_anonymous,
        user=user,
        subscribed=subscribed,
    )
    return allowed or insecure


def history_allowed(ch: ResolvedChannel, *, user: str, subscribed: bool, insecure: bool) -> bool:
    """``allow_history_for_client`` / ``_for_subscriber`` (+ ``_for_anonymous``), or insecure."""
    o = ch.options
    allowed = _for(
        o.allow_history_for_client,
        o.allow_history_for_subscriber,
        o.allow_history_for_anonymous,
        user=user,
        subscribed=subscribed,
    )
    return allowed or insecure
