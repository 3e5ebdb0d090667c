"""`VerifierAuthenticator`: revocation checked after every verification, and its metrics."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from rotary.auth import TokenVerifier
from rotary.auth.settings import AuthSettings, TokenSettings
from rotary.engines.memory.revocation import MemoryRevocationStore
from rotary.metrics import Metrics
from rotary.node.auth import TokenProblem
from rotary.policy.tokens import REVOCATION_WORDS, VerifierAuthenticator
from rotary.testing import ManualClock

SECRET = "policy-test-secret-0123456789abcdef"
NOW = 1_700_000_000


def token(**claims: Any) -> str:
    """An HS256 token (PyJWT, the independent oracle) for user 42 unless `sub` is given."""
    return jwt.encode({"sub": "42", "exp": NOW + 3600, **claims}, SECRET, algorithm="HS256")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def store(clock: ManualClock) -> MemoryRevocationStore:
    return MemoryRevocationStore(clock)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def auth(store: MemoryRevocationStore, metrics: Metrics) -> VerifierAuthenticator:
    settings = AuthSettings(connection=TokenSettings(hmac_secret_key=SECRET))
    return VerifierAuthenticator(TokenVerifier(settings), revocation=store, metrics=metrics)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def refusal(call: Any) -> TokenProblem:
    with pytest.raises(TokenProblem) as caught:
        await call
    return caught.value


async def test_connection_token_with_a_revoked_jti_is_refused_as_revoked_jti(
    auth: VerifierAuthenticator, store: MemoryRevocationStore
) -> None:
    tok = token(jti="j1", iat=NOW - 10)
    await store.revoke_token("j1", expire_at=NOW + 60)
    problem = await refusal(auth.connect_token(tok, now=NOW))
    assert (problem.kind, problem.reason, problem.user) == ("revoked", "revoked_jti", "42")
    assert problem.detail == REVOCATION_WORDS["revoked_jti"]


async def test_revocation_is_checked_after_a_verified_token_cache_hit(
    auth: VerifierAuthenticator, store: MemoryRevocationStore, metrics: Metrics
) -> None:
    tok = token(jti="j2", iat=NOW - 10)
    creds = await auth.connect_token(tok, now=NOW)
    assert creds.identity is not None and creds.identity.jti == "j2"
    await store.revoke_token("j2", expire_at=NOW + 60)
    problem = await refusal(auth.connect_token(tok, now=NOW))
    assert problem.reason == "revoked_jti"
    assert sample(metrics, "rotary_token_cache_total", result="hit") == 1
    assert sample(metrics, "rotary_token_cache_total", result="miss") == 1


async def test_user_invalidation_refuses_older_tokens_and_spares_newer_ones(
    auth: VerifierAuthenticator, store: MemoryRevocationStore
) -> None:
    await store.invalidate_user_tokens("42", issued_before=NOW - 5, expire_at=NOW + 60)
    older = await refusal(auth.connect_token(token(iat=NOW - 6), now=NOW))
    assert older.reason == "revoked_user"
    assert (await auth.connect_token(token(iat=NOW - 5), now=NOW)).user == "42"
    assert (await auth.connect_token(token(sub="7", iat=NOW - 6), now=NOW)).user == "7"


async def test_user_invalidation_for_one_channel_spares_connection_and_other_channels(
    auth: VerifierAuthenticator, store: MemoryRevocationStore
) -> None:
    await store.invalidate_user_tokens("42", issued_before=NOW, expire_at=NOW + 60, channel="$news")
    old = NOW - 10
    assert (await auth.connect_token(token(iat=old), now=NOW)).user == "42"
    other = token(iat=old, channel="$other")
    assert await auth.subscribe_token(other, now=NOW, channel="$other", user="42", client="c")
    news = token(iat=old, channel="$news")
    problem = await refusal(
        auth.subscribe_token(news, now=NOW, channel="$news", user="42", client="c")
    )
    assert (problem.kind, problem.reason) == ("revoked", "revoked_user")


async def test_a_record_past_its_expire_at_no_longer_refuses(
    auth: VerifierAuthenticator, store: MemoryRevocationStore, clock: ManualClock
) -> None:
    tok = token(jti="j3", exp=NOW + 7200)
    await store.revoke_token("j3", expire_at=NOW + 60)
    await refusal(auth.connect_token(tok, now=clock.now()))
    clock.advance(61)
    assert (await auth.connect_token(tok, now=clock.now())).user == "42"


async def test_every_verification_is_counted_by_kind_outcome_and_reason(
    auth: VerifierAuthenticator, store: MemoryRevocationStore, metrics: Metrics
) -> None:
    await store.revoke_token("gone", expire_at=NOW + 60)
    await auth.connect_token(token(), now=NOW)
    await refusal(auth.connect_token(token(jti="gone"), now=NOW))
    await refusal(auth.connect_token(token(exp=NOW - 1), now=NOW))
    forged = jwt.encode({"sub": "42"}, SECRET + "-other", algorithm="HS256")
    await refusal(auth.subscribe_token(forged, now=NOW, channel="$x", user="42", client="c"))
    counted = "rotary_token_verifications_total"
    assert sample(metrics, counted, kind="connection", outcome="ok", reason="none") == 1
    assert sample(metrics, counted, kind="connection", outcome="revoked", reason="revoked_jti") == 1
    assert sample(metrics, counted, kind="connection", outcome="expired", reason="expired") == 1
    assert sample(metrics, counted, kind="subscription", outcome="invalid", reason="signature") == 1
    assert sample(metrics, "rotary_revocation_checks_total", result="ok") == 1
    assert sample(metrics, "rotary_revocation_checks_total", result="revoked") == 1


async def test_without_a_store_nothing_is_revoked_and_no_check_is_counted(
    metrics: Metrics,
) -> None:
    settings = AuthSettings(connection=TokenSettings(hmac_secret_key=SECRET))
    auth = VerifierAuthenticator(TokenVerifier(settings), metrics=metrics)
    assert (await auth.connect_token(token(jti="j"), now=NOW)).user == "42"
    assert sample(metrics, "rotary_revocation_checks_total", result="ok") == 0
