"""Every claim of the connection token (docs/tokens.md "Connection token claims") and the
subscription token (docs/tokens.md "Subscription token claims")."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from rotary.auth import (
    ConnectionToken,
    Outcome,
    SubscribeOptions,
    SubscribeOverride,
    SubscriptionToken,
)
from rotary.auth.tokens import new_connection_token, new_subscription_token
from tests.auth.helpers import NOW, assert_refused, hs256, verifier
from tests.test_jsonbytes import SMALL_ENCODING_BUDGET, traced_bytes_per_item

EXP = int(NOW) + 3600


def connect(claims: dict[str, Any], **fields: Any) -> ConnectionToken:
    return verifier(**fields).verify_connection_sync(hs256(claims), now=NOW)


def subscribe(claims: dict[str, Any], **fields: Any) -> SubscriptionToken:
    return verifier(**fields).verify_subscription_sync(hs256(claims), now=NOW)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_sub_is_the_user_and_absent_sub_is_anonymous() -> None:
    assert connect({"sub": "alice"}).user == "alice"
    assert connect({}).user == ""
    assert connect({"sub": None}).user == ""


def test_exp_gives_the_connection_expiry() -> None:
    found = connect({"sub": "a", "exp": EXP})
    assert (found.exp, found.expire_at) == (EXP, EXP)


def test_float_exp_is_accepted_and_truncated_to_seconds() -> None:
    found = connect({"exp": EXP + 0.75})
    assert (found.exp, found.expire_at) == (EXP, EXP)


def test_token_without_exp_never_expires() -> None:
    found = connect({"sub": "a", "exp": None})
    assert (found.exp, found.expire_at) == (None, 0)


def test_expire_at_overrides_exp_and_zero_or_negative_means_never() -> None:
    assert connect({"exp": EXP, "expire_at": EXP + 10}).expire_at == EXP + 10
    assert connect({"exp": EXP, "expire_at": 0}).expire_at == 0
    assert connect({"exp": EXP, "expire_at": -5}).expire_at == 0
    assert connect({"exp": EXP, "expire_at": None}).expire_at == EXP


def test_expire_at_in_the_past_is_reported_not_judged() -> None:
    assert connect({"exp": EXP, "expire_at": int(NOW) - 10}).expire_at == int(NOW) - 10


def test_iat_jti_and_nbf_in_the_past_are_accepted() -> None:
    found = connect({"iat": int(NOW) - 5, "jti": "id-1", "nbf": int(NOW) - 1})
    assert (found.iat, found.jti) == (int(NOW) - 5, "id-1")


def test_info_is_kept_as_compact_json() -> None:
    found = connect({"info": {"name": "Ann", "tags": [1, 2]}})
    assert found.info == b'{"name":"Ann","tags":[1,2]}'
    assert connect({"info": "plain"}).info == b'"plain"'
    assert connect({}).info is None


def test_token_payloads_are_kept_trimmed_to_their_length() -> None:
    check = verifier(cache_size=0)  # only the token's own fields stay
    tokens = [hs256({"info": {"n": n}, "meta": {"m": n}}) for n in range(1000)]

    def payloads(n: int) -> tuple[bytes | None, bytes | None]:
        found = check.verify_connection_sync(tokens[n], now=NOW)
        return found.info, found.meta

    assert traced_bytes_per_item(payloads) < 2 * SMALL_ENCODING_BUDGET


def test_b64info_wins_over_info_when_non_empty() -> None:
    assert connect({"info": {"a": 1}, "b64info": b64(b"\x00\xffbin")}).info == b"\x00\xffbin"
    assert connect({"info": {"a": 1}, "b64info": ""}).info == b'{"a":1}'


def test_channels_become_server_side_channels() -> None:
    found = connect({"channels": ["news", "chat:1"]})
    assert found.channels == ("news", "chat:1")
    assert dict(found.subs) == {}


def test_subs_with_options_win_over_channels() -> None:
    subs = {
        "news": {
            "info": {"x": 1},
            "data": [1],
            "override": {"presence": {"value": False}, "force_recovery": {"value": True}},
        },
        "bin": {"b64info": b64(b"i"), "b64data": b64(b"d")},
        "plain": {},
    }
    found = connect({"channels": ["ignored"], "subs": subs})
    assert found.channels == ("news", "bin", "plain")
    assert found.subs["news"] == SubscribeOptions(
        info=b'{"x":1}',
        data=b"[1]",
        override=SubscribeOverride(presence=False, force_recovery=True),
    )
    assert found.subs["bin"] == SubscribeOptions(info=b"i", data=b"d")
    assert found.subs["plain"] == SubscribeOptions()


def test_meta_is_kept_as_compact_json() -> None:
    assert connect({"meta": {"plan": "pro"}}).meta == b'{"plan":"pro"}'


def test_empty_channel_claim_is_allowed_in_a_connection_token() -> None:
    assert connect({"sub": "a", "channel": ""}).user == "a"


def test_aud_may_be_a_string_or_a_list() -> None:
    assert connect({"aud": "svc"}, audience="svc").user == ""
    assert connect({"aud": ["other", "svc"]}, audience="svc").user == ""


def test_iss_is_accepted_when_it_matches() -> None:
    assert connect({"sub": "u", "iss": "me"}, issuer="me").user == "u"


def test_regex_audience_and_issuer_are_unanchored_searches() -> None:
    assert connect({"sub": "u", "aud": ["x", "api.svc"]}, audience_regex=r"svc$").user == "u"
    assert connect({"sub": "u", "iss": "https://id.example.com/"}, issuer_regex="example").user


@pytest.mark.parametrize(
    ("value", "user"),
    [("bob", "bob"), (12345, "12345"), (1.5, "1.5"), (2.0, "2"), (True, "true"), (None, "")],
)
def test_custom_user_id_claim_is_stringified(value: object, user: str) -> None:
    assert connect({"sub": "ignored", "uid": value}, user_id_claim="uid").user == user


def test_missing_custom_user_id_claim_means_anonymous() -> None:
    assert connect({"sub": "ignored"}, user_id_claim="user_id").user == ""


def test_subscription_token_claims_are_all_decoded() -> None:
    claims = {
        "sub": "u1",
        "channel": "$room",
        "client": "c-1",
        "exp": EXP,
        "iat": int(NOW),
        "jti": "j",
        "info": {"role": "admin"},
        "data": {"welcome": True},
        "override": {"join_leave": {"value": True}, "force_positioning": {"value": False}},
        "channels": [1, 2],  # not a subscription claim: ignored, whatever its type
    }
    assert subscribe(claims) == SubscriptionToken(
        user="u1",
        channel="$room",
        client="c-1",
        expire_at=EXP,
        exp=EXP,
        iat=int(NOW),
        jti="j",
        info=b'{"role":"admin"}',
        data=b'{"welcome":true}',
        override=SubscribeOverride(join_leave=True, force_positioning=False),
    )


def test_subscription_b64_fields_win_and_expire_at_overrides_exp() -> None:
    claims = {"channel": "c", "b64info": b64(b"I"), "b64data": b64(b"D"), "expire_at": EXP + 1}
    found = subscribe({**claims, "info": 1, "data": 2, "exp": EXP})
    assert (found.info, found.data, found.expire_at, found.user) == (b"I", b"D", EXP + 1, "")


def test_subscription_binding_accepts_the_matching_channel_user_and_client() -> None:
    token = hs256({"sub": "u", "channel": "c", "client": "id"})
    check = verifier()
    found = check.verify_subscription_sync(token, now=NOW, channel="c", user="u", client="id")
    assert found.channel == "c"


def test_subscription_without_client_claim_binds_to_any_client() -> None:
    token = hs256({"sub": "u", "channel": "c"})
    assert verifier().verify_subscription_sync(token, now=NOW, client="any").client == ""


@pytest.mark.parametrize(
    ("bound", "reason"),
    [
        ({"channel": "other"}, "channel_mismatch"),
        ({"user": "mallory"}, "user_mismatch"),
        ({"client": "stolen"}, "client_mismatch"),
    ],
)
def test_subscription_bound_elsewhere_is_a_mismatch(bound: dict[str, str], reason: str) -> None:
    token = hs256({"sub": "u", "channel": "c", "client": "id"})
    check = verifier()
    for _ in range(2):  # the second time is answered from the cache: binding still checked
        assert_refused(
            lambda: check.verify_subscription_sync(token, now=NOW, **bound),
            Outcome.MISMATCH,
            reason,
        )


def test_fast_constructors_build_the_same_records_as_the_classes() -> None:
    subs = {"c": SubscribeOptions(info=b"1")}
    conn = ("u", 5, 4, 3, "j", b"i", ("c",), subs, b"m")
    assert new_connection_token(*conn) == ConnectionToken(*conn)
    override = SubscribeOverride(presence=True)
    sub = ("u", "ch", "cl", 5, 4, 3, "j", b"i", b"d", override)
    assert new_subscription_token(*sub) == SubscriptionToken(*sub)
    with pytest.raises(AttributeError):
        new_connection_token(*conn).user = "x"  # type: ignore[misc]
