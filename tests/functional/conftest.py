"""Real `rotary` server processes on loopback for functional and SDK tests.

`rotary_server(config)` writes `config` (a dict of Centrifugo v5 flat keys, or v6 nested
keys) to a file, starts ``python -m rotary -c FILE --port PORT --address 127.0.0.1`` as a
child process, waits until ``/health`` answers, and stops it at the end of the test.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

SECRET = "functional-test-secret-key-0123456789"
API_KEY = "functional-test-api-key"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerHandle:
    """A running `rotary` process."""

    port: int
    config: dict[str, Any]
    process: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/connection/websocket"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def api_key(self) -> str:
        return str(self.config.get("api_key", API_KEY))

    def log(self) -> str:
        """Everything the process printed so far."""
        return self.log_path.read_text(errors="replace")

    def api(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Call the server HTTP API; return the decoded JSON body."""
        req = urllib.request.Request(
            f"{self.api_url}/{method}",
            data=json.dumps(params).encode(),
            headers={"X-API-Key": self.api_key, "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            body: dict[str, Any] = json.loads(resp.read() or b"{}")
            return body

    def stop(self) -> int:
        """Stop the process with SIGTERM (SIGKILL after 10 s); return its exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return int(self.process.returncode)


def _wait_healthy(handle: ServerHandle, deadline: float) -> None:
    while time.monotonic() < deadline:
        if handle.process.poll() is not None:
            raise RuntimeError(f"rotary exited early:\n{handle.log()}")
        try:
            with urllib.request.urlopen(f"{handle.http_url}/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"rotary did not become healthy:\n{handle.log()}")


def default_config() -> dict[str, Any]:
    """A v5 flat config with an HMAC secret and an API key."""
    return {"token_hmac_secret_key": SECRET, "api_key": API_KEY}


@pytest.fixture
def rotary_server(tmp_path: Path) -> Iterator[Callable[..., ServerHandle]]:
    """Factory: `rotary_server(config=None, *, port=None, env=None, address="127.0.0.1")` → a
    running server (address "" leaves ``--address`` out: every interface)."""
    handles: list[ServerHandle] = []

    def start(
        config: dict[str, Any] | None = None,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
        address: str = "127.0.0.1",
    ) -> ServerHandle:
        cfg = default_config() if config is None else config
        n = len(handles)
        cfg_path = tmp_path / f"config-{n}.json"
        cfg_path.write_text(json.dumps(cfg))
        log_path = tmp_path / f"rotary-{n}.log"
        port = port or free_port()
        cmd = [sys.executable, "-m", "rotary", "-c", str(cfg_path), "--port", str(port)]
        if address:
            cmd += ["--address", address]
        proc_env = {**os.environ, **(env or {})}
        with log_path.open("wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=proc_env)
        handle = ServerHandle(port=port, config=cfg, process=proc, log_path=log_path)
        handles.append(handle)
        _wait_healthy(handle, time.monotonic() + 20)
        return handle

    yield start
    for h in handles:
        h.stop()


# ---------------------------------------------------------------- raw WebSocket clients
# (server-core tests: tests/functional/test_ws_*.py)


def make_token(sub: str = "42", *, exp_in: float | None = 3600, **claims: Any) -> str:
    """An HS256 token signed with SECRET; `exp_in` None leaves ``exp`` out."""
    import jwt

    payload: dict[str, Any] = {"sub": sub, **claims}
    if exp_in is not None:
        payload["exp"] = int(time.time() + exp_in)
    return str(jwt.encode(payload, SECRET, algorithm="HS256"))


class WsClient:
    """A raw protocol client over aiohttp's WebSocket: frames in, decoded messages out."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.frames: list[str] = []

    async def send(self, *commands: dict[str, Any] | str) -> None:
        lines = [c if isinstance(c, str) else json.dumps(c) for c in commands]
        await self.ws.send_str("\n".join(lines))

    async def recv(self, wait: float = 10) -> list[dict[str, Any]]:
        """The messages of the next text frame; AssertionError on a close frame."""
        import aiohttp

        msg = await self.ws.receive(timeout=wait)
        assert msg.type == aiohttp.WSMsgType.TEXT, f"expected text, got {msg.type} {msg.data}"
        self.frames.append(msg.data)
        return [json.loads(line) for line in msg.data.split("\n")]

    async def reply(self, cmd_id: int, wait: float = 10) -> dict[str, Any]:
        """Read until the reply to `cmd_id`; pushes read on the way are kept in `pushes`."""
        while True:
            for message in await self.recv(wait):
                if message.get("id") == cmd_id:
                    return message
                self.pushes.append(message)

    async def request(self, command: dict[str, Any]) -> dict[str, Any]:
        await self.send(command)
        return await self.reply(int(command["id"]))

    async def push(self, wait: float = 10) -> dict[str, Any]:
        """The next push (server pings are skipped)."""
        while not self.pushes:
            self.pushes.extend(m for m in await self.recv(wait) if m)
        return self.pushes.pop(0)

    async def closed(self, wait: float = 20) -> tuple[int, str]:
        """Read until the close frame; return (code, reason). Text frames are kept."""
        import aiohttp

        while True:
            msg = await self.ws.receive(timeout=wait)
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.frames.append(msg.data)
                continue
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg
            return int(self.ws.close_code or 0), str(msg.extra or "")

    @property
    def pushes(self) -> list[dict[str, Any]]:
        return self.__dict__.setdefault("_pushes", [])


@pytest.fixture
async def ws_connect() -> Any:
    """Factory: `await ws_connect(server, query="", headers=None)` → a connected `WsClient`."""
    import aiohttp

    session = aiohttp.ClientSession()

    async def connect(
        server: ServerHandle, *, query: str = "", headers: dict[str, str] | None = None
    ) -> WsClient:
        url = server.ws_url + (f"?{query}" if query else "")
        ws = await session.ws_connect(url, headers=headers, autoclose=False, autoping=True)
        return WsClient(ws)

    yield connect
    await session.close()
