"""The configuration model: immutable values handed to the rest of Rotary.

`rotary.config.load` builds a `Config` from Centrifugo v5 flat keys or v6 nested keys
(docs/config.md). Durations are seconds as floats. The key names in the comments are v5 / v6.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rotary.auth.settings import AuthSettings
from rotary.channels.options import ChannelSettings
from rotary.protocol.codes import CodeTransform
from rotary.proxy.settings import ProxySettings

__all__ = [
    "ENDPOINTS",
    "AdminSettings",
    "ApiSettings",
    "ClientSettings",
    "Config",
    "EndpointSettings",
    "EngineSettings",
    "LogSettings",
    "MapRedisSettings",
    "RedisSettings",
    "ServerSettings",
    "SharedPollSettings",
    "UniSettings",
    "WebSocketSettings",
]


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """How client connections behave (v5 ``client_*`` keys, v6 ``client.*``)."""

    allow_anonymous_connect_without_token: bool = False
    disallow_anonymous_connection_tokens: bool = False
    insecure: bool = False
    allowed_origins: tuple[str, ...] = ()
    ping_interval: float = 25.0
    pong_timeout: float = 8.0
    expired_close_delay: float = 25.0
    expired_sub_close_delay: float = 25.0
    stale_close_delay: float = 10.0
    channel_limit: int = 128
    queue_max_size: int = 1_048_576
    presence_update_interval: float = 27.0
    user_connection_limit: int = 0
    connection_limit: int = 0
    connection_rate_limit: int = 0
    concurrency: int = 0
    channel_position_check_delay: float = 40.0
    history_max_publication_limit: int = 300
    recovery_max_publication_limit: int = 300
    connect_include_server_time: bool = False
    subscribe_to_personal: bool = False
    personal_channel_namespace: str = ""
    personal_single_connection: bool = False
    rpc_ping: bool = False
    rpc_ping_method: str = "ping"
    #: Per-connection command token bucket (Rotary's own keys; 0: off): commands per
    #: second, and how many may come at once (0: as many as the rate).
    command_rate_limit: int = 0
    command_rate_burst: int = 0
    #: Per-connection error budget (0: off): error replies allowed per interval before
    #: disconnect 3509.
    error_limit: int = 0
    error_limit_interval: float = 60.0
    #: Connect error code → disconnect of a unidirectional client (v5
    #: ``client_connect_code_to_unidirectional_disconnect``, v6
    #: ``client.connect_code_to_unidirectional_disconnect``); empty when not enabled.
    connect_code_to_unidirectional_disconnect: tuple[CodeTransform, ...] = ()


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """Server HTTP API (v5 ``api_*``, v6 ``http_api.*``)."""

    key: str = ""
    insecure: bool = False
    error_mode: str = ""
    handler_prefix: str = "/api"


@dataclass(frozen=True, slots=True)
class AdminSettings:
    """The admin web UI and its endpoints (v5 ``admin*``, v6 ``admin.*``; docs/admin.md).

    `insecure` drops every check (no password, no token); Rotary refuses it on an address
    other than loopback unless `insecure_allow_remote` (Rotary's own key) is set.
    """

    enabled: bool = False
    password: str = ""
    secret: str = ""
    insecure: bool = False
    insecure_allow_remote: bool = False
    #: Seconds an admin token issued by ``POST /admin/auth`` stays valid (Rotary's own key).
    token_ttl: float = 43_200.0


@dataclass(frozen=True, slots=True)
class WebSocketSettings:
    """WebSocket endpoint (v5 ``websocket_*``, v6 ``websocket.*``)."""

    disabled: bool = False
    handler_prefix: str = "/connection/websocket"
    message_size_limit: int = 65536
    write_timeout: float = 1.0
    #: Bytes of the kernel's send buffer of each WebSocket connection (SO_SNDBUF; Rotary's
    #: own key, v5 ``websocket_send_buffer_size``, v6 ``websocket.send_buffer_size``); 0
    #: leaves it to the kernel's autotuning, which lets it grow to ``net.ipv4.tcp_wmem``.
    send_buffer_size: int = 0
    #: permessage-deflate for clients that offer it (docs/transports.md "Compression").
    compression: bool = False
    #: Messages of at most this many bytes go uncompressed (0: every message is compressed).
    compression_min_size: int = 0
    #: Go's flate level: -2 Huffman only, -1 default (6), 0 none, 1 fastest … 9 smallest.
    compression_level: int = 1
    #: Largest incoming message once inflated (0: ten times ``message_size_limit``).
    decompressed_message_size_limit: int = 0


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    """One HTTP-streaming, SSE, emulation or unidirectional endpoint (docs/transports.md).

    `size_limit` bounds the request body (v5 ``<name>_max_request_body_size``, v6
    ``<name>.max_request_body_size``; for ``uni_websocket`` the largest incoming message,
    ``message_size_limit``). The emulation endpoint has no `enabled` of its own: it is served
    whenever HTTP-streaming or SSE is.
    """

    enabled: bool = False
    handler_prefix: str = ""
    size_limit: int = 65536


@dataclass(frozen=True, slots=True)
class UniSettings:
    """Options of the unidirectional transports beyond their endpoints (docs/transports.md).

    The ``websocket_*`` fields are v5 ``uni_websocket_*`` / v6 ``uni_websocket.*``. A
    ``*_code_to_http`` field is None unless ``<name>.connect_code_to_http_response`` is
    enabled; then a failed connect is answered with the first transform for its code (an
    HTTP status and body) instead of a stream, and with 500 when none matches.
    """

    websocket_join_push_messages: bool = False
    websocket_disable_disconnect_push: bool = False
    websocket_disable_closing_handshake: bool = False
    websocket_write_timeout: float = 1.0
    websocket_compression: bool = False
    websocket_compression_min_size: int = 0
    websocket_compression_level: int = 1
    websocket_decompressed_message_size_limit: int = 0
    sse_code_to_http: tuple[CodeTransform, ...] | None = None
    http_stream_code_to_http: tuple[CodeTransform, ...] | None = None


#: Config fields holding one HTTP-streaming, SSE, emulation or unidirectional endpoint.
ENDPOINTS = ("http_stream", "sse", "emulation", "uni_websocket", "uni_sse", "uni_http_stream")


def _endpoint(prefix: str) -> EndpointSettings:
    return EndpointSettings(handler_prefix=prefix)


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Where to listen (v5 ``address``/``port``, v6 ``http_server.*``)."""

    address: str = ""
    port: int = 8000
    #: A name for this node in the ``info`` API (v5 ``name``, v6 ``node.name``).
    name: str = ""
    health: bool = True
    #: Expose Prometheus metrics at /metrics (v5 ``prometheus``, v6 ``prometheus.enabled``).
    prometheus: bool = False
    #: Seconds between this node's announcements to the other nodes (Rotary's own key,
    #: v5 ``node_info_publish_interval``, v6 ``node.info_publish_interval``); a node unheard
    #: of for three intervals leaves the ``info`` API's list.
    node_info_interval: float = 3.0
    #: Seconds a connection may go without a whole HTTP request before it is closed (Rotary's
    #: own key, v5 ``http_idle_timeout``, v6 ``http_server.idle_timeout``): bounds idle
    #: keep-alive connections and requests whose headers never finish (slowloris).
    idle_timeout: float = 10.0
    #: Allocations (net, of objects the cycle collector tracks) between two collections of
    #: its youngest generation (Rotary's own key, v5 ``gc_gen0_threshold``, v6
    #: ``node.gc_gen0_threshold``). Higher: fewer collections during a reconnect storm;
    #: lower: shorter pauses, each one delaying whatever publication is being fanned out.
    gc_gen0_threshold: int = 50_000


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """Redis engine connection (v5 ``redis_*``, v6 ``engine.redis.*``).

    `addresses` holds one or more ``host:port`` or ``redis://`` addresses; channels are
    sharded over them by a stable hash.
    """

    addresses: tuple[str, ...] = ("127.0.0.1:6379",)
    prefix: str = "centrifugo"
    password: str = ""
    user: str = ""
    db: int = 0
    sentinel_addresses: tuple[str, ...] = ()
    sentinel_master_name: str = ""
    cluster_addresses: tuple[str, ...] = ()
    presence_ttl: float = 60.0
    #: Seconds to establish a connection / to wait for one command's reply.
    connect_timeout: float = 1.0
    io_timeout: float = 4.0


@dataclass(frozen=True, slots=True)
class MapRedisSettings:
    """The Redis map broker (v6 ``map_broker.redis.*``): its own Redis, apart from the engine's.

    `cleanup_interval` is how often expired keys are removed (negative: never);
    `cleanup_batch_size` the most keys one channel loses per round; `idempotent_result_ttl`
    how long an idempotency key suppresses a repeat; `skip_pub_sub` leaves changes
    unbroadcast (state and stream only: live subscribers then hear nothing).
    """

    redis: RedisSettings = field(default_factory=RedisSettings)
    cleanup_interval: float = 1.0
    cleanup_batch_size: int = 100
    idempotent_result_ttl: float = 300.0
    skip_pub_sub: bool = False


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Which engine (v5 ``engine``, v6 ``engine.type``): ``memory`` (default) or ``redis``."""

    type: str = "memory"
    redis: RedisSettings = field(default_factory=RedisSettings)
    #: Where map channels keep their state (v6 ``map_broker.type``): ``memory`` or ``redis``
    #: (the Redis of `map_redis`), whatever `type` is.
    map_broker_type: str = "memory"
    map_redis: MapRedisSettings = field(default_factory=MapRedisSettings)


@dataclass(frozen=True, slots=True)
class LogSettings:
    """Logging (v5 ``log_level``/``log_file``, v6 ``log.level``/``log.file``).

    `json` (Rotary's own ``log_json`` / ``log.json``) writes one JSON object per line.
    """

    level: str = "info"
    file: str = ""
    json: bool = False


@dataclass(frozen=True, slots=True)
class SharedPollSettings:
    """The top-level ``shared_poll`` section (docs/shared-poll.md)."""

    hmac_secret_key: str = ""
    hmac_previous_secret_key: str = ""
    hmac_previous_secret_key_valid_until: int = 0
    concurrency_limit: int = 0


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration. Built once, validated, then only read."""

    auth: AuthSettings = field(default_factory=AuthSettings)
    channels: ChannelSettings = field(default_factory=ChannelSettings)
    client: ClientSettings = field(default_factory=ClientSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    websocket: WebSocketSettings = field(default_factory=WebSocketSettings)
    http_stream: EndpointSettings = field(
        default_factory=lambda: _endpoint("/connection/http_stream")
    )
    sse: EndpointSettings = field(default_factory=lambda: _endpoint("/connection/sse"))
    emulation: EndpointSettings = field(default_factory=lambda: _endpoint("/emulation"))
    uni_websocket: EndpointSettings = field(
        default_factory=lambda: _endpoint("/connection/uni_websocket")
    )
    uni_sse: EndpointSettings = field(default_factory=lambda: _endpoint("/connection/uni_sse"))
    uni_http_stream: EndpointSettings = field(
        default_factory=lambda: _endpoint("/connection/uni_http_stream")
    )
    uni: UniSettings = field(default_factory=UniSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    log: LogSettings = field(default_factory=LogSettings)
    proxy: ProxySettings = field(default_factory=ProxySettings)
    shared_poll: SharedPollSettings = field(default_factory=SharedPollSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
