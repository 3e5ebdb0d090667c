"""Redis shards: key names, the channel → shard hash, and building clients per mode."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection, BlockingConnectionPool, Connection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from rotary.config.model import RedisSettings

__all__ = ["Keys", "Shard", "build_shards", "close_shards", "feed_client", "shard_index"]

#: Command connections per shard; callers beyond it wait up to ``io_timeout`` for one.
_POOL_SIZE = 64
#: The Sentinel pool cannot block, so it gets more room before refusing.
_SENTINEL_POOL_SIZE = 1024
_JUMP_MULTIPLIER = 2862933555777941757
_U64_MASK = (1 << 64) - 1


def shard_index(channel: str, shards: int) -> int:
    """The shard of `channel`: jump consistent hash (Lamping & Veach) of its CRC-32.

    Stable across processes and versions; adding a shard at the end moves only about
    1/(n+1) of the channels.
    """
    key = zlib.crc32(channel.encode())
    bucket, candidate = -1, 0
    while candidate < shards:
        bucket = candidate
        key = (key * _JUMP_MULTIPLIER + 1) & _U64_MASK
        candidate = int((bucket + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return bucket


class Keys:
    """Every Redis key and PUB/SUB channel name Rotary uses, under one prefix.

    The channel name is wrapped in ``{}`` so that all keys of a channel share one Redis
    Cluster hash slot (a Lua script may only touch keys of one slot).
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.control = f"{prefix}.control"
        self._client = f"{prefix}.client."
        self.client_prefix = self._client.encode()

    def stream(self, channel: str) -> str:
        return f"{self.prefix}.stream.{{{channel}}}"

    def meta(self, channel: str) -> str:
        return f"{self.prefix}.meta.{{{channel}}}"

    def result(self, channel: str, idempotency_key: str) -> str:
        return f"{self.prefix}.result.{{{channel}}}.{idempotency_key}"

    def presence_data(self, channel: str) -> str:
        return f"{self.prefix}.presence.data.{{{channel}}}"

    def presence_expire(self, channel: str) -> str:
        return f"{self.prefix}.presence.expire.{{{channel}}}"

    def pubsub(self, channel: str) -> str:
        """The Redis PUB/SUB channel carrying `channel`'s publications, joins and leaves."""
        return self._client + channel


@dataclass(frozen=True, slots=True)
class Shard:
    """One Redis deployment: a command client and a factory of PUB/SUB connections.

    `client` is a ``redis.asyncio.Redis`` (or ``RedisCluster``); `new_pubsub_connection`
    makes an unconnected connection without a read timeout, named `name` in CLIENT LIST.
    """

    index: int
    client: Any
    new_pubsub_connection: Callable[[str], AbstractConnection]


def build_shards(settings: RedisSettings) -> list[Shard]:
    """The shards `settings` describe: a cluster, a sentinel-managed master, or addresses."""
    if settings.cluster_addresses:
        return [_cluster_shard(settings)]
    if settings.sentinel_addresses:
        return [_sentinel_shard(settings)]
    return [_plain_shard(i, address, settings) for i, address in enumerate(settings.addresses)]


async def close_shards(shards: list[Shard]) -> None:
    """Close every command client and its pool."""
    for shard in shards:
        await shard.client.aclose()


def _common_kwargs(settings: RedisSettings) -> dict[str, Any]:
    return {
        "password": settings.password or None,
        "username": settings.user or None,
        "socket_connect_timeout": settings.connect_timeout,
        "socket_timeout": settings.io_timeout,
        "decode_responses": False,
        # RESP2 on every connection: PUB/SUB replies then arrive as plain arrays that
        # read_response returns, whatever protocol the installed redis-py defaults to.
        "protocol": 2,
    }


def _no_retry() -> Retry:
    # A retried script could publish twice if only its reply was lost: fail instead.
    return Retry(NoBackoff(), 0)


def _url(address: str) -> str:
    return address if "://" in address else f"redis://{address}"


def _plain_shard(index: int, address: str, settings: RedisSettings) -> Shard:
    # A blocking pool queues bursts (hundreds of concurrent publishes) instead of failing.
    pool = BlockingConnectionPool.from_url(
        _url(address),
        db=settings.db,
        retry=_no_retry(),
        max_connections=_POOL_SIZE,
        timeout=settings.io_timeout,
        **_common_kwargs(settings),
    )
    client = Redis.from_pool(pool)
    return Shard(index, client, _pool_connection_factory(client))


#: Sentinel's constructor through a typed name: redis-py's own annotations of it differ
#: between releases (untyped before 8), and this keeps the call checked on all of them.
_new_sentinel: Callable[..., Sentinel] = Sentinel


def _sentinel_shard(settings: RedisSettings) -> Shard:
    sentinels = [_host_port(address) for address in settings.sentinel_addresses]
    manager = _new_sentinel(
        sentinels,
        sentinel_kwargs={"socket_connect_timeout": settings.connect_timeout},
        db=settings.db,
        retry=_no_retry(),
        max_connections=_SENTINEL_POOL_SIZE,
        **_common_kwargs(settings),
    )
    client = manager.master_for(settings.sentinel_master_name)
    return Shard(0, client, _pool_connection_factory(client))


def _cluster_shard(settings: RedisSettings) -> Shard:
    nodes = [ClusterNode(*_host_port(a)) for a in settings.cluster_addresses]
    client = RedisCluster(startup_nodes=nodes, **_common_kwargs(settings))
    # Cluster PUB/SUB is broadcast to every node, so one connection to any node hears all.
    host, port = nodes[0].host, nodes[0].port
    kwargs = {**_common_kwargs(settings), "socket_timeout": None, "socket_keepalive": True}

    def new_connection(name: str) -> AbstractConnection:
        return Connection(host=host, port=port, client_name=name, **kwargs)

    return Shard(0, client, new_connection)


def feed_client(settings: RedisSettings) -> Redis:
    """A plain client of the first cluster address, for PUB/SUB (which reaches every node)."""
    host, port = _host_port(settings.cluster_addresses[0])
    return Redis(host=host, port=port, retry=_no_retry(), **_common_kwargs(settings))


def _pool_connection_factory(client: Any) -> Callable[[str], AbstractConnection]:
    """Connections like the client's pool makes, but blocking forever on reads."""
    pool = client.connection_pool

    def new_connection(name: str) -> AbstractConnection:
        kwargs = {
            **pool.connection_kwargs,
            "socket_timeout": None,
            "socket_keepalive": True,
            "client_name": name,
        }
        connection: AbstractConnection = pool.connection_class(**kwargs)
        return connection

    return new_connection


def _host_port(address: str) -> tuple[str, int]:
    parts = urlsplit(_url(address))
    return parts.hostname or "127.0.0.1", parts.port or 6379
