"""Centrifugo itself, the reference server: find or build its binary and start it.

The binary is Centrifugo v6.9.1 built from its Go module into a cache outside the repository
(``$ROTARY_CENTRIFUGO_BIN``, else ``~/.cache/rotary/bin/centrifugo``). `make centrifugo`
builds it once; `find_centrifugo(build=True)` does the same from Python. Rotary never needs
it: only the differential tests (tests/compat/) and the benchmarks start it.

`start_centrifugo(config)` writes `config` (Centrifugo v6 nested keys, the same dict
Rotary is started with) to a file and starts the binary on a free loopback port through
`bench.common.start_server`, so it is pinned to the server CPUs like every other server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.common import ServerProcess, ServerUnavailable, free_port, start_server

__all__ = [
    "CENTRIFUGO_MODULE",
    "CENTRIFUGO_VERSION",
    "binary_path",
    "build_centrifugo",
    "find_centrifugo",
    "find_go",
    "start_centrifugo",
]

CENTRIFUGO_VERSION = "6.9.1"
CENTRIFUGO_MODULE = f"github.com/centrifugal/centrifugo/v6@v{CENTRIFUGO_VERSION}"
# Where Go is usually installed when it is not on PATH (the official tarball's location).
_GO_FALLBACKS = ("/usr/local/go/bin/go",)
_BUILD_TIMEOUT_S = 3600.0


def binary_path() -> Path:
    """Where the Centrifugo binary lives (it may not exist yet)."""
    override = os.environ.get("ROTARY_CENTRIFUGO_BIN")
    if override:
        return Path(override)
    return Path.home() / ".cache" / "rotary" / "bin" / "centrifugo"


def find_go() -> str | None:
    """The `go` command: on PATH, else at its usual install location; None when absent."""
    found = shutil.which("go")
    if found:
        return found
    return next((p for p in _GO_FALLBACKS if os.access(p, os.X_OK)), None)


def _is_wanted_build(binary: Path) -> bool:
    """Whether `binary` was built from Centrifugo's module at v6.9.1.

    `go install` leaves the binary's own version string at 0.0.0, so the module version is
    read from the build information Go embeds (`go version -m`). Without Go that cannot be
    read, and an existing binary is taken as it is.
    """
    if not os.access(binary, os.X_OK):
        return False
    go = find_go()
    if go is None:
        return True
    out = subprocess.run(
        [go, "version", "-m", str(binary)], capture_output=True, text=True, timeout=60, check=False
    )
    return f"v{CENTRIFUGO_VERSION}" in out.stdout


def build_centrifugo(go: str) -> Path:
    """Build Centrifugo v6.9.1 with `go install` into the cache directory; return the binary.

    The Go build and module caches make a second build fast; the first one takes minutes.
    Raises `ServerUnavailable` with Go's output when the build fails.
    """
    target = binary_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(target.parent)}
    proc = subprocess.run(
        [go, "install", CENTRIFUGO_MODULE],
        capture_output=True,
        text=True,
        env=env,
        timeout=_BUILD_TIMEOUT_S,
        check=False,
    )
    built = target.parent / "centrifugo"
    if proc.returncode != 0 or not built.exists():
        raise ServerUnavailable(f"go install {CENTRIFUGO_MODULE} failed: {proc.stderr[-2000:]}")
    if built != target:
        shutil.move(built, target)
    return target


def find_centrifugo(*, build: bool = False) -> Path:
    """The Centrifugo v6.9.1 binary, built first when missing and `build` is true.

    Raises `ServerUnavailable` naming what is missing (the binary, or Go to build it).
    """
    target = binary_path()
    if target.exists() and _is_wanted_build(target):
        return target
    go = find_go()
    if not build or go is None:
        why = "Go is not installed" if go is None else "run `make centrifugo` to build it"
        raise ServerUnavailable(f"no Centrifugo v{CENTRIFUGO_VERSION} at {target}: {why}")
    return build_centrifugo(go)


def start_centrifugo(
    config: dict[str, Any],
    *,
    gomaxprocs: int | None = None,
    env: dict[str, str] | None = None,
    ready_timeout: float = 20.0,
    pin: bool = True,
) -> ServerProcess:
    """Start Centrifugo with `config` (v6 keys) on 127.0.0.1 and a free port.

    Health checks are turned on (readiness is GET /health); the listening address and port
    come from the environment, so `config` stays the file Rotary is given. `gomaxprocs`
    limits the Go scheduler to that many CPUs (1 for per-core comparisons); `pin` False
    leaves the process on every CPU instead of the server CPU.
    """
    binary = find_centrifugo()
    port = free_port()
    fd, cfg_path = tempfile.mkstemp(prefix="centrifugo-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(_with_health(config), f)
    full_env = {
        "CENTRIFUGO_HTTP_SERVER_ADDRESS": "127.0.0.1",
        "CENTRIFUGO_HTTP_SERVER_PORT": str(port),
        **({"GOMAXPROCS": str(gomaxprocs)} if gomaxprocs else {}),
        **(env or {}),
    }
    argv = [str(binary), "--config", cfg_path]
    server = start_server(
        "centrifugo", argv, port=port, env=full_env, ready_timeout=ready_timeout, pin=pin
    )
    server.extra["config_path"] = cfg_path
    return server


def _with_health(config: dict[str, Any]) -> dict[str, Any]:
    # Centrifugo serves /health only when asked (Rotary always does); readiness needs it.
    health = {**config.get("health", {}), "enabled": True}
    return {**config, "health": health}
