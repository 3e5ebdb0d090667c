"""``rotary --workers N``: N nodes on one port over Redis, supervised."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.functional.cluster_helpers import cluster_config, shared_redis_or_skip, until
from tests.functional.conftest import (
    ServerHandle,
    _wait_healthy,
    default_config,
    free_port,
    make_token,
)

pytestmark = [pytest.mark.redis]


def _children(pid: int) -> set[int]:
    """Process ids of `pid`'s children (Linux)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()}


def _start(tmp_path: Path, config: dict[str, Any], workers: int) -> ServerHandle:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(config))
    log_path = tmp_path / "rotary.log"
    port = free_port()
    cmd = [sys.executable, "-m", "rotary", "-c", str(cfg), "--port", str(port)]
    cmd += ["--address", "127.0.0.1", "--workers", str(workers)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    return ServerHandle(port=port, config=config, process=process, log_path=log_path)


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[ServerHandle]:
    shared_redis_or_skip()
    handle = _start(tmp_path, cluster_config(["127.0.0.1:6379"]), workers=2)
    try:
        _wait_healthy(handle, time.monotonic() + 30)
        yield handle
    finally:
        if handle.process.poll() is None:
            handle.process.kill()
            handle.process.wait(10)
        for pid in _children(handle.process.pid) if handle.process.poll() is None else ():
            os.kill(pid, signal.SIGKILL)


async def _subscriber(server: ServerHandle, ws_connect: Any, user: str) -> Any:
    client = await ws_connect(server)
    assert "connect" in await client.request({"id": 1, "connect": {"token": make_token(user)}})
    assert "subscribe" in await client.request({"id": 2, "subscribe": {"channel": "all"}})
    return client


async def test_two_workers_share_the_port_restart_when_killed_and_drain_on_sigterm(
    supervisor: ServerHandle, ws_connect: Any
) -> None:
    workers = _children(supervisor.process.pid)
    assert len(workers) == 2
    nodes = lambda: supervisor.api("info", {})["result"]["nodes"]  # noqa: E731
    await until(lambda: len(nodes()) == 2, what="both workers in the cluster")
    clients = [await _subscriber(supervisor, ws_connect, f"u{i}") for i in range(8)]
    # A publication reaches every client, on whichever worker the kernel placed it.
    supervisor.api("publish", {"channel": "all", "data": {"n": 1}})
    for client in clients:
        assert (await client.push())["push"]["pub"]["data"] == {"n": 1}
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    await until(
        lambda: victim not in (now := _children(supervisor.process.pid)) and len(now) == 2,
        what="the killed worker replaced",
    )
    assert f"(pid {victim}) exited with -9: restarting" in supervisor.log()
    await until(lambda: len(nodes()) >= 2, what="the new worker serving")
    later = [await _subscriber(supervisor, ws_connect, f"v{i}") for i in range(4)]
    supervisor.process.send_signal(signal.SIGTERM)
    assert await until(lambda: supervisor.process.poll() is not None, within=20) is not None
    assert supervisor.process.returncode == 0
    assert "all workers stopped" in supervisor.log()
    # Every worker drained: clients connected since were told 3001; the earlier ones were
    # told 3001 too, unless the killed worker held them.
    assert [(await client.closed())[0] for client in later] == [3001] * 4
    codes = {(await client.closed())[0] for client in clients}
    assert codes <= {3001, 1006}, codes


def test_workers_are_refused_on_the_memory_engine(tmp_path: Path) -> None:
    handle = _start(tmp_path, default_config(), workers=2)
    assert handle.process.wait(30) == 1
    assert "--workers 2 needs the Redis engine" in handle.log()
