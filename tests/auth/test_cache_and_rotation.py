"""Verified-token cache, HMAC secret rotation and separate subscription-token settings."""

from __future__ import annotations

import jwt
import pytest

from rotary.auth import Outcome, TokenRejected, TokenVerifier
from rotary.auth.settings import TokenSettings
from tests.auth.helpers import (
    NOW,
    OTHER_SECRET,
    SECRET,
    KeyPair,
    assert_refused,
    hs256,
    settings,
    verifier,
)


def test_second_verification_of_a_token_is_a_cache_hit() -> None:
    check = verifier()
    token = hs256({"sub": "a", "exp": NOW + 60})
    first = check.verify_connection_sync(token, now=NOW)
    second = check.verify_connection_sync(token, now=NOW + 1)
    assert second is first
    assert (check.cache_hits, check.cache_misses) == (1, 1)


def test_cached_entry_expires_with_the_token_exp() -> None:
    check = verifier()
    token = hs256({"sub": "a", "exp": NOW + 60})
    check.verify_connection_sync(token, now=NOW)
    assert_refused(
        lambda: check.verify_connection_sync(token, now=NOW + 60), Outcome.EXPIRED, "expired"
    )
    assert check.cache_hits == 0


def test_cached_entry_honours_the_leeway() -> None:
    check = verifier(leeway=10.0)
    token = hs256({"sub": "a", "exp": NOW + 60})
    check.verify_connection_sync(token, now=NOW)
    assert check.verify_connection_sync(token, now=NOW + 65).user == "a"
    assert check.cache_hits == 1
    assert_refused(
        lambda: check.verify_connection_sync(token, now=NOW + 70), Outcome.EXPIRED, "expired"
    )


def test_connection_and_subscription_caches_are_separate() -> None:
    check = verifier()
    token = hs256({"sub": "a", "exp": NOW + 60})
    check.verify_connection_sync(token, now=NOW)
    # the same string as a subscription token has no channel: not answered from the other cache
    assert_refused(
        lambda: check.verify_subscription_sync(token, now=NOW), Outcome.INVALID, "missing_channel"
    )


def test_refused_tokens_are_not_cached() -> None:
    check = verifier()
    token = hs256({"sub": "a"}, secret=OTHER_SECRET)
    for _ in range(2):
        assert_refused(
            lambda: check.verify_connection_sync(token, now=NOW), Outcome.INVALID, "signature"
        )
    assert (check.cache_hits, check.cache_misses) == (0, 2)


def test_cache_size_zero_disables_the_cache() -> None:
    check = verifier(cache_size=0)
    token = hs256({"sub": "a"})
    check.verify_connection_sync(token, now=NOW)
    check.verify_connection_sync(token, now=NOW)
    assert (check.cache_hits, check.cache_misses) == (0, 2)


def test_cache_evicts_the_least_recently_used_token() -> None:
    check = verifier(cache_size=2)
    first, second, third = (hs256({"sub": str(n)}) for n in range(3))
    for token in (first, second, first, third):  # `second` is now the oldest
        check.verify_connection_sync(token, now=NOW)
    hits = check.cache_hits
    check.verify_connection_sync(first, now=NOW)
    check.verify_connection_sync(second, now=NOW)
    assert check.cache_hits == hits + 1


async def test_async_subscription_hits_the_cache_and_still_checks_binding() -> None:
    check = verifier()
    token = hs256({"sub": "u", "channel": "c"})
    await check.verify_subscription(token, now=NOW, channel="c", user="u")
    found = await check.verify_subscription(token, now=NOW, channel="c", user="u")
    assert found.channel == "c" and check.cache_hits == 1
    with pytest.raises(TokenRejected) as caught:
        await check.verify_subscription(token, now=NOW, channel="c", user="other")
    assert caught.value.reason == "user_mismatch"
    await check.close()


def rotating(valid_until: int) -> TokenVerifier:
    return verifier(
        hmac_secret_key=SECRET,
        hmac_previous_secret_key=OTHER_SECRET,
        hmac_previous_secret_key_valid_until=valid_until,
    )


def test_previous_secret_is_accepted_before_valid_until() -> None:
    check = rotating(int(NOW) + 10)
    assert check.verify_connection_sync(hs256({"sub": "old"}, OTHER_SECRET), now=NOW).user == "old"
    assert check.verify_connection_sync(hs256({"sub": "new"}), now=NOW).user == "new"


def test_previous_secret_is_refused_from_valid_until_on() -> None:
    check = rotating(int(NOW))
    token = hs256({"sub": "old"}, OTHER_SECRET)
    assert_refused(
        lambda: check.verify_connection_sync(token, now=NOW), Outcome.INVALID, "signature"
    )


def test_cached_token_of_the_previous_secret_drops_out_at_valid_until() -> None:
    check = rotating(int(NOW) + 10)
    token = hs256({"sub": "old"}, OTHER_SECRET)
    check.verify_connection_sync(token, now=NOW)
    assert check.verify_connection_sync(token, now=NOW + 9).user == "old"
    assert_refused(
        lambda: check.verify_connection_sync(token, now=NOW + 10), Outcome.INVALID, "signature"
    )


SUB_SECRET = "subscription-secret-" + "z" * 64


def separate(**sub_fields: object) -> TokenVerifier:
    fields = {"hmac_secret_key": SUB_SECRET, **sub_fields}
    return TokenVerifier(
        settings(hmac_secret_key=SECRET, subscription=TokenSettings(**fields))  # type: ignore[arg-type]
    )


def test_separate_subscription_config_verifies_with_its_own_secret() -> None:
    check = separate()
    token = hs256({"sub": "u", "channel": "c"}, SUB_SECRET)
    assert check.verify_subscription_sync(token, now=NOW).channel == "c"
    assert check.verify_connection_sync(hs256({"sub": "u"}), now=NOW).user == "u"


def test_separate_subscription_config_does_not_fall_back_to_the_connection_secret() -> None:
    check = separate()
    token = hs256({"sub": "u", "channel": "c"})
    assert_refused(
        lambda: check.verify_subscription_sync(token, now=NOW), Outcome.INVALID, "signature"
    )
    conn = hs256({"sub": "u"}, SUB_SECRET)
    assert_refused(
        lambda: check.verify_connection_sync(conn, now=NOW), Outcome.INVALID, "signature"
    )


def test_separate_subscription_config_without_rsa_refuses_rs256(rsa_key: KeyPair) -> None:
    check = TokenVerifier(
        settings(
            rsa_public_key=rsa_key.public_pem,
            subscription=TokenSettings(hmac_secret_key=SUB_SECRET),
        )
    )
    conn = jwt.encode({"sub": "u"}, rsa_key.private, algorithm="RS256")
    assert check.verify_connection_sync(conn, now=NOW).user == "u"
    token = jwt.encode({"channel": "c"}, rsa_key.private, algorithm="RS256")
    assert_refused(
        lambda: check.verify_subscription_sync(token, now=NOW), Outcome.INVALID, "algorithm"
    )


def test_separate_subscription_config_has_its_own_audience_and_user_claim() -> None:
    check = separate(audience="subs", user_id_claim="uid")
    good = hs256({"aud": "subs", "uid": 7, "channel": "c"}, SUB_SECRET)
    assert check.verify_subscription_sync(good, now=NOW).user == "7"
    bad = hs256({"aud": "other", "channel": "c"}, SUB_SECRET)
    assert_refused(
        lambda: check.verify_subscription_sync(bad, now=NOW), Outcome.INVALID, "audience"
    )
    assert check.verify_connection_sync(hs256({"aud": "x", "sub": "s"}), now=NOW).user == "s"


# ---------------------------------------------------------------------------- cache entries


def test_verifying_at_hand_answers_from_the_cache_or_does_the_work_once() -> None:
    check = verifier()
    token = hs256({"sub": "a", "exp": NOW + 60})
    entry = check.connection_at_hand(token, NOW)
    assert entry is not None and entry.token.user == "a"
    assert (check.cache_hits, check.cache_misses) == (0, 1)
    assert check.connection_at_hand(token, NOW + 1) is entry
    assert (check.cache_hits, check.cache_misses) == (1, 1)


def test_verifying_at_hand_refuses_a_bad_token_like_the_full_verification() -> None:
    check = verifier()
    assert_refused(lambda: check.connection_at_hand("x" * 20000, NOW), Outcome.INVALID, "too_large")
    forged = hs256({"sub": "a"}, OTHER_SECRET)
    assert_refused(lambda: check.subscription_at_hand(forged, NOW), Outcome.INVALID, "signature")


def test_an_entry_lasts_until_exp_plus_leeway_and_not_a_moment_longer() -> None:
    check = verifier(leeway=5.0)
    token = hs256({"sub": "a", "channel": "c", "exp": NOW + 60})
    entry = check.subscription_at_hand(token, NOW)
    assert entry is not None and entry.until == NOW + 65
    assert check.subscription_at_hand(token, NOW + 64.9) is entry
    assert_refused(lambda: check.subscription_at_hand(token, NOW + 65), Outcome.EXPIRED, "expired")


def test_an_entry_of_the_previous_secret_lasts_until_its_window_closes() -> None:
    check = rotating(int(NOW) + 10)
    token = hs256({"sub": "old", "exp": NOW + 60}, OTHER_SECRET)
    entry = check.connection_at_hand(token, NOW)
    assert entry is not None and entry.until == NOW + 10
    assert check.connection_at_hand(token, NOW + 9.9) is entry
    assert_refused(lambda: check.connection_at_hand(token, NOW + 10), Outcome.INVALID, "signature")


def test_a_cached_entry_is_not_bound_to_a_channel_or_user() -> None:
    check = verifier()
    token = hs256({"sub": "u", "channel": "c"})
    check.verify_subscription_sync(token, now=NOW, channel="c", user="u")
    assert_refused(
        lambda: check.verify_subscription_sync(token, now=NOW, channel="d"),
        Outcome.MISMATCH,
        "channel_mismatch",
    )
    assert check.cache_hits == 1


async def test_the_callers_memo_lives_and_dies_with_the_entry() -> None:
    check = verifier(cache_size=1)
    first, second = hs256({"sub": "1"}), hs256({"sub": "2"})
    entry = await check.verified_connection(first, now=NOW)
    assert entry.memo is None
    entry.memo = "derived"
    again = await check.verified_connection(first, now=NOW)
    assert again is entry and again.memo == "derived"
    await check.verified_connection(second, now=NOW)  # evicts `first`
    fresh = await check.verified_connection(first, now=NOW)
    assert fresh is not entry and fresh.memo is None
    await check.close()


async def test_without_a_cache_every_verification_gives_a_fresh_entry() -> None:
    check = verifier(cache_size=0)
    token = hs256({"sub": "u", "channel": "c"})
    one = await check.verified_subscription(token, now=NOW)
    two = await check.verified_subscription(token, now=NOW)
    assert one is not two and one.token == two.token
    three = check.subscription_at_hand(token, NOW)
    assert three is not None and three is not one and three is not two
    await check.close()
