"""Go programs of this repository, built once into a cache outside it.

Each program has its own directory with go.mod and go.sum. It is built into ``BIN_DIR`` under
``<prefix><digest>``, the digest taken over go.mod, go.sum and the ``.go`` files, so it is
rebuilt only when one of them changes; builds of other sources are removed once a day old (a
second checkout at another revision, working at the same time, keeps its own build instead of
rebuilding in turn). Two processes wanting a build at once make it once: a lock file
serialises them. Used by `bench.goreceivers` (bench/goload) and by the tests' driver of the
official Go SDK (tests/sdk/go_driver.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["BIN_DIR", "STALE_AFTER", "GoMissingError", "build_cached", "go_tool", "prune"]

BIN_DIR = Path.home() / ".cache" / "rotary" / "bin"
#: Seconds after which a build of other sources is removed.
STALE_AFTER = 24 * 3600.0


class GoMissingError(RuntimeError):
    """No `go` command: the program cannot be built."""


def go_tool() -> str | None:
    """The `go` command: on PATH, or where the official tarball installs it."""
    found = shutil.which("go")
    if found is None and os.access("/usr/local/go/bin/go", os.X_OK):
        found = "/usr/local/go/bin/go"
    return found


def source_digest(source: Path) -> str:
    """A digest of every file the build reads from `source` (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(source.iterdir()):
        if path.name in {"go.mod", "go.sum"} or path.suffix == ".go":
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build_cached(
    source: Path, bin_dir: Path, prefix: str, *, go: str | None, needed_by: str, timeout: float
) -> Path:
    """The program built from `source` as it is now, built first when missing.

    `go` is the `go` command (None: not installed). Raises GoMissingError when a build is
    needed without Go (its message says what needs it: `needed_by`), RuntimeError with
    Go's output when the build fails.
    """
    target = bin_dir / f"{prefix}{source_digest(source)}"
    if target.is_file():
        return target
    if go is None:
        raise GoMissingError(f"Go is not installed: {needed_by} need `go` (1.25+)")
    bin_dir.mkdir(parents=True, exist_ok=True)
    with _locked(bin_dir / f".{prefix}lock"):
        if not target.is_file():  # another process may have built it meanwhile
            _build(go, source, target, timeout)
            prune(bin_dir, prefix, target)
    return target


def prune(bin_dir: Path, prefix: str, keep: Path) -> None:
    """Remove the builds named `prefix`… in `bin_dir` other than `keep` once a day old."""
    for stale in bin_dir.glob(f"{prefix}*"):
        if stale != keep and time.time() - stale.stat().st_mtime > STALE_AFTER:
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(go: str, source: Path, target: Path, timeout: float) -> None:
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    # -mod=readonly: a go.sum that does not cover the build is an error, never a silent edit
    # of the repository; -buildvcs=false: the checkout's git state is none of the binary's.
    flags = f"{os.environ.get('GOFLAGS', '')} -mod=readonly -buildvcs=false".strip()
    done = subprocess.run(
        [go, "build", "-trimpath", "-o", str(partial), "."],
        cwd=source,
        env={**os.environ, "GOFLAGS": flags},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(
            f"building {source.parent.name}/{source.name} failed:\n{done.stdout}{done.stderr}"
        )
    os.replace(partial, target)
