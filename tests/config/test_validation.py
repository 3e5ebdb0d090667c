"""Validation reports every problem at once, each under the key the user wrote."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rotary.config import ConfigError, load_config

ConfigFile = Callable[..., str]


def problems_of(path: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    return caught.value.problems


BAD_V5: dict[str, Any] = {
    "token_hmac_secret": "typo",
    "token_audience": "a",
    "token_audience_regex": "^a$",
    "token_issuer": "i",
    "token_issuer_regex": "(",
    "token_user_id_claim": "user.id",
    "client_channel_limit": "many",
    "ping_interval": 25,
    "pong_timeout": "30s",
    "client_expired_close_delay": "soon",
    "engine": "mongo",
    "history_ttl": "1h",
    "force_recovery": True,
    "namespaces": [
        {"name": "chat", "history_size": 10, "history_ttl": "800h", "presense": True},
        {"name": "chat", "channel_regex": "[a-"},
        {"name": "x"},
        {"presence": True},
        {"name": "proxied", "proxy_subscribe": True},
    ],
    "allowed_origins": "*",
}

EXPECTED_V5 = [
    'token_hmac_secret: unknown key; did you mean "token_hmac_secret_key"?',
    "token_audience_regex: cannot be set together with token_audience",
    "token_issuer_regex: cannot be set together with token_issuer",
    "token_issuer_regex: invalid regular expression",
    "token_user_id_claim: must match ^[a-zA-Z_]+$",
    "client_channel_limit: expected an integer",
    'ping_interval: a bare number (25) is not a duration: write a duration string such as "25s"',
    "pong_timeout: (30s) must be shorter than ping_interval (25s)",
    "client_expired_close_delay: invalid duration 'soon'",
    "engine: unknown engine 'mongo'",
    "force_recovery: needs history_size and history_ttl set",
    "namespaces.chat.history_ttl: (800h0m0s) must not be longer than the history meta TTL",
    'namespaces.chat.presense: unknown namespace option; did you mean "presence"?',
    "namespaces.chat.name: duplicate namespace name 'chat'",
    "namespaces.chat.channel_regex: invalid regular expression",
    "namespaces.x.name: invalid namespace name",
    "namespaces[3].name: every namespace needs a name",
    "namespaces.proxied.proxy_subscribe: needs proxy_subscribe_endpoint set",
    "allowed_origins: expected a list of strings",
]


def test_every_v5_problem_is_reported_together_with_its_key(config_file: ConfigFile) -> None:
    problems = problems_of(config_file(BAD_V5))
    for expected in EXPECTED_V5:
        assert any(p.startswith(expected) for p in problems), expected
    assert len(problems) == len(EXPECTED_V5), problems


def test_v6_problems_name_the_nested_keys(config_file: ConfigFile) -> None:
    doc = {
        "client": {
            "token": {"audience": "a", "audience_regex": "b", "user_id_claim": "x-y"},
            "subscription_token": {"enabled": True, "issuer": "i", "issuer_regex": "j"},
            "ping_interval": "5s",
            "pong_timeout": "5s",
            "tokn": {},
        },
        "channel": {
            "history_meta_ttl": "1m",
            "without_namespace": {"history_size": 1, "history_ttl": "2m"},
            "namespaces": [{"name": "a"}],
        },
        "engine": {"type": "etcd"},
    }
    problems = problems_of(config_file(doc, "yaml"))
    expected = [
        "client.token.audience_regex: cannot be set together with client.token.audience",
        "client.token.user_id_claim: must match",
        "client.subscription_token.issuer_regex: cannot be set together with "
        "client.subscription_token.issuer",
        "client.pong_timeout: (5s) must be shorter than client.ping_interval (5s)",
        'client.tokn: unknown key; did you mean "client.token',
        "channel.without_namespace.history_ttl: (2m0s) must not be longer than the history "
        "meta TTL (1m0s)",
        "channel.namespaces.a.name: invalid namespace name",
        "engine.type: unknown engine 'etcd'",
    ]
    for item in expected:
        assert any(p.startswith(item) for p in problems), item
    assert len(problems) == len(expected), problems


def test_unknown_top_level_key_gets_a_suggestion(config_file: ConfigFile) -> None:
    [problem] = problems_of(config_file({"allowed_origin": ["*"]}))
    assert problem == 'allowed_origin: unknown key; did you mean "allowed_origins"?'


def test_unknown_key_far_from_any_gets_no_suggestion(config_file: ConfigFile) -> None:
    [problem] = problems_of(config_file({"zzzzzz": 1}))
    assert problem == "zzzzzz: unknown key"


def test_wrong_types_are_named(config_file: ConfigFile) -> None:
    doc = {"presence": "yes", "api_key": 5, "redis_db": True, "port": 70000}
    problems = problems_of(config_file(doc))
    assert sorted(problems) == sorted(
        [
            'presence: expected true or false, got "yes"',
            "api_key: expected a string, got a number",  # a key's value is never echoed
            "redis_db: expected an integer, got true",
            "port: expected a port number from 0 to 65535, got 70000",
        ]
    )


def test_force_recovery_with_history_is_accepted(config_file: ConfigFile) -> None:
    doc = {"force_recovery": True, "history_size": 10, "history_ttl": "300s"}
    assert load_config(config_file(doc), env={}).channels.without_namespace.force_recovery


def test_namespace_history_meta_ttl_overrides_the_global_one(config_file: ConfigFile) -> None:
    doc = {"namespaces": [{"name": "ns", "history_ttl": "2h", "history_meta_ttl": "1h"}]}
    [problem] = problems_of(config_file(doc))
    assert problem.startswith("namespaces.ns.history_ttl: (2h0m0s) must not be longer")


def test_personal_namespace_must_exist(config_file: ConfigFile) -> None:
    doc = {"user_subscribe_to_personal": True, "user_personal_channel_namespace": "me"}
    [problem] = problems_of(config_file(doc))
    assert problem.startswith("user_personal_channel_namespace: namespace 'me'")


def test_problems_join_into_the_exception_message(config_file: ConfigFile) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(config_file({"port": "x", "engine": "y"}), env={})
    assert str(caught.value) == "; ".join(caught.value.problems)
    assert len(caught.value.problems) == 2


def test_proxy_switch_without_its_endpoint_is_refused_naming_both_keys(
    config_file: ConfigFile,
) -> None:
    off = {"proxy_subscribe": False, "namespaces": [{"name": "ns", "proxy_publish": False}]}
    assert load_config(config_file(off), env={}).channels.namespaces[0].name == "ns"
    on = {"channel": {"without_namespace": {"subscribe_proxy_enabled": True}}}
    [problem] = problems_of(config_file(on))
    assert problem == (
        "channel.without_namespace.subscribe_proxy_enabled: needs proxy_subscribe_endpoint set"
    )


def test_v5_and_v6_proxy_keys_load_onto_the_same_settings(config_file: ConfigFile) -> None:
    v5 = {
        "proxy_connect_endpoint": "http://127.0.0.1:9/connect",
        "proxy_connect_timeout": "2s",
        "proxy_subscribe_endpoint": "http://127.0.0.1:9/subscribe",
        "proxy_http_headers": ["Cookie"],
        "namespaces": [{"name": "chat", "proxy_subscribe": True}],
    }
    v6 = {
        "client": {"proxy": {"connect": {"enabled": True, "endpoint": "http://127.0.0.1:9/connect",
                                         "timeout": "2s", "http_headers": ["Cookie"]}}},
        "channel": {
            "proxy": {"subscribe": {"endpoint": "http://127.0.0.1:9/subscribe",
                                    "http_headers": ["Cookie"]}},
            "namespaces": [{"name": "chat", "subscribe_proxy_enabled": True}],
        },
    }  # fmt: skip
    a, b = load_config(config_file(v5), env={}), load_config(config_file(v6), env={})
    for config in (a, b):
        assert config.proxy.connect.active and config.proxy.connect.timeout == 2.0
        assert config.proxy.headers_of("connect") == ("cookie",)
        assert config.proxy.headers_of("subscribe") == ("cookie",)
        assert config.channels.namespaces[0].options.proxy_subscribe
        assert not config.proxy.publish.active


def test_bad_proxy_settings_are_reported(config_file: ConfigFile) -> None:
    bad = {
        "proxy_connect_endpoint": "127.0.0.1:9/connect",
        "proxy_rpc_endpoint": "http://127.0.0.1:9/rpc",
        "proxy_rpc_timeout": "0s",
        "namespaces": [{"name": "chat", "subscribe_proxy_name": "other"}],
    }
    assert sorted(problems_of(config_file(bad))) == [
        "namespaces.chat.subscribe_proxy_name: Rotary has one proxy of each kind, no named proxies",
        "proxy_connect_endpoint: must be an http:// or https:// URL",
        "proxy_rpc_timeout: must be positive",
    ]
