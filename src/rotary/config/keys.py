"""The table of configuration keys: Centrifugo v5 flat name, v6 nested path, kind, destination.

Every key Rotary reads appears here once (spec §11 plus Rotary's own keys). The loader maps
both layouts and the environment onto the destination (a dotted path into `Config`), so the
rest of Rotary never sees which spelling was used.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from rotary.auth.settings import TokenSettings
from rotary.channels.options import ChannelOptions

__all__ = [
    "ENV_PREFIXES",
    "KEYS",
    "NAMESPACE_OPTION_KINDS",
    "PROXY_OPTIONS",
    "Key",
    "Kind",
    "env_names",
    "keys_by_v5",
    "keys_by_v6",
    "v6_sections",
]

Kind = Literal[
    "bool", "int", "port", "str", "duration", "strs", "addrs", "namespaces", "unix", "ignored"
]

#: Lowest precedence first: ``ROTARY_`` beats ``CENTRIFUGO_``.
ENV_PREFIXES = ("CENTRIFUGO_", "ROTARY_")


@dataclass(frozen=True, slots=True)
class Key:
    """One configuration key.

    `dest` is a dotted path into `Config` (``client.ping_interval``,
    ``auth.connection.audience``, ``channels.without_namespace.presence``) or
    ``ignored.<name>`` for keys that are accepted and have no effect in Rotary.
    `v6` is "" for keys that exist only in the flat layout (aliases).
    """

    v5: str
    v6: str
    kind: Kind
    dest: str


def _kind_of(field: dataclasses.Field[object]) -> Kind:
    kinds: dict[str, Kind] = {"bool": "bool", "int": "int", "float": "duration", "str": "str"}
    return kinds.get(str(field.type), "strs")


#: Kind of every option a namespace (or the top level) accepts, by its name.
NAMESPACE_OPTION_KINDS: dict[str, Kind] = {
    f.name: _kind_of(f) for f in dataclasses.fields(ChannelOptions)
}

#: Proxy switches of Centrifugo (v5 and v6 names): Rotary has no proxies and refuses them on.
PROXY_OPTIONS = frozenset(
    name
    for kind in ("subscribe", "publish", "sub_refresh", "subscribe_stream")
    for name in (f"proxy_{kind}", f"{kind}_proxy_enabled", f"{kind}_proxy_name")
)

# fmt: off
_SIMPLE: tuple[tuple[str, str, Kind, str], ...] = (
    # connection and client behaviour
    ("allow_anonymous_connect_without_token", "client.allow_anonymous_connect_without_token",
     "bool", "client.allow_anonymous_connect_without_token"),
    ("client_anonymous", "", "bool", "client.allow_anonymous_connect_without_token"),
    ("disallow_anonymous_connection_tokens", "client.disallow_anonymous_connection_tokens",
     "bool", "client.disallow_anonymous_connection_tokens"),
    ("client_insecure", "client.insecure", "bool", "client.insecure"),
    ("client_insecure_skip_token_signature_verify",
     "client.insecure_skip_token_signature_verify", "bool", "auth.insecure_skip_signature"),
    ("allowed_origins", "client.allowed_origins", "strs", "client.allowed_origins"),
    ("ping_interval", "client.ping_interval", "duration", "client.ping_interval"),
    ("pong_timeout", "client.pong_timeout", "duration", "client.pong_timeout"),
    ("client_expired_close_delay", "client.expired_close_delay", "duration",
     "client.expired_close_delay"),
    ("client_expired_sub_close_delay", "client.expired_sub_close_delay", "duration",
     "client.expired_sub_close_delay"),
    ("client_stale_close_delay", "client.stale_close_delay", "duration",
     "client.stale_close_delay"),
    ("client_channel_limit", "client.channel_limit", "int", "client.channel_limit"),
    ("client_queue_max_size", "client.queue_max_size", "int", "client.queue_max_size"),
    ("client_presence_update_interval", "client.presence_update_interval", "duration",
     "client.presence_update_interval"),
    ("client_user_connection_limit", "client.user_connection_limit", "int",
     "client.user_connection_limit"),
    ("client_connection_limit", "client.connection_limit", "int", "client.connection_limit"),
    ("client_connection_rate_limit", "client.connection_rate_limit", "int",
     "client.connection_rate_limit"),
    ("client_concurrency", "client.concurrency", "int", "client.concurrency"),
    ("client_channel_position_check_delay", "client.channel_position_check_delay", "duration",
     "client.channel_position_check_delay"),
    ("client_history_max_publication_limit", "client.history_max_publication_limit", "int",
     "client.history_max_publication_limit"),
    ("client_recovery_max_publication_limit", "client.recovery_max_publication_limit", "int",
     "client.recovery_max_publication_limit"),
    ("client_connect_include_server_time", "client.connect_include_server_time", "bool",
     "client.connect_include_server_time"),
    ("user_subscribe_to_personal", "client.subscribe_to_user_personal_channel.enabled", "bool",
     "client.subscribe_to_personal"),
    ("user_personal_channel_namespace",
     "client.subscribe_to_user_personal_channel.personal_channel_namespace", "str",
     "client.personal_channel_namespace"),
    ("user_personal_single_connection",
     "client.subscribe_to_user_personal_channel.single_connection", "bool",
     "client.personal_single_connection"),
    ("rpc_ping", "rpc.ping.enabled", "bool", "client.rpc_ping"),
    ("rpc_ping_method", "rpc.ping.method", "str", "client.rpc_ping_method"),
    # tokens: Rotary's own keys beside the per-kind TokenSettings keys
    ("separate_subscription_token_config", "client.subscription_token.enabled", "bool",
     "auth.subscription_enabled"),
    ("token_leeway", "client.token.leeway", "duration", "auth.leeway"),
    ("token_cache_size", "client.token.cache_size", "int", "auth.cache_size"),
    ("token_jwks_cache_ttl", "client.token.jwks_cache_ttl", "duration", "auth.jwks_cache_ttl"),
    ("token_jwks_timeout", "client.token.jwks_timeout", "duration", "auth.jwks_timeout"),
    ("token_max_size", "client.token.max_size", "int", "auth.max_token_size"),
    ("token_jwks_refetch_interval", "client.token.jwks_refetch_interval", "duration",
     "auth.jwks_refetch_interval"),
    # channels
    ("channel_private_prefix", "channel.private_prefix", "str", "channels.private_prefix"),
    ("channel_namespace_boundary", "channel.namespace_boundary", "str",
     "channels.namespace_boundary"),
    ("channel_user_boundary", "channel.user_boundary", "str", "channels.user_boundary"),
    ("channel_user_separator", "channel.user_separator", "str", "channels.user_separator"),
    ("channel_max_length", "channel.max_length", "int", "channels.max_length"),
    ("global_history_meta_ttl", "channel.history_meta_ttl", "duration",
     "channels.history_meta_ttl"),
    ("namespaces", "channel.namespaces", "namespaces", "channels.namespaces"),
    # server API and WebSocket
    ("api_key", "http_api.key", "str", "api.key"),
    ("api_insecure", "http_api.insecure", "bool", "api.insecure"),
    ("api_error_mode", "http_api.error_mode", "str", "api.error_mode"),
    ("api_handler_prefix", "http_api.handler_prefix", "str", "api.handler_prefix"),
    ("websocket_disable", "websocket.disabled", "bool", "websocket.disabled"),
    ("websocket_handler_prefix", "websocket.handler_prefix", "str", "websocket.handler_prefix"),
    ("websocket_message_size_limit", "websocket.message_size_limit", "int",
     "websocket.message_size_limit"),
    ("websocket_write_timeout", "websocket.write_timeout", "duration", "websocket.write_timeout"),
    # server, logging, engine
    ("address", "http_server.address", "str", "server.address"),
    ("port", "http_server.port", "port", "server.port"),
    ("name", "node.name", "str", "server.name"),
    ("health", "health.enabled", "bool", "server.health"),
    ("prometheus", "prometheus.enabled", "bool", "server.prometheus"),
    ("log_level", "log.level", "str", "log.level"),
    ("log_file", "log.file", "str", "log.file"),
    ("log_json", "log.json", "bool", "log.json"),
    ("engine", "engine.type", "str", "engine.type"),
    ("redis_address", "engine.redis.address", "addrs", "engine.redis.addresses"),
    ("redis_prefix", "engine.redis.prefix", "str", "engine.redis.prefix"),
    ("redis_password", "engine.redis.password", "str", "engine.redis.password"),
    ("redis_user", "engine.redis.user", "str", "engine.redis.user"),
    ("redis_db", "engine.redis.db", "int", "engine.redis.db"),
    ("redis_sentinel_address", "engine.redis.sentinel_address", "addrs",
     "engine.redis.sentinel_addresses"),
    ("redis_sentinel_master_name", "engine.redis.sentinel_master_name", "str",
     "engine.redis.sentinel_master_name"),
    ("redis_cluster_address", "engine.redis.cluster_address", "addrs",
     "engine.redis.cluster_addresses"),
    ("redis_presence_ttl", "engine.redis.presence_ttl", "duration", "engine.redis.presence_ttl"),
    ("redis_connect_timeout", "engine.redis.connect_timeout", "duration",
     "engine.redis.connect_timeout"),
    ("redis_io_timeout", "engine.redis.io_timeout", "duration", "engine.redis.io_timeout"),
    # accepted so that generated Centrifugo configs load; Rotary has no admin web interface
    ("admin", "admin.enabled", "ignored", "ignored.admin"),
    ("admin_password", "admin.password", "ignored", "ignored.admin_password"),
    ("admin_secret", "admin.secret", "ignored", "ignored.admin_secret"),
    ("admin_insecure", "admin.insecure", "ignored", "ignored.admin_insecure"),
)
# fmt: on


def _token_keys() -> list[Key]:
    keys: list[Key] = []
    for f in dataclasses.fields(TokenSettings):
        kind: Kind = "unix" if f.name.endswith("_valid_until") else "str"
        keys.append(
            Key(f"token_{f.name}", f"client.token.{f.name}", kind, f"auth.connection.{f.name}")
        )
        keys.append(
            Key(
                f"subscription_token_{f.name}",
                f"client.subscription_token.{f.name}",
                kind,
                f"auth.subscription.{f.name}",
            )
        )
    return keys


def _option_keys() -> list[Key]:
    return [
        Key(name, f"channel.without_namespace.{name}", kind, f"channels.without_namespace.{name}")
        for name, kind in NAMESPACE_OPTION_KINDS.items()
    ]


#: Every key, in a stable order.
KEYS: tuple[Key, ...] = (
    *(Key(*row) for row in _SIMPLE),
    *_token_keys(),
    *_option_keys(),
)


def keys_by_v5() -> dict[str, Key]:
    """Flat (v5) name → key."""
    return {k.v5: k for k in KEYS}


def keys_by_v6() -> dict[str, Key]:
    """Nested (v6) dotted path → key."""
    return {k.v6: k for k in KEYS if k.v6}


def v6_sections() -> frozenset[str]:
    """Top-level names that open a nested (v6) section when their value is a mapping."""
    return frozenset(k.v6.split(".", 1)[0] for k in KEYS if k.v6)


def env_names() -> list[tuple[str, Key]]:
    """Every environment variable read, lowest precedence first, with its key.

    For each prefix: ``<PREFIX><V5 NAME>`` then ``<PREFIX><V6 PATH WITH _>``; ``ROTARY_``
    names come after (and so win over) ``CENTRIFUGO_`` names.
    """
    names: list[tuple[str, Key]] = []
    for prefix in ENV_PREFIXES:
        for key in KEYS:
            names.append((prefix + key.v5.upper(), key))
            if key.v6:
                names.append((prefix + key.v6.replace(".", "_").upper(), key))
    return names
