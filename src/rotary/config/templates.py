"""Configuration files Rotary writes: ``genconfig`` (docs/cli.md) and ``rotary dev``.

Pure: secrets come in as arguments, so the caller owns randomness. Files are written in the
format their extension names (JSON, YAML or TOML).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import yaml

from rotary.config.load import SUPPORTED_EXTENSIONS
from rotary.errors import ConfigError

__all__ = ["dev_config", "dump_config", "generated_config", "write_new_config"]


def generated_config(
    *, hmac_secret: str, admin_password: str, admin_secret: str, api_key: str
) -> dict[str, object]:
    """The v5 content ``genconfig`` writes (Centrifugo's: secrets and no allowed origins)."""
    return {
        "token_hmac_secret_key": hmac_secret,
        "admin_password": admin_password,
        "admin_secret": admin_secret,
        "api_key": api_key,
        "allowed_origins": [],
    }


def dev_config(
    *, hmac_secret: str, api_key: str, admin_password: str, admin_secret: str
) -> dict[str, object]:
    """A permissive v5 development config: every origin, client publish, presence, history.

    The same channel options apply at the top level and in a ``chat`` namespace, so that
    ``news`` and ``chat:room`` both work out of the box. The admin UI is on, with a password.
    """
    options: dict[str, object] = {
        "allow_subscribe_for_client": True,
        "allow_publish_for_client": True,
        "allow_history_for_client": True,
        "allow_presence_for_client": True,
        "presence": True,
        "join_leave": True,
        "history_size": 100,
        "history_ttl": "300s",
        "force_recovery": True,
    }
    return {
        "token_hmac_secret_key": hmac_secret,
        "api_key": api_key,
        "admin": True,
        "admin_password": admin_password,
        "admin_secret": admin_secret,
        "allowed_origins": ["*"],
        **options,
        "namespaces": [{"name": "chat", **options}],
    }


def dump_config(path: str, content: Mapping[str, object]) -> str:
    """The text of `content` in the format of `path`'s extension (ConfigError if unknown)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return json.dumps(content, indent=2) + "\n"
    if suffix in (".yaml", ".yml"):
        return yaml.safe_dump(dict(content), sort_keys=False)
    if suffix == ".toml":
        return _toml(content)
    supported = ", ".join(ext[1:] for ext in SUPPORTED_EXTENSIONS)
    raise ConfigError([f"{path}: output config file must have one of extensions: {supported}"])


def write_new_config(path: str, content: Mapping[str, object]) -> None:
    """Create `path` with `content`; refuse (ConfigError) when it already exists."""
    text = dump_config(path, content)
    try:
        with open(path, "x", encoding="utf-8") as out:
            out.write(text)
    except FileExistsError:
        raise ConfigError([f"output config file already exists: {path}"]) from None


def _toml(content: Mapping[str, object]) -> str:
    """TOML for flat tables of strings, numbers, booleans and lists of those."""
    lines = [f"{key} = {_toml_value(value)}" for key, value in content.items()]
    return "\n".join(lines) + "\n"


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # A JSON string literal is a valid TOML basic string (same escapes).
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ConfigError([f"cannot write {type(value).__name__} values as TOML"])
