"""Shared poll channels: the effective options of a namespace of ``subscription_type``
``shared_poll`` (docs/shared-poll.md), with Centrifugo's defaults filled in."""

from __future__ import annotations

from dataclasses import dataclass

from rotary.channels.options import ChannelOptions

__all__ = ["DEFAULT_PROXY", "POLL_MODES", "PollSettings", "poll_problems", "poll_settings"]

#: The ``proxy_name`` of channel.proxy.shared_poll_refresh; an empty name means it too.
DEFAULT_PROXY = "default"

#: Values of ``shared_poll.mode``: "" and ``versionless`` are the same mode.
POLL_MODES = ("", "versionless", "versioned")

_DEFAULT_REFRESH_INTERVAL = 10.0
_DEFAULT_BATCH_SIZE = 1000
_DEFAULT_MAX_KEYS = 5000
_DEFAULT_SHUTDOWN_DELAY = 1.0
_DEFAULT_TRACK_EXPIRED_EXTRA_DELAY = 25.0


@dataclass(frozen=True, slots=True)
class PollSettings:
    """Effective options of one shared poll channel; durations in seconds.

    `versioned`: the backend gives each item's version; otherwise (versionless) the server
    numbers versions itself whenever an item's data changes.
    """

    proxy_name: str
    versioned: bool = False
    refresh_interval: float = _DEFAULT_REFRESH_INTERVAL
    batch_size: int = _DEFAULT_BATCH_SIZE
    max_keys_per_connection: int = _DEFAULT_MAX_KEYS
    shutdown_delay: float = _DEFAULT_SHUTDOWN_DELAY
    track_expired_extra_delay: float = _DEFAULT_TRACK_EXPIRED_EXTRA_DELAY
    #: The server API's shared_poll_publish may push versions into these channels.
    publish_enabled: bool = False
    #: Subscribers may ask for fossil deltas (``allowed_delta_types`` lists fossil).
    delta_allowed: bool = False


def poll_settings(options: ChannelOptions) -> PollSettings | None:
    """The effective shared poll options, or None when these are not shared poll channels."""
    if options.subscription_type != "shared_poll":
        return None
    o = options
    return PollSettings(
        proxy_name=o.shared_poll_proxy_name or DEFAULT_PROXY,
        versioned=o.shared_poll_mode == "versioned",
        refresh_interval=o.shared_poll_refresh_interval or _DEFAULT_REFRESH_INTERVAL,
        batch_size=o.shared_poll_refresh_batch_size or _DEFAULT_BATCH_SIZE,
        max_keys_per_connection=o.shared_poll_max_keys_per_connection or _DEFAULT_MAX_KEYS,
        shutdown_delay=o.shared_poll_channel_shutdown_delay or _DEFAULT_SHUTDOWN_DELAY,
        track_expired_extra_delay=(
            o.shared_poll_track_expired_extra_delay or _DEFAULT_TRACK_EXPIRED_EXTRA_DELAY
        ),
        publish_enabled=o.shared_poll_publish_enabled,
        delta_allowed="fossil" in o.allowed_delta_types,
    )


def poll_problems(
    options: ChannelOptions,
    *,
    proxy_names: frozenset[str],
    has_secret: bool,
    has_default_proxy: bool = False,
) -> list[tuple[str, str]]:
    """(option, problem) pairs of a shared poll namespace, Centrifugo's rules at load time.

    `proxy_names` are the names of the ``proxies`` list; `has_default_proxy` tells whether
    channel.proxy.shared_poll_refresh has an endpoint (needed when the name is empty or
    "default", which always means that proxy, as in Centrifugo).
    """
    o = options
    if o.subscription_type != "shared_poll":
        return []
    problems: list[tuple[str, str]] = []
    if not has_secret:
        problems.append(("subscription_type", "shared poll needs shared_poll.hmac_secret_key"))
    if o.shared_poll_proxy_name in ("", DEFAULT_PROXY):
        if not has_default_proxy:
            text = "empty or default needs channel.proxy.shared_poll_refresh.endpoint"
            problems.append(("shared_poll.proxy_name", text))
    elif o.shared_poll_proxy_name not in proxy_names:
        name = o.shared_poll_proxy_name
        problems.append(("shared_poll.proxy_name", f"no proxy named {name!r} in proxies"))
    if o.shared_poll_mode not in POLL_MODES:
        problems.append(("shared_poll.mode", 'must be "versionless" or "versioned"'))
    if o.shared_poll_publish_enabled and o.shared_poll_mode != "versioned":
        # A publisher gives versions; versionless channels number their own, and the two
        # would collide (Centrifugo refuses the same combination).
        problems.append(("shared_poll.publish_enabled", "needs mode versioned"))
    return problems
