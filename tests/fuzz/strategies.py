"""Hypothesis strategies shaped like what each parser expects, so that examples reach past
the first JSON check: objects whose keys are the protocol's, the API's, the token's and the
configuration's own field names, with values of every JSON type."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from rotary.config.keys import KEYS

__all__ = [
    "api_bodies",
    "command_frames",
    "config_documents",
    "protobuf_frames",
    "token_payloads",
    "token_texts",
]

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)


def _objects(names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects keyed mostly by `names`, nested a few levels."""
    keys = st.one_of(st.sampled_from(names), st.text(max_size=8))
    values = st.recursive(
        _SCALARS,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)
        ),
        max_leaves=12,
    )
    return st.dictionaries(keys, values, max_size=6)


_COMMAND_FIELDS = [
    "id", "connect", "subscribe", "unsubscribe", "publish", "presence", "presence_stats",
    "history", "ping", "send", "rpc", "refresh", "sub_refresh", "token", "data", "name",
    "version", "subs", "channel", "recover", "epoch", "offset", "positioned", "recoverable",
    "join_leave", "delta", "limit", "since", "reverse", "method", "headers",
]  # fmt: skip
_CLAIMS = [
    "sub", "exp", "iat", "nbf", "aud", "iss", "jti", "info", "b64info", "channels", "subs",
    "meta", "expire_at", "channel", "client", "override", "presence", "join_leave",
    "force_recovery", "position", "allow", "data", "b64data",
]  # fmt: skip
_API_FIELDS = [
    "channel", "channels", "data", "b64data", "user", "client", "session", "limit", "since",
    "reverse", "offset", "epoch", "tags", "idempotency_key", "skip_history", "override",
    "disconnect", "code", "reason", "info", "b64info", "expire_at", "pattern", "commands",
    "method", "params", "whitelist", "recover_since", "delta", "presence", "join_leave",
]  # fmt: skip
_CONFIG_FIELDS = sorted({key.v5 for key in KEYS} | {key.v6.split(".")[0] for key in KEYS if key.v6})


def _dumps(value: Any) -> bytes:
    """Compact JSON (the standard library's: orjson refuses integers beyond 64 bits, which
    a client may well send)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _frame(commands: list[dict[str, Any]]) -> bytes:
    return b"\n".join(map(_dumps, commands))


#: One command or several, newline-separated, as a client frames them.
command_frames = st.lists(_objects(_COMMAND_FIELDS), min_size=1, max_size=5).map(_frame)

#: Signed token payloads: JSON objects of claim-like fields.
token_payloads = _objects(_CLAIMS).map(_dumps)

#: Text in a token's alphabet (base64url and dots), of any shape.
token_texts = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/",
    max_size=200,
).map(str.encode)

#: API request bodies: one object, or several (the legacy form).
api_bodies = st.lists(_objects(_API_FIELDS), min_size=1, max_size=3).map(_frame)

#: Configuration documents with the real key names (JSON, also valid YAML).
config_documents = _objects(_CONFIG_FIELDS).map(_dumps)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _delimited(chunks: list[bytes]) -> bytes:
    return b"".join(_varint(len(chunk)) + chunk for chunk in chunks)


#: Binary frames of length-prefixed chunks (their bodies arbitrary: the schema's field
#: numbers and wire types come up often in short random bytes).
protobuf_frames = st.lists(st.binary(max_size=64), min_size=1, max_size=5).map(_delimited)
