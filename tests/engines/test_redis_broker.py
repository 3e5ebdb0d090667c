"""The Redis broker against real Redis: scripts, reconnects, epochs, shards, many nodes.

Disruptive steps (SCRIPT FLUSH, CLIENT KILL TYPE pubsub) run against a private
``redis-server`` started for this module, never against the shared one on 6379.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
import redis.asyncio as aioredis
import redis.exceptions

from rotary.clock import SystemClock
from rotary.config.model import RedisSettings
from rotary.engines.base import (
    ClientInfo,
    HistoryFilter,
    PublishOptions,
    StreamPosition,
    UnrecoverablePosition,
)
from rotary.engines.redis import RedisBroker, RedisEngineError, RedisPresenceManager
from rotary.engines.redis._pubsub import ShardSubscriber
from rotary.engines.redis._shards import build_shards, close_shards
from tests.engines.conftest import REDIS_HOST, REDIS_PORT, skip_or_fail
from tests.engines.recording import RecordingHandler

pytestmark = pytest.mark.redis

SHARED = f"{REDIS_HOST}:{REDIS_PORT}"
HISTORY = PublishOptions(history_size=100, history_ttl=60.0, history_meta_ttl=3600.0)
ANN = ClientInfo(user="ann", client="c-ann", conn_info=b'{"n":"Ann"}')


class ResubscribeRecorder(RecordingHandler):
    """Also records the optional ``handle_resubscribed`` hook."""

    def __init__(self) -> None:
        super().__init__()
        self.resubscribed: list[int] = []
        self.resubscribed_event = asyncio.Event()

    def handle_resubscribed(self, shard: int) -> None:
        self.resubscribed.append(shard)
        self.resubscribed_event.set()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((REDIS_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_answering(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection((REDIS_HOST, port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"private redis-server on port {port} did not start")


class RedisProcess:
    """A throw-away ``redis-server`` without persistence on a free loopback port."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            skip_or_fail("redis-server is not installed")
        self.port = _free_port()
        self.address = f"{REDIS_HOST}:{self.port}"
        self._args = [binary, "--port", str(self.port), "--bind", REDIS_HOST, "--save", ""]
        self._args += ["--appendonly", "no", "--daemonize", "no", "--enable-debug-command", "yes"]
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            self._args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_until_answering(self.port, self._process)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None


@pytest.fixture(scope="module")
def private_redis() -> Iterator[str]:
    """A private redis-server shared by this module's tests; its ``host:port``."""
    server = RedisProcess()
    try:
        server.start()
        yield server.address
    finally:
        server.stop()


@pytest.fixture
def restartable_redis() -> Iterator[RedisProcess]:
    """A private redis-server for one test, which may stop and start it again."""
    server = RedisProcess()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
async def shared_client() -> AsyncIterator[aioredis.Redis]:
    """A plain client to the shared Redis; skips (or fails under CI) when it is down."""
    client = aioredis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=1.0)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        skip_or_fail(f"Redis at {SHARED} is unreachable: {exc!r}")
    yield client
    await client.aclose()


@pytest.fixture
def prefix() -> str:
    return f"rotary-test-{uuid.uuid4().hex[:8]}"


async def _delete_prefixed(address: str, prefix: str) -> None:
    host, port = address.rsplit(":", 1)
    client = aioredis.Redis(host=host, port=int(port))
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@asynccontextmanager
async def started_broker(
    *addresses: str, prefix: str, handler: RecordingHandler | None = None
) -> AsyncIterator[tuple[RedisBroker, RecordingHandler]]:
    """A started broker (a "node" of its own) on `addresses`; keys deleted afterwards."""
    settings = RedisSettings(addresses=addresses, prefix=prefix)
    broker = RedisBroker(settings, node_id=uuid.uuid4().hex, clock=SystemClock())
    handler = handler or RecordingHandler()
    try:
        await broker.start(handler)
        yield broker, handler
    finally:
        await broker.close()
        for address in addresses:
            await _delete_prefixed(address, prefix)


async def test_publish_falls_back_to_eval_after_script_flush(
    private_redis: str, prefix: str
) -> None:
    async with started_broker(private_redis, prefix=prefix) as (broker, handler):
        await broker.subscribe("ch")
        await broker.publish("ch", b"1", HISTORY)
        client = aioredis.Redis.from_url(f"redis://{private_redis}")
        await client.script_flush()

        position = await broker.publish("ch", b"2", HISTORY)
        history = await broker.history("ch", HistoryFilter(limit=-1))
        delivered = await handler.wait_publications("ch", 2)
        await client.aclose()

    assert position.offset == 2
    assert [p.data for p in history.publications] == [b"1", b"2"]
    assert [p.offset for p, _ in delivered] == [1, 2]


async def test_a_killed_pubsub_connection_resubscribes_and_loses_or_repeats_nothing(
    private_redis: str, prefix: str
) -> None:
    recorder = ResubscribeRecorder()
    async with (
        started_broker(private_redis, prefix=prefix, handler=recorder) as (node_a, _),
        started_broker(private_redis, prefix=prefix) as (node_b, _),
    ):
        await node_a.subscribe("ch")
        for n in range(1, 6):
            await node_b.publish("ch", b"%d" % n, HISTORY)
        await recorder.wait_publications("ch", 5)

        killer = aioredis.Redis.from_url(f"redis://{private_redis}")
        await killer.client_kill_filter(_type="pubsub")
        await killer.aclose()
        for n in range(6, 31):
            await node_b.publish("ch", b"%d" % n, HISTORY)
        await asyncio.wait_for(recorder.resubscribed_event.wait(), 10)
        for n in range(31, 41):
            await node_b.publish("ch", b"%d" % n, HISTORY)

        async with asyncio.timeout(10):
            while recorder.publications["ch"][-1][0].offset != 40:
                await recorder.wait_publications("ch", len(recorder.publications["ch"]) + 1)
        history = await node_a.history("ch", HistoryFilter(limit=-1))

    received = [pub.offset for pub, _ in recorder.publications["ch"]]
    assert received == sorted(set(received)), "in order and none twice"
    assert received[:5] == [1, 2, 3, 4, 5]
    assert received[-10:] == list(range(31, 41))
    assert set(received) | {p.offset for p in history.publications} == set(range(1, 41))
    assert recorder.resubscribed == [0]


async def test_every_channel_is_subscribed_again_after_a_kill(
    private_redis: str, prefix: str
) -> None:
    recorder = ResubscribeRecorder()
    channels = [f"room:{n}" for n in range(50)]
    async with started_broker(private_redis, prefix=prefix, handler=recorder) as (broker, _):
        await asyncio.gather(*(broker.subscribe(ch) for ch in channels))
        killer = aioredis.Redis.from_url(f"redis://{private_redis}")
        await killer.client_kill_filter(_type="pubsub")
        await killer.aclose()
        await asyncio.wait_for(recorder.resubscribed_event.wait(), 10)
        await broker.unsubscribe("room:0")

        for ch in channels:
            await broker.publish(ch, b"{}", PublishOptions())
        await broker.subscribe("marker")
        await broker.publish("marker", b"{}", PublishOptions())
        await recorder.wait_publications("marker", 1)
        await broker.publish_control(b"after")
        await recorder.wait_controls(1)

    assert [ch for ch in channels if recorder.publications[ch]] == channels[1:]


async def test_deleting_the_meta_starts_a_new_epoch(
    shared_client: aioredis.Redis, prefix: str
) -> None:
    async with started_broker(SHARED, prefix=prefix) as (broker, _):
        for n in range(3):
            old = await broker.publish("ch", b"%d" % n, HISTORY)
        await _delete_prefixed(SHARED, prefix)

        new = await broker.publish("ch", b"x", HISTORY)
        with pytest.raises(UnrecoverablePosition):
            await broker.history("ch", HistoryFilter(since=old, limit=-1))
        history = await broker.history("ch", HistoryFilter(limit=-1))

    assert old.offset == 3
    assert new.offset == 1
    assert new.epoch != old.epoch
    assert [p.data for p in history.publications] == [b"x"]


async def test_reading_history_of_a_lost_stream_also_starts_a_new_epoch(
    shared_client: aioredis.Redis, prefix: str
) -> None:
    async with started_broker(SHARED, prefix=prefix) as (broker, _):
        old = await broker.publish("ch", b"1", HISTORY)
        await _delete_prefixed(SHARED, prefix)

        first = await broker.history("ch", HistoryFilter())
        second = await broker.history("ch", HistoryFilter())

    assert first.position.epoch != old.epoch
    assert first.position == second.position == StreamPosition(0, first.position.epoch)


async def test_channels_spread_over_two_shards_and_everything_works_on_each(
    shared_client: aioredis.Redis, private_redis: str, prefix: str
) -> None:
    channels = [f"shard-test:{n}" for n in range(20)]
    addresses = (SHARED, private_redis)
    presence = RedisPresenceManager(
        RedisSettings(addresses=addresses, prefix=prefix), clock=SystemClock()
    )
    async with started_broker(*addresses, prefix=prefix) as (broker, handler):
        await asyncio.gather(*(broker.subscribe(ch) for ch in channels))
        for ch in channels:
            await broker.publish(ch, ch.encode(), HISTORY)
            await presence.add_presence(ch, "c-ann", ANN, ttl=30)
        histories = [await broker.history(ch, HistoryFilter(limit=-1)) for ch in channels]
        delivered = [await handler.wait_publications(ch, 1) for ch in channels]
        stats = [await presence.presence_stats(ch) for ch in channels]
        shards = [broker.shard_of(ch) for ch in channels]
        private = aioredis.Redis.from_url(f"redis://{private_redis}")
        on_private = {k async for k in private.scan_iter(match=f"{prefix}.stream.*")}
        await private.aclose()
        await presence.close()

    assert set(shards) == {0, 1}
    pairs = zip(channels, shards, strict=True)
    expected = {f"{prefix}.stream.{{{ch}}}".encode() for ch, shard in pairs if shard == 1}
    assert on_private == expected
    assert [[p.data for p in h.publications] for h in histories] == [[c.encode()] for c in channels]
    assert [d[0][0].data for d in delivered] == [ch.encode() for ch in channels]
    assert all(s.num_clients == 1 and s.num_users == 1 for s in stats)


async def test_two_nodes_both_receive_a_publication_join_leave_and_control(
    shared_client: aioredis.Redis, prefix: str
) -> None:
    async with (
        started_broker(SHARED, prefix=prefix) as (node_a, seen_a),
        started_broker(SHARED, prefix=prefix) as (node_b, seen_b),
    ):
        await node_a.subscribe("ch")
        await node_b.subscribe("ch")
        position = await node_a.publish("ch", b'{"hi":1}', HISTORY)
        await node_b.publish_join("ch", ANN)
        await node_b.publish_leave("ch", ANN)
        await node_a.publish_control(b"ctl")
        for seen in (seen_a, seen_b):
            assert [sp for _, sp in await seen.wait_publications("ch", 1)] == [position]
            assert await seen.wait_joins("ch", 1) == [ANN]
            assert await seen.wait_leaves("ch", 1) == [ANN]
            assert await seen.wait_controls(1) == [b"ctl"]


async def test_an_idempotent_publish_is_sent_once_across_nodes(
    shared_client: aioredis.Redis, prefix: str
) -> None:
    opts = PublishOptions(history_size=10, history_ttl=60, idempotency_key="k1")
    async with (
        started_broker(SHARED, prefix=prefix) as (node_a, seen_a),
        started_broker(SHARED, prefix=prefix) as (node_b, _),
    ):
        await node_a.subscribe("ch")
        first = await node_a.publish("ch", b"1", opts)
        again = await node_b.publish("ch", b"2", opts)
        await node_a.publish("ch", b"3", HISTORY)
        delivered = await seen_a.wait_publications("ch", 2)

    assert again == first
    assert [p.data for p, _ in delivered] == [b"1", b"3"]


async def test_concurrent_subscribes_are_all_confirmed_before_returning(
    shared_client: aioredis.Redis, prefix: str
) -> None:
    channels = [f"c{n}" for n in range(300)]
    async with (
        started_broker(SHARED, prefix=prefix) as (node_a, seen_a),
        started_broker(SHARED, prefix=prefix) as (node_b, _),
    ):
        await asyncio.gather(*(node_a.subscribe(ch) for ch in channels))
        for ch in channels:
            await node_b.publish(ch, b"{}", PublishOptions())
        delivered = [await seen_a.wait_publications(ch, 1) for ch in channels]

    assert all(len(d) == 1 for d in delivered)


async def test_subscribe_before_start_and_after_close_raise_engine_error(prefix: str) -> None:
    broker = RedisBroker(RedisSettings(prefix=prefix), node_id="n", clock=SystemClock())

    with pytest.raises(RedisEngineError):
        await broker.subscribe("ch")
    await broker.close()
    await broker.close()


async def test_an_unreachable_redis_raises_engine_error_not_a_redis_error(prefix: str) -> None:
    settings = RedisSettings(
        addresses=(f"{REDIS_HOST}:{_free_port()}",), prefix=prefix, io_timeout=0.3
    )
    broker = RedisBroker(settings, node_id="n", clock=SystemClock())

    with pytest.raises(RedisEngineError) as caught:
        await broker.publish("ch", b"{}", HISTORY)
    with pytest.raises(RedisEngineError):
        await broker.start(RecordingHandler())
    await broker.close()

    assert isinstance(caught.value.__cause__, redis.exceptions.RedisError)


async def test_a_pubsub_connection_that_stops_answering_is_replaced(private_redis: str) -> None:
    [shard] = build_shards(RedisSettings(addresses=(private_redis,)))
    messages: list[bytes] = []
    arrived = asyncio.Event()
    resubscribed = asyncio.Event()

    def dispatch(_channel: bytes, payload: bytes) -> None:
        messages.append(payload)
        arrived.set()

    subscriber = ShardSubscriber(
        name="rotary-test-silent",
        new_connection=shard.new_pubsub_connection,
        dispatch=dispatch,
        on_resubscribed=resubscribed.set,
        timeout=5.0,
        ping_interval=0.1,
    )
    subscriber.start()
    try:
        await subscriber.subscribe(["silent"])
        # The whole server stops answering (as behind a dead link) for longer than 3 PINGs.
        await shard.client.execute_command("DEBUG", "SLEEP", "1")
        await asyncio.wait_for(resubscribed.wait(), 10)
        await shard.client.publish("silent", b"after")
        await asyncio.wait_for(arrived.wait(), 5)
    finally:
        await subscriber.close()
        await close_shards([shard])

    assert messages == [b"after"]


async def test_a_redis_restart_without_persistence_gives_a_new_epoch_and_resubscribes(
    restartable_redis: RedisProcess, prefix: str
) -> None:
    recorder = ResubscribeRecorder()
    address = restartable_redis.address
    async with started_broker(address, prefix=prefix, handler=recorder) as (broker, _):
        await broker.subscribe("ch")
        before = await broker.publish("ch", b"1", HISTORY)
        restartable_redis.stop()
        restartable_redis.start()
        await asyncio.wait_for(recorder.resubscribed_event.wait(), 10)

        after = await broker.publish("ch", b"2", HISTORY)
        delivered = await recorder.wait_publications("ch", 2)
        with pytest.raises(UnrecoverablePosition):
            await broker.history("ch", HistoryFilter(since=before, limit=-1))

    assert (before.offset, after.offset) == (1, 1)
    assert after.epoch != before.epoch
    assert [sp for _, sp in delivered] == [before, after]


async def test_sentinel_and_cluster_settings_build_a_single_shard_without_connecting() -> None:
    sentinel = RedisSettings(sentinel_addresses=("127.0.0.1:26379",), sentinel_master_name="m")
    cluster = RedisSettings(cluster_addresses=("127.0.0.1:7000", "127.0.0.1:7001"))

    for settings in (sentinel, cluster):
        broker = RedisBroker(settings, node_id="n", clock=SystemClock())
        assert broker.shard_count == 1
        assert broker.shard_of("any") == 0
        await broker.close()
