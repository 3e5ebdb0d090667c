"""The table of configuration keys: Centrifugo v5 flat name, v6 nested path, kind, destination.

Every key Rotary reads appears here once (docs/config.md plus Rotary's own keys). The loader maps
both layouts and the environment onto the destination (a dotted path into `Config`), so the
rest of Rotary never sees which spelling was used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from rotary.auth.settings import TokenSettings
from rotary.channels.options import ChannelOptions
from rotary.proxy.settings import PROXY_KINDS

__all__ = [
    "ENV_PREFIXES",
    "GROUP_FIELDS",
    "KEYS",
    "MAP_OPTION_PREFIX",
    "NAMED_LISTS",
    "NAMESPACE_OPTION_KINDS",
    "OTHER_ENV_NAMES",
    "POLL_OPTION_PREFIX",
    "PROXY_OPTIONS",
    "PROXY_OPTION_ALIASES",
    "Key",
    "Kind",
    "NamedList",
    "env_names",
    "group_env_names",
    "keys_by_v5",
    "keys_by_v6",
    "name_for_env",
    "v6_sections",
]

Kind = Literal[
    "bool",
    "int",
    "port",
    "str",
    "duration",
    "strs",
    "addrs",
    "namespaces",
    "proxies",
    "unix",
    "ignored",
    "code_to_http",
    "code_to_disconnect",
]

#: Lowest precedence first: ``ROTARY_`` beats ``CENTRIFUGO_``.
ENV_PREFIXES = ("CENTRIFUGO_", "ROTARY_")

#: Variables with one of `ENV_PREFIXES` that Rotary reads outside the configuration.
OTHER_ENV_NAMES = frozenset({"ROTARY_REVOCATION_CHECKS"})


@dataclass(frozen=True, slots=True)
class Key:
    """One configuration key.

    `dest` is a dotted path into `Config` (``client.ping_interval``,
    ``auth.connection.audience``, ``channels.without_namespace.presence``) or
    ``ignored.<name>`` for keys that are accepted and have no effect in Rotary.
    `v6` is "" for keys that exist only in the flat layout (aliases). `description` is one
    line of plain words for the generated reference (``rotary configdoc``).
    """

    v5: str
    v6: str
    kind: Kind
    dest: str
    description: str = ""


def _kind_of(field: dataclasses.Field[object]) -> Kind:
    kinds: dict[str, Kind] = {"bool": "bool", "int": "int", "float": "duration", "str": "str"}
    return kinds.get(str(field.type), "strs")


#: Kind of every option a namespace (or the top level) accepts, by its name.
NAMESPACE_OPTION_KINDS: dict[str, Kind] = {
    f.name: _kind_of(f) for f in dataclasses.fields(ChannelOptions)
}


@dataclass(frozen=True, slots=True)
class NamedList:
    """A configuration list of named objects, settable item by item from the environment.

    `dest` is the list's `Key.dest`; `env_stem` its v6 path with ``_`` (``CHANNEL_NAMESPACES``):
    ``<PREFIX><STEM>`` names the items, ``<PREFIX><STEM>_<NAME>_<OPTION>`` sets one option of
    the item called NAME (see `name_for_env`). `options` gives the kind of every option;
    `aliases` maps other option names (v6 spellings) to one of them.
    """

    dest: str
    env_stem: str
    options: Mapping[str, Kind]
    aliases: Mapping[str, str] = dataclasses.field(default_factory=dict)


def name_for_env(name: str) -> str:
    """An item's name as it appears in a variable name: ``.`` and ``-`` become ``_``, upper case."""
    return name.replace(".", "_").replace("-", "_").upper()


#: Channel options named ``map_<x>`` are Centrifugo's ``map: {<x>: …}`` group of a namespace.
MAP_OPTION_PREFIX = "map_"
#: Channel options named ``shared_poll_<x>`` are its ``shared_poll: {<x>: …}`` group.
POLL_OPTION_PREFIX = "shared_poll_"

#: v6 names of the namespace proxy switches → Rotary's field (the v5 name).
PROXY_OPTION_ALIASES = {
    "subscribe_proxy_enabled": "proxy_subscribe",
    "publish_proxy_enabled": "proxy_publish",
    "sub_refresh_proxy_enabled": "proxy_sub_refresh",
}

#: Proxy options of Centrifugo that Rotary does not have: named proxies (only the one proxy
#: of each kind, "default") and subscribe streams. Accepted when off (or "default").
PROXY_OPTIONS = frozenset(
    [
        "proxy_subscribe_stream",
        "subscribe_stream_proxy_enabled",
        *(
            f"{kind}_proxy_name"
            for kind in ("subscribe", "publish", "sub_refresh", "subscribe_stream")
        ),
        "map_publish_proxy_name",
        "map_remove_proxy_name",
    ]
)

_IGNORED: Kind = "ignored"
_CODE_TO_HTTP: Kind = "code_to_http"
#: Keys of Centrifugo's ``websocket`` and ``uni_websocket`` that tune Go's WebSocket library:
#: accepted and without effect in Rotary (docs/differences.md).
_WEBSOCKET_IGNORED = (
    "read_buffer_size",
    "write_buffer_size",
    "use_write_buffer_pool",
)

#: permessage-deflate keys of ``websocket`` and ``uni_websocket`` and their kinds.
_COMPRESSION_KEYS: tuple[tuple[str, Kind], ...] = (
    ("compression", "bool"),
    ("compression_min_size", "int"),
    ("compression_level", "int"),
    ("decompressed_message_size_limit", "int"),
)

#: The ``map_broker.redis`` keys: name, kind, field of `MapRedisSettings` (``redis.`` for the
#: connection).
_MAP_REDIS_KEYS: tuple[tuple[str, Kind, str], ...] = (
    ("address", "addrs", "redis.addresses"),
    ("prefix", "str", "redis.prefix"),
    ("password", "str", "redis.password"),
    ("user", "str", "redis.user"),
    ("db", "int", "redis.db"),
    ("sentinel_address", "addrs", "redis.sentinel_addresses"),
    ("sentinel_master_name", "str", "redis.sentinel_master_name"),
    ("cluster_address", "addrs", "redis.cluster_addresses"),
    ("connect_timeout", "duration", "redis.connect_timeout"),
    ("io_timeout", "duration", "redis.io_timeout"),
    ("cleanup_interval", "duration", "cleanup_interval"),
    ("cleanup_batch_size", "int", "cleanup_batch_size"),
    ("idempotent_result_ttl", "duration", "idempotent_result_ttl"),
    ("skip_pub_sub", "bool", "skip_pub_sub"),
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
    ("client_command_rate_limit", "client.command_rate_limit", "int",
     "client.command_rate_limit"),
    ("client_command_rate_burst", "client.command_rate_burst", "int",
     "client.command_rate_burst"),
    ("client_error_limit", "client.error_limit", "int", "client.error_limit"),
    ("client_error_limit_interval", "client.error_limit_interval", "duration",
     "client.error_limit_interval"),
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
    # shared poll channels (v6 only: the flat names are Rotary's) and the named proxies
    ("shared_poll_hmac_secret_key", "shared_poll.hmac_secret_key", "str",
     "shared_poll.hmac_secret_key"),
    ("shared_poll_hmac_previous_secret_key", "shared_poll.hmac_previous_secret_key", "str",
     "shared_poll.hmac_previous_secret_key"),
    ("shared_poll_hmac_previous_secret_key_valid_until",
     "shared_poll.hmac_previous_secret_key_valid_until", "unix",
     "shared_poll.hmac_previous_secret_key_valid_until"),
    ("shared_poll_concurrency_limit", "shared_poll.concurrency_limit", "int",
     "shared_poll.concurrency_limit"),
    ("proxies", "", "proxies", "proxy.named"),
    ("proxy_shared_poll_refresh_endpoint", "channel.proxy.shared_poll_refresh.endpoint", "str",
     "proxy.shared_poll_refresh.endpoint"),
    ("proxy_shared_poll_refresh_timeout", "channel.proxy.shared_poll_refresh.timeout",
     "duration", "proxy.shared_poll_refresh.timeout"),
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
    ("websocket_send_buffer_size", "websocket.send_buffer_size", "int",
     "websocket.send_buffer_size"),
    *((f"websocket_{name}", f"websocket.{name}", kind, f"websocket.{name}")
      for name, kind in _COMPRESSION_KEYS),
    *((f"websocket_{name}", f"websocket.{name}", _IGNORED, f"ignored.websocket_{name}")
      for name in _WEBSOCKET_IGNORED),
    # HTTP-streaming, SSE, emulation and unidirectional transports (docs/transports.md)
    *(row for name in ("http_stream", "sse", "uni_sse", "uni_http_stream")
      for row in ((name, f"{name}.enabled", "bool", f"{name}.enabled"),
                  (f"{name}_handler_prefix", f"{name}.handler_prefix", "str",
                   f"{name}.handler_prefix"),
                  (f"{name}_max_request_body_size", f"{name}.max_request_body_size", "int",
                   f"{name}.size_limit"))),
    ("emulation_handler_prefix", "emulation.handler_prefix", "str", "emulation.handler_prefix"),
    ("emulation_max_request_body_size", "emulation.max_request_body_size", "int",
     "emulation.size_limit"),
    ("uni_websocket", "uni_websocket.enabled", "bool", "uni_websocket.enabled"),
    ("uni_websocket_handler_prefix", "uni_websocket.handler_prefix", "str",
     "uni_websocket.handler_prefix"),
    ("uni_websocket_message_size_limit", "uni_websocket.message_size_limit", "int",
     "uni_websocket.size_limit"),
    ("uni_websocket_join_push_messages", "uni_websocket.join_push_messages", "bool",
     "uni.websocket_join_push_messages"),
    ("uni_websocket_disable_disconnect_push", "uni_websocket.disable_disconnect_push", "bool",
     "uni.websocket_disable_disconnect_push"),
    ("uni_websocket_disable_closing_handshake", "uni_websocket.disable_closing_handshake",
     "bool", "uni.websocket_disable_closing_handshake"),
    ("uni_websocket_write_timeout", "uni_websocket.write_timeout", "duration",
     "uni.websocket_write_timeout"),
    *((f"uni_websocket_{name}", f"uni_websocket.{name}", kind, f"uni.websocket_{name}")
      for name, kind in _COMPRESSION_KEYS),
    # Go's WebSocket buffers: accepted, without effect (docs/differences.md)
    *((f"uni_websocket_{name}", f"uni_websocket.{name}", _IGNORED, f"ignored.uni_{name}")
      for name in _WEBSOCKET_IGNORED),
    *((f"{name}_connect_code_to_http_response", f"{name}.connect_code_to_http_response",
       kind, f"uni.{name.removeprefix('uni_')}_code_to_http")
      for name in ("uni_sse", "uni_http_stream")
      for kind in (_CODE_TO_HTTP,)),
    ("client_connect_code_to_unidirectional_disconnect",
     "client.connect_code_to_unidirectional_disconnect", "code_to_disconnect",
     "client.connect_code_to_unidirectional_disconnect"),
    # server, logging, engine
    ("address", "http_server.address", "str", "server.address"),
    ("port", "http_server.port", "port", "server.port"),
    ("name", "node.name", "str", "server.name"),
    ("node_info_publish_interval", "node.info_publish_interval", "duration",
     "server.node_info_interval"),
    ("http_idle_timeout", "http_server.idle_timeout", "duration", "server.idle_timeout"),
    ("gc_gen0_threshold", "node.gc_gen0_threshold", "int", "server.gc_gen0_threshold"),
    ("health", "health.enabled", "bool", "server.health"),
    ("prometheus", "prometheus.enabled", "bool", "server.prometheus"),
    ("log_level", "log.level", "str", "log.level"),
    ("log_file", "log.file", "str", "log.file"),
    ("log_json", "log.json", "bool", "log.json"),
    ("engine", "engine.type", "str", "engine.type"),
    ("map_broker_type", "map_broker.type", "str", "engine.map_broker_type"),
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
    # the Redis map broker's own Redis (v6 only: the flat names are Rotary's)
    *((f"map_broker_redis_{name}", f"map_broker.redis.{name}", kind, f"engine.map_redis.{dest}")
      for name, kind, dest in _MAP_REDIS_KEYS),
    # admin web UI
    ("admin", "admin.enabled", "bool", "admin.enabled"),
    ("admin_password", "admin.password", "str", "admin.password"),
    ("admin_secret", "admin.secret", "str", "admin.secret"),
    ("admin_insecure", "admin.insecure", "bool", "admin.insecure"),
    ("admin_insecure_allow_remote", "admin.insecure_allow_remote", "bool",
     "admin.insecure_allow_remote"),
    ("admin_token_ttl", "admin.token_ttl", "duration", "admin.token_ttl"),
)
# fmt: on

_COMPRESSION_TEXTS = {
    "compression": "Offer permessage-deflate to clients that ask for it (costs CPU per message "
    'sent; see docs/transports.md "Compression").',
    "compression_min_size": "Messages of at most this many bytes go uncompressed (0: every "
    "message is compressed).",
    "compression_level": "Deflate level: 1 fastest … 9 smallest, 0 none, -1 default (6), "
    "-2 Huffman only.",
    "decompressed_message_size_limit": "Largest incoming message once inflated, in bytes; "
    "larger closes with 1009 (0: ten times message_size_limit).",
}

_ENDPOINT_WHAT = {
    "http_stream": "the bidirectional HTTP-streaming endpoint (commands through emulation)",
    "sse": "the bidirectional SSE endpoint (commands through emulation)",
    "uni_sse": "the unidirectional SSE endpoint",
    "uni_http_stream": "the unidirectional HTTP-streaming endpoint",
    "uni_websocket": "the unidirectional WebSocket endpoint",
    "emulation": "the emulation endpoint (commands of HTTP-streaming and SSE clients)",
}
_ENDPOINT_DESCRIPTIONS: dict[str, str] = {
    **{name: f"Serve {what}." for name, what in _ENDPOINT_WHAT.items() if name != "emulation"},
    **{f"{name}_handler_prefix": f"URL path of {what}." for name, what in _ENDPOINT_WHAT.items()},
    **{
        f"{name}_max_request_body_size": f"Largest request body of {what}, in bytes (413 past it)."
        for name, what in _ENDPOINT_WHAT.items()
        if name != "uni_websocket"
    },
    "uni_websocket_message_size_limit": (
        "Largest message a unidirectional WebSocket client may send (its connect request), "
        "in bytes; larger closes with code 1009."
    ),
    "uni_websocket_join_push_messages": (
        "Put every message written at once into one frame, newline-separated (clients must "
        "split frames)."
    ),
    "uni_websocket_disable_disconnect_push": (
        "Send no disconnect push before the close frame (which carries the same code and reason)."
    ),
    "uni_websocket_disable_closing_handshake": (
        "End a connection the server closes without a close frame (Centrifugo before v6.5.1)."
    ),
    "uni_websocket_write_timeout": (
        "How long a write or the close handshake of a unidirectional WebSocket may take."
    ),
    **{
        f"{prefix}_{name}": "Accepted for compatibility and ignored (it tunes Go's WebSocket "
        "library; a value other than its zero value loads with a warning)."
        for prefix in ("websocket", "uni_websocket")
        for name in _WEBSOCKET_IGNORED
    },
    **{
        f"{prefix}_{name}": text
        for prefix in ("websocket", "uni_websocket")
        for name, text in _COMPRESSION_TEXTS.items()
    },
    **{
        f"{name}_connect_code_to_http_response": (
            f"Answer a failed connect on {what} with an HTTP status and body instead of a "
            'stream: {"enabled": true, "transforms": [{"code": 109, "to": {"status_code": '
            '401, "body": ""}}]} (500 for codes not listed).'
        )
        for name, what in (("uni_sse", "uni_sse"), ("uni_http_stream", "uni_http_stream"))
    },
    "client_connect_code_to_unidirectional_disconnect": (
        "Disconnect a unidirectional client whose connect failed with an error code of your "
        'choice: {"enabled": true, "transforms": [{"code": 103, "to": {"code": 4503, '
        '"reason": "forbidden"}}]}.'
    ),
}

# One line per key, in plain words, for the generated reference (``rotary configdoc``). A key
# missing here still loads; tests/config/test_doc.py insists that none is missing.
# fmt: off
_DESCRIPTIONS: dict[str, str] = {
    "shared_poll_hmac_secret_key":
        "HMAC secret that signs the keys clients track in shared poll channels.",
    "shared_poll_hmac_previous_secret_key":
        "Previous shared poll secret, still accepted during a rotation.",
    "shared_poll_hmac_previous_secret_key_valid_until":
        "Unix time after which signatures issued with the previous shared poll secret are "
        "refused.",
    "shared_poll_concurrency_limit": "Most shared poll backend calls at once (0: 64).",
    "proxy_shared_poll_refresh_endpoint":
        "URL shared poll channels without a shared_poll.proxy_name (or naming \"default\") "
        "are polled at (http:// or https://).",
    "proxy_shared_poll_refresh_timeout":
        "Longest wait for the default shared poll proxy's answer.",
    "proxies":
        "Named proxies: a list of objects with name, endpoint, timeout, http_headers and "
        "include_connection_meta (shared poll channels name one).",
    "allow_anonymous_connect_without_token":
        "Let clients connect without any token; they become anonymous users (empty user id).",
    "client_anonymous":
        "Centrifugo v3 name, accepted as an alias of allow_anonymous_connect_without_token.",
    "disallow_anonymous_connection_tokens":
        "Refuse connection tokens whose sub claim is empty (anonymous tokens).",
    "client_insecure":
        "Development only: anonymous connect, token expiry ignored, any non-private channel "
        "open to subscribe, publish, presence and history.",
    "client_insecure_skip_token_signature_verify":
        "Development only: trust token claims without checking their signature.",
    "allowed_origins":
        "Browser origins allowed to open WebSockets (glob patterns, \"*\" for any); empty "
        "accepts only requests without an Origin header.",
    "ping_interval":
        "How often the server sends an application-level ping to each client.",
    "pong_timeout":
        "How long a client may take to answer a ping before it is disconnected; must be "
        "shorter than ping_interval.",
    "client_expired_close_delay":
        "Grace time after a connection token expires before the connection is closed "
        "(the client refreshes meanwhile).",
    "client_expired_sub_close_delay":
        "Grace time after a subscription token expires before the client is unsubscribed.",
    "client_stale_close_delay":
        "Close a connection that has not sent its connect command within this time.",
    "client_channel_limit":
        "Most channels one connection may be subscribed to at once.",
    "client_queue_max_size":
        "Bytes a connection's outgoing queue may hold before it is closed as too slow.",
    "client_presence_update_interval":
        "How often presence entries of connected clients are refreshed.",
    "client_user_connection_limit":
        "Most simultaneous connections per user on this node (0: no limit).",
    "client_connection_limit":
        "Most simultaneous connections on this node; more are refused before the WebSocket "
        "upgrade (0: no limit).",
    "client_command_rate_limit":
        "Commands per second one connection may send (a token bucket; 0: no limit); a "
        "command beyond it is answered with error 111. Rotary's own key.",
    "client_command_rate_burst":
        "Commands one connection may send at once before the rate applies (0: the rate).",
    "client_error_limit":
        "Error replies one connection may draw per client_error_limit_interval (0: no "
        "limit); one more disconnects it with 3509. Rotary's own key.",
    "client_error_limit_interval":
        "The interval over which client_error_limit errors are allowed.",
    "client_connection_rate_limit":
        "Most new connections per second on this node (0: no limit).",
    "client_concurrency":
        "Accepted for compatibility and ignored: Rotary always processes one connection's "
        "commands in order, one at a time.",
    "client_channel_position_check_delay":
        "How often the stream position of recoverable subscriptions is checked.",
    "client_history_max_publication_limit":
        "Largest number of publications a client may ask for in one history call.",
    "client_recovery_max_publication_limit":
        "Largest number of publications recovered on resubscribe; more means recovery fails.",
    "client_connect_include_server_time":
        "Add the server's time to every connect reply.",
    "user_subscribe_to_personal":
        "Subscribe every authenticated connection to its user's personal channel.",
    "user_personal_channel_namespace":
        "Namespace of personal channels (empty: channels without a namespace).",
    "user_personal_single_connection":
        "Keep only one connection per user, closing older ones (needs presence on the "
        "personal channel).",
    "rpc_ping":
        "Answer RPC calls of the ping method without a proxy (a round-trip check).",
    "rpc_ping_method":
        "Name of the RPC method answered by rpc_ping.",
    "separate_subscription_token_config":
        "Check subscription tokens with the subscription_token_* settings instead of the "
        "connection token settings.",
    "token_leeway":
        "Clock skew tolerated when checking exp and nbf of every token.",
    "token_cache_size":
        "Entries in the cache of already verified tokens (0 turns the cache off).",
    "token_jwks_cache_ttl":
        "How long keys fetched from a JWKS endpoint are kept.",
    "token_jwks_timeout":
        "Longest time one fetch of the JWKS endpoint may take.",
    "token_max_size":
        "Longest token accepted, in bytes; longer ones are refused without being read.",
    "token_jwks_refetch_interval":
        "Least time between two JWKS fetches, so that unknown kid values cannot force "
        "a fetch each.",
    "channel_private_prefix":
        "Prefix of private channels (subscription needs a token).",
    "channel_namespace_boundary":
        "Separator between a namespace and the rest of a channel name.",
    "channel_user_boundary":
        "Marks the user list of user-limited channels (news#42).",
    "channel_user_separator":
        "Separator between user ids of user-limited channels (dialog#42,43).",
    "channel_max_length":
        "Longest channel name allowed, in bytes.",
    "global_history_meta_ttl":
        "How long a channel's stream position (epoch and offset) is kept, unless a namespace "
        "sets history_meta_ttl.",
    "namespaces":
        "Named namespaces: a list of objects with a name and any channel options below.",
    "api_key":
        "Key the server HTTP API requires (X-API-Key header, Authorization: apikey <key>, "
        "or api_key query parameter).",
    "api_insecure":
        "Serve the HTTP API without checking the API key (only behind a trusted network).",
    "api_error_mode":
        "\"transport\" answers API errors with HTTP status codes instead of an error in the "
        "body.",
    "api_handler_prefix":
        "URL path of the HTTP API.",
    "websocket_disable":
        "Turn the WebSocket endpoint off.",
    "websocket_handler_prefix":
        "URL path of the WebSocket endpoint.",
    "websocket_message_size_limit":
        "Largest incoming WebSocket message, in bytes; larger closes with code 1009.",
    "websocket_write_timeout":
        "Longest time one write to a client may block before the connection is closed "
        "with 3009; also bounds the close handshake, after which the socket is aborted.",
    "websocket_send_buffer_size":
        "Kernel send buffer of each WebSocket connection, in bytes (0: the kernel's "
        "autotuning, up to net.ipv4.tcp_wmem). Smaller cuts a client that stopped reading "
        "sooner and bounds the kernel memory it holds, at the cost of throughput to one "
        "client over long round trips.",
    **_ENDPOINT_DESCRIPTIONS,
    "address":
        "Address to listen on (empty: every interface, IPv4 and IPv6).",
    "port":
        "Port to listen on.",
    "name":
        "Name of this node, shown by the info API.",
    "node_info_publish_interval":
        "How often a node announces itself to the others; unheard of for 3 intervals, it is gone.",
    "http_idle_timeout":
        "Longest a connection may go without a whole HTTP request (an idle keep-alive "
        "connection, or headers still incomplete: a stalled upgrade, a slowloris) before "
        "it is closed, and longest an API request body may take to arrive (then 408); "
        "0 waits for ever. Rotary's own key.",
    "gc_gen0_threshold":
        "Allocations between two collections of the youngest generation of Python's cycle "
        "collector. Lower (e.g. 10000) keeps each pause short, and so the latency tail of "
        "publications under steady traffic; higher costs less CPU in a reconnect storm "
        "(docs/operations.md).",
    "health":
        "Serve a health check at /health.",
    "prometheus":
        "Serve Prometheus metrics at /metrics.",
    "log_level":
        "Least severe log level written: none, trace, debug, info, warn or error.",
    "log_file":
        "Write logs to this file instead of standard error.",
    "log_json":
        "Write each log line as one JSON object.",
    "engine":
        "Where publications, history and presence live: memory (one node) or redis.",
    "map_broker_type":
        "Where map channels keep state: memory (one node) or redis (the Redis of "
        "map_broker.redis, apart from the engine's).",
    "map_broker_redis_address":
        "Redis servers of the Redis map broker (host:port or redis:// URL); map channels are "
        "sharded over several.",
    "map_broker_redis_prefix":
        "Prefix of every Redis key and PUB/SUB channel of the Redis map broker.",
    "map_broker_redis_password":
        "Password for the Redis map broker's Redis AUTH.",
    "map_broker_redis_user":
        "User name for the Redis map broker's Redis ACL AUTH.",
    "map_broker_redis_db":
        "Redis database number of the Redis map broker.",
    "map_broker_redis_sentinel_address":
        "Redis Sentinel addresses, to find the Redis map broker's master through Sentinel.",
    "map_broker_redis_sentinel_master_name":
        "Name of the master Sentinel watches for the Redis map broker.",
    "map_broker_redis_cluster_address":
        "Redis Cluster seed addresses of the Redis map broker.",
    "map_broker_redis_connect_timeout":
        "Longest time to establish a connection to the Redis map broker's Redis.",
    "map_broker_redis_io_timeout":
        "Longest time to wait for one reply of the Redis map broker's Redis.",
    "map_broker_redis_cleanup_interval":
        "How often expired map keys are removed (each a change subscribers see); negative: "
        "never.",
    "map_broker_redis_cleanup_batch_size":
        "Most expired keys one map channel loses per cleanup round.",
    "map_broker_redis_idempotent_result_ttl":
        "How long an idempotency key suppresses a repeated map_publish or map_remove.",
    "map_broker_redis_skip_pub_sub":
        "Keep map state and streams without broadcasting changes (live subscribers then get "
        "none).",
    "redis_address":
        "Redis servers (host:port or redis:// URL); channels are sharded over several.",
    "redis_prefix":
        "Prefix of every Redis key and PUB/SUB channel Rotary uses.",
    "redis_password":
        "Password for Redis AUTH.",
    "redis_user":
        "User name for Redis ACL AUTH.",
    "redis_db":
        "Redis database number.",
    "redis_sentinel_address":
        "Redis Sentinel addresses, to find the master through Sentinel.",
    "redis_sentinel_master_name":
        "Name of the master Sentinel watches.",
    "redis_cluster_address":
        "Redis Cluster seed addresses.",
    "redis_presence_ttl":
        "How long a presence entry lives in Redis without being refreshed.",
    "redis_connect_timeout":
        "Longest time to establish a Redis connection.",
    "redis_io_timeout":
        "Longest time to wait for one Redis command's reply.",
    "admin":
        "Serve the admin web UI at / and its endpoints under /admin/ (off: they are 404).",
    "admin_password":
        "Password of the admin web UI (POST /admin/auth); required unless admin_insecure.",
    "admin_secret":
        "Secret that signs admin tokens; required unless admin_insecure. Changing it logs "
        "every admin out.",
    "admin_insecure":
        "Development only: the admin UI and /admin/api without password or token. Refused "
        "on an address other than loopback unless admin_insecure_allow_remote.",
    "admin_insecure_allow_remote":
        "Allow admin_insecure on an address other than loopback (behind a firewall only).",
    "admin_token_ttl":
        "How long an admin token issued at login stays valid.",
}

#: Descriptions of the `TokenSettings` fields, shared by connection and subscription keys.
_TOKEN_DESCRIPTIONS: dict[str, str] = {
    "hmac_secret_key": "HMAC secret; enables HS256, HS384 and HS512.",
    "hmac_previous_secret_key":
        "previous HMAC secret, still accepted until hmac_previous_secret_key_valid_until "
        "(key rotation; Centrifugo v6.8 name).",
    "hmac_previous_secret_key_valid_until":
        "Unix time after which the previous HMAC secret is refused.",
    "rsa_public_key": "RSA public key (PEM, public key or certificate); enables RS256/384/512.",
    "ecdsa_public_key":
        "ECDSA public key (PEM, public key or certificate); enables the ES algorithm of its "
        "curve.",
    "ed25519_public_key": "Ed25519 public key (PEM); enables EdDSA without a JWKS endpoint.",
    "jwks_public_endpoint":
        "JWKS URL; when set every signature is checked with its keys (by kid) and static "
        "keys are ignored.",
    "audience": "the aud claim every token must carry.",
    "audience_regex": "regular expression the aud claim must match (not with audience).",
    "issuer": "the iss claim every token must carry.",
    "issuer_regex": "regular expression the iss claim must match (not with issuer).",
    "user_id_claim": "claim holding the user id instead of sub.",
}

#: Descriptions of the channel options (docs/channels.md "Channel options"), top level and per
#: namespace.
_OPTION_DESCRIPTIONS: dict[str, str] = {
    "presence": "Keep presence (who is subscribed) for the channels.",
    "join_leave": "Subscribers emit join and leave events.",
    "force_push_join_leave":
        "Push join and leave events to every subscriber, not only those who asked.",
    "history_size": "Most publications kept in history (history needs size and TTL).",
    "history_ttl": "How long publications stay in history (at most the history meta TTL).",
    "history_meta_ttl":
        "How long the stream position survives (0s: global_history_meta_ttl).",
    "force_positioning": "Check the stream position of every subscription.",
    "allow_positioning":
        "Let clients ask for positioning without history permission.",
    "force_recovery":
        "Recover missed publications on every resubscribe (needs history).",
    "allow_recovery": "Let clients ask for recovery without history permission.",
    "force_recovery_mode": "Recovery mode: \"\", \"stream\" or \"cache\".",
    "allow_subscribe_for_client":
        "Authenticated clients may subscribe without a subscription token.",
    "allow_subscribe_for_anonymous":
        "Anonymous clients may subscribe without a subscription token.",
    "allow_publish_for_client": "Authenticated clients may publish.",
    "allow_publish_for_subscriber": "Subscribers of the channel may publish.",
    "allow_publish_for_anonymous": "Anonymous clients may publish (with a client permission).",
    "allow_presence_for_client": "Authenticated clients may ask for presence.",
    "allow_presence_for_subscriber": "Subscribers of the channel may ask for presence.",
    "allow_presence_for_anonymous":
        "Anonymous clients may ask for presence (with a client permission).",
    "allow_history_for_client": "Authenticated clients may ask for history.",
    "allow_history_for_subscriber": "Subscribers of the channel may ask for history.",
    "allow_history_for_anonymous":
        "Anonymous clients may ask for history (with a client permission).",
    "allow_user_limited_channels":
        "Channels naming users after the user boundary (#) admit only those users.",
    "channel_regex": "Regular expression the channel name after the namespace must match.",
    "allowed_delta_types":
        "Delta compressions subscribers may negotiate (only fossil; see docs/features-6.9.md).",
    "delta_publish":
        "Allow delta compression of every publication, as the API's delta flag does for one.",
    "allow_tags_filter":
        "Subscribers may send a tags filter and receive only the publications it passes.",
    "client_publish_debounce_interval":
        "Tell the SDKs to coalesce a subscriber's publications to the channel over this "
        "interval (0s: none).",
    "subscription_type":
        "stream (default), map, map_clients, map_users or shared_poll: what a subscription "
        "to these channels is.",
    "shared_poll_proxy_name":
        "Shared poll channels: the proxy of the proxies list their items are polled from.",
    "shared_poll_mode":
        "Shared poll channels: versionless (default; versions counted by Rotary) or versioned "
        "(the backend's versions).",
    "shared_poll_refresh_interval": "Shared poll channels: time between two polls (0s: 10s).",
    "shared_poll_refresh_batch_size": "Shared poll channels: most keys in one poll (0: 1000).",
    "shared_poll_max_keys_per_connection":
        "Shared poll channels: most keys one connection may track (0: 5000).",
    "shared_poll_channel_shutdown_delay":
        "Shared poll channels: how long a channel nobody tracks keeps its state (0s: 1s).",
    "shared_poll_track_expired_extra_delay":
        "Shared poll channels: how long a key stays tracked after its signature expired "
        "(0s: 25s).",
    "shared_poll_publish_enabled":
        "Shared poll channels: the server API's shared_poll_publish may push item versions "
        "into them (mode versioned only).",
    "map_mode":
        "Map channels: ephemeral (no stream), recoverable (stream, keys expire) or "
        "persistent (stream, keys never expire).",
    "map_key_ttl": "Map channels: how long a key lives after its last write (not persistent).",
    "map_stream_size": "Map channels: most changes kept in the stream (0s: 100).",
    "map_stream_ttl": "Map channels: how long changes stay in the stream (0s: 1m).",
    "map_meta_ttl": "Map channels: how long the stream position survives idle channels.",
    "map_default_page_size": "Map channels: state page size when the client names none (100).",
    "map_min_page_size": "Map channels: smallest page size a client may ask for (100).",
    "map_max_page_size": "Map channels: largest page size a client may ask for (1000).",
    "map_live_transition_max_publication_limit":
        "Map channels: most changes replayed when a subscriber goes live (0: max page size).",
    "map_subscribe_catch_up_timeout":
        "Map channels: how long a subscriber may page through state and stream (0s: 1m).",
    "map_allow_publish_for_client": "Map channels: authenticated clients may write keys.",
    "map_allow_publish_for_subscriber": "Map channels: subscribers may write keys.",
    "map_allow_publish_for_anonymous":
        "Map channels: anonymous clients may write keys (with a client permission).",
    "map_allow_remove_for_client": "Map channels: authenticated clients may remove keys.",
    "map_allow_remove_for_subscriber": "Map channels: subscribers may remove keys.",
    "map_allow_remove_for_anonymous":
        "Map channels: anonymous clients may remove keys (with a client permission).",
    "map_remove_client_on_unsubscribe":
        "Map channels: remove the key named by a subscriber's client id when it unsubscribes.",
    "map_clients_presence_channel_prefix":
        "Publish each subscriber (by client id) into the map channel <prefix><channel>.",
    "map_users_presence_channel_prefix":
        "Publish each subscribed user (by user id) into the map channel <prefix><channel>.",
    "map_client_key":
        "Map channels: the key a client writes: \"\" (the one it names), client_id or user_id.",
    "map_publish_proxy_enabled":
        "Map channels: a client's key write goes to the map_publish proxy, which decides.",
    "map_remove_proxy_enabled":
        "Map channels: a client's key removal goes to the map_remove proxy, which decides.",
    "proxy_subscribe":
        "Subscribe without a token asks the subscribe proxy (v6 subscribe_proxy_enabled).",
    "proxy_publish": "Client publications go through the publish proxy (v6 publish_proxy_enabled).",
    "proxy_sub_refresh":
        "Subscriptions the subscribe proxy admitted are refreshed by the sub_refresh proxy "
        "(v6 sub_refresh_proxy_enabled).",
}
# fmt: on


#: Every named list Rotary has, for the v6 environment form.
NAMED_LISTS: tuple[NamedList, ...] = (
    NamedList(
        "channels.namespaces",
        "CHANNEL_NAMESPACES",
        NAMESPACE_OPTION_KINDS,
        PROXY_OPTION_ALIASES,
    ),
)


def _token_keys() -> list[Key]:
    keys: list[Key] = []
    for f in dataclasses.fields(TokenSettings):
        kind: Kind = "unix" if f.name.endswith("_valid_until") else "str"
        text = _TOKEN_DESCRIPTIONS.get(f.name, "")
        keys.append(
            Key(
                f"token_{f.name}",
                f"client.token.{f.name}",
                kind,
                f"auth.connection.{f.name}",
                f"Connection tokens: {text}" if text else "",
            )
        )
        keys.append(
            Key(
                f"subscription_token_{f.name}",
                f"client.subscription_token.{f.name}",
                kind,
                f"auth.subscription.{f.name}",
                f"Subscription tokens (when configured apart): {text}" if text else "",
            )
        )
    return keys


_V6_OPTION_NAMES = {field: v6 for v6, field in PROXY_OPTION_ALIASES.items()}


def _option_v6(name: str) -> str:
    """The v6 path of a top-level channel option; the ``map_*`` ones live in its map group."""
    if name.startswith(MAP_OPTION_PREFIX) and not name.endswith("_presence_channel_prefix"):
        return f"channel.without_namespace.map.{name.removeprefix(MAP_OPTION_PREFIX)}"
    if name.startswith(POLL_OPTION_PREFIX):
        return f"channel.without_namespace.shared_poll.{name.removeprefix(POLL_OPTION_PREFIX)}"
    return f"channel.without_namespace.{_V6_OPTION_NAMES.get(name, name)}"


def _option_keys() -> list[Key]:
    return [
        Key(
            name,
            _option_v6(name),
            kind,
            f"channels.without_namespace.{name}",
            _OPTION_DESCRIPTIONS.get(name, ""),
        )
        for name, kind in NAMESPACE_OPTION_KINDS.items()
    ]


_PROXY_V6 = {
    "connect": "client.proxy.connect",
    "refresh": "client.proxy.refresh",
    "subscribe": "channel.proxy.subscribe",
    "publish": "channel.proxy.publish",
    "sub_refresh": "channel.proxy.sub_refresh",
    "rpc": "rpc.proxy",
    "map_publish": "channel.proxy.map_publish",
    "map_remove": "channel.proxy.map_remove",
}
_PROXY_EVENTS = {
    "connect": "connect without a token",
    "refresh": "connection refresh (server-side: the client sends no token)",
    "subscribe": "subscribe in namespaces with proxy_subscribe",
    "publish": "client publish in namespaces with proxy_publish",
    "sub_refresh": "subscription refresh in namespaces with proxy_sub_refresh",
    "rpc": "client RPC calls",
    "map_publish": "map key write of a client (map.publish_proxy_enabled)",
    "map_remove": "map key removal of a client (map.remove_proxy_enabled)",
}


def _proxy_keys() -> list[Key]:
    keys: list[Key] = []
    for kind in PROXY_KINDS:
        v6, dest, event = _PROXY_V6[kind], f"proxy.{kind}", _PROXY_EVENTS[kind]
        rows: list[tuple[str, Kind, str]] = [
            ("endpoint", "str", f"URL the {event} is POSTed to (http:// or https://)."),
            ("timeout", "duration", f"Longest wait for the {kind} proxy's answer."),
            (
                "http_headers",
                "strs",
                f"Client headers passed to the {kind} proxy (empty: proxy_http_headers).",
            ),
        ]
        if kind != "connect":
            rows.append(
                (
                    "include_connection_meta",
                    "bool",
                    f"Send the connection's meta to the {kind} proxy.",
                )
            )
        for name, kind_of, text in rows:
            keys.append(
                Key(f"proxy_{kind}_{name}", f"{v6}.{name}", kind_of, f"{dest}.{name}", text)
            )
        if kind in ("connect", "refresh"):
            text = f"Set false to keep the {kind} proxy off although its endpoint is set."
            keys.append(
                Key(f"proxy_{kind}_enabled", f"{v6}.enabled", "bool", f"{dest}.enabled", text)
            )
    text = "Set false to keep the RPC proxy off although its endpoint is set."
    keys.append(
        Key(
            "proxy_rpc_enabled",
            "rpc.without_namespace.proxy_enabled",
            "bool",
            "proxy.rpc.enabled",
            text,
        )
    )
    keys.append(
        Key(
            "proxy_http_headers",
            "",
            "strs",
            "proxy.http_headers",
            "Client headers (of the WebSocket upgrade request) passed to every proxy "
            'that names none, e.g. ["Cookie", "Authorization"].',
        )
    )
    keys.append(
        Key(
            "proxy_include_connection_meta",
            "",
            "bool",
            "proxy.include_connection_meta",
            "Send the connection's meta to every proxy but connect.",
        )
    )
    return keys


#: Every key, in a stable order.
KEYS: tuple[Key, ...] = (
    *(Key(*row, _DESCRIPTIONS.get(row[0], "")) for row in _SIMPLE),
    *_token_keys(),
    *_option_keys(),
    *_proxy_keys(),
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


#: Fields of a connect-code group (kinds ``code_to_http``, ``code_to_disconnect``) that
#: Centrifugo reads from variables of their own: ``<PREFIX><PATH>_ENABLED`` and ``…_TRANSFORMS``.
GROUP_FIELDS = ("enabled", "transforms")


def group_env_names() -> list[tuple[str, Key, str]]:
    """Every variable naming one field of a connect-code group: (name, key, field), lowest
    precedence first (``ROTARY_`` after ``CENTRIFUGO_``)."""
    return [
        (f"{prefix}{key.v6.replace('.', '_').upper()}_{field.upper()}", key, field)
        for prefix in ENV_PREFIXES
        for key in KEYS
        if key.kind in ("code_to_http", "code_to_disconnect")
        for field in GROUP_FIELDS
    ]


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
