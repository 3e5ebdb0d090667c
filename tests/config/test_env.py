"""Environment variables and command-line overrides on top of the file."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rotary.config import ConfigError, load_config
from rotary.config.keys import env_names

ConfigFile = Callable[..., str]


def test_centrifugo_v5_variable_sets_a_key() -> None:
    config = load_config(None, env={"CENTRIFUGO_TOKEN_HMAC_SECRET_KEY": "from-env"})
    assert config.auth.connection.hmac_secret_key == "from-env"


def test_v6_nested_path_variables_work_with_both_prefixes() -> None:
    env = {"CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY": "c", "ROTARY_HTTP_SERVER_PORT": "9001"}
    config = load_config(None, env=env)
    assert config.auth.connection.hmac_secret_key == "c"
    assert config.server.port == 9001


def test_rotary_prefix_wins_over_centrifugo_prefix() -> None:
    env = {"CENTRIFUGO_API_KEY": "centrifugo", "ROTARY_API_KEY": "rotary"}
    assert load_config(None, env=env).api.key == "rotary"


def test_rotary_v5_name_wins_over_centrifugo_v6_name() -> None:
    env = {"CENTRIFUGO_HTTP_API_KEY": "centrifugo", "ROTARY_API_KEY": "rotary"}
    assert load_config(None, env=env).api.key == "rotary"


def test_environment_wins_over_the_file(config_file: ConfigFile) -> None:
    path = config_file({"api_key": "file", "log": {"level": "warn"}})
    config = load_config(path, env={"CENTRIFUGO_API_KEY": "env", "ROTARY_LOG_LEVEL": "error"})
    assert (config.api.key, config.log.level) == ("env", "error")


def test_overrides_win_over_environment_and_file(config_file: ConfigFile) -> None:
    path = config_file({"port": 8001, "address": "10.0.0.1"})
    config = load_config(
        path,
        env={"ROTARY_PORT": "8002"},
        overrides={"port": 8003, "log_level": "debug"},
    )
    assert (config.server.port, config.server.address, config.log.level) == (
        8003,
        "10.0.0.1",
        "debug",
    )


def test_string_overrides_are_read_like_environment_values() -> None:
    config = load_config(None, env={}, overrides={"port": "8004", "presence": "true"})
    assert config.server.port == 8004
    assert config.channels.without_namespace.presence


@pytest.mark.parametrize(("text", "value"), [("true", True), ("1", True), ("FALSE", False)])
def test_booleans_from_environment(text: str, value: bool) -> None:
    config = load_config(None, env={"ROTARY_CLIENT_INSECURE": text})
    assert config.client.insecure is value


def test_lists_from_environment_as_json_or_commas() -> None:
    env = {
        "ROTARY_ALLOWED_ORIGINS": '["http://a", "http://b"]',
        "CENTRIFUGO_REDIS_ADDRESS": "h1:6379, h2:6379",
    }
    config = load_config(None, env=env)
    assert config.client.allowed_origins == ("http://a", "http://b")
    assert config.engine.redis.addresses == ("h1:6379", "h2:6379")


def test_durations_and_namespaces_from_environment() -> None:
    env = {
        "ROTARY_PING_INTERVAL": "30s",
        "CENTRIFUGO_NAMESPACES": '[{"name": "chat", "presence": true, "history_ttl": "1m"}]',
    }
    config = load_config(None, env=env)
    assert config.client.ping_interval == 30.0
    [chat] = config.channels.namespaces
    assert (chat.name, chat.options.presence, chat.options.history_ttl) == ("chat", True, 60.0)


def test_bad_environment_values_are_reported_under_the_variable_name() -> None:
    env = {"ROTARY_CLIENT_INSECURE": "yes", "ROTARY_PORT": "http", "ROTARY_PONG_TIMEOUT": "8"}
    with pytest.raises(ConfigError) as caught:
        load_config(None, env=env)
    text = "\n".join(caught.value.problems)
    assert "ROTARY_CLIENT_INSECURE: expected true, false, 1 or 0" in text
    assert "ROTARY_PORT: expected an integer" in text
    assert "ROTARY_PONG_TIMEOUT: missing unit" in text


def test_unrelated_variables_are_ignored() -> None:
    env = {"CENTRIFUGO_NOT_A_KEY": "x", "ROTARY_WHATEVER": "y", "PATH": "/bin"}
    assert load_config(None, env=env) == load_config(None, env={})


def test_each_unknown_prefixed_variable_gets_a_warning_naming_it() -> None:
    env = {"CENTRIFUGO_NOT_A_KEY": "x", "ROTARY_WHATEVER": "y", "PATH": "/bin", "ROTARY_PORT": "1"}
    warnings: list[str] = []
    load_config(None, env=env, warnings=warnings)
    assert warnings == [
        "unknown environment variable CENTRIFUGO_NOT_A_KEY",
        "unknown environment variable ROTARY_WHATEVER",
    ]


def test_kubernetes_service_and_substitution_variables_get_no_warning() -> None:
    env = {
        "CENTRIFUGO_PORT_8000_TCP_ADDR": "10.0.0.1",
        "CENTRIFUGO_SERVICE_HOST": "10.0.0.1",
        "CENTRIFUGO_VAR_SECRET": "s",
        "ROTARY_REVOCATION_CHECKS": "on",
    }
    warnings: list[str] = []
    load_config(None, env=env, warnings=warnings)
    assert warnings == []


def test_unknown_variables_are_reported_even_when_loading_fails() -> None:
    warnings: list[str] = []
    with pytest.raises(ConfigError):
        load_config(None, env={"ROTARY_PORT": "x", "ROTARY_TYPO": "1"}, warnings=warnings)
    assert warnings == ["unknown environment variable ROTARY_TYPO"]


def test_empty_variable_counts_as_unset(config_file: ConfigFile) -> None:
    path = config_file({"api_key": "file", "port": 8001})
    config = load_config(path, env={"CENTRIFUGO_API_KEY": "", "ROTARY_PORT": ""})
    assert (config.api.key, config.server.port) == ("file", 8001)


@pytest.mark.parametrize("names", ["chat feed", "chat,feed", " chat , feed "])
def test_namespace_names_from_environment_v6_form(names: str) -> None:
    env = {
        "CENTRIFUGO_CHANNEL_NAMESPACES": names,
        "CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_PRESENCE": "true",
        "CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_HISTORY_TTL": "1m",
        "CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_HISTORY_SIZE": "10",
        "CENTRIFUGO_CHANNEL_NAMESPACES_FEED_ALLOWED_DELTA_TYPES": "fossil",
    }
    warnings: list[str] = []
    config = load_config(None, env=env, warnings=warnings)
    chat, feed = config.channels.namespaces
    assert (chat.name, chat.options.presence, chat.options.history_ttl) == ("chat", True, 60.0)
    assert chat.options.history_size == 10 and not feed.options.presence
    assert (feed.name, feed.options.allowed_delta_types) == ("feed", ("fossil",))
    assert warnings == []


def test_namespace_names_with_dots_and_dashes_use_underscores_in_variables() -> None:
    env = {
        "CENTRIFUGO_CHANNEL_NAMESPACES": "live-feed",
        "CENTRIFUGO_CHANNEL_NAMESPACES_LIVE_FEED_PRESENCE": "true",
    }
    [ns] = load_config(None, env=env).channels.namespaces
    assert (ns.name, ns.options.presence) == ("live-feed", True)


def test_namespace_option_variables_apply_to_namespaces_of_the_file(
    config_file: ConfigFile,
) -> None:
    path = config_file({"channel": {"namespaces": [{"name": "chat", "history_size": 5}]}})
    env = {
        "CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_HISTORY_SIZE": "20",
        "ROTARY_CHANNEL_NAMESPACES_CHAT_JOIN_LEAVE": "1",
        "CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_JOIN_LEAVE": "0",
    }
    [chat] = load_config(path, env=env).channels.namespaces
    assert (chat.options.history_size, chat.options.join_leave) == (20, True)


def test_option_variable_of_an_unlisted_namespace_gets_a_warning() -> None:
    env = {
        "CENTRIFUGO_CHANNEL_NAMESPACES": "chat",
        "CENTRIFUGO_CHANNEL_NAMESPACES_NEWS_PRESENCE": "true",
        "CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_PRESENSE": "true",
    }
    warnings: list[str] = []
    load_config(None, env=env, warnings=warnings)
    assert warnings == [
        "unknown environment variable CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_PRESENSE",
        "unknown environment variable CENTRIFUGO_CHANNEL_NAMESPACES_NEWS_PRESENCE",
    ]


def test_bad_namespace_option_variable_is_reported_under_its_name() -> None:
    env = {
        "CENTRIFUGO_CHANNEL_NAMESPACES": "chat",
        "CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_PRESENCE": "yes",
    }
    with pytest.raises(ConfigError) as caught:
        load_config(None, env=env)
    assert caught.value.problems == [
        "CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_PRESENCE: expected true, false, 1 or 0, got 'yes'"
    ]


def test_namespace_list_from_environment_replaces_the_files(config_file: ConfigFile) -> None:
    path = config_file({"namespaces": [{"name": "old"}]})
    config = load_config(path, env={"ROTARY_CHANNEL_NAMESPACES": "new"})
    assert [ns.name for ns in config.channels.namespaces] == ["new"]


def test_unknown_override_names_are_reported_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match='logg_level: unknown key; did you mean "log_level"'):
        load_config(None, env={}, overrides={"logg_level": "info"})


def test_every_environment_name_means_one_setting() -> None:
    seen: dict[str, str] = {}
    for name, key in env_names():
        assert seen.setdefault(name, key.dest) == key.dest, name


def test_namespace_proxy_switch_takes_its_v6_spelling_from_environment() -> None:
    env = {
        "CENTRIFUGO_PROXY_SUBSCRIBE_ENDPOINT": "http://127.0.0.1:9/subscribe",
        "CENTRIFUGO_CHANNEL_NAMESPACES": "chat",
        "CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_SUBSCRIBE_PROXY_ENABLED": "true",
    }
    warnings: list[str] = []
    [chat] = load_config(None, env=env, warnings=warnings).channels.namespaces
    assert chat.options.proxy_subscribe and warnings == []
