"""Helpers of the revocation store tests (no tests here): Redis, cleanup, a private server."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tests.engines.conftest import REDIS_HOST, REDIS_PORT, skip_or_fail

SHARED = f"{REDIS_HOST}:{REDIS_PORT}"
#: The contract (brief of issue #6): another node learns of a revocation within 1 s.
PROPAGATION_DEADLINE = 1.0


def client_for(address: str) -> aioredis.Redis:
    host, port = address.rsplit(":", 1)
    return aioredis.Redis(
        host=host, port=int(port), socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0)
    )


async def redis_reachable(address: str = SHARED) -> str:
    """`address` when Redis answers there; otherwise skip (or fail under CI)."""
    client = client_for(address)
    try:
        await client.ping()
    except Exception as exc:
        skip_or_fail(f"Redis at {address} is unreachable: {exc!r}")
    finally:
        await client.aclose()
    return address


async def delete_prefixed(address: str, prefix: str) -> None:
    """Remove every key under `prefix` (each test uses a unique one)."""
    client = client_for(address)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}.*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def eventually(condition: Callable[[], bool], *, within: float) -> bool:
    """Whether `condition` holds at some point within `within` seconds (polled)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


class PrivateRedis:
    """A throw-away ``redis-server`` on a free loopback port, for disruptive steps."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            skip_or_fail("redis-server is not installed")
        with socket.socket() as sock:
            sock.bind((REDIS_HOST, 0))
            self.port: int = sock.getsockname()[1]
        self.address = f"{REDIS_HOST}:{self.port}"
        args = [binary, "--port", str(self.port), "--bind", REDIS_HOST, "--save", ""]
        self._args = [*args, "--appendonly", "no", "--daemonize", "no"]
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            self._args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self._process.poll() is None:
            try:
                with socket.create_connection((REDIS_HOST, self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"private redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None
