"""Load a `Config` from a file, the environment and command-line overrides.

Precedence, lowest first: defaults, the file, ``CENTRIFUGO_*`` variables, ``ROTARY_*``
variables, `overrides`. The file may use Centrifugo v5 flat keys, v6 nested keys, or both
as long as no setting is given twice. Every problem found is reported in one `ConfigError`.

The environment follows Centrifugo v6: an empty variable counts as unset; a named list
(`NAMED_LISTS`) is given as JSON or as item names separated by spaces or commas, and each
item's options as ``<PREFIX><STEM>_<NAME>_<OPTION>``; a variable with one of the prefixes that
Rotary does not read is reported as a warning (not an error: containers carry unrelated ones).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from rotary.config.build import build_config
from rotary.config.keys import (
    ENV_PREFIXES,
    NAMED_LISTS,
    OTHER_ENV_NAMES,
    PROXY_OPTIONS,
    Key,
    NamedList,
    env_names,
    group_env_names,
    keys_by_v5,
    keys_by_v6,
    name_for_env,
    v6_sections,
)
from rotary.config.model import Config
from rotary.config.values import Raw, convert
from rotary.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "LACKING_SECTIONS",
    "SUPPORTED_EXTENSIONS",
    "load_config",
    "read_config_file",
    "unknown_env",
]

#: The file read when no other is named; it may be missing.
DEFAULT_CONFIG_PATH = "config.json"
SUPPORTED_EXTENSIONS = (".json", ".yaml", ".yml", ".toml")

_BY_V5 = keys_by_v5()
_BY_V6 = keys_by_v6()
_SECTIONS = v6_sections()
_V6_PREFIXES = frozenset(path.rsplit(".", i)[0] for path in _BY_V6 for i in range(1, 4))
_ENV_NAMES = env_names()
_GROUP_ENV_NAMES = group_env_names()
_KNOWN_ENV = (
    frozenset(name for name, _ in _ENV_NAMES)
    | frozenset(name for name, _, _ in _GROUP_ENV_NAMES)
    | OTHER_ENV_NAMES
)

#: Variables Kubernetes sets for a service named like the prefix (``CENTRIFUGO_PORT_8000_TCP``,
#: ``CENTRIFUGO_SERVICE_HOST``), and ``CENTRIFUGO_VAR_*`` kept for substitution: never warned.
_NOT_OURS = re.compile(r"^(CENTRIFUGO|ROTARY)(?:_[A-Z0-9_]+)?_(PORT|SERVICE_)|^CENTRIFUGO_VAR_")

_Layer = dict[str, tuple[Key, Raw]]

#: Top-level sections of Centrifugo features Rotary lacks → what is missing; each is ignored
#: with a warning (none at present).
LACKING_SECTIONS: dict[str, str] = {}


def load_config(
    path: str | None = DEFAULT_CONFIG_PATH,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
    warnings: list[str] | None = None,
) -> Config:
    """Read, merge, validate and build the configuration; raise ConfigError listing problems.

    `path` None reads no file; the default path may be missing, any other path must exist.
    `env` defaults to `os.environ`; only the variable names Rotary knows are read.
    `overrides` maps v5 (or v6 dotted) key names to values, e.g. from command-line flags;
    string values are read like environment variables. `warnings`, when given, receives one
    line per unknown ``CENTRIFUGO_*``/``ROTARY_*`` variable, also when loading fails, and one
    per setting of a Centrifugo feature Rotary lacks (`LACKING_SECTIONS`), which is ignored.
    """
    env = os.environ if env is None else env
    problems: list[str] = []
    ignored: list[str] = []
    layer: _Layer = {}
    if path is not None:
        doc = read_config_file(path, must_exist=path != DEFAULT_CONFIG_PATH)
        layer.update(_file_layer(doc, problems, ignored))
    layer.update(_env_layer(env))
    _group_fields_from_env(layer, env, problems)
    layer.update(_override_layer(overrides or {}, problems))
    known = set(_KNOWN_ENV)
    for named in NAMED_LISTS:
        _named_items_from_env(layer, named, env, known)
    config, build_problems = build_config(layer.values(), ignored=ignored)
    if warnings is not None:
        warnings += [f"unknown environment variable {name}" for name in unknown_env(env, known)]
        warnings += ignored
    problems += build_problems
    if problems:
        raise ConfigError(problems)
    return config


def read_config_file(path: str, *, must_exist: bool = True) -> Mapping[str, object]:
    """The top-level mapping of a JSON, YAML or TOML file (chosen by extension).

    A missing file gives ``{}`` unless `must_exist`. Every failure is a ConfigError with a
    one-line message naming the file.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        raise ConfigError(
            [f"{path}: unsupported config file extension {suffix!r} (use .json, .yaml or .toml)"]
        )
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        if must_exist:
            raise ConfigError([f"{path}: config file not found"]) from None
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read config file: {_one_line(exc)}"]) from None
    return _parse(path, suffix, text)


def _parse(path: str, suffix: str, text: str) -> Mapping[str, object]:
    if not text.strip():
        return {}
    try:
        doc: object
        if suffix == ".json":
            doc = json.loads(text)
        elif suffix == ".toml":
            doc = tomllib.loads(text)
        else:
            doc = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError([f"{path}: cannot parse {suffix[1:]}: {_one_line(exc)}"]) from None
    if doc is None:
        return {}
    if not isinstance(doc, Mapping):
        raise ConfigError([f"{path}: the top level must be a mapping of keys to values"])
    return doc


def _one_line(exc: BaseException) -> str:
    return re.sub(r"\s+", " ", str(exc)).strip()


def _file_layer(doc: Mapping[str, object], problems: list[str], ignored: list[str]) -> _Layer:
    """Values of a file keyed by destination; unknown and conflicting keys go to `problems`.

    Sections of features Rotary lacks are left out with a line in `ignored`: a config written
    for Centrifugo then loads, and nothing of those features is served.
    """
    layer: _Layer = {}
    for name, value in doc.items():
        if value is None:
            continue
        if not isinstance(name, str):
            problems.append(f"{name!r}: keys must be strings")
        elif name in _SECTIONS and isinstance(value, Mapping):
            _walk(name, value, layer, problems)
        elif name in _BY_V5:
            _put(layer, _BY_V5[name], Raw(value, name), problems)
        elif name in PROXY_OPTIONS:
            problems += _proxy_problem(name, value)
        elif name in LACKING_SECTIONS:
            ignored.append(f"{name}: ignored, Rotary has no {LACKING_SECTIONS[name]}")
        else:
            problems.append(_unknown(name, [*_BY_V5, *_SECTIONS]))
    return layer


def _walk(path: str, section: Mapping[object, object], layer: _Layer, problems: list[str]) -> None:
    for name, value in section.items():
        dotted = f"{path}.{name}"
        if value is None:
            continue
        if dotted in _BY_V6:
            _put(layer, _BY_V6[dotted], Raw(value, dotted), problems)
        elif dotted in _V6_PREFIXES and isinstance(value, Mapping):
            _walk(dotted, value, layer, problems)
        elif _proxy_option(path, name):
            problems += _proxy_problem(dotted, value)
        else:
            problems.append(_unknown(dotted, _BY_V6))


def _proxy_option(path: str, name: object) -> bool:
    """Whether `name` under `path` is a proxy option Rotary accepts only when off."""
    if path == "channel.without_namespace.map":
        return f"map_{name}" in PROXY_OPTIONS
    return path == "channel.without_namespace" and name in PROXY_OPTIONS


def _proxy_problem(label: str, value: object) -> list[str]:
    """Named proxies and subscribe streams are accepted when off (or the name "default")."""
    if not value or value == "default":
        return []
    return [f"{label}: Rotary has one proxy of each kind, no named proxies"]


def _put(layer: _Layer, key: Key, raw: Raw, problems: list[str]) -> None:
    if key.dest in layer:
        other = layer[key.dest][1].label
        problems.append(f"{raw.label}: conflicts with {other} (the same setting); keep one")
        return
    layer[key.dest] = (key, raw)


def _unknown(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    hint = f'; did you mean "{close[0]}"?' if close else ""
    return f"{name}: unknown key{hint}"


def _env_layer(env: Mapping[str, str]) -> _Layer:
    layer: _Layer = {}
    for name, key in _ENV_NAMES:
        if env.get(name):  # empty counts as unset, as in Centrifugo
            layer[key.dest] = (key, Raw(env[name], name, from_text=True))
    return layer


def _group_fields_from_env(layer: _Layer, env: Mapping[str, str], problems: list[str]) -> None:
    """Apply ``…_ENABLED`` and ``…_TRANSFORMS`` variables to the connect-code groups, as
    Centrifugo reads them: each replaces its one field of the group given by the file (or
    by the variable holding the whole group); `problems` gets a line per unreadable value."""
    for name, key, field in _GROUP_ENV_NAMES:
        text = env.get(name)
        if not text:
            continue
        try:
            value = _group_field(field, text)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
            continue
        base = _group_as_given(layer[key.dest][1]) if key.dest in layer else {}
        if base is None:
            continue  # not an object: the build reports the group as given
        layer[key.dest] = (key, Raw({**base, field: value}, name))


def _group_as_given(raw: Raw) -> dict[object, object] | None:
    """The connect-code group of `raw` as a mapping (parsed when it came as text); None when
    it is not an object."""
    value = raw.value
    if raw.from_text and isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    return dict(value) if isinstance(value, Mapping) else None


def _group_field(field: str, text: str) -> object:
    """The value of one group field from its variable: a boolean, or a JSON list."""
    if field == "enabled":
        return convert("bool", Raw(text, "", from_text=True))
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"expected a JSON list of transforms: {exc}") from None


def _named_items_from_env(
    layer: _Layer, named: NamedList, env: Mapping[str, str], known: set[str]
) -> None:
    """Apply ``<PREFIX><STEM>_<NAME>_<OPTION>`` variables to the items of one named list.

    The list itself may come from the file, the environment or an override; a list that does
    not convert is left for the build to report. Every name looked at is added to `known`.
    """
    entry = layer.get(named.dest)
    if entry is None:
        return
    key, raw = entry
    try:
        items = convert(key.kind, raw)
    except ValueError:
        return
    assert isinstance(items, list)
    updated = [_item_from_env(dict(item), named, env, known) for item in items]
    layer[named.dest] = (key, Raw(updated, raw.label))


def _item_from_env(
    item: dict[str, object], named: NamedList, env: Mapping[str, str], known: set[str]
) -> dict[str, object]:
    name = item.get("name")
    if not isinstance(name, str) or not name:
        return item
    spellings = [(option, option) for option in named.options] + list(named.aliases.items())
    for prefix in ENV_PREFIXES:  # ROTARY_ last, so that it wins
        stem = f"{prefix}{named.env_stem}_{name_for_env(name)}_"
        for spelling, option in spellings:
            var = stem + spelling.upper()
            known.add(var)
            if env.get(var):
                # The file may spell the same option otherwise: one value only.
                for other in [k for k in item if named.aliases.get(k, k) == option]:
                    del item[other]
                item[option] = Raw(env[var], var, from_text=True)
    return item


def unknown_env(env: Mapping[str, str], known: set[str] | frozenset[str]) -> list[str]:
    """Variables of `env` with a Rotary or Centrifugo prefix that are not in `known`, sorted."""
    return sorted(
        name
        for name in env
        if name.startswith(ENV_PREFIXES) and name not in known and not _NOT_OURS.match(name)
    )


def _override_layer(overrides: Mapping[str, object], problems: list[str]) -> _Layer:
    layer: _Layer = {}
    for name, value in overrides.items():
        key = _BY_V5.get(name) or _BY_V6.get(name)
        if key is None:
            problems.append(_unknown(name, _BY_V5))
        elif value is not None:
            raw = Raw(value, f"{name} (command line)", from_text=isinstance(value, str))
            layer[key.dest] = (key, raw)
    return layer
