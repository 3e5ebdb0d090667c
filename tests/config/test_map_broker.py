"""The ``map_broker`` section: the Redis map broker's own Redis and cleanup settings."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rotary.config import ConfigError, load_config

ConfigFile = Callable[..., str]


def test_map_broker_redis_section_is_read_apart_from_the_engine(config_file: ConfigFile) -> None:
    section = {
        "type": "redis",
        "redis": {
            "address": ["127.0.0.1:7001", "127.0.0.1:7002"],
            "prefix": "maps",
            "db": 2,
            "cleanup_interval": "250ms",
            "cleanup_batch_size": 10,
            "idempotent_result_ttl": "1m",
            "skip_pub_sub": True,
        },
    }
    path = config_file(
        {"engine": {"type": "redis", "redis": {"prefix": "engine"}}, "map_broker": section}
    )
    engine = load_config(path).engine

    assert engine.map_broker_type == "redis"
    assert engine.redis.prefix == "engine"
    maps = engine.map_redis
    assert (maps.redis.addresses, maps.redis.prefix, maps.redis.db) == (
        ("127.0.0.1:7001", "127.0.0.1:7002"),
        "maps",
        2,
    )
    assert (maps.cleanup_interval, maps.cleanup_batch_size) == (0.25, 10)
    assert (maps.idempotent_result_ttl, maps.skip_pub_sub) == (60.0, True)


def test_map_broker_redis_defaults_are_centrifugos() -> None:
    maps = load_config(None, env={"CENTRIFUGO_ENGINE_REDIS_PREFIX": "engine"}).engine.map_redis

    assert (maps.redis.addresses, maps.redis.prefix) == (("127.0.0.1:6379",), "centrifugo")
    assert (maps.cleanup_interval, maps.cleanup_batch_size) == (1.0, 100)
    assert (maps.idempotent_result_ttl, maps.skip_pub_sub) == (300.0, False)


def test_map_broker_redis_keys_come_from_the_v6_environment_names() -> None:
    env = {
        "CENTRIFUGO_MAP_BROKER_TYPE": "redis",
        "CENTRIFUGO_MAP_BROKER_REDIS_CLUSTER_ADDRESS": "127.0.0.1:7000,127.0.0.1:7001",
        "CENTRIFUGO_MAP_BROKER_REDIS_CLEANUP_INTERVAL": "-1s",
        "ROTARY_MAP_BROKER_REDIS_SKIP_PUB_SUB": "true",
    }
    maps = load_config(None, env=env).engine.map_redis

    assert maps.redis.cluster_addresses == ("127.0.0.1:7000", "127.0.0.1:7001")
    assert (maps.cleanup_interval, maps.skip_pub_sub) == (-1.0, True)


def test_negative_cleanup_batch_size_is_refused_with_its_key(config_file: ConfigFile) -> None:
    path = config_file({"map_broker": {"redis": {"cleanup_batch_size": -1}}})
    with pytest.raises(ConfigError, match=r"map_broker\.redis\.cleanup_batch_size"):
        load_config(path)


def test_a_postgres_map_broker_is_refused_as_rotary_has_none(config_file: ConfigFile) -> None:
    path = config_file({"map_broker": {"type": "postgres"}})
    with pytest.raises(ConfigError, match=r"map_broker\.type: .*no PostgreSQL map broker"):
        load_config(path)
