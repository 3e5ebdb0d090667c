"""Equivalent v5 (flat) and v6 (nested) configurations, and writers for the three formats."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

V5: dict[str, Any] = {
    "token_hmac_secret_key": "secret",
    "token_hmac_previous_secret_key": "old-secret",
    "token_hmac_previous_secret_key_valid_until": 1_800_000_000,
    "token_audience": "rotary",
    "token_issuer_regex": r"^https://(?P<tenant>\w+)\.example$",
    "token_user_id_claim": "uid",
    "token_leeway": "2s",
    "token_cache_size": 100,
    "separate_subscription_token_config": True,
    "subscription_token_hmac_secret_key": "sub-secret",
    "subscription_token_issuer": "me",
    "allow_anonymous_connect_without_token": True,
    "client_insecure_skip_token_signature_verify": False,
    "allowed_origins": ["http://localhost:3000"],
    "ping_interval": "20s",
    "pong_timeout": "5s",
    "client_channel_limit": 64,
    "client_expired_close_delay": "1m30s",
    "user_subscribe_to_personal": True,
    "user_personal_channel_namespace": "personal",
    "channel_max_length": 100,
    "global_history_meta_ttl": "48h",
    "presence": True,
    "history_size": 10,
    "history_ttl": "300s",
    "force_recovery": True,
    "namespaces": [
        {
            "name": "chat",
            "join_leave": True,
            "allow_user_limited_channels": True,
            "channel_regex": "^[a-z]+$",
            "allowed_delta_types": ["fossil"],
        },
        {"name": "personal", "presence": True, "history_meta_ttl": "1h"},
    ],
    "api_key": "api-key",
    "websocket_message_size_limit": 1000,
    "port": 9000,
    "address": "127.0.0.1",
    "log_level": "debug",
    "log_json": True,
    "prometheus": True,
    "name": "node-1",
    "health": True,
    "engine": "redis",
    "redis_address": ["127.0.0.1:6379", "127.0.0.1:6380"],
    "redis_prefix": "rot",
    "redis_db": 2,
    "redis_presence_ttl": "30s",
    "rpc_ping": True,
}

V6: dict[str, Any] = {
    "client": {
        "token": {
            "hmac_secret_key": "secret",
            "hmac_previous_secret_key": "old-secret",
            "hmac_previous_secret_key_valid_until": 1_800_000_000,
            "audience": "rotary",
            "issuer_regex": r"^https://(?P<tenant>\w+)\.example$",
            "user_id_claim": "uid",
            "leeway": "2s",
            "cache_size": 100,
        },
        "subscription_token": {
            "enabled": True,
            "hmac_secret_key": "sub-secret",
            "issuer": "me",
        },
        "allow_anonymous_connect_without_token": True,
        "insecure_skip_token_signature_verify": False,
        "allowed_origins": ["http://localhost:3000"],
        "ping_interval": "20s",
        "pong_timeout": "5s",
        "channel_limit": 64,
        "expired_close_delay": "1m30s",
        "subscribe_to_user_personal_channel": {
            "enabled": True,
            "personal_channel_namespace": "personal",
        },
    },
    "channel": {
        "max_length": 100,
        "history_meta_ttl": "48h",
        "without_namespace": {
            "presence": True,
            "history_size": 10,
            "history_ttl": "300s",
            "force_recovery": True,
        },
        "namespaces": V5["namespaces"],
    },
    "http_api": {"key": "api-key"},
    "websocket": {"message_size_limit": 1000},
    "http_server": {"port": 9000, "address": "127.0.0.1"},
    "log": {"level": "debug", "json": True},
    "prometheus": {"enabled": True},
    "node": {"name": "node-1"},
    "health": {"enabled": True},
    "engine": {
        "type": "redis",
        "redis": {
            "address": ["127.0.0.1:6379", "127.0.0.1:6380"],
            "prefix": "rot",
            "db": 2,
            "presence_ttl": "30s",
        },
    },
    "rpc": {"ping": {"enabled": True}},
}


def to_toml(doc: Mapping[str, Any], table: str = "") -> str:
    """TOML for the shapes used here: scalars, lists, tables and arrays of tables."""
    plain = {k: v for k, v in doc.items() if not _is_table(v) and not _is_table_list(v)}
    lines = [f"{k} = {json.dumps(v)}" for k, v in plain.items()]
    out = (f"[{table}]\n" if table and lines else "") + "".join(line + "\n" for line in lines)
    for key, value in doc.items():
        name = f"{table}.{key}" if table else key
        if _is_table(value):
            out += to_toml(value, name)
        elif _is_table_list(value):
            for item in value:
                out += f"[[{name}]]\n" + to_toml(item, "").lstrip()
    return out


def _is_table(value: object) -> bool:
    return isinstance(value, Mapping)


def _is_table_list(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def write(path: Path, doc: Mapping[str, Any]) -> Path:
    """Write `doc` in the format of `path`'s extension; return the path."""
    if path.suffix == ".json":
        path.write_text(json.dumps(doc))
    elif path.suffix in (".yaml", ".yml"):
        path.write_text(yaml.safe_dump(doc))
    else:
        path.write_text(to_toml(doc))
    return path


@pytest.fixture
def config_file(tmp_path: Path) -> Callable[..., str]:
    """`config_file(doc, ext="json")` writes `doc` and returns the file's path as text."""

    def make(doc: Mapping[str, Any], ext: str = "json") -> str:
        return str(write(tmp_path / f"config.{ext}", doc))

    return make
