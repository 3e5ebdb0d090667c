"""The Redis revocation store across nodes: propagation, restarts, expiry, lost PUB/SUB.

Each store instance stands for one node. The disruptive step (CLIENT KILL TYPE pubsub) runs
against a private ``redis-server``, never against the shared one that other tests use.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager

import pytest

from rotary.config.model import RedisSettings
from rotary.engines.redis import RedisEngineError
from rotary.engines.redis.revocation import RedisRevocationStore
from rotary.engines.revocation import (
    REVOKED_JTI,
    REVOKED_USER,
    RevocationEvent,
    TokenIdentity,
)
from rotary.testing import ManualClock
from tests.engines.test_revocation_support import (
    PROPAGATION_DEADLINE,
    PrivateRedis,
    client_for,
    delete_prefixed,
    eventually,
    redis_reachable,
)

pytestmark = pytest.mark.redis


@pytest.fixture
def prefix() -> str:
    return f"rotary-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(float(int(time.time())))


@pytest.fixture
async def shared(prefix: str) -> AsyncIterator[str]:
    """The shared Redis address; the test's keys are deleted afterwards."""
    address = await redis_reachable()
    yield address
    await delete_prefixed(address, prefix)


@pytest.fixture
def private_redis() -> Iterator[str]:
    server = PrivateRedis()
    try:
        server.start()
        yield server.address
    finally:
        server.stop()


class Node:
    """One node's store and the events its listener received."""

    def __init__(self, store: RedisRevocationStore) -> None:
        self.store = store
        self.events: list[RevocationEvent] = []
        store.add_listener(self.events.append)


@asynccontextmanager
async def node(address: str, prefix: str, clock: ManualClock) -> AsyncIterator[Node]:
    settings = RedisSettings(addresses=(address,), prefix=prefix)
    started = Node(RedisRevocationStore(settings, clock=clock))
    await started.store.start()
    try:
        yield started
    finally:
        await started.store.close()


def conn(user: str = "42", *, jti: str = "", iat: int | None = None) -> TokenIdentity:
    return TokenIdentity("connection", user, jti, iat)


def sub(channel: str, *, user: str = "42", iat: int | None = None) -> TokenIdentity:
    return TokenIdentity("subscription", user, "", iat, channel)


async def test_a_revocation_on_one_node_reaches_another_nodes_listener_and_checks(
    shared: str, prefix: str, clock: ManualClock
) -> None:
    async with node(shared, prefix, clock) as a, node(shared, prefix, clock) as b:
        assert b.store.is_revoked(conn(jti="t-1"), now=clock.now()) is None
        await a.store.revoke_token("t-1", expire_at=int(clock.now()) + 60)

        assert await eventually(lambda: bool(b.events), within=PROPAGATION_DEADLINE)
        assert b.events == [RevocationEvent("token", int(clock.now()) + 60, jti="t-1")]
        assert b.store.is_revoked(conn(jti="t-1"), now=clock.now()) == REVOKED_JTI
        assert a.events == b.events


async def test_a_channel_scoped_user_invalidation_reaches_another_node(
    shared: str, prefix: str, clock: ManualClock
) -> None:
    now = int(clock.now())
    async with node(shared, prefix, clock) as a, node(shared, prefix, clock) as b:
        await a.store.invalidate_user_tokens(
            "42", issued_before=now, expire_at=now + 60, channel="$a"
        )

        assert await eventually(lambda: bool(b.events), within=PROPAGATION_DEADLINE)
        assert b.store.is_revoked(sub("$a", iat=now - 1), now=clock.now()) == REVOKED_USER
        assert b.store.is_revoked(sub("$a", iat=now), now=clock.now()) is None
        assert b.store.is_revoked(sub("$b", iat=now - 1), now=clock.now()) is None
        assert b.store.is_revoked(conn(iat=now - 1), now=clock.now()) is None


async def test_a_node_started_after_the_write_sees_it(
    shared: str, prefix: str, clock: ManualClock
) -> None:
    now = int(clock.now())
    async with node(shared, prefix, clock) as a:
        await a.store.revoke_token("t-1", expire_at=now + 60)
        await a.store.invalidate_user_tokens("42", issued_before=now, expire_at=now + 60)

    async with node(shared, prefix, clock) as restarted:
        assert restarted.store.is_revoked(conn(jti="t-1", iat=now), now=now) == REVOKED_JTI
        assert restarted.store.is_revoked(conn(iat=now - 1), now=now) == REVOKED_USER
        assert restarted.store.is_revoked(conn(iat=now), now=now) is None
        assert {e.kind for e in restarted.events} == {"token", "user"}


async def test_expired_records_are_dropped_by_mirrors_and_purged_from_redis(
    shared: str, prefix: str, clock: ManualClock
) -> None:
    now = int(clock.now())
    async with node(shared, prefix, clock) as a, node(shared, prefix, clock) as b:
        await a.store.revoke_token("t-1", expire_at=now + 60)
        await a.store.invalidate_user_tokens("42", issued_before=now, expire_at=now + 60)
        assert await eventually(lambda: len(b.events) == 2, within=PROPAGATION_DEADLINE)
        clock.advance(60)

        assert b.store.is_revoked(conn(jti="t-1", iat=0), now=clock.now()) is None

    async with node(shared, prefix, clock) as later:
        assert later.events == []
    client = client_for(shared)
    left = [key async for key in client.scan_iter(match=f"{prefix}.*")]
    sizes = [
        await client.hlen(f"{prefix}.revocation.{{rev}}.{name}") for name in ("tokens", "users")
    ]
    await client.aclose()
    assert sizes == [0, 0]
    assert all(b"tokens" not in key and b"users" not in key for key in left)


async def test_the_keys_carry_an_expiry_so_idle_sets_vanish(
    shared: str, prefix: str, clock: ManualClock
) -> None:
    async with node(shared, prefix, clock) as a:
        await a.store.revoke_token("t-1", expire_at=int(time.time()) + 600)
    client = client_for(shared)
    ttls = [await client.ttl(f"{prefix}.revocation.{{rev}}.{n}") for n in ("tokens", "expiry")]
    await client.aclose()

    assert all(0 < ttl <= 601 for ttl in ttls)


async def test_after_its_pubsub_connection_is_killed_a_node_reloads_and_misses_nothing(
    private_redis: str, prefix: str, clock: ManualClock
) -> None:
    now = int(clock.now())
    async with node(private_redis, prefix, clock) as a, node(private_redis, prefix, clock) as b:
        client = client_for(private_redis)
        await client.client_kill_filter(_type="pubsub")
        # Written while b's notification channel is (most likely) down: only a reload
        # can bring it, and b must reload in any case.
        await a.store.revoke_token("t-1", expire_at=now + 60)
        await client.aclose()

        assert await eventually(lambda: b.store.reloads >= 2, within=10)
        assert await eventually(lambda: bool(b.events), within=PROPAGATION_DEADLINE)
        assert b.store.is_revoked(conn(jti="t-1"), now=clock.now()) == REVOKED_JTI
        assert b.events == [RevocationEvent("token", now + 60, jti="t-1")]

        await a.store.revoke_token("t-2", expire_at=now + 60)
        assert await eventually(lambda: len(b.events) == 2, within=PROPAGATION_DEADLINE)


async def test_a_malformed_notification_is_ignored(
    shared: str, prefix: str, clock: ManualClock
) -> None:
    async with node(shared, prefix, clock) as a, node(shared, prefix, clock) as b:
        client = client_for(shared)
        await client.publish(b.store.channel, b"not json")
        await client.publish(b.store.channel, b'{"k":"u","f":"[1]","b":"x","e":1}')
        await client.aclose()
        await a.store.revoke_token("t-1", expire_at=int(clock.now()) + 60)

        assert await eventually(lambda: bool(b.events), within=PROPAGATION_DEADLINE)
        assert [e.jti for e in b.events] == ["t-1"]


async def test_start_raises_redis_engine_error_when_redis_is_unreachable(
    prefix: str, clock: ManualClock
) -> None:
    with socket_closed_port() as port:
        settings = RedisSettings(
            addresses=(f"127.0.0.1:{port}",), prefix=prefix, connect_timeout=0.2, io_timeout=0.5
        )
        store = RedisRevocationStore(settings, clock=clock)
        async with AsyncExitStack() as stack:
            stack.push_async_callback(store.close)
            with pytest.raises(RedisEngineError):
                await store.start()
            with pytest.raises(RedisEngineError):
                await store.revoke_token("t-1", expire_at=0)


@contextmanager
def socket_closed_port() -> Iterator[int]:
    """A loopback port that nothing listens on (bound, never listening, while in use)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        yield port
