"""Channel names → namespace, options and user limits (docs/channels.md), compiled once from
settings.

Pure: no I/O, no clock. The resolver sits on the hot path of every subscribe, so parse
results are cached in a bounded dictionary.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from rotary.channels.options import ChannelOptions, ChannelSettings, Namespace
from rotary.errors import ConfigError

__all__ = ["NAMESPACE_NAME_PATTERN", "ChannelResolver", "ResolvedChannel"]

#: Namespace names must match this (docs/channels.md "Names").
NAMESPACE_NAME_PATTERN = re.compile(r"^[-a-zA-Z0-9_.]{2,}$")

_CACHE_LIMIT = 8192
# Builds a ResolvedChannel from its field values in order without the generated __new__.
_tuple_new: Any = tuple.__new__
#: Not in the cache (None there means "unknown namespace"); a miss costs no exception.
_UNSEEN: object = object()


class ResolvedChannel(NamedTuple):
    """One channel name taken apart (docs/channels.md "Names", docs/channels.md "User-limited and
    personal channels").

    `rest` is the text after the namespace boundary, or the whole original channel when the
    channel has no namespace. `allowed_users` holds the non-empty ids after the last user
    boundary (Rotary requires non-empty ids: docs/channels.md "User-limited and personal channels"
    edge); it is empty unless
    `user_limited`. A named tuple: immutable, and one is built for every new channel name
    (a frozen dataclass cost several times as much to build).
    """

    name: str
    namespace: str
    rest: str
    private: bool
    options: ChannelOptions
    user_limited: bool
    allowed_users: tuple[str, ...]

    def user_allowed(self, user: str) -> bool:
        """True when `user` is one of the users a user-limited channel names."""
        return self.user_limited and user != "" and user in self.allowed_users


class ChannelResolver:
    """Parses channel names with one `ChannelSettings`; raises ConfigError on bad settings."""

    def __init__(self, settings: ChannelSettings) -> None:
        problems = _settings_problems(settings)
        if problems:
            raise ConfigError(problems)
        self._settings = settings
        self._namespaces: dict[str, ChannelOptions] = {
            ns.name: ns.options for ns in settings.namespaces
        }
        self._regexes: dict[str, re.Pattern[str] | None] = {
            "": _compile(settings.without_namespace)
        }
        for ns in settings.namespaces:
            self._regexes[ns.name] = _compile(ns.options)
        self._cache: dict[str, ResolvedChannel | None] = {}

    @property
    def settings(self) -> ChannelSettings:
        """The settings this resolver was built from."""
        return self._settings

    def resolve(self, channel: str) -> ResolvedChannel | None:
        """The parsed channel, or None when its namespace is unknown (→ error 102)."""
        cached = self._cache.get(channel, _UNSEEN)
        if cached is not _UNSEEN:
            return cached  # type: ignore[return-value]  # a ResolvedChannel or None
        resolved = self._parse(channel)
        if len(self._cache) >= _CACHE_LIMIT:
            # Drop the oldest entry: insertion order is kept by dict.
            del self._cache[next(iter(self._cache))]
        self._cache[channel] = resolved
        return resolved

    def namespace_known(self, channel: str) -> bool:
        """True when the channel has no namespace or a configured one."""
        return self.resolve(channel) is not None

    def name_valid(self, resolved: ResolvedChannel) -> bool:
        """docs/channels.md "Valid names": `rest` must match the namespace's channel_regex
        (search), else be ASCII."""
        pattern = self._regexes.get(resolved.namespace)
        if pattern is not None:
            return pattern.search(resolved.rest) is not None
        return resolved.name.isascii()

    def too_long(self, channel: str) -> bool:
        """True when the channel is longer than `max_length` bytes of UTF-8."""
        return len(channel.encode()) > self._settings.max_length

    def personal_channel(self, user: str, namespace: str = "") -> str:
        """The personal channel of `user`: ``#42`` or ``ns:#42`` with default separators."""
        s = self._settings
        name = f"{s.user_boundary}{user}"
        return f"{namespace}{s.namespace_boundary}{name}" if namespace else name

    def _parse(self, channel: str) -> ResolvedChannel | None:
        s = self._settings
        private = channel.startswith(s.private_prefix)
        body = channel[len(s.private_prefix) :] if private else channel
        namespace, boundary, rest = body.partition(s.namespace_boundary)
        if not boundary:
            namespace, rest = "", channel
        options = self._namespaces.get(namespace) if namespace else s.without_namespace
        if options is None:
            return None
        user_limited = options.allow_user_limited_channels and s.user_boundary in channel
        allowed: tuple[str, ...] = ()
        if user_limited:
            tail = channel.rpartition(s.user_boundary)[2]
            allowed = tuple(u for u in tail.split(s.user_separator) if u)
        values = (channel, namespace, rest, private, options, user_limited, allowed)
        # ResolvedChannel(*values), minus the generated __new__: one per new channel name
        resolved: ResolvedChannel = _tuple_new(ResolvedChannel, values)
        return resolved


def _compile(options: ChannelOptions) -> re.Pattern[str] | None:
    return re.compile(options.channel_regex) if options.channel_regex else None


def _settings_problems(settings: ChannelSettings) -> list[str]:
    """Every problem of `settings`, each naming its dotted key."""
    problems: list[str] = []
    for key in ("private_prefix", "namespace_boundary", "user_boundary", "user_separator"):
        if not getattr(settings, key):
            problems.append(f"channel.{key}: must not be empty")
    seen: set[str] = set()
    for ns in settings.namespaces:
        problems += _namespace_problems(ns, seen)
        seen.add(ns.name)
    problems += _regex_problems("channel.without_namespace", settings.without_namespace)
    return problems


def _namespace_problems(ns: Namespace, seen: set[str]) -> list[str]:
    problems: list[str] = []
    if not NAMESPACE_NAME_PATTERN.match(ns.name):
        problems.append(
            f"channel.namespaces.{ns.name}: invalid namespace name {ns.name!r} "
            "(must match ^[-a-zA-Z0-9_.]{2,}$)"
        )
    if ns.name in seen:
        problems.append(f"channel.namespaces.{ns.name}: duplicate namespace name {ns.name!r}")
    problems += _regex_problems(f"channel.namespaces.{ns.name}", ns.options)
    return problems


def _regex_problems(where: str, options: ChannelOptions) -> list[str]:
    try:
        _compile(options)
    except re.error as exc:
        return [f"{where}.channel_regex: invalid regular expression: {exc}"]
    return []
