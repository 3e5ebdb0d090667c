"""The shared poll configuration: the ``shared_poll`` section, the named ``proxies`` and the
namespaces' ``shared_poll`` group, from a file and from the environment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rotary.channels.shared_poll import poll_settings
from rotary.config import ConfigError, load_config

ConfigFile = Callable[..., str]

_PROXIES = [{"name": "poll_backend", "endpoint": "http://127.0.0.1:1/refresh", "timeout": "5s"}]


def _doc(**group: Any) -> dict[str, Any]:
    return {
        "shared_poll": {"hmac_secret_key": "poll-secret"},
        "proxies": _PROXIES,
        "channel": {
            "namespaces": [
                {"name": "poll", "subscription_type": "shared_poll", "shared_poll": group},
            ]
        },
    }


def _problems(config_file: ConfigFile, doc: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(config_file(doc), env={})
    return str(info.value)


def test_shared_poll_namespace_loads_with_its_group_and_named_proxy(
    config_file: ConfigFile,
) -> None:
    group = {
        "proxy_name": "poll_backend",
        "mode": "versioned",
        "refresh_interval": "200ms",
        "refresh_batch_size": 100,
        "max_keys_per_connection": 10,
    }
    warnings: list[str] = []
    config = load_config(config_file(_doc(**group)), env={}, warnings=warnings)
    assert warnings == []
    assert config.shared_poll.hmac_secret_key == "poll-secret"
    (name, proxy), *_ = config.proxy.named
    assert (name, proxy.endpoint, proxy.timeout) == ("poll_backend", _PROXIES[0]["endpoint"], 5.0)
    settings = poll_settings(config.channels.namespaces[0].options)
    assert settings is not None
    assert settings.proxy_name == "poll_backend"
    assert settings.versioned
    assert (settings.refresh_interval, settings.batch_size) == (0.2, 100)
    assert settings.max_keys_per_connection == 10


def test_shared_poll_defaults_are_centrifugos(config_file: ConfigFile) -> None:
    config = load_config(config_file(_doc(proxy_name="poll_backend")), env={})
    settings = poll_settings(config.channels.namespaces[0].options)
    assert settings is not None
    assert not settings.versioned
    assert (settings.refresh_interval, settings.batch_size) == (10.0, 1000)
    assert (settings.max_keys_per_connection, settings.shutdown_delay) == (5000, 1.0)
    assert settings.track_expired_extra_delay == 25.0


def test_shared_poll_configured_from_environment_variables() -> None:
    env = {
        "CENTRIFUGO_SHARED_POLL_HMAC_SECRET_KEY": "poll-secret",
        "CENTRIFUGO_PROXIES": '[{"name": "poll_backend", "endpoint": "http://127.0.0.1:1/r"}]',
        "CENTRIFUGO_CHANNEL_NAMESPACES": "poll",
        "CENTRIFUGO_CHANNEL_NAMESPACES_POLL_SUBSCRIPTION_TYPE": "shared_poll",
        "CENTRIFUGO_CHANNEL_NAMESPACES_POLL_SHARED_POLL_PROXY_NAME": "poll_backend",
        "CENTRIFUGO_CHANNEL_NAMESPACES_POLL_SHARED_POLL_REFRESH_INTERVAL": "2s",
    }
    config = load_config(None, env=env)
    settings = poll_settings(config.channels.namespaces[0].options)
    assert settings is not None
    assert (settings.proxy_name, settings.refresh_interval) == ("poll_backend", 2.0)
    assert config.shared_poll.hmac_secret_key == "poll-secret"


def test_shared_poll_namespace_without_secret_is_refused(config_file: ConfigFile) -> None:
    doc = _doc(proxy_name="poll_backend")
    del doc["shared_poll"]
    assert "shared poll needs shared_poll.hmac_secret_key" in _problems(config_file, doc)


@pytest.mark.parametrize("name", ["", "default"])
def test_shared_poll_namespace_without_a_proxy_name_uses_the_default_proxy(
    config_file: ConfigFile, name: str
) -> None:
    doc = _doc(proxy_name=name)
    endpoint = "http://127.0.0.1:1/default"
    doc["channel"]["proxy"] = {"shared_poll_refresh": {"endpoint": endpoint, "timeout": "3s"}}
    config = load_config(config_file(doc), env={})
    settings = poll_settings(config.channels.namespaces[0].options)
    assert settings is not None
    assert settings.proxy_name == "default"
    assert (
        config.proxy.shared_poll_refresh.endpoint,
        config.proxy.shared_poll_refresh.timeout,
    ) == (
        endpoint,
        3.0,
    )


@pytest.mark.parametrize("name", ["", "default"])
def test_shared_poll_namespace_without_a_proxy_name_needs_the_default_proxy_endpoint(
    config_file: ConfigFile, name: str
) -> None:
    problems = _problems(config_file, _doc(proxy_name=name))
    expected = "channel.namespaces.poll.shared_poll.proxy_name: empty or default needs"
    assert expected in problems


def test_default_shared_poll_proxy_endpoint_must_be_an_http_url(config_file: ConfigFile) -> None:
    doc = _doc()
    doc["channel"]["proxy"] = {"shared_poll_refresh": {"endpoint": "grpc://app:9000"}}
    assert "must be an http:// or https:// URL" in _problems(config_file, doc)


def test_shared_poll_proxy_name_must_be_in_the_proxies_list(config_file: ConfigFile) -> None:
    problems = _problems(config_file, _doc(proxy_name="elsewhere"))
    assert "channel.namespaces.poll.shared_poll.proxy_name: no proxy named 'elsewhere'" in problems


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        ({"mode": "sometimes"}, 'must be "versionless" or "versioned"'),
        ({"publish_enabled": True}, "shared_poll.publish_enabled: needs mode versioned"),
    ],
)
def test_bad_shared_poll_group_values_are_refused(
    config_file: ConfigFile, group: dict[str, Any], expected: str
) -> None:
    assert expected in _problems(config_file, _doc(proxy_name="poll_backend", **group))


def test_publish_enabled_versioned_namespace_loads(config_file: ConfigFile) -> None:
    doc = _doc(proxy_name="poll_backend", mode="versioned", publish_enabled=True)
    settings = poll_settings(load_config(config_file(doc), env={}).channels.namespaces[0].options)
    assert settings is not None
    assert settings.publish_enabled


def test_proxy_fields_rotary_lacks_are_ignored_with_a_warning(config_file: ConfigFile) -> None:
    doc = _doc(proxy_name="poll_backend")
    doc["proxies"] = [{**_PROXIES[0], "grpc": {"compression": True}}]
    warnings: list[str] = []
    load_config(config_file(doc), env={}, warnings=warnings)
    assert warnings == ["proxies[0].grpc: ignored, Rotary's proxies are plain HTTP"]


def test_named_proxy_endpoint_must_be_an_http_url(config_file: ConfigFile) -> None:
    doc = _doc(proxy_name="poll_backend")
    doc["proxies"] = [{"name": "poll_backend", "endpoint": "grpc://127.0.0.1:1"}]
    assert "proxies.poll_backend.endpoint: must be an http(s) URL" in _problems(config_file, doc)
