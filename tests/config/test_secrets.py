"""Configuration errors never echo the value of a key that may hold a secret."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rotary.config import ConfigError, load_config
from rotary.config.values import is_sensitive

ConfigFile = Callable[..., str]
SECRET = "hunter2-do-not-print"


def problems_of(path: str | None, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env or {})
    return caught.value.problems


def test_a_list_as_hmac_secret_key_is_reported_by_type_without_its_value(
    config_file: ConfigFile,
) -> None:
    problems = problems_of(config_file({"token_hmac_secret_key": [SECRET, "second"]}))
    assert problems == ["token_hmac_secret_key: expected a string, got a list"]
    assert SECRET not in str(problems)


def test_v6_nested_secret_keys_hide_their_values_too(config_file: ConfigFile) -> None:
    doc = {"client": {"token": {"hmac_secret_key": {"value": SECRET}}}, "http_api": {"key": 7}}
    problems = problems_of(config_file(doc))
    assert "client.token.hmac_secret_key: expected a string, got an object" in problems
    assert "http_api.key: expected a string, got a number" in problems
    assert SECRET not in str(problems)


def test_secret_named_keys_from_the_environment_hide_their_values() -> None:
    env = {"CENTRIFUGO_TOKEN_HMAC_PREVIOUS_SECRET_KEY_VALID_UNTIL": SECRET}
    problems = problems_of(None, env)
    assert len(problems) == 1 and problems[0].endswith("expected an integer, got a string")
    assert SECRET not in str(problems)


def test_ordinary_keys_still_show_the_bad_value(config_file: ConfigFile) -> None:
    problems = problems_of(config_file({"client_channel_limit": "many"}))
    assert problems == ['client_channel_limit: expected an integer, got "many"']


@pytest.mark.parametrize(
    ("label", "sensitive"),
    [
        ("token_hmac_secret_key", True),
        ("client.token.hmac_secret_key", True),
        ("http_api.key", True),
        ("admin_password", True),
        ("CENTRIFUGO_CLIENT_TOKEN_AUDIENCE", True),
        ("client_channel_limit", False),
        ("namespaces.keys.history_size", False),
    ],
)
def test_keys_naming_secret_key_password_or_token_count_as_sensitive(
    label: str, sensitive: bool
) -> None:
    assert is_sensitive(label) is sensitive
