"""Channel options per namespace and the separators of channel names (docs/channels.md).

Frozen values built by `rotary.config`; the resolver in this package compiles them once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ChannelOptions", "ChannelSettings", "Namespace"]


@dataclass(frozen=True, slots=True)
class ChannelOptions:
    """Options of one namespace, or of channels without a namespace (docs/channels.md "Channel
    options").

    Durations are seconds. ``history_meta_ttl`` 0 means the global default.
    """

    presence: bool = False
    join_leave: bool = False
    force_push_join_leave: bool = False
    history_size: int = 0
    history_ttl: float = 0.0
    history_meta_ttl: float = 0.0
    force_positioning: bool = False
    allow_positioning: bool = False
    force_recovery: bool = False
    allow_recovery: bool = False
    force_recovery_mode: str = ""
    allow_subscribe_for_client: bool = False
    allow_subscribe_for_anonymous: bool = False
    allow_publish_for_client: bool = False
    allow_publish_for_subscriber: bool = False
    allow_publish_for_anonymous: bool = False
    allow_presence_for_client: bool = False
    allow_presence_for_subscriber: bool = False
    allow_presence_for_anonymous: bool = False
    allow_history_for_client: bool = False
    allow_history_for_subscriber: bool = False
    allow_history_for_anonymous: bool = False
    allow_user_limited_channels: bool = False
    channel_regex: str = ""
    #: Delta compression types a subscriber may negotiate (only ``fossil`` exists).
    allowed_delta_types: tuple[str, ...] = ()
    delta_publish: bool = False
    #: Subscribers may send a tags filter (docs/channels.md "Tags filters").
    allow_tags_filter: bool = False
    #: Seconds the SDKs wait to coalesce a subscriber's publications (the subscribe result's
    #: ``publish_debounce``); 0: no debouncing.
    client_publish_debounce_interval: float = 0.0
    #: Subscribe, publish and sub_refresh of these channels go to the proxy of that kind
    #: (v5 ``proxy_subscribe``…, v6 ``subscribe_proxy_enabled``…; docs/backend.md).
    proxy_subscribe: bool = False
    proxy_publish: bool = False
    proxy_sub_refresh: bool = False
    #: ``stream`` (or "", the default) or ``map`` (docs/map-subscriptions.md).
    subscription_type: str = ""
    #: The ``map`` group (v6 ``map.mode`` …): ``ephemeral``, ``recoverable`` or ``persistent``.
    map_mode: str = ""
    map_key_ttl: float = 0.0
    map_stream_size: int = 0
    map_stream_ttl: float = 0.0
    map_meta_ttl: float = 0.0
    map_default_page_size: int = 0
    map_min_page_size: int = 0
    map_max_page_size: int = 0
    map_live_transition_max_publication_limit: int = 0
    map_subscribe_catch_up_timeout: float = 0.0
    map_allow_publish_for_client: bool = False
    map_allow_publish_for_subscriber: bool = False
    map_allow_publish_for_anonymous: bool = False
    map_allow_remove_for_client: bool = False
    map_allow_remove_for_subscriber: bool = False
    map_allow_remove_for_anonymous: bool = False
    #: The key a client writes: "" (the one it names), ``client_id`` or ``user_id``.
    map_client_key: str = ""
    #: A map subscriber's own key (its client id) is removed when it unsubscribes.
    map_remove_client_on_unsubscribe: bool = False
    #: A client's key write (removal) goes to the map_publish (map_remove) proxy, which
    #: decides instead of the ``allow_*`` options and ``client_key`` (v6
    #: ``map.publish_proxy_enabled``, ``map.remove_proxy_enabled``).
    map_publish_proxy_enabled: bool = False
    map_remove_proxy_enabled: bool = False
    #: Channels of this namespace publish who is subscribed into the map channel
    #: ``<prefix><channel>`` (client ids, or user ids), a namespace of type map_clients/users.
    map_clients_presence_channel_prefix: str = ""
    map_users_presence_channel_prefix: str = ""
    #: The ``shared_poll`` group (v6 ``shared_poll.proxy_name`` …; docs/shared-poll.md).
    shared_poll_proxy_name: str = ""
    shared_poll_mode: str = ""
    shared_poll_refresh_interval: float = 0.0
    shared_poll_refresh_batch_size: int = 0
    shared_poll_max_keys_per_connection: int = 0
    shared_poll_channel_shutdown_delay: float = 0.0
    shared_poll_track_expired_extra_delay: float = 0.0
    shared_poll_publish_enabled: bool = False

    @property
    def history_enabled(self) -> bool:
        """History is kept only when both a size and a retention are set."""
        return self.history_size > 0 and self.history_ttl > 0


@dataclass(frozen=True, slots=True)
class Namespace:
    """A named namespace: channels ``<name>:<rest>`` get `options`."""

    name: str
    options: ChannelOptions = field(default_factory=ChannelOptions)


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    """Separators, limits and namespaces of channel names (docs/channels.md "Names",
    docs/config.md)."""

    private_prefix: str = "$"
    namespace_boundary: str = ":"
    user_boundary: str = "#"
    user_separator: str = ","
    max_length: int = 255
    #: ``global_history_meta_ttl`` / v6 ``channel.history_meta_ttl``, seconds (720h).
    history_meta_ttl: float = 720 * 3600.0
    without_namespace: ChannelOptions = field(default_factory=ChannelOptions)
    namespaces: tuple[Namespace, ...] = ()
