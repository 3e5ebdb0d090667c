"""``/health`` follows the node's ability to deliver: unhealthy while its Redis is dead."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.functional.cluster_helpers import RedisProcess, cluster_config, until

pytestmark = [pytest.mark.redis]


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path).start()
    yield server
    server.stop()


def health(server: Any) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"{server.http_url}/health", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def test_health_is_503_naming_redis_while_redis_is_dead_and_200_once_it_is_back(
    rotary_server: Any, private_redis: RedisProcess
) -> None:
    server = rotary_server(cluster_config([private_redis.address]))
    assert health(server) == (200, {})
    private_redis.stop()
    _, body = await until(lambda: (s := health(server))[0] == 503 and s, what="503")
    assert body == {"problems": ["redis shard 0: PUB/SUB connection down"]}
    private_redis.start()
    await until(lambda: health(server) == (200, {}), what="healthy again")
