"""Map channels: the effective options of a namespace whose ``subscription_type`` is ``map``.

docs/map-subscriptions.md. Centrifugo fills stream defaults in for the modes that keep a
stream; `map_settings` does the same so that the engine and the subscribe path read one value.
"""

from __future__ import annotations

from dataclasses import dataclass

from rotary.channels.options import ChannelOptions

__all__ = [
    "MAP_MODES",
    "MAP_TYPES",
    "SUBSCRIPTION_TYPES",
    "MapSettings",
    "map_problems",
    "map_settings",
    "presence_prefix_problems",
    "subscription_type_allowed",
]

#: The modes of a map channel: no stream, a stream with expiring keys, a stream with keys
#: that never expire.
MAP_MODES = ("ephemeral", "recoverable", "persistent")

#: Values of ``subscription_type`` Rotary accepts ("" is ``stream``).
SUBSCRIPTION_TYPES = ("", "stream", "map", "map_clients", "map_users", "shared_poll")

#: The map types: plain maps and the two presence maps.
MAP_TYPES = ("map", "map_clients", "map_users")

#: Types Centrifugo knows that Rotary refuses at start-up rather than serve half-way.
_UNSUPPORTED_TYPES: tuple[str, ...] = ()

_DEFAULT_STREAM_SIZE = 100
_DEFAULT_STREAM_TTL = 60.0
_DEFAULT_PAGE_SIZE = 100
_DEFAULT_MIN_PAGE_SIZE = 100
_DEFAULT_MAX_PAGE_SIZE = 1000
_DEFAULT_CATCH_UP_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class MapSettings:
    """Effective options of one map channel; durations in seconds, 0 meaning "never".

    `stream_size` is 0 exactly in ``ephemeral`` mode (no stream, no offsets).
    """

    mode: str
    key_ttl: float = 0.0
    stream_size: int = 0
    stream_ttl: float = 0.0
    meta_ttl: float = 0.0
    default_page_size: int = _DEFAULT_PAGE_SIZE
    min_page_size: int = _DEFAULT_MIN_PAGE_SIZE
    max_page_size: int = _DEFAULT_MAX_PAGE_SIZE
    live_limit: int = _DEFAULT_MAX_PAGE_SIZE
    catch_up_timeout: float = _DEFAULT_CATCH_UP_TIMEOUT

    @property
    def has_stream(self) -> bool:
        return self.stream_size > 0

    def page_size(self, asked: int) -> int:
        """The page size for a client that asked for `asked` (0: the default), clamped."""
        size = asked if asked > 0 else self.default_page_size
        return max(self.min_page_size, min(size, self.max_page_size))


#: The ``type`` of a subscribe request → the ``subscription_type`` it needs.
_TYPE_NAMES = {0: "stream", 1: "map", 2: "map_clients", 3: "map_users", 4: "shared_poll"}


def subscription_type_allowed(request_type: int, configured: str) -> bool:
    """Whether a subscribe of `request_type` fits channels of ``subscription_type`` `configured`."""
    return _TYPE_NAMES.get(request_type) == (configured or "stream")


def map_settings(options: ChannelOptions) -> MapSettings | None:
    """The effective map options, or None when these channels are not map channels."""
    if options.subscription_type not in MAP_TYPES:
        return None
    o, has_stream = options, options.map_mode != "ephemeral"
    stream_size = (o.map_stream_size or _DEFAULT_STREAM_SIZE) if has_stream else 0
    stream_ttl = (o.map_stream_ttl or _DEFAULT_STREAM_TTL) if has_stream else 0.0
    meta_ttl = o.map_meta_ttl
    if has_stream and not meta_ttl and o.map_mode != "persistent":
        meta_ttl = max(stream_ttl * 10, o.map_key_ttl)
    max_page = o.map_max_page_size or _DEFAULT_MAX_PAGE_SIZE
    return MapSettings(
        mode=o.map_mode,
        key_ttl=o.map_key_ttl,
        stream_size=stream_size,
        stream_ttl=stream_ttl,
        meta_ttl=meta_ttl,
        default_page_size=o.map_default_page_size or _DEFAULT_PAGE_SIZE,
        min_page_size=o.map_min_page_size or _DEFAULT_MIN_PAGE_SIZE,
        max_page_size=max_page,
        live_limit=o.map_live_transition_max_publication_limit or max_page,
        catch_up_timeout=o.map_subscribe_catch_up_timeout or _DEFAULT_CATCH_UP_TIMEOUT,
    )


def map_problems(options: ChannelOptions) -> list[tuple[str, str]]:
    """(option, problem) pairs for the map options, Centrifugo's rules at load time."""
    o = options
    if o.subscription_type in _UNSUPPORTED_TYPES:
        return [("subscription_type", f"{o.subscription_type!r} is not supported by Rotary yet")]
    if o.subscription_type not in SUBSCRIPTION_TYPES:
        return [
            (
                "subscription_type",
                'must be "stream", "map", "map_clients", "map_users" or "shared_poll"',
            )
        ]
    if o.map_mode and o.map_mode not in MAP_MODES:
        return [("map_mode", 'must be "ephemeral", "recoverable" or "persistent"')]
    if o.subscription_type in MAP_TYPES and not o.map_mode:
        return [("map_mode", "must be set when subscription_type is a map type")]
    if o.map_mode == "persistent" and o.subscription_type in ("map_clients", "map_users"):
        return [("map_mode", "presence maps need expiring keys: ephemeral or recoverable")]
    if o.map_remove_client_on_unsubscribe and o.subscription_type not in MAP_TYPES:
        return [("map_remove_client_on_unsubscribe", "needs a map subscription_type")]
    if o.map_client_key not in ("", "client_id", "user_id"):
        return [("map_client_key", 'must be "client_id" or "user_id"')]
    return _ttl_problems(o) + _stream_problems(o) + _page_problems(o)


def _ttl_problems(o: ChannelOptions) -> list[tuple[str, str]]:
    if o.map_mode in ("ephemeral", "recoverable") and o.map_key_ttl <= 0:
        return [("map_key_ttl", f"must be positive for map mode {o.map_mode}")]
    if o.map_mode == "persistent" and o.map_key_ttl:
        return [("map_key_ttl", "must not be set for map mode persistent (keys never expire)")]
    return []


def _page_problems(o: ChannelOptions) -> list[tuple[str, str]]:
    low, high = o.map_min_page_size, o.map_max_page_size
    default = o.map_default_page_size
    problems = [
        (name, "must not be negative")
        for name in ("map_min_page_size", "map_max_page_size", "map_default_page_size")
        if getattr(o, name) < 0
    ]
    if low > 0 and high > 0 and low > high:
        problems.append(("map_min_page_size", "must not exceed map max_page_size"))
    if default > 0 and high > 0 and default > high:
        problems.append(("map_default_page_size", "must not exceed map max_page_size"))
    if default > 0 and low > 0 and default < low:
        problems.append(("map_default_page_size", "must not be below map min_page_size"))
    return problems


def presence_prefix_problems(
    options: ChannelOptions, types_by_namespace: dict[str, str], boundary: str
) -> list[tuple[str, str]]:
    """(option, problem) for presence prefixes naming no namespace of the matching type.

    `types_by_namespace` maps each namespace name ("" for channels without one) to its
    ``subscription_type``.
    """
    problems: list[tuple[str, str]] = []
    for kind in ("clients", "users"):
        option = f"map_{kind}_presence_channel_prefix"
        prefix: str = getattr(options, option)
        if not prefix:
            continue
        namespace = prefix.split(boundary, 1)[0] if boundary in prefix else ""
        found = types_by_namespace.get(namespace)
        if found != f"map_{kind}":
            what = "does not exist" if found is None else f"has subscription_type {found!r}"
            problems.append((option, f"namespace {namespace!r} {what}, not map_{kind}"))
    return problems


def _stream_problems(o: ChannelOptions) -> list[tuple[str, str]]:
    if o.map_mode == "ephemeral":
        return [
            (name, "must be 0 for map mode ephemeral (it keeps no stream)")
            for name in ("map_stream_size", "map_stream_ttl", "map_meta_ttl")
            if getattr(o, name)
        ]
    problems = [
        (name, "must not be negative")
        for name in ("map_stream_size", "map_stream_ttl", "map_meta_ttl", "map_key_ttl")
        if getattr(o, name) < 0
    ]
    stream_ttl = o.map_stream_ttl or _DEFAULT_STREAM_TTL
    if o.map_meta_ttl and o.map_meta_ttl < stream_ttl:
        problems.append(("map_meta_ttl", "must not be shorter than map stream_ttl"))
    return problems
