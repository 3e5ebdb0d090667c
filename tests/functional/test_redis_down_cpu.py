"""A node whose Redis is dead waits for it without spinning.

While Redis is down, everything that talks to it fails and tries again: the PUB/SUB
connection reconnects, the delivery probe publishes, clients' subscriptions wait to be
restored. Each retry must back off, or the node burns a core doing nothing useful. The
node's own CPU time (``/proc/<pid>/stat``) over a window of seconds shows it: a busy loop
takes close to 100 % of a core, a node that backs off a few percent at most.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.functional.cluster_helpers import RedisProcess, cluster_config, until
from tests.functional.conftest import make_token

pytestmark = [pytest.mark.redis]

#: Long enough for the reconnect backoff to reach its cap (2 s) several times over.
_WINDOW_S = float(os.environ.get("ROTARY_REDIS_DOWN_WINDOW", "6"))
#: A busy loop would take about 1.0; backing off takes a few hundredths on a loaded machine.
_MAX_SHARE = 0.2


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path).start()
    yield server
    server.stop()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far."""
    with open(f"/proc/{pid}/stat") as stat:
        # Fields after the command name (which may hold spaces) start at its closing ')'.
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _health_down(server: Any) -> bool:
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(f"{server.http_url}/health", timeout=5).close()
    except urllib.error.HTTPError as error:
        return error.code == 503
    return False


async def test_node_uses_little_cpu_while_its_redis_is_dead(
    rotary_server: Any, private_redis: RedisProcess, ws_connect: Any
) -> None:
    config = cluster_config([private_redis.address], force_recovery=True)
    server = rotary_server(config)
    clients = []
    for index in range(3):
        client = await ws_connect(server)
        await client.request({"id": 1, "connect": {"token": make_token(f"u{index}")}})
        await client.request({"id": 2, "subscribe": {"channel": f"room{index}"}})
        clients.append(client)
    private_redis.stop()
    await until(lambda: _health_down(server), what="/health noticing the dead Redis")
    # The first reconnects come quickly (50 ms doubling): measure once they have settled.
    await asyncio.sleep(2.5)
    pid = server.process.pid
    cpu_before, wall_before = _cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(_WINDOW_S)
    share = (_cpu_seconds(pid) - cpu_before) / (time.monotonic() - wall_before)
    print(f"node CPU share with Redis dead over {_WINDOW_S:.0f} s: {share:.3f}")
    assert share < _MAX_SHARE, f"node used {share:.0%} of a core while Redis was dead"
    assert server.process.poll() is None
    private_redis.start()
    await until(lambda: not _health_down(server), what="/health once Redis is back")
    for client in clients:
        await client.ws.close()
