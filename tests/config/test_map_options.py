"""The map subscription options: Centrifugo's v6 ``map`` group, defaults and load-time rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rotary.channels.maps import map_settings
from rotary.channels.shared_poll import poll_settings
from rotary.config import ConfigError, load_config

ConfigFile = Callable[..., str]


def _load_namespace(config_file: ConfigFile, **options: Any) -> Any:
    doc = {"channel": {"namespaces": [{"name": "game", **options}]}}
    return load_config(config_file(doc), env={}).channels.namespaces[0].options


def _problems(config_file: ConfigFile, **options: Any) -> str:
    with pytest.raises(ConfigError) as info:
        _load_namespace(config_file, **options)
    return str(info.value)


def test_v6_map_group_of_a_namespace_loads_into_map_options(config_file: ConfigFile) -> None:
    opts = _load_namespace(
        config_file,
        subscription_type="map",
        map={"mode": "recoverable", "key_ttl": "30s", "stream_size": 50, "max_page_size": 500},
    )
    settings = map_settings(opts)
    assert settings is not None
    assert (settings.mode, settings.key_ttl, settings.stream_size) == ("recoverable", 30.0, 50)
    assert (settings.stream_ttl, settings.meta_ttl, settings.max_page_size) == (60.0, 600.0, 500)


def test_top_level_map_options_load_from_the_v6_path(config_file: ConfigFile) -> None:
    doc = {
        "channel": {
            "without_namespace": {
                "subscription_type": "map",
                "map": {"mode": "persistent", "stream_ttl": "2m"},
            }
        }
    }
    settings = map_settings(load_config(config_file(doc), env={}).channels.without_namespace)
    assert settings is not None
    assert (settings.mode, settings.stream_size, settings.stream_ttl) == ("persistent", 100, 120.0)
    assert settings.meta_ttl == 0  # persistent: the position never expires


def test_ephemeral_map_keeps_no_stream(config_file: ConfigFile) -> None:
    opts = _load_namespace(
        config_file, subscription_type="map", map={"mode": "ephemeral", "key_ttl": "10s"}
    )
    settings = map_settings(opts)
    assert settings is not None and not settings.has_stream


def test_stream_namespace_has_no_map_settings(config_file: ConfigFile) -> None:
    assert map_settings(_load_namespace(config_file, presence=True)) is None


def test_map_type_without_mode_is_refused(config_file: ConfigFile) -> None:
    assert "map_mode: must be set" in _problems(config_file, subscription_type="map")


def test_expiring_mode_without_key_ttl_is_refused(config_file: ConfigFile) -> None:
    text = _problems(config_file, subscription_type="map", map={"mode": "recoverable"})
    assert "map_key_ttl: must be positive" in text


def test_persistent_mode_with_key_ttl_is_refused(config_file: ConfigFile) -> None:
    text = _problems(
        config_file, subscription_type="map", map={"mode": "persistent", "key_ttl": "5s"}
    )
    assert "keys never expire" in text


def test_ephemeral_mode_with_a_stream_is_refused(config_file: ConfigFile) -> None:
    text = _problems(
        config_file,
        subscription_type="map",
        map={"mode": "ephemeral", "key_ttl": "5s", "stream_size": 10},
    )
    assert "map_stream_size: must be 0 for map mode ephemeral" in text


def test_unknown_map_option_is_named(config_file: ConfigFile) -> None:
    text = _problems(config_file, subscription_type="map", map={"mode": "persistent", "colour": 1})
    assert "game.map.colour: unknown namespace option" in text


def test_tags_filter_and_debounce_options_load_without_warnings(config_file: ConfigFile) -> None:
    doc = {
        "channel": {
            "namespaces": [
                {
                    "name": "game",
                    "client_publish_debounce_interval": "50ms",
                    "allow_tags_filter": True,
                }
            ]
        }
    }
    warnings: list[str] = []
    config = load_config(config_file(doc), env={}, warnings=warnings)
    [game] = config.channels.namespaces
    assert (game.options.client_publish_debounce_interval, game.options.allow_tags_filter) == (
        0.05,
        True,
    )
    assert warnings == []


def test_the_shared_poll_group_of_a_stream_namespace_loads_without_effect(
    config_file: ConfigFile,
) -> None:
    doc = {"channel": {"namespaces": [{"name": "game", "shared_poll": {"mode": "versioned"}}]}}
    warnings: list[str] = []
    config = load_config(config_file(doc), env={}, warnings=warnings)
    [game] = config.channels.namespaces
    assert warnings == []
    assert game.options.shared_poll_mode == "versioned"
    assert poll_settings(game.options) is None


def test_a_subscription_type_rotary_does_not_know_is_still_refused(
    config_file: ConfigFile,
) -> None:
    assert "subscription_type: must be" in _problems(config_file, subscription_type="sharedpoll")


def test_presence_maps_cannot_be_persistent(config_file: ConfigFile) -> None:
    text = _problems(config_file, subscription_type="map_clients", map={"mode": "persistent"})
    assert "presence maps need expiring keys" in text


def _two_namespaces(config_file: ConfigFile, target_type: str) -> str:
    doc = {
        "channel": {
            "namespaces": [
                {"name": "chat", "map_clients_presence_channel_prefix": "pc:"},
                {
                    "name": "pc",
                    "subscription_type": target_type,
                    "map": {"mode": "ephemeral", "key_ttl": "30s"},
                },
            ]
        }
    }
    return config_file(doc)


def test_presence_prefix_must_name_a_namespace_of_the_matching_type(
    config_file: ConfigFile,
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_two_namespaces(config_file, "map_users"), env={})
    assert "map_clients_presence_channel_prefix: namespace 'pc' has subscription_type" in str(
        info.value
    )
    loaded = load_config(_two_namespaces(config_file, "map_clients"), env={})
    assert loaded.channels.namespaces[0].options.map_clients_presence_channel_prefix == "pc:"


def test_page_sizes_must_be_in_order(config_file: ConfigFile) -> None:
    text = _problems(
        config_file,
        subscription_type="map",
        map={"mode": "persistent", "min_page_size": 50, "max_page_size": 10},
    )
    assert "map_min_page_size: must not exceed map max_page_size" in text
