"""Start the servers under test: Rotary in its configurations, and the peers.

Every function returns a running `ServerProcess` (callers stop it in a `finally`) or raises
`ServerUnavailable`. URLs: `ws_path` is where load clients connect.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import (
    API_KEY,
    SECRET,
    ServerProcess,
    ServerUnavailable,
    free_port,
    start_rotary,
    start_server,
)
from bench.peers.centrifugo import start_centrifugo_peer

__all__ = [
    "ROTARY_CHECKED",
    "ROTARY_INSECURE",
    "ROTARY_STANDARD",
    "ROTARY_STREAMING",
    "start_aiohttp_bare",
    "start_all",
    "start_centrifugo_checked",
    "start_centrifugo_standard",
    "start_peer",
    "start_picows_bare",
    "start_proxy_backend",
    "start_rotary_with",
    "start_socketio",
    "stop_all",
    "ws_path",
]

# Private (`$`) channels: every subscribe needs a subscription token.
ROTARY_CHECKED: dict[str, Any] = {"token_hmac_secret_key": SECRET, "api_key": API_KEY}
# Token checks off: anonymous connect, subscribe allowed to any client.
ROTARY_INSECURE: dict[str, Any] = {
    **ROTARY_CHECKED,
    "client_insecure": True,
    "allow_subscribe_for_client": True,
}
# Connection token checked; public channels open to authenticated users (fan-out, memory).
ROTARY_STANDARD: dict[str, Any] = {**ROTARY_CHECKED, "allow_subscribe_for_client": True}
# The same with the bidirectional HTTP-streaming and SSE endpoints on (fan-out over them).
ROTARY_STREAMING: dict[str, Any] = {**ROTARY_STANDARD, "http_stream": True, "sse": True}

_WS_PATHS = {
    "rotary": "/connection/websocket",
    "rotary-protobuf": "/connection/websocket?cf_protocol=protobuf",
    "socketio": "/socket.io/?EIO=4&transport=websocket",
    "picows": "/ws",
    "aiohttp": "/ws",
    "centrifugo": "/connection/websocket",
}


def ws_path(kind: str) -> str:
    """The WebSocket path load clients use for server `kind`."""
    return _WS_PATHS[kind]


def start_rotary_with(config: dict[str, Any], **kwargs: Any) -> ServerProcess:
    return start_rotary(config, **kwargs)


def _peer(
    module: str,
    *,
    health: str | None,
    env: dict[str, str] | None = None,
    flags: tuple[str, ...] = (),
    wrapper: Sequence[str] = (),
    ready_timeout: float | None = None,
) -> ServerProcess:
    port = free_port()
    argv = [*wrapper, sys.executable, "-m", f"bench.peers.{module}", "--port", str(port), *flags]
    more = {} if ready_timeout is None else {"ready_timeout": ready_timeout}
    return start_server(module, argv, port=port, health_path=health, env=env, **more)


def start_picows_bare() -> ServerProcess:
    return _peer("picows_broadcast", health=None)


def start_proxy_backend() -> ServerProcess:
    """The minimal proxy backend of `bench proxystorm` (HTTP, answers connect and subscribe)."""
    return _peer("proxy_backend", health="/health")


def start_aiohttp_bare() -> ServerProcess:
    return _peer("aiohttp_broadcast", health="/health")


def start_socketio(
    *, wrapper: Sequence[str] = (), env: dict[str, str] | None = None, **kwargs: Any
) -> ServerProcess:
    """The python-socketio peer; `wrapper` and `ready_timeout` as for `start_rotary`."""
    full_env = {"BENCH_SECRET": SECRET, **(env or {})}
    return _peer("socketio_server", health="/health", env=full_env, wrapper=wrapper, **kwargs)


def start_centrifugo_checked() -> ServerProcess:
    """Centrifugo configured like `ROTARY_CHECKED` (GOMAXPROCS=1, pinned like Rotary)."""
    return start_centrifugo_peer(public_channels=False)


def start_centrifugo_standard() -> ServerProcess:
    """Centrifugo configured like `ROTARY_STANDARD` (GOMAXPROCS=1, pinned like Rotary)."""
    return start_centrifugo_peer(public_channels=True)


def start_peer(kind: str) -> ServerProcess:
    """Start the peer named `kind` (``picows``, ``aiohttp``, ``socketio`` or ``centrifugo``).

    ``centrifugo`` is configured like `ROTARY_STANDARD` (public channels).
    """
    starters = {"picows": start_picows_bare, "aiohttp": start_aiohttp_bare}
    starters["socketio"] = start_socketio
    starters["centrifugo"] = start_centrifugo_standard
    return starters[kind]()


def start_all(
    starters: dict[str, Callable[[], ServerProcess]],
) -> dict[str, ServerProcess | ServerUnavailable]:
    """Start several servers concurrently (start-up dominates short runs).

    Each value is the running server or the `ServerUnavailable` explaining why not; the
    caller stops the running ones with `stop_all` in a `finally`.
    """
    with ThreadPoolExecutor(max_workers=len(starters)) as ex:
        futures = {name: ex.submit(start) for name, start in starters.items()}
    out: dict[str, ServerProcess | ServerUnavailable] = {}
    for name, fut in futures.items():
        try:
            out[name] = fut.result()
        except ServerUnavailable as exc:
            out[name] = exc
        except Exception as exc:  # any start-up failure: keep the others stoppable
            out[name] = ServerUnavailable(f"{name}: {exc!r}")
    return out


def stop_all(servers: dict[str, ServerProcess | ServerUnavailable]) -> None:
    """Stop every running server of a `start_all` result (safe to call twice)."""
    for server in servers.values():
        if isinstance(server, ServerProcess):
            server.stop()
