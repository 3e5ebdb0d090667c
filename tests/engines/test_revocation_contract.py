"""The revocation store contract, run against the memory store and the Redis store.

Both stores get a `ManualClock` started at the real time (Redis keeps its own clock for the
keys' safety-net expiry, so the manual one must not be far from it); expiry is tested by
moving that clock, never by sleeping.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from rotary.engines.memory.revocation import MemoryRevocationStore
from rotary.engines.revocation import (
    DEFAULT_RECORD_TTL,
    REVOKED_JTI,
    REVOKED_USER,
    RevocationEvent,
    RevocationStore,
    TokenIdentity,
    revocation_store_for,
)
from rotary.testing import ManualClock
from tests.engines.test_revocation_support import delete_prefixed, redis_reachable

DAY = 24 * 3600


@dataclass
class StoreUnderTest:
    store: RevocationStore
    clock: ManualClock
    events: list[RevocationEvent]

    @property
    def now(self) -> int:
        return int(self.clock.now())

    def check(self, token: TokenIdentity) -> str | None:
        return self.store.is_revoked(token, now=self.clock.now())


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def subject(request: pytest.FixtureRequest) -> AsyncIterator[StoreUnderTest]:
    clock = ManualClock(float(int(time.time())))
    prefix = f"rotary-test-{uuid.uuid4().hex[:8]}"
    store: RevocationStore
    if request.param == "memory":
        store = MemoryRevocationStore(clock)
    else:
        from rotary.config.model import RedisSettings
        from rotary.engines.redis.revocation import RedisRevocationStore

        address = await redis_reachable()
        store = RedisRevocationStore(
            RedisSettings(addresses=(address,), prefix=prefix), clock=clock
        )
    events: list[RevocationEvent] = []
    store.add_listener(events.append)
    await store.start()
    try:
        yield StoreUnderTest(store, clock, events)
    finally:
        await store.close()
        if request.param == "redis":
            await delete_prefixed(address, prefix)


def connection(user: str = "42", *, jti: str = "", iat: int | None = None) -> TokenIdentity:
    return TokenIdentity("connection", user, jti, iat)


def subscription(
    channel: str, user: str = "42", *, jti: str = "", iat: int | None = None
) -> TokenIdentity:
    return TokenIdentity("subscription", user, jti, iat, channel)


async def test_a_revoked_jti_is_refused_and_other_tokens_are_not(subject: StoreUnderTest) -> None:
    await subject.store.revoke_token("t-1", expire_at=subject.now + 600)

    assert subject.check(connection(jti="t-1", iat=subject.now)) == REVOKED_JTI
    assert subject.check(subscription("$x", jti="t-1")) == REVOKED_JTI
    assert subject.check(connection(jti="t-2", iat=subject.now)) is None
    assert subject.check(connection(jti="", iat=subject.now)) is None


async def test_a_store_refuses_again_after_all_its_records_expired_and_a_new_one_came(
    subject: StoreUnderTest,
) -> None:
    assert subject.check(connection(jti="t-1")) is None
    await subject.store.revoke_token("t-1", expire_at=subject.now + 10)
    subject.clock.advance(10)
    assert subject.check(connection(jti="t-1")) is None

    await subject.store.invalidate_user_tokens("42", issued_before=subject.now, expire_at=0)

    assert subject.check(connection(jti="t-1", iat=subject.now - 1)) == REVOKED_USER


async def test_a_token_record_is_forgotten_at_its_expire_at(subject: StoreUnderTest) -> None:
    await subject.store.revoke_token("t-1", expire_at=subject.now + 600)
    subject.clock.advance(599)
    assert subject.check(connection(jti="t-1")) == REVOKED_JTI

    subject.clock.advance(1)

    assert subject.check(connection(jti="t-1")) is None


async def test_expire_at_zero_keeps_the_record_for_the_default_ttl(
    subject: StoreUnderTest,
) -> None:
    await subject.store.revoke_token("t-1", expire_at=0)
    subject.clock.advance(DEFAULT_RECORD_TTL - 1)
    assert subject.check(connection(jti="t-1")) == REVOKED_JTI

    subject.clock.advance(1)

    assert subject.check(connection(jti="t-1")) is None


async def test_an_expire_at_in_the_past_stores_nothing(subject: StoreUnderTest) -> None:
    await subject.store.revoke_token("t-1", expire_at=subject.now - 1)
    await subject.store.invalidate_user_tokens(
        "42", issued_before=subject.now, expire_at=subject.now - 1
    )

    assert subject.check(connection(jti="t-1", iat=0)) is None
    assert subject.events == []


async def test_user_invalidation_refuses_tokens_issued_strictly_before(
    subject: StoreUnderTest,
) -> None:
    cut = subject.now - 100
    await subject.store.invalidate_user_tokens("42", issued_before=cut, expire_at=subject.now + 60)

    assert subject.check(connection(iat=cut - 1)) == REVOKED_USER
    assert subject.check(connection(iat=cut)) is None
    assert subject.check(connection(iat=cut + 1)) is None
    assert subject.check(connection("43", iat=cut - 1)) is None


async def test_a_token_without_iat_is_refused_while_a_user_invalidation_is_in_force(
    subject: StoreUnderTest,
) -> None:
    await subject.store.invalidate_user_tokens(
        "42", issued_before=subject.now, expire_at=subject.now + 60
    )

    assert subject.check(connection(iat=None)) == REVOKED_USER
    assert subject.check(subscription("$x", iat=None)) == REVOKED_USER
    subject.clock.advance(60)
    assert subject.check(connection(iat=None)) is None


async def test_user_invalidation_without_channel_covers_every_token_of_the_user(
    subject: StoreUnderTest,
) -> None:
    await subject.store.invalidate_user_tokens(
        "42", issued_before=subject.now, expire_at=subject.now + 60
    )

    old = subject.now - 1
    assert subject.check(connection(iat=old)) == REVOKED_USER
    assert subject.check(subscription("$a", iat=old)) == REVOKED_USER
    assert subject.check(subscription("ns:$b", iat=old)) == REVOKED_USER


async def test_channel_scoped_invalidation_covers_only_that_channels_subscription_tokens(
    subject: StoreUnderTest,
) -> None:
    await subject.store.invalidate_user_tokens(
        "42", issued_before=subject.now, expire_at=subject.now + 60, channel="$a"
    )

    old = subject.now - 1
    assert subject.check(subscription("$a", iat=old)) == REVOKED_USER
    assert subject.check(subscription("$b", iat=old)) is None
    assert subject.check(connection(iat=old)) is None
    assert subject.check(subscription("$a", "43", iat=old)) is None


async def test_records_only_become_stricter(subject: StoreUnderTest) -> None:
    now = subject.now
    await subject.store.invalidate_user_tokens("42", issued_before=now, expire_at=now + 600)
    await subject.store.invalidate_user_tokens("42", issued_before=now - 500, expire_at=now + 60)
    await subject.store.revoke_token("t-1", expire_at=now + 600)
    await subject.store.revoke_token("t-1", expire_at=now + 60)
    subject.clock.advance(100)

    assert subject.check(connection(iat=now - 1)) == REVOKED_USER
    assert subject.check(connection(jti="t-1", iat=now + 50)) == REVOKED_JTI


async def test_listeners_get_each_change_once_with_the_merged_record(
    subject: StoreUnderTest,
) -> None:
    now = subject.now
    await subject.store.revoke_token("t-1", expire_at=now + 60)
    await subject.store.revoke_token("t-1", expire_at=now + 30)
    await subject.store.invalidate_user_tokens("42", issued_before=now, expire_at=now + 600)
    await subject.store.invalidate_user_tokens(
        "42", issued_before=now - 5, expire_at=now + 900, channel=""
    )

    assert subject.events == [
        RevocationEvent("token", now + 60, jti="t-1"),
        RevocationEvent("user", now + 600, user="42", issued_before=now),
        RevocationEvent("user", now + 900, user="42", issued_before=now),
    ]


async def test_user_and_channel_names_with_separators_stay_apart(subject: StoreUnderTest) -> None:
    now = subject.now
    await subject.store.invalidate_user_tokens(
        'a","b', issued_before=now, expire_at=now + 60, channel="c"
    )

    assert subject.check(subscription("c", 'a","b', iat=now - 1)) == REVOKED_USER
    assert subject.check(subscription('b","c', "a", iat=now - 1)) is None
    assert subject.check(subscription("c", "a", iat=now - 1)) is None


def test_an_event_affects_exactly_the_tokens_its_record_refuses() -> None:
    token_event = RevocationEvent("token", 10, jti="t-1")
    user_event = RevocationEvent("user", 10, user="42", issued_before=100)
    scoped = RevocationEvent("user", 10, user="42", issued_before=100, channel="$a")

    assert token_event.affects(connection(jti="t-1"))
    assert not token_event.affects(connection(jti=""))
    assert user_event.affects(subscription("$z", iat=99))
    assert not user_event.affects(connection(iat=100))
    assert user_event.affects(connection(iat=None))
    assert scoped.affects(subscription("$a", iat=99))
    assert not scoped.affects(connection(iat=99))
    assert not scoped.affects(subscription("$b", iat=99))


def test_identities_are_taken_from_verified_tokens() -> None:
    from rotary.auth.tokens import ConnectionToken, SubscriptionToken

    conn_token = ConnectionToken(user="42", expire_at=0, iat=100, jti="t-1")
    sub_token = SubscriptionToken(user="42", channel="$a", client="", expire_at=0)

    assert TokenIdentity.of_connection(conn_token) == connection(jti="t-1", iat=100)
    assert TokenIdentity.of_subscription(sub_token) == subscription("$a")


async def test_the_store_follows_the_configured_engine() -> None:
    from rotary.config.model import EngineSettings
    from rotary.engines.redis.revocation import RedisRevocationStore

    clock = ManualClock()

    assert isinstance(revocation_store_for(EngineSettings(), clock=clock), MemoryRevocationStore)
    redis_store = revocation_store_for(EngineSettings(type="redis"), clock=clock)
    await redis_store.close()
    assert isinstance(redis_store, RedisRevocationStore)
