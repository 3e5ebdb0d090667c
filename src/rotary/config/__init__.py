"""Configuration: one immutable model, loaded from file, environment and flags."""

from rotary.config.durations import format_duration, parse_duration
from rotary.config.load import DEFAULT_CONFIG_PATH, load_config, read_config_file
from rotary.config.model import Config
from rotary.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "Config",
    "ConfigError",
    "format_duration",
    "load_config",
    "parse_duration",
    "read_config_file",
]
