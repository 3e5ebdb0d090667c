"""The Redis engine: many Rotary nodes share history, presence and delivery through Redis.

Connections (`RedisSettings`)
    ``addresses`` lists one or more Redis instances (``host:port`` or ``redis://`` /
    ``rediss://`` / ``unix://`` URLs); each is a *shard*. ``sentinel_addresses`` with
    ``sentinel_master_name`` use redis-py's Sentinel support (one shard, the master);
    ``cluster_addresses`` use redis-py's ``RedisCluster`` (one shard; its PUB/SUB goes
    through one connection to the first address, as cluster PUB/SUB reaches every node).
    Sentinel and Cluster clients are built but untested here: that needs infrastructure the
    test suite does not have. Each shard has one command pool per broker or presence
    manager, and each broker holds ONE PUB/SUB connection per shard, named
    ``rotary-<node_id>-pubsub-<shard>`` in CLIENT LIST. Command pools block (64
    connections per shard, waiting up to ``io_timeout``) and never retry a command, so a
    lost reply cannot publish twice. An idle PUB/SUB connection is PINGed every 5 s and
    replaced after 15 s without any reply.

Sharding
    A channel lives on shard ``jump_consistent_hash(crc32(utf8(channel)), n_shards)``: its
    stream, meta, idempotency keys, presence and PUB/SUB channel all sit there. Control
    messages use shard 0.

Keys (``P`` = ``settings.prefix``, default ``centrifugo``; ``{C}`` = the channel in braces,
so all keys of a channel share a Redis Cluster hash slot)
    ``P.stream.{C}``                history stream; entry id ``<offset>-0``, field ``d`` =
                                    publication body; capped at history_size, PEXPIRE
                                    history_ttl.
    ``P.meta.{C}``                  hash: ``e`` epoch, ``s`` top offset; PEXPIRE meta ttl.
    ``P.result.{C}.<key>``          first result ``<offset>:<epoch>`` of an idempotency key,
                                    kept 300 s.
    ``P.presence.data.{C}``         hash: client id → info frame.
    ``P.presence.expire.{C}``       sorted set: client id → expiry (unix seconds).
    PUB/SUB ``P.client.<channel>``  publications, joins, leaves of a channel.
    PUB/SUB ``P.control``           control messages.

Payloads use the framed binary format documented in `rotary.engines.redis._codec`.

Epochs: a channel gets a random epoch on first use; when its meta hash disappears (TTL,
a Redis restart without persistence, keys deleted) the next publish or history read
creates a new epoch and offsets restart at 1, so clients learn ``recovered: false``.

Resubscription hook: after a shard's PUB/SUB connection is re-established and every channel
subscribed again, the broker calls ``handler.handle_resubscribed(shard_index)`` if the
handler defines it (the `BrokerEventHandler` protocol is unchanged); the node should then
make clients of that shard's channels (`RedisBroker.shard_of`) recover from history.
"""

from rotary.engines.redis._pubsub import RedisEngineError
from rotary.engines.redis.broker import IDEMPOTENCY_TTL, RedisBroker, random_epoch
from rotary.engines.redis.presence import RedisPresenceManager
from rotary.engines.redis.revocation import RedisRevocationStore

__all__ = [
    "IDEMPOTENCY_TTL",
    "RedisBroker",
    "RedisEngineError",
    "RedisPresenceManager",
    "RedisRevocationStore",
    "random_epoch",
]
