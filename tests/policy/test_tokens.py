"""`VerifierAuthenticator`: revocation checked after every verification (cache hits included),
binding checked on every use, credentials kept with the verified-token cache, and metrics."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from rotary.auth import SubscribeOverride, TokenVerifier
from rotary.auth.settings import AuthSettings, TokenSettings
from rotary.engines.memory.revocation import MemoryRevocationStore
from rotary.engines.revocation import TokenIdentity
from rotary.metrics import Metrics
from rotary.node.auth import (
    ConnectCredentials,
    ServerSubOptions,
    SubscribeCredentials,
    TokenProblem,
    new_connect_credentials,
    new_subscribe_credentials,
)
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


async def test_a_refused_token_counts_a_cache_miss_and_an_oversized_one_no_look_up(
    auth: VerifierAuthenticator, metrics: Metrics
) -> None:
    forged = jwt.encode({"sub": "42"}, SECRET + "-other", algorithm="HS256")
    await refusal(auth.connect_token(forged, now=NOW))
    await refusal(auth.subscribe_token("e" * 70_000, now=NOW, channel="$x", user="42", client="c"))
    assert sample(metrics, "rotary_token_cache_total", result="miss") == 1
    assert sample(metrics, "rotary_token_cache_total", result="hit") == 0


async def test_without_a_store_nothing_is_revoked_and_no_check_is_counted(
    metrics: Metrics,
) -> None:
    settings = AuthSettings(connection=TokenSettings(hmac_secret_key=SECRET))
    auth = VerifierAuthenticator(TokenVerifier(settings), metrics=metrics)
    assert (await auth.connect_token(token(jti="j"), now=NOW)).user == "42"
    assert sample(metrics, "rotary_revocation_checks_total", result="ok") == 0


# ---------------------------------------------------------------------------- warm cache


def sub_token(channel: str = "$c", **claims: Any) -> str:
    return token(channel=channel, **claims)


async def subscribe(
    auth: VerifierAuthenticator, tok: str, *, now: float = NOW, **binding: str
) -> SubscribeCredentials:
    where = {"channel": "$c", "user": "42", "client": "c1", **binding}
    return await auth.subscribe_token(tok, now=now, **where)


async def test_a_cache_hit_hands_out_the_credentials_built_at_the_first_verification(
    auth: VerifierAuthenticator, metrics: Metrics
) -> None:
    conn, sub = token(jti="c"), sub_token(jti="s")
    first = (await auth.connect_token(conn, now=NOW), await subscribe(auth, sub))
    second = (await auth.connect_token(conn, now=NOW + 1), await subscribe(auth, sub))
    assert second[0] is first[0] and second[1] is first[1]
    assert second[1].identity == TokenIdentity("subscription", "42", "s", None, "$c")
    assert sample(metrics, "rotary_token_cache_total", result="hit") == 2
    assert sample(metrics, "rotary_token_cache_total", result="miss") == 2


async def test_a_subscription_token_revoked_after_it_was_cached_is_refused_on_a_hit(
    auth: VerifierAuthenticator, store: MemoryRevocationStore, metrics: Metrics
) -> None:
    tok = sub_token(jti="s1", iat=NOW - 10)
    await subscribe(auth, tok)
    await store.revoke_token("s1", expire_at=NOW + 60)
    problem = await refusal(subscribe(auth, tok))
    assert (problem.kind, problem.reason, problem.user) == ("revoked", "revoked_jti", "42")
    assert sample(metrics, "rotary_token_cache_total", result="hit") == 1
    assert sample(metrics, "rotary_revocation_checks_total", result="revoked") == 1


async def test_a_user_invalidated_after_the_tokens_were_cached_is_refused_on_a_hit(
    auth: VerifierAuthenticator, store: MemoryRevocationStore
) -> None:
    conn, sub = token(iat=NOW - 10), sub_token(iat=NOW - 10)
    await auth.connect_token(conn, now=NOW)
    await subscribe(auth, sub)
    await store.invalidate_user_tokens("42", issued_before=NOW, expire_at=NOW + 60)
    assert (await refusal(auth.connect_token(conn, now=NOW))).reason == "revoked_user"
    assert (await refusal(subscribe(auth, sub))).reason == "revoked_user"


async def test_a_cached_subscription_token_is_refused_for_another_channel_user_or_client(
    auth: VerifierAuthenticator, metrics: Metrics
) -> None:
    tok = sub_token(client="c1")
    await subscribe(auth, tok)
    for binding, reason in (
        ({"channel": "$other"}, "channel_mismatch"),
        ({"user": "7"}, "user_mismatch"),
        ({"client": "c2"}, "client_mismatch"),
    ):
        problem = await refusal(subscribe(auth, tok, **binding))
        assert (problem.kind, problem.reason) == ("mismatch", reason)
    assert sample(metrics, "rotary_token_cache_total", result="hit") == 3
    counted = "rotary_token_verifications_total"
    mismatch = {"kind": "subscription", "outcome": "mismatch", "reason": "user_mismatch"}
    assert sample(metrics, counted, **mismatch) == 1
    assert (await subscribe(auth, tok)).channel == "$c"


async def test_a_cached_token_is_not_used_from_its_exp_on(auth: VerifierAuthenticator) -> None:
    conn, sub = token(exp=NOW + 60), sub_token(exp=NOW + 60)
    await auth.connect_token(conn, now=NOW)
    await subscribe(auth, sub)
    assert (await auth.connect_token(conn, now=NOW + 59.5)).user == "42"
    assert (await refusal(auth.connect_token(conn, now=NOW + 60))).kind == "expired"
    assert (await refusal(subscribe(auth, sub, now=NOW + 60))).kind == "expired"


async def test_a_token_of_the_previous_secret_is_not_reused_after_its_window() -> None:
    settings = AuthSettings(
        connection=TokenSettings(
            hmac_secret_key=SECRET + "-new",
            hmac_previous_secret_key=SECRET,
            hmac_previous_secret_key_valid_until=NOW + 10,
        )
    )
    auth = VerifierAuthenticator(TokenVerifier(settings))
    tok = token()
    assert (await auth.connect_token(tok, now=NOW)).user == "42"
    assert (await auth.connect_token(tok, now=NOW + 9)).user == "42"
    problem = await refusal(auth.connect_token(tok, now=NOW + 10))
    assert (problem.kind, problem.reason) == ("invalid", "signature")


async def test_without_a_cache_every_use_is_verified_and_still_checked(
    store: MemoryRevocationStore, metrics: Metrics
) -> None:
    settings = AuthSettings(connection=TokenSettings(hmac_secret_key=SECRET), cache_size=0)
    auth = VerifierAuthenticator(TokenVerifier(settings), revocation=store, metrics=metrics)
    tok = sub_token(jti="s2")
    await subscribe(auth, tok)
    await store.revoke_token("s2", expire_at=NOW + 60)
    assert (await refusal(subscribe(auth, tok))).reason == "revoked_jti"
    assert sample(metrics, "rotary_token_cache_total", result="miss") == 2
    assert sample(metrics, "rotary_token_cache_total", result="hit") == 0


async def test_an_override_that_sets_nothing_reaches_the_node_as_none(
    auth: VerifierAuthenticator,
) -> None:
    plain = await subscribe(auth, sub_token())
    assert plain.override is None
    forced = await subscribe(auth, sub_token(override={"presence": {"value": False}}))
    assert forced.override == SubscribeOverride(presence=False)
    subs = {"$a": {}, "$b": {"override": {"join_leave": {"value": True}}}}
    creds = await auth.connect_token(token(subs=subs), now=NOW)
    assert creds.subs["$a"].override is None
    assert creds.subs["$b"].override == SubscribeOverride(join_leave=True)


async def test_credentials_equal_what_their_dataclasses_build_from_the_same_claims(
    auth: VerifierAuthenticator,
) -> None:
    conn = await auth.connect_token(token(jti="j", iat=NOW - 1, info={"a": 1}), now=NOW)
    identity = TokenIdentity("connection", "42", "j", NOW - 1)
    assert conn == ConnectCredentials(
        user="42", expire_at=NOW + 3600, info=b'{"a":1}', subs={}, identity=identity
    )
    sub = await subscribe(auth, sub_token(client="c1", data={"d": 2}))
    identity = TokenIdentity("subscription", "42", "", None, "$c")
    assert sub == SubscribeCredentials(
        user="42",
        channel="$c",
        client="c1",
        expire_at=NOW + 3600,
        data=b'{"d":2}',
        identity=identity,
    )


def test_fast_credential_constructors_fill_every_field_in_order_and_stay_frozen() -> None:
    identity = TokenIdentity("subscription", "u", "j", 1, "ch")
    sub = ("u", "ch", "cl", 5, b"i", b"d", SubscribeOverride(presence=True), identity)
    assert new_subscribe_credentials(*sub) == SubscribeCredentials(*sub)
    subs = {"c": ServerSubOptions(info=b"s")}
    conn = ("u", 5, b"i", ("c",), subs, b"m", identity)
    built = new_connect_credentials(*conn)
    assert built == ConnectCredentials(*conn) and type(built) is ConnectCredentials
    with pytest.raises(AttributeError):
        built.user = "x"  # type: ignore[misc]
