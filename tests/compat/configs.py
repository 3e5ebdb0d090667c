"""The configurations scenarios run under: Centrifugo v6 files, given unchanged to both servers.

Every configuration is the base (HMAC secret, API key, short expiry delays so expiry
scenarios take seconds) merged with its own keys. The RSA and ECDSA keys are made once per
test process; their public halves go into the `keys` configuration.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

__all__ = [
    "API_KEY",
    "POLL_SECRET",
    "SECRET",
    "SUB_SECRET",
    "config",
    "names",
    "on_redis",
    "private_key",
]

SECRET = "compat-hmac-secret-0123456789abcdef01234567"
API_KEY = "compat-api-key"
SUB_SECRET = "compat-subscription-secret-0123456789abcdef"
POLL_SECRET = "compat-shared-poll-secret-0123456789abcdef"

_CHAT = {
    "name": "chat",
    "presence": True,
    "join_leave": True,
    "force_push_join_leave": True,
    "history_size": 10,
    "history_ttl": "300s",
    "force_recovery": True,
    "allow_subscribe_for_client": True,
    "allow_publish_for_subscriber": True,
    "allow_presence_for_subscriber": True,
    "allow_history_for_subscriber": True,
}
_PLAIN = {"name": "plain"}  # every option off: only a token opens it
# Presence, history and publish for any client, anonymous ones included (open_ns).
_OPEN = {
    "name": "open",
    "presence": True,
    "history_size": 5,
    "history_ttl": "60s",
    "allow_subscribe_for_client": True,
    "allow_subscribe_for_anonymous": True,
    "allow_presence_for_client": True,
    "allow_history_for_client": True,
    "allow_publish_for_client": True,
}
_DELTA = {
    "name": "delta",
    "history_size": 5,
    "history_ttl": "60s",
    "allowed_delta_types": ["fossil"],
    "allow_subscribe_for_client": True,
}
_POSITIONED = {
    "name": "pos",
    "history_size": 5,
    "history_ttl": "60s",
    "force_positioning": True,
    "allow_subscribe_for_client": True,
}
_CACHE = {
    "name": "cache",
    "history_size": 5,
    "history_ttl": "60s",
    "force_recovery": True,
    "force_recovery_mode": "cache",
    "allow_subscribe_for_client": True,
}
# Tags filters: a stream namespace (recovery, delta allowed) and one in cache recovery mode.
_TAGGED = {
    "name": "tagged",
    "history_size": 10,
    "history_ttl": "60s",
    "force_recovery": True,
    "allowed_delta_types": ["fossil"],
    "allow_subscribe_for_client": True,
    "allow_tags_filter": True,
}
_TAGGED_CACHE = {**_CACHE, "name": "tagcache", "allow_tags_filter": True}

_CODE_TO_HTTP = {
    "enabled": True,
    "transforms": [
        {"code": 109, "to": {"status_code": 401, "body": "renew"}},
        {"code": 3500, "to": {"status_code": 403}},
    ],
}
# Connect errors as HTTP answers and as chosen disconnects; a uni_websocket without the
# disconnect push (its close frame alone says why).
_UNI_CODES = {
    "client": {
        "connect_code_to_unidirectional_disconnect": {
            "enabled": True,
            "transforms": [{"code": 109, "to": {"code": 4501, "reason": "renew"}}],
        }
    },
    "uni_http_stream": {"connect_code_to_http_response": _CODE_TO_HTTP},
    "uni_sse": {"connect_code_to_http_response": _CODE_TO_HTTP},
    "uni_websocket": {"disable_disconnect_push": True},
}
# A map channel with fossil delta that any client may subscribe to and write.
_MAP_DELTA = {
    "name": "mapd",
    "subscription_type": "map",
    "allowed_delta_types": ["fossil"],
    "allow_subscribe_for_client": True,
    "map": {"mode": "persistent", "allow_publish_for_client": True, "min_page_size": 1},
}

# Shared poll with server-API publications. The backend is a closed port: every poll fails
# (logged) alike on both servers, so only publications bring versions.
_SHARED_POLL = {
    "name": "sp",
    "subscription_type": "shared_poll",
    "allow_subscribe_for_client": True,
    "shared_poll": {"mode": "versioned", "refresh_interval": "60s", "publish_enabled": True},
}
_CLOSED_BACKEND = {"endpoint": "http://127.0.0.1:9/refresh", "timeout": "1s"}

_BASE: dict[str, Any] = {
    "client": {
        "token": {"hmac_secret_key": SECRET},
        "allowed_origins": ["*"],
        "expired_close_delay": "1s",
        "expired_sub_close_delay": "1s",
        "presence_update_interval": "1s",
    },
    "http_api": {"key": API_KEY},
    # Every transport on, so one file serves the scenarios over each of them.
    "http_stream": {"enabled": True},
    "sse": {"enabled": True},
    "uni_http_stream": {"enabled": True},
    "uni_sse": {"enabled": True},
    "uni_websocket": {"enabled": True},
    "log": {"level": "error"},
    "channel": {
        "without_namespace": {"allow_subscribe_for_client": True},
        "namespaces": [_CHAT, _PLAIN],
    },
}


def _extra() -> dict[str, dict[str, Any]]:
    return {
        "base": {},
        "audiss": {"client": {"token": {"audience": "rotary-tests", "issuer": "compat-iss"}}},
        "keys": {
            "client": {
                "token": {
                    "rsa_public_key": _public_pem("RS256"),
                    "ecdsa_public_key": _public_pem("ES256"),
                }
            }
        },
        "rsa_only": {
            "client": {"token": {"hmac_secret_key": "", "rsa_public_key": _public_pem("RS256")}}
        },
        "anonymous": {"client": {"allow_anonymous_connect_without_token": True}},
        "no_anon_tokens": {"client": {"disallow_anonymous_connection_tokens": True}},
        "limits": {
            "client": {"channel_limit": 2, "user_connection_limit": 1},
            "websocket": {"message_size_limit": 1024},
        },
        "user_limited": {"channel": {"without_namespace": {"allow_user_limited_channels": True}}},
        "sub_tokens": {
            "client": {"subscription_token": {"enabled": True, "hmac_secret_key": SUB_SECRET}}
        },
        "user_claim": {"client": {"token": {"user_id_claim": "user_id"}}},
        "insecure": {"client": {"insecure": True}},
        "personal": {
            "client": {"subscribe_to_user_personal_channel": {"enabled": True}},
            "channel": {"without_namespace": {"presence": True}},
        },
        "open_ns": {"channel": {"namespaces": [_CHAT, _PLAIN, _OPEN, _POSITIONED, _CACHE]}},
        "connection_limit": {"client": {"connection_limit": 1}},
        "single_connection": {
            "client": {
                "subscribe_to_user_personal_channel": {"enabled": True, "single_connection": True}
            },
            # Centrifugo refuses to start without it (Rotary does not need it).
            "channel": {"without_namespace": {"presence": True}},
        },
        "fast_ping": {"client": {"ping_interval": "2s", "pong_timeout": "1s"}},
        # permessage-deflate on both WebSockets (the suite's aiohttp clients offer it).
        "deflate": {
            "websocket": {"compression": True, "compression_min_size": 64},
            "uni_websocket": {"compression": True, "compression_min_size": 64},
        },
        "uni_codes": _UNI_CODES,
        "tags": {"channel": {"namespaces": [_CHAT, _PLAIN, _TAGGED, _TAGGED_CACHE]}},
        "extras": {
            "client": {"connect_include_server_time": True},
            "rpc": {"ping": {"enabled": True}},
            "channel": {"namespaces": [_CHAT, _PLAIN, _DELTA]},
        },
        "maps": {"channel": {"namespaces": [_CHAT, _PLAIN, _MAP_DELTA]}},
        "shared_poll": {
            "shared_poll": {"hmac_secret_key": POLL_SECRET},
            "channel": {
                "namespaces": [_CHAT, _PLAIN, _SHARED_POLL],
                "proxy": {"shared_poll_refresh": _CLOSED_BACKEND},
            },
        },
    }


def names() -> list[str]:
    """Every configuration name."""
    return sorted(_extra())


def config(name: str) -> dict[str, Any]:
    """The full configuration `name` (a fresh copy the caller may change)."""
    return _merge(copy.deepcopy(_BASE), _extra()[name])


def on_redis(config: dict[str, Any]) -> dict[str, Any]:
    """`config` with the Redis engine on 127.0.0.1:6379 (each server gets its own prefix
    through its environment, so the two never share a channel)."""
    redis = {"engine": {"type": "redis", "redis": {"address": ["127.0.0.1:6379"]}}}
    return _merge(copy.deepcopy(config), redis)


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
    return into


def private_key(alg: str, *, wrong: bool = False) -> Any:
    """The suite's private key for RS256 or ES256 (`wrong`: a second, unconfigured one)."""
    return _key(alg, wrong)


@functools.cache
def _key(alg: str, wrong: bool) -> Any:
    del wrong  # part of the cache key only: a second key of the same type
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"no key for {alg}")


def _public_pem(alg: str) -> str:
    public = private_key(alg).public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()
