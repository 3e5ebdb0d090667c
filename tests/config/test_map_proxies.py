"""The map group's proxy switches and the map_publish / map_remove proxy endpoints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rotary.config import ConfigError, load_config

ConfigFile = Callable[..., str]


def _game(**map_options: Any) -> dict[str, Any]:
    return {
        "name": "game",
        "subscription_type": "map",
        "map": {"mode": "persistent", **map_options},
    }


def test_map_proxy_switches_and_endpoints_are_read_in_v6_names(config_file: ConfigFile) -> None:
    proxy = {
        "map_publish": {"endpoint": "http://b/pub", "timeout": "2s"},
        "map_remove": {"endpoint": "http://b/rm", "include_connection_meta": True},
    }
    game = _game(
        publish_proxy_enabled=True,
        publish_proxy_name="default",
        remove_proxy_enabled=True,
    )
    path = config_file({"channel": {"namespaces": [game], "proxy": proxy}})
    config = load_config(path)

    options = config.channels.namespaces[0].options
    assert (options.map_publish_proxy_enabled, options.map_remove_proxy_enabled) == (True, True)
    assert (config.proxy.map_publish.endpoint, config.proxy.map_publish.timeout) == (
        "http://b/pub",
        2.0,
    )
    assert config.proxy.map_remove.include_connection_meta is True


def test_map_proxy_endpoint_comes_from_the_environment() -> None:
    env = {
        "CENTRIFUGO_CHANNEL_PROXY_MAP_REMOVE_ENDPOINT": "http://b/rm",
        "ROTARY_CHANNEL_WITHOUT_NAMESPACE_MAP_REMOVE_PROXY_ENABLED": "true",
    }
    config = load_config(None, env=env)

    assert config.proxy.map_remove.endpoint == "http://b/rm"
    assert config.channels.without_namespace.map_remove_proxy_enabled is True


def test_a_map_proxy_switch_without_its_endpoint_is_refused(config_file: ConfigFile) -> None:
    path = config_file({"channel": {"namespaces": [_game(publish_proxy_enabled=True)]}})
    with pytest.raises(ConfigError, match=r"map_publish_proxy_enabled: needs .*map_publish"):
        load_config(path)


def test_a_named_map_proxy_is_refused(config_file: ConfigFile) -> None:
    path = config_file({"channel": {"namespaces": [_game(remove_proxy_name="other")]}})
    with pytest.raises(ConfigError, match="no named proxies"):
        load_config(path)
