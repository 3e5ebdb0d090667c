"""The configuration reference (``rotary configdoc``), generated from the key table.

Everything about a key (names, environment variables, type, default, description) comes from
`rotary.config.keys.KEYS` and the defaults of `Config`, so the reference cannot drift from
what the loader reads. docs/config.md holds the output of `config_reference`; a test keeps
the two equal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rotary.config.durations import format_duration
from rotary.config.keys import KEYS, Key, Kind, env_names, group_env_names
from rotary.config.model import Config

__all__ = [
    "BAD_EXAMPLE",
    "BAD_EXAMPLE_PROBLEMS",
    "EXAMPLE_V5",
    "EXAMPLE_V6",
    "REGENERATE",
    "ROTARY_ONLY",
    "SECTIONS",
    "config_reference",
    "default_text",
    "env_vars",
    "section_of",
]

#: The command that rewrites docs/config.md (run from the repository root).
REGENERATE = ".venv/bin/rotary configdoc > docs/config.md"

#: v5 names of keys Centrifugo does not have (Rotary's own additions).
ROTARY_ONLY = frozenset(
    {
        "token_leeway",
        "token_cache_size",
        "token_jwks_cache_ttl",
        "token_jwks_timeout",
        "token_jwks_refetch_interval",
        "token_max_size",
        "token_ed25519_public_key",
        "subscription_token_ed25519_public_key",
        "log_json",
        "proxy_connect_http_headers",
        "proxy_refresh_http_headers",
        "proxy_subscribe_http_headers",
        "proxy_publish_http_headers",
        "proxy_sub_refresh_http_headers",
        "proxy_rpc_http_headers",
        "proxy_refresh_include_connection_meta",
        "proxy_subscribe_include_connection_meta",
        "proxy_publish_include_connection_meta",
        "proxy_sub_refresh_include_connection_meta",
        "proxy_rpc_include_connection_meta",
        "proxy_connect_enabled",
        "proxy_refresh_enabled",
        "proxy_rpc_enabled",
        "admin_insecure_allow_remote",
        "admin_token_ttl",
        "websocket_send_buffer_size",
        "gc_gen0_threshold",
    }
)

#: Section titles, in the order they appear.
SECTIONS = (
    "Connection tokens",
    "Subscription tokens",
    "Client",
    "Channels",
    "Channel options (top level and per namespace)",
    "Server HTTP API",
    "WebSocket",
    "HTTP-streaming, SSE, emulation and unidirectional transports",
    "Server",
    "Engine and Redis",
    "Logging and metrics",
    "Admin web UI",
    "Proxy",
    "Shared poll",
)

# Destination prefix → section; the first match wins, and its position orders keys within
# their section (so that a section lists its most important keys first).
_RULES: tuple[tuple[str, str], ...] = (
    ("auth.connection.", SECTIONS[0]),
    ("auth.subscription_enabled", SECTIONS[1]),
    ("auth.subscription.", SECTIONS[1]),
    ("auth.", SECTIONS[0]),
    ("client.connect_code_to_unidirectional_disconnect", SECTIONS[7]),
    ("client.", SECTIONS[2]),
    ("channels.without_namespace.", SECTIONS[4]),
    ("channels.", SECTIONS[3]),
    ("api.", SECTIONS[5]),
    ("websocket.", SECTIONS[6]),
    ("http_stream.", SECTIONS[7]),
    ("sse.", SECTIONS[7]),
    ("emulation.", SECTIONS[7]),
    ("uni_", SECTIONS[7]),
    ("uni.", SECTIONS[7]),
    ("ignored.uni_", SECTIONS[7]),
    ("ignored.websocket_", SECTIONS[6]),
    ("server.prometheus", SECTIONS[10]),
    ("server.", SECTIONS[8]),
    ("engine.", SECTIONS[9]),
    ("log.", SECTIONS[10]),
    ("admin.", SECTIONS[11]),
    ("proxy.named", SECTIONS[13]),
    ("proxy.", SECTIONS[12]),
    ("shared_poll.", SECTIONS[13]),
)

_SECTION_NOTES = {
    SECTIONS[13]: (
        "Shared poll channels (docs/shared-poll.md): the secret that signs tracked keys, and "
        "the named proxies the namespaces' `shared_poll.proxy_name` point at. Centrifugo v5 "
        "had no shared poll: the flat names are Rotary's."
    ),
    SECTIONS[7]: (
        "Each transport is off until its `enabled` key (v5: the bare boolean, `http_stream`, "
        "`sse`, `uni_websocket`, …) is true; the emulation endpoint is served whenever "
        "`http_stream` or `sse` is on. See docs/transports.md."
    ),
    SECTIONS[1]: (
        "Used only when `separate_subscription_token_config` is true; otherwise subscription "
        "tokens are checked with the connection token settings."
    ),
    SECTIONS[4]: (
        "At the top level these apply to channels without a namespace. The same option names "
        "(without any prefix) go inside each entry of `namespaces` / `channel.namespaces`. "
        "The proxy switches `proxy_subscribe`, `proxy_publish` and `proxy_sub_refresh` (v6 "
        "`subscribe_proxy_enabled`, …) need the endpoint of their proxy; named proxies "
        "(`*_proxy_name`) and subscribe streams are accepted only when off."
    ),
    SECTIONS[11]: (
        "Centrifugo's HTTP proxy (docs/backend.md). The flat names `proxy_<kind>_endpoint`, "
        "`proxy_<kind>_timeout`, `proxy_http_headers` are Centrifugo v5's; the nested ones "
        "v6's. A proxy whose endpoint is set is on (Centrifugo v6 also wants `enabled: true` "
        "for connect and refresh; Rotary turns it off only with `enabled: false`)."
    ),
}

_KIND_WORDS: dict[Kind, str] = {
    "bool": "boolean",
    "int": "integer",
    "port": "port",
    "str": "string",
    "duration": "duration",
    "strs": "list of strings",
    "addrs": "addresses",
    "namespaces": "list of namespaces",
    "proxies": "list of proxies",
    "unix": "Unix seconds",
    "ignored": "any",
    "code_to_http": "transforms to HTTP answers",
    "code_to_disconnect": "transforms to disconnects",
}

#: A short v5 (flat) file; it loads to the same `Config` as `EXAMPLE_V6`.
EXAMPLE_V5: dict[str, Any] = {
    "token_hmac_secret_key": "change-me-to-a-long-random-secret",
    "token_audience": "my-app",
    "allowed_origins": ["https://*.example.com"],
    "ping_interval": "20s",
    "pong_timeout": "5s",
    "allow_subscribe_for_client": True,
    "presence": True,
    "namespaces": [
        {
            "name": "chat",
            "allow_publish_for_subscriber": True,
            "history_size": 100,
            "history_ttl": "10m",
            "force_recovery": True,
        }
    ],
    "api_key": "change-me-api-key",
    "port": 8000,
    "log_level": "info",
}

#: The same settings as `EXAMPLE_V5` in the v6 (nested) layout.
EXAMPLE_V6: dict[str, Any] = {
    "client": {
        "token": {"hmac_secret_key": "change-me-to-a-long-random-secret", "audience": "my-app"},
        "allowed_origins": ["https://*.example.com"],
        "ping_interval": "20s",
        "pong_timeout": "5s",
    },
    "channel": {
        "without_namespace": {"allow_subscribe_for_client": True, "presence": True},
        "namespaces": EXAMPLE_V5["namespaces"],
    },
    "http_api": {"key": "change-me-api-key"},
    "http_server": {"port": 8000},
    "log": {"level": "info"},
}

#: A file with three mistakes, and what loading it reports (a test checks both).
BAD_EXAMPLE: dict[str, Any] = {
    "ping_interval": 25,
    "client": {"pong_timout": "5s"},
    "namespaces": [{"name": "chat", "history_ttl": "1h", "force_recovery": True}],
}
BAD_EXAMPLE_PROBLEMS = (
    'client.pong_timout: unknown key; did you mean "client.pong_timeout"?',
    'ping_interval: a bare number (25) is not a duration: write a duration string such as "25s"',
    "namespaces.chat.force_recovery: needs history_size and history_ttl set",
)


def section_of(key: Key) -> str:
    """The title (one of `SECTIONS`) of the section listing `key`."""
    return _RULES[_rule_index(key)][1]


def _rule_index(key: Key) -> int:
    for index, (prefix, _) in enumerate(_RULES):
        if key.dest.startswith(prefix):
            return index
    raise ValueError(f"no section for configuration key {key.v5!r} ({key.dest})")


def env_vars(key: Key) -> tuple[str, ...]:
    """Every environment variable naming `key`, lowest precedence first, without repeats."""
    names = [name for name, other in env_names() if other.v5 == key.v5]
    names += [name for name, other, _ in group_env_names() if other.v5 == key.v5]
    return tuple(dict.fromkeys(names))


def default_text(key: Key) -> str:
    """The default of `key` as it would be written in a file ("—" for ignored keys)."""
    if key.kind == "ignored":
        return "—"
    value = _default_value(key.dest)
    if key.kind == "duration":
        return format_duration(float(value))
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value)


def _default_value(dest: str) -> Any:
    if dest == "auth.subscription_enabled":
        return False
    # Subscription token settings default to a fresh TokenSettings, the same type (and so
    # the same defaults) as the connection token settings.
    dest = dest.replace("auth.subscription.", "auth.connection.", 1)
    value: Any = Config()
    for part in dest.split("."):
        value = getattr(value, part)
    return value


def config_reference() -> str:
    """The whole Markdown reference: introduction, examples, then one table per section."""
    parts = [_INTRO, _examples()]
    for title in SECTIONS:
        keys = sorted(
            (k for k in KEYS if section_of(k) == title),
            key=lambda k: (_rule_index(k), KEYS.index(k)),
        )
        parts.append(_section(title, keys))
    return "\n".join(parts)


def _examples() -> str:
    return (
        "## Examples\n\n"
        "The same settings in the Centrifugo v5 (flat) layout, `config.json`:\n\n"
        f"{_json_block(EXAMPLE_V5)}\n"
        "and in the v6 (nested) layout:\n\n"
        f"{_json_block(EXAMPLE_V6)}\n"
        "A file with mistakes:\n\n"
        f"{_json_block(BAD_EXAMPLE)}\n"
        "is refused; `rotary checkconfig` lists every problem, each naming its key:\n\n"
        "```text\n" + "".join(f"error: {p}\n" for p in BAD_EXAMPLE_PROBLEMS) + "```\n"
    )


def _json_block(doc: Mapping[str, Any]) -> str:
    return f"```json\n{json.dumps(doc, indent=2, ensure_ascii=False)}\n```\n"


def _section(title: str, keys: list[Key]) -> str:
    lines = [f"## {title}", ""]
    if title in _SECTION_NOTES:
        lines += [_SECTION_NOTES[title], ""]
    lines += [
        "| v5 key | v6 key | Environment variables | Type | Default | Description |",
        "|---|---|---|---|---|---|",
    ]
    lines += [_row(key) for key in keys]
    return "\n".join(lines) + "\n"


def _row(key: Key) -> str:
    v6 = f"`{key.v6}`" if key.v6 else "— (flat layout only)"
    env = ", ".join(f"`{name}`" for name in env_vars(key))
    text = _escape(key.description)
    if key.v5 in ROTARY_ONLY:
        text = f"**Rotary only.** {text}"
    default = default_text(key) if key.kind == "ignored" else f"`{default_text(key)}`"
    cells = [f"`{key.v5}`", v6, env, _KIND_WORDS[key.kind], default, text]
    return "| " + " | ".join(cells) + " |"


def _escape(text: str) -> str:
    """Plain words made safe inside a Markdown table cell."""
    for char in ("\\", "|", "*", "<", ">"):
        text = text.replace(char, "\\" + char)
    return text


_INTRO = f"""\
# Rotary configuration reference

<!-- Generated by `rotary configdoc`; do not edit by hand. Regenerate with:
     {REGENERATE} -->

Rotary reads Centrifugo's configuration keys: the v5 flat names (`token_hmac_secret_key`) and
the v6 nested paths (`client.token.hmac_secret_key`). One file may mix both layouts as long as
no setting is given twice. Keys marked **Rotary only** are Rotary's additions; Centrifugo does
not know them.

## Files

`rotary -c FILE` (default `config.json`, which may be missing) reads JSON, YAML or TOML,
chosen by the file's extension: `.json`, `.yaml` / `.yml`, `.toml`. Any other extension is
refused. Unknown keys are errors, with a suggestion when a known key is close.

## Precedence

Lowest first, each later source overriding the earlier ones:

1. built-in defaults (the Default column below);
2. the configuration file;
3. `CENTRIFUGO_…` environment variables;
4. `ROTARY_…` environment variables;
5. command-line flags (`--port`, `--address`, `--log_level`).

Each key has environment variables for its v5 name (`CENTRIFUGO_PING_INTERVAL`) and its v6
path with dots as underscores (`CENTRIFUGO_CLIENT_PING_INTERVAL`), under both prefixes. Their
values are text: booleans `true`, `false`, `1` or `0`; lists comma-separated or as a JSON list.
An empty variable counts as unset.

Namespaces take Centrifugo v6's form: `CENTRIFUGO_CHANNEL_NAMESPACES` holds the names,
separated by spaces or commas (or the whole list as JSON), and
`CENTRIFUGO_CHANNEL_NAMESPACES_<NAME>_<OPTION>` sets one option of one namespace, the name
upper-cased with `.` and `-` written `_`:

    CENTRIFUGO_CHANNEL_NAMESPACES="chat live-feed"
    CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_PRESENCE=true
    CENTRIFUGO_CHANNEL_NAMESPACES_LIVE_FEED_HISTORY_SIZE=100

Option variables also apply to namespaces listed in the file. Every `CENTRIFUGO_…` or
`ROTARY_…` variable that Rotary does not read is named in a warning at start-up
(`rotary checkconfig` prints them too), except the ones Kubernetes sets for a service
(`CENTRIFUGO_SERVICE_HOST`, `CENTRIFUGO_PORT_8000_TCP…`) and `CENTRIFUGO_VAR_…`.

## Durations

Durations are Go duration strings: `"500ms"`, `"25s"`, `"1m30s"`, `"720h"` (units `ns`, `us`,
`ms`, `s`, `m`, `h`). A bare number is refused, in a file as in the environment, because
Centrifugo would read it as nanoseconds in some places and refuse it in others.

## Validation

The whole configuration is checked before anything starts, and every problem is reported at
once, one per line, each beginning with the key it concerns as it was written (a dotted v6
path, a v5 name, `namespaces.<name>.<option>` or an environment variable name).
`rotary checkconfig` runs the same checks and also loads the configured keys.
"""
