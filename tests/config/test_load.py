"""Loading v5 and v6 layouts from JSON, YAML and TOML into one immutable `Config`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from rotary.auth.settings import AuthSettings, TokenSettings
from rotary.channels.options import ChannelOptions, ChannelSettings, Namespace
from rotary.config import Config, ConfigError, load_config
from tests.config.conftest import V5, V6

ConfigFile = Callable[..., str]


def expected_config() -> Config:
    """The auth and channel parts both V5 and V6 describe, written out by hand."""
    chat = ChannelOptions(
        join_leave=True,
        allow_user_limited_channels=True,
        channel_regex="^[a-z]+$",
        allowed_delta_types=("fossil",),
    )
    return Config(
        auth=AuthSettings(
            connection=TokenSettings(
                hmac_secret_key="secret",
                hmac_previous_secret_key="old-secret",
                hmac_previous_secret_key_valid_until=1_800_000_000,
                audience="rotary",
                issuer_regex=r"^https://(?P<tenant>\w+)\.example$",
                user_id_claim="uid",
            ),
            subscription=TokenSettings(hmac_secret_key="sub-secret", issuer="me"),
            leeway=2.0,
            cache_size=100,
        ),
        channels=ChannelSettings(
            max_length=100,
            history_meta_ttl=48 * 3600.0,
            without_namespace=ChannelOptions(
                presence=True, history_size=10, history_ttl=300.0, force_recovery=True
            ),
            namespaces=(
                Namespace("chat", chat),
                Namespace("personal", ChannelOptions(presence=True, history_meta_ttl=3600.0)),
            ),
        ),
    )


def test_v5_json_loads_every_section(config_file: ConfigFile) -> None:
    config = load_config(config_file(V5), env={})
    assert config.auth == expected_config().auth
    assert config.channels == expected_config().channels
    assert config.client.allow_anonymous_connect_without_token
    assert config.client.allowed_origins == ("http://localhost:3000",)
    assert (config.client.ping_interval, config.client.pong_timeout) == (20.0, 5.0)
    assert config.client.channel_limit == 64
    assert config.client.expired_close_delay == 90.0
    assert config.client.subscribe_to_personal
    assert config.client.personal_channel_namespace == "personal"
    assert config.client.rpc_ping
    assert config.api.key == "api-key"
    assert config.websocket.message_size_limit == 1000
    assert (config.server.address, config.server.port, config.server.name) == (
        "127.0.0.1",
        9000,
        "node-1",
    )
    assert config.server.prometheus and config.server.health
    assert (config.log.level, config.log.json) == ("debug", True)
    assert config.engine.type == "redis"
    assert config.engine.redis.addresses == ("127.0.0.1:6379", "127.0.0.1:6380")
    assert (config.engine.redis.prefix, config.engine.redis.db) == ("rot", 2)
    assert config.engine.redis.presence_ttl == 30.0


@pytest.mark.parametrize("ext", ["json", "yaml", "yml", "toml"])
@pytest.mark.parametrize("layout", ["v5", "v6"])
def test_every_layout_and_format_loads_to_the_same_config(
    config_file: ConfigFile, ext: str, layout: str
) -> None:
    reference = load_config(config_file(V5, "json"), env={})
    doc = V5 if layout == "v5" else V6
    assert load_config(config_file(doc, ext), env={}) == reference


def test_config_is_immutable(config_file: ConfigFile) -> None:
    config = load_config(config_file(V5), env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.server.port = 1  # type: ignore[misc]


def test_empty_config_gives_the_defaults(config_file: ConfigFile) -> None:
    assert load_config(config_file({}), env={}) == Config()


def test_missing_file_at_the_default_path_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config(env={}) == Config()


def test_missing_file_named_explicitly_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(str(tmp_path / "mine.json"), env={})


@pytest.mark.parametrize(
    ("ext", "text"),
    [
        ("json", '{"port": 80,,}'),
        ("yaml", "port: [1, 2\nother: {"),
        ("toml", "port = = 1"),
    ],
)
def test_parse_errors_are_one_line(tmp_path: Path, ext: str, text: str) -> None:
    path = tmp_path / f"broken.{ext}"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), env={})
    [problem] = caught.value.problems
    assert "\n" not in problem
    assert problem.startswith(f"{path}: cannot parse {ext}")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(str(path), env={})


def test_unsupported_extension_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.ini"
    path.write_text("port=1")
    with pytest.raises(ConfigError, match="unsupported config file extension"):
        load_config(str(path), env={})


def test_v5_and_v6_keys_mix_when_they_do_not_overlap(config_file: ConfigFile) -> None:
    doc = {"token_hmac_secret_key": "s", "http_server": {"port": 8001}, "log_level": "warn"}
    config = load_config(config_file(doc), env={})
    assert (config.auth.connection.hmac_secret_key, config.server.port) == ("s", 8001)
    assert config.log.level == "warn"


def test_the_same_setting_in_both_layouts_is_a_conflict(config_file: ConfigFile) -> None:
    doc = {"port": 8000, "http_server": {"port": 8001}}
    with pytest.raises(ConfigError, match=r"http_server\.port: conflicts with port"):
        load_config(config_file(doc), env={})


def test_client_anonymous_is_an_alias_of_anonymous_connect(config_file: ConfigFile) -> None:
    config = load_config(config_file({"client_anonymous": True}), env={})
    assert config.client.allow_anonymous_connect_without_token


def test_port_may_be_written_as_a_string_like_centrifugo_v5(config_file: ConfigFile) -> None:
    assert load_config(config_file({"port": "8123"}), env={}).server.port == 8123


def test_redis_address_may_be_one_string(config_file: ConfigFile) -> None:
    config = load_config(config_file({"redis_address": "10.0.0.1:6379"}), env={})
    assert config.engine.redis.addresses == ("10.0.0.1:6379",)


def test_subscription_settings_are_ignored_until_enabled(config_file: ConfigFile) -> None:
    config = load_config(config_file({"subscription_token_hmac_secret_key": "x"}), env={})
    assert config.auth.subscription is None


def test_ed25519_key_and_rotary_token_keys_load(config_file: ConfigFile) -> None:
    doc = {
        "client": {
            "token": {
                "ed25519_public_key": "PEM",
                "jwks_public_endpoint": "https://keys.example/jwks",
                "jwks_cache_ttl": "10m",
                "max_size": 4096,
            }
        }
    }
    auth = load_config(config_file(doc), env={}).auth
    assert auth.connection.ed25519_public_key == "PEM"
    assert auth.connection.jwks_public_endpoint == "https://keys.example/jwks"
    assert (auth.jwks_cache_ttl, auth.max_token_size) == (600.0, 4096)


def test_generated_centrifugo_admin_keys_are_read_in_both_layouts(config_file: ConfigFile) -> None:
    flat = {"admin_password": "p", "admin_secret": "s", "admin": True}
    nested = {"admin": {"enabled": True, "password": "p", "secret": "s"}}
    for doc in (flat, nested):
        admin = load_config(config_file(doc), env={}).admin
        assert (admin.enabled, admin.password, admin.secret, admin.insecure) == (
            True,
            "p",
            "s",
            False,
        )


def test_admin_enabled_without_password_and_secret_is_refused(config_file: ConfigFile) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(config_file({"admin": {"enabled": True}}), env={})
    assert caught.value.problems == [
        "admin_password: must be set when the admin UI is enabled",
        "admin_secret: must be set when the admin UI is enabled",
    ]


def test_the_admin_ui_cannot_share_the_root_path_with_the_api(config_file: ConfigFile) -> None:
    doc = {"admin": True, "admin_password": "p", "admin_secret": "s", "api_handler_prefix": "/"}
    with pytest.raises(ConfigError) as caught:
        load_config(config_file(doc), env={})
    assert caught.value.problems == [
        "api_handler_prefix: the admin UI is served at /, so this path cannot be / as well"
    ]


def test_an_admin_token_ttl_of_zero_is_refused(config_file: ConfigFile) -> None:
    doc = {"admin": {"enabled": True, "password": "p", "secret": "s", "token_ttl": "0s"}}
    with pytest.raises(ConfigError) as caught:
        load_config(config_file(doc), env={})
    assert caught.value.problems == ["admin.token_ttl: must be positive"]


def test_insecure_admin_on_every_address_is_refused_unless_allowed(
    config_file: ConfigFile,
) -> None:
    doc: dict[str, object] = {"admin": True, "admin_insecure": True}
    with pytest.raises(ConfigError) as caught:
        load_config(config_file(doc), env={})
    assert caught.value.problems[0].startswith("admin_insecure: refused on every address")
    assert load_config(config_file({**doc, "address": "127.0.0.1"}), env={}).admin.insecure
    allowed = {**doc, "admin_insecure_allow_remote": True}
    assert load_config(config_file(allowed), env={}).admin.insecure_allow_remote


def test_null_values_count_as_absent(config_file: ConfigFile) -> None:
    assert load_config(config_file({"port": None, "log": {"level": None}}), env={}) == Config()
