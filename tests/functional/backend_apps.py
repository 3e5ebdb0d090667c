"""Start the example backend apps of examples/ as real servers on loopback.

`start_app("fastapi" | "django", secret=...)` runs the FastAPI example under uvicorn, or the
Django example under Django's own development server, with Rotary's HMAC secret in its
environment, and returns an `AppHandle` once the app answers HTTP.
"""

from __future__ import annotations

import http.cookies
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.functional.conftest import free_port

__all__ = ["APPS", "AppHandle", "app_url", "start_app"]

ROOT = Path(__file__).resolve().parents[2]
APPS = ("fastapi", "django")


@dataclass
class AppHandle:
    """A running example app."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def login(self, user: str) -> str:
        """Sign `user` in; return the session cookie as a ``Cookie`` header value."""
        request = urllib.request.Request(
            f"{self.url}/login",
            data=json.dumps({"user": user}).encode(),
            headers={"content-type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            jar = http.cookies.SimpleCookie(response.headers["set-cookie"])
        return "; ".join(f"{name}={morsel.value}" for name, morsel in jar.items())

    def post(self, path: str, body: object, *, cookie: str = "") -> tuple[int, object]:
        """POST JSON to the app; (status, decoded JSON body)."""
        headers = {"content-type": "application/json", **({"cookie": cookie} if cookie else {})}
        request = urllib.request.Request(
            f"{self.url}{path}", data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")


def app_url(port: int) -> str:
    """The base URL an example app started on `port` answers at."""
    return f"http://127.0.0.1:{port}"


def _command(kind: str, port: int) -> list[str]:
    if kind == "fastapi":
        app = "examples.fastapi_app.app:app"
        return [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    settings = "examples.django_app.settings"
    return [
        *(sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}"),
        *("--noreload", "--settings", settings),
    ]


@contextmanager
def start_app(
    kind: str,
    *,
    secret: str,
    tmp_path: Path,
    port: int | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[AppHandle]:
    """Run the `kind` example app (on `port`, default a free one) until the block ends."""
    port = port or free_port()
    log_path = tmp_path / f"{kind}-app-{port}.log"
    env = {**os.environ, "ROTARY_EXAMPLE_SECRET": secret, "PYTHONPATH": str(ROOT), **(env or {})}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            _command(kind, port), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    handle = AppHandle(app_url(port), process, log_path)
    try:
        _wait_listening(handle)
        yield handle
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_listening(handle: AppHandle) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if handle.process.poll() is not None:
            raise RuntimeError(f"the example app exited:\n{handle.log()}")
        try:
            urllib.request.urlopen(f"{handle.url}/", timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # it answers (404 for /): listening
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the example app did not start:\n{handle.log()}")
