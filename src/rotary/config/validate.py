"""Checks that span keys (docs/tokens.md "Connection token claims", docs/tokens.md "Algorithms and
keys", docs/channels.md, docs/config.md): each problem names its dotted key."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from rotary.auth.settings import TokenSettings
from rotary.channels.maps import map_problems, presence_prefix_problems
from rotary.channels.options import ChannelOptions, ChannelSettings
from rotary.channels.resolver import NAMESPACE_NAME_PATTERN
from rotary.channels.shared_poll import poll_problems
from rotary.config.durations import format_duration
from rotary.config.keys import KEYS
from rotary.config.model import ENDPOINTS, Config
from rotary.proxy.settings import PROXY_KINDS

__all__ = ["ENGINE_TYPES", "LOG_LEVELS", "Labels", "validate"]

ENGINE_TYPES = ("memory", "redis")
LOG_LEVELS = ("none", "trace", "debug", "info", "warn", "error")
_USER_ID_CLAIM = re.compile(r"^[a-zA-Z_]+$")
_RECOVERY_MODES = ("", "stream", "cache")
_DELTA_TYPES = ("fossil",)
_DEFAULT_LABELS = {key.dest: key.v5 for key in reversed(KEYS)}

_At = Callable[[str], str]


class Labels:
    """The key name each setting was given under, so problems use the user's spelling.

    Settings that were not given fall back to their v5 flat name; a namespace falls back to
    ``namespaces.<name>``.
    """

    def __init__(self, given: Mapping[str, str]) -> None:
        self._given = dict(given)

    def __call__(self, dest: str) -> str:
        if dest in self._given:
            return self._given[dest]
        if dest.startswith("ns:"):
            return f"namespaces.{dest[3:]}"
        return _DEFAULT_LABELS.get(dest, dest)


def validate(config: Config, label: Labels) -> list[str]:
    """Every cross-key problem of `config`."""
    problems = _token_problems("connection", config.auth.connection, label)
    if config.auth.subscription is not None:
        problems += _token_problems("subscription", config.auth.subscription, label)
    problems += _client_problems(config, label)
    problems += _channel_problems(config.channels, label)
    problems += _misc_problems(config, label)
    problems += _websocket_problems(config, label)
    problems += _proxy_problems(config, label)
    problems += _shared_poll_problems(config, label)
    problems += _admin_problems(config, label)
    return problems


def _shared_poll_problems(config: Config, label: Labels) -> list[str]:
    """Shared poll namespaces need the secret and a proxy: one of the ``proxies`` list, or
    channel.proxy.shared_poll_refresh when they name none."""
    channels = config.channels
    names = frozenset(name for name, _ in config.proxy.named)
    secret = bool(config.shared_poll.hmac_secret_key)
    default = bool(config.proxy.shared_poll_refresh.endpoint)
    groups: list[tuple[_At, ChannelOptions]] = [
        (_under(label("channels.without_namespace")), channels.without_namespace)
    ]
    groups += [(_under(label(f"ns:{ns.name}")), ns.options) for ns in channels.namespaces]
    problems = [
        f"{at(name)}: {text}"
        for at, options in groups
        for name, text in poll_problems(
            options, proxy_names=names, has_secret=secret, has_default_proxy=default
        )
    ]
    for name, proxy in config.proxy.named:
        if not proxy.endpoint.startswith(("http://", "https://")):
            problems.append(f"{label('proxy.named')}.{name}.endpoint: must be an http(s) URL")
    default_proxy = config.proxy.shared_poll_refresh
    if default and not default_proxy.endpoint.startswith(("http://", "https://")):
        at = label("proxy.shared_poll_refresh.endpoint")
        problems.append(f"{at}: must be an http:// or https:// URL")
    if default_proxy.timeout <= 0:
        problems.append(f"{label('proxy.shared_poll_refresh.timeout')}: must be positive")
    return problems


def _token_problems(which: str, token: TokenSettings, label: Labels) -> list[str]:
    def at(name: str) -> str:
        return label(f"auth.{which}.{name}")

    problems: list[str] = []
    for exact in ("audience", "issuer"):
        regex = f"{exact}_regex"
        if getattr(token, exact) and getattr(token, regex):
            problems.append(f"{at(regex)}: cannot be set together with {at(exact)}; use one")
        problems += _regex_problem(at(regex), getattr(token, regex))
    if token.user_id_claim and not _USER_ID_CLAIM.match(token.user_id_claim):
        problems.append(f"{at('user_id_claim')}: must match ^[a-zA-Z_]+$")
    endpoint = token.jwks_public_endpoint
    if endpoint and not endpoint.startswith(("http://", "https://")):
        problems.append(f"{at('jwks_public_endpoint')}: must be an http:// or https:// URL")
    return problems


def _regex_problem(where: str, pattern: str) -> list[str]:
    try:
        re.compile(pattern)
    except re.error as exc:
        return [f"{where}: invalid regular expression: {exc}"]
    return []


def _client_problems(config: Config, label: Labels) -> list[str]:
    client = config.client
    problems: list[str] = []
    if client.ping_interval <= client.pong_timeout:
        problems.append(
            f"{label('client.pong_timeout')}: ({format_duration(client.pong_timeout)}) must be "
            f"shorter than {label('client.ping_interval')} "
            f"({format_duration(client.ping_interval)})"
        )
    namespace = client.personal_channel_namespace
    known = {ns.name for ns in config.channels.namespaces}
    if client.subscribe_to_personal and namespace and namespace not in known:
        problems.append(
            f"{label('client.personal_channel_namespace')}: namespace {namespace!r} "
            "is not configured"
        )
    return problems


def _channel_problems(channels: ChannelSettings, label: Labels) -> list[str]:
    problems: list[str] = []
    for name in ("private_prefix", "namespace_boundary", "user_boundary", "user_separator"):
        if not getattr(channels, name):
            problems.append(f"{label(f'channels.{name}')}: must not be empty")
    if channels.max_length <= 0:
        problems.append(f"{label('channels.max_length')}: must be positive")
    problems += _options_problems(
        lambda opt: label(f"channels.without_namespace.{opt}"),
        channels.without_namespace,
        channels.history_meta_ttl,
    )
    seen: set[str] = set()
    for ns in channels.namespaces:
        where = label(f"ns:{ns.name}")
        if not NAMESPACE_NAME_PATTERN.match(ns.name):
            problems.append(
                f"{where}.name: invalid namespace name (must match ^[-a-zA-Z0-9_.]{{2,}}$)"
            )
        if ns.name in seen:
            problems.append(f"{where}.name: duplicate namespace name {ns.name!r}")
        seen.add(ns.name)
        problems += _options_problems(_under(where), ns.options, channels.history_meta_ttl)
    return problems + _presence_map_problems(channels, label)


def _presence_map_problems(channels: ChannelSettings, label: Labels) -> list[str]:
    """Presence prefixes must name a namespace of type map_clients / map_users."""
    types = {ns.name: ns.options.subscription_type for ns in channels.namespaces}
    types[""] = channels.without_namespace.subscription_type

    def top(option: str) -> str:
        return label(f"channels.without_namespace.{option}")

    groups: list[tuple[_At, ChannelOptions]] = [(top, channels.without_namespace)]
    groups += [(_under(label(f"ns:{ns.name}")), ns.options) for ns in channels.namespaces]
    boundary = channels.namespace_boundary
    return [
        f"{at(name)}: {text}"
        for at, options in groups
        for name, text in presence_prefix_problems(options, types, boundary)
    ]


def _under(where: str) -> _At:
    return lambda option: f"{where}.{option}"


def _options_problems(at: _At, options: ChannelOptions, global_meta_ttl: float) -> list[str]:
    problems = _regex_problem(at("channel_regex"), options.channel_regex)
    if options.force_recovery and not options.history_enabled:
        problems.append(f"{at('force_recovery')}: needs history_size and history_ttl set")
    meta_ttl = options.history_meta_ttl or global_meta_ttl
    if options.history_ttl > meta_ttl:
        problems.append(
            f"{at('history_ttl')}: ({format_duration(options.history_ttl)}) must not be longer "
            f"than the history meta TTL ({format_duration(meta_ttl)})"
        )
    if options.force_recovery_mode not in _RECOVERY_MODES:
        problems.append(f'{at("force_recovery_mode")}: must be "stream" or "cache"')
    bad = [t for t in options.allowed_delta_types if t not in _DELTA_TYPES]
    if bad:
        problems.append(f"{at('allowed_delta_types')}: unknown delta types {bad} (only fossil)")
    if options.history_size < 0:
        problems.append(f"{at('history_size')}: must not be negative")
    problems += [f"{at(name)}: {text}" for name, text in map_problems(options)]
    return problems


def _websocket_problems(config: Config, label: Labels) -> list[str]:
    problems: list[str] = []
    if config.websocket.send_buffer_size < 0:
        problems.append(f"{label('websocket.send_buffer_size')}: must not be negative")
    ws, uni = config.websocket, config.uni
    for prefix, level, sizes in (
        ("websocket.", ws.compression_level,
         {"compression_min_size": ws.compression_min_size,
          "decompressed_message_size_limit": ws.decompressed_message_size_limit}),
        ("uni.websocket_", uni.websocket_compression_level,
         {"compression_min_size": uni.websocket_compression_min_size,
          "decompressed_message_size_limit": uni.websocket_decompressed_message_size_limit}),
    ):  # fmt: skip
        if not -2 <= level <= 9:
            problems.append(f"{label(prefix + 'compression_level')}: must be from -2 to 9")
        problems += [
            f"{label(prefix + name)}: must not be negative" for name, v in sizes.items() if v < 0
        ]
    return problems


def _misc_problems(config: Config, label: Labels) -> list[str]:
    problems: list[str] = []
    if config.engine.type not in ENGINE_TYPES:
        problems.append(
            f"{label('engine.type')}: unknown engine {config.engine.type!r} "
            '(use "memory" or "redis")'
        )
    if config.engine.map_broker_type not in ENGINE_TYPES:
        postgres = config.engine.map_broker_type == "postgres"
        lacking = " (Rotary has no PostgreSQL map broker)" if postgres else ""
        problems.append(f'{label("engine.map_broker_type")}: must be "memory" or "redis"{lacking}')
    if config.engine.map_redis.cleanup_batch_size < 0:
        problems.append(f"{label('engine.map_redis.cleanup_batch_size')}: must not be negative")
    if config.log.level not in LOG_LEVELS:
        problems.append(f"{label('log.level')}: must be one of {', '.join(LOG_LEVELS)}")
    if config.api.error_mode not in ("", "transport"):
        problems.append(f'{label("api.error_mode")}: must be "" or "transport"')
    if config.server.gc_gen0_threshold <= 0:
        problems.append(f"{label('server.gc_gen0_threshold')}: must be a positive number")
    return problems + _endpoint_problems(config, label)


def _endpoint_problems(config: Config, label: Labels) -> list[str]:
    """Every transport endpoint needs a path and a positive size limit."""
    problems: list[str] = []
    for name in ENDPOINTS:
        endpoint = getattr(config, name)
        if not endpoint.handler_prefix.startswith("/"):
            problems.append(f"{label(f'{name}.handler_prefix')}: must start with /")
        if endpoint.size_limit <= 0:
            problems.append(f"{label(f'{name}.size_limit')}: must be a positive number of bytes")
    return problems


_NAMESPACE_PROXIES = ("subscribe", "publish", "sub_refresh")


def _proxy_problems(config: Config, label: Labels) -> list[str]:
    """Endpoints are HTTP URLs with a positive timeout; a namespace switch needs its endpoint."""
    problems: list[str] = []
    for kind in PROXY_KINDS:
        proxy = config.proxy.endpoint(kind)
        if proxy.endpoint and not proxy.endpoint.startswith(("http://", "https://")):
            problems.append(
                f"{label(f'proxy.{kind}.endpoint')}: must be an http:// or https:// URL"
            )
        if proxy.timeout <= 0:
            problems.append(f"{label(f'proxy.{kind}.timeout')}: must be positive")
    channels = config.channels
    scopes: list[tuple[_At, ChannelOptions]] = [
        (lambda opt: label(f"channels.without_namespace.{opt}"), channels.without_namespace)
    ]
    scopes += [(_under(label(f"ns:{ns.name}")), ns.options) for ns in channels.namespaces]
    for at, options in scopes:
        for kind in _NAMESPACE_PROXIES:
            if getattr(options, f"proxy_{kind}") and not config.proxy.endpoint(kind).active:
                problems.append(
                    f"{at(f'proxy_{kind}')}: needs {label(f'proxy.{kind}.endpoint')} set"
                )
        for kind in ("map_publish", "map_remove"):
            switch = f"{kind}_proxy_enabled"
            if getattr(options, switch) and not config.proxy.endpoint(kind).active:
                problems.append(f"{at(switch)}: needs {label(f'proxy.{kind}.endpoint')} set")
    return problems


#: Addresses that only this machine can reach (the insecure admin mode is allowed there).
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def _admin_problems(config: Config, label: Labels) -> list[str]:
    admin = config.admin
    if not admin.enabled:
        return []
    problems = [
        f"{label(dest)}: the admin UI is served at /, so this path cannot be / as well"
        for dest, path in (
            ("api.handler_prefix", config.api.handler_prefix),
            ("websocket.handler_prefix", config.websocket.handler_prefix),
        )
        if not path.rstrip("/")
    ]
    if admin.token_ttl <= 0:
        problems.append(f"{label('admin.token_ttl')}: must be positive")
    return problems + _admin_auth_problems(config, label)


def _admin_auth_problems(config: Config, label: Labels) -> list[str]:
    admin = config.admin
    if admin.insecure:
        address = config.server.address
        if address not in _LOOPBACK and not admin.insecure_allow_remote:
            where = f"address {address!r}" if address else "every address"
            return [
                f"{label('admin.insecure')}: refused on {where} (anyone reaching the port "
                f"could act as admin); bind {label('server.address')} to 127.0.0.1, or set "
                f"{label('admin.insecure_allow_remote')} behind a firewall"
            ]
        return []
    return [
        f"{label(f'admin.{name}')}: must be set when the admin UI is enabled"
        for name in ("password", "secret")
        if not getattr(admin, name)
    ]
