"""Typed values → `Config`: conversion per key, namespaces, assembly, then validation."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from rotary.auth.settings import AuthSettings, TokenSettings
from rotary.channels.options import ChannelOptions, ChannelSettings, Namespace
from rotary.config.keys import (
    MAP_OPTION_PREFIX,
    NAMESPACE_OPTION_KINDS,
    POLL_OPTION_PREFIX,
    PROXY_OPTION_ALIASES,
    PROXY_OPTIONS,
    Key,
    Kind,
)
from rotary.config.model import (
    ENDPOINTS,
    AdminSettings,
    ApiSettings,
    ClientSettings,
    Config,
    EndpointSettings,
    EngineSettings,
    LogSettings,
    MapRedisSettings,
    RedisSettings,
    ServerSettings,
    SharedPollSettings,
    UniSettings,
    WebSocketSettings,
)
from rotary.config.validate import Labels, validate
from rotary.config.values import Raw, convert
from rotary.proxy.settings import PROXY_KINDS, ProxyEndpoint, ProxySettings

__all__ = ["LACKING_OPTIONS", "LACKING_TYPES", "build_config"]

#: Namespace options of Centrifugo features Rotary lacks → what is missing.
LACKING_OPTIONS: dict[str, str] = {}

#: Subscription types Rotary lacks: namespaces of these types are left out.
LACKING_TYPES: tuple[str, ...] = ()

#: Fields of a named proxy Rotary reads; the others (gRPC, TLS, static headers…) are ignored.
_NAMED_PROXY_FIELDS: dict[str, Kind] = {
    "endpoint": "str",
    "timeout": "duration",
    "http_headers": "strs",
    "include_connection_meta": "bool",
}


def build_config(
    entries: Iterable[tuple[Key, Raw]], *, ignored: list[str] | None = None
) -> tuple[Config, list[str]]:
    """The `Config` of the merged `entries`, and every problem found on the way.

    The Config is meaningful only when the problem list is empty; keys whose values do not
    fit keep their defaults so that later checks still run and report their own problems.
    Namespace settings of features Rotary lacks (`LACKING_OPTIONS`, `LACKING_TYPES`)
    are left out, each with a line in `ignored`.
    """
    ignored = [] if ignored is None else ignored
    typed: dict[str, Any] = {}
    labels: dict[str, str] = {}
    problems: list[str] = []
    for key, raw in entries:
        try:
            value = convert(key.kind, raw)
        except ValueError as exc:
            problems.append(f"{raw.label}: {exc}")
            continue
        if key.kind == "namespaces":
            value = _namespaces(value, raw.label, labels, problems, ignored)
        elif key.kind == "proxies":
            value = _named_proxies(value, raw.label, problems, ignored)
        if key.dest.startswith("ignored.") and value:
            # Set to anything but its zero value: the user expects an effect there is not.
            ignored.append(f"{raw.label}: accepted and ignored, it has no effect in Rotary")
        typed[key.dest] = value
        labels[key.dest] = raw.label
    config = _assemble(typed)
    problems += validate(config, Labels(labels))
    return config, problems


def _namespaces(
    items: Any, label: str, labels: dict[str, str], problems: list[str], ignored: list[str]
) -> tuple[Namespace, ...]:
    result: list[Namespace] = []
    for index, item in enumerate(items):
        name = item.get("name")
        if not isinstance(name, str) or not name:
            problems.append(f"{label}[{index}].name: every namespace needs a name (a string)")
            continue
        where = f"{label}.{name}"
        if _raw_text(item.get("subscription_type")) in LACKING_TYPES:
            # Left out rather than served as another type: its channels then get error 102.
            ignored.append(f"{where}: left out, Rotary has no subscriptions of this type")
            continue
        labels.setdefault(f"ns:{name}", where)
        result.append(Namespace(name, _options(item, where, problems, ignored)))
    return tuple(result)


def _named_proxies(
    items: Any, label: str, problems: list[str], ignored: list[str]
) -> tuple[tuple[str, ProxyEndpoint], ...]:
    """The ``proxies`` list as (name, endpoint) pairs; fields Rotary lacks are ignored."""
    result: dict[str, ProxyEndpoint] = {}
    for index, item in enumerate(items):
        name = item.get("name")
        where = f"{label}[{index}]"
        if not isinstance(name, str) or not name:
            problems.append(f"{where}.name: every proxy needs a name (a string)")
            continue
        if name in result:
            problems.append(f"{where}.name: duplicate proxy name {name!r}")
        values: dict[str, Any] = {}
        for field_name, value in item.items():
            kind = _NAMED_PROXY_FIELDS.get(field_name)
            if field_name == "name" or value is None:
                continue
            if kind is None:
                ignored.append(f"{where}.{field_name}: ignored, Rotary's proxies are plain HTTP")
                continue
            try:
                values[field_name] = convert(kind, Raw(value, f"{where}.{field_name}"))
            except ValueError as exc:
                problems.append(f"{where}.{field_name}: {exc}")
        result[name] = ProxyEndpoint(**values)
    return tuple(result.items())


def _raw_text(value: object) -> object:
    """A namespace option's value as given, whether from a file or a variable (`Raw`)."""
    return value.value if isinstance(value, Raw) else value


def _flatten_map(item: Mapping[str, object], where: str) -> list[tuple[str, object, str]]:
    """(option name, value, label) of a namespace object, its ``map`` group as ``map_*``."""
    flat: list[tuple[str, object, str]] = []
    for name, value in item.items():
        if name == "map" and isinstance(value, Mapping):  # Centrifugo's group → map_<option>
            flat += [(f"{MAP_OPTION_PREFIX}{k}", v, f"{where}.map.{k}") for k, v in value.items()]
        elif name == "shared_poll" and isinstance(value, Mapping):
            prefix, at = POLL_OPTION_PREFIX, f"{where}.shared_poll"
            flat += [(f"{prefix}{k}", v, f"{at}.{k}") for k, v in value.items()]
        else:
            flat.append((name, value, f"{where}.{name}"))
    return flat


def _options(
    item: Mapping[str, object], where: str, problems: list[str], ignored: list[str]
) -> ChannelOptions:
    values: dict[str, Any] = {}
    for name, value, label in _flatten_map(item, where):
        name = PROXY_OPTION_ALIASES.get(name, name)
        kind = NAMESPACE_OPTION_KINDS.get(name)
        if name == "name" or value is None:
            continue
        if name in PROXY_OPTIONS:
            if value and value != "default":
                problems.append(f"{label}: Rotary has one proxy of each kind, no named proxies")
            continue
        if name in LACKING_OPTIONS:
            ignored.append(f"{label}: ignored, Rotary has no {LACKING_OPTIONS[name]}")
            continue
        if kind is None:
            problems.append(_unknown_option(label, label.rsplit(".", 1)[-1]))
            continue
        raw = value if isinstance(value, Raw) else Raw(value, label)  # Raw: from a variable
        try:
            values[name] = convert(kind, raw)
        except ValueError as exc:
            problems.append(f"{raw.label}: {exc}")
    return ChannelOptions(**values)


def _unknown_option(label: str, name: str) -> str:
    close = difflib.get_close_matches(name, list(NAMESPACE_OPTION_KINDS), n=1, cutoff=0.6)
    hint = f'; did you mean "{close[0]}"?' if close else ""
    return f"{label}: unknown namespace option{hint}"


def _group(typed: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Values whose destination is directly under `prefix`, keyed by field name."""
    return {
        dest[len(prefix) :]: value
        for dest, value in typed.items()
        if dest.startswith(prefix) and "." not in dest[len(prefix) :]
    }


def _endpoints(typed: Mapping[str, Any]) -> dict[str, EndpointSettings]:
    """Each endpoint's settings: the given values over its defaults (its own path)."""
    defaults = Config()
    return {
        name: dataclasses.replace(getattr(defaults, name), **_group(typed, f"{name}."))
        for name in ENDPOINTS
    }


def _assemble(typed: Mapping[str, Any]) -> Config:
    auth_values = _group(typed, "auth.")
    separate = bool(auth_values.pop("subscription_enabled", False))
    subscription = TokenSettings(**_group(typed, "auth.subscription.")) if separate else None
    channels = ChannelSettings(
        without_namespace=ChannelOptions(**_group(typed, "channels.without_namespace.")),
        **_group(typed, "channels."),
    )
    map_redis = MapRedisSettings(
        redis=RedisSettings(**_group(typed, "engine.map_redis.redis.")),
        **_group(typed, "engine.map_redis."),
    )
    engine = EngineSettings(
        redis=RedisSettings(**_group(typed, "engine.redis.")),
        map_redis=map_redis,
        **_group(typed, "engine."),
    )
    return Config(
        **_endpoints(typed),
        auth=AuthSettings(
            connection=TokenSettings(**_group(typed, "auth.connection.")),
            subscription=subscription,
            **auth_values,
        ),
        channels=channels,
        client=ClientSettings(**_group(typed, "client.")),
        api=ApiSettings(**_group(typed, "api.")),
        websocket=WebSocketSettings(**_group(typed, "websocket.")),
        uni=UniSettings(**_group(typed, "uni.")),
        server=ServerSettings(**_group(typed, "server.")),
        engine=engine,
        log=LogSettings(**_group(typed, "log.")),
        proxy=_proxy(typed),
        shared_poll=SharedPollSettings(**_group(typed, "shared_poll.")),
        admin=AdminSettings(**_group(typed, "admin.")),
    )


def _proxy(typed: Mapping[str, Any]) -> ProxySettings:
    values: dict[str, Any] = _group(typed, "proxy.")
    for kind in (*PROXY_KINDS, "shared_poll_refresh"):
        values[kind] = ProxyEndpoint(**_group(typed, f"proxy.{kind}."))
    return ProxySettings(**values)
