"""Connection tokens: claims, failures, key types, audience and issuer, expiry and refresh."""

from __future__ import annotations

import base64

from tests.compat.dsl import (
    Closed,
    Cmd,
    Open,
    Push,
    Scenario,
    Sleep,
    Tok,
)
from tests.compat.scenarios._helpers import (
    BAD_SECRET,
    UNSIGNED,
    connect,
    connect_only,
    connect_then_close,
    sub,
)

__all__ = ["CONNECTION_TOKENS", "EXPIRY", "KEYS"]

B64_INFO = base64.b64encode(b'{"from":"b64"}').decode()
CONNECTION_TOKENS = [
    connect_only("connect_hs256_token_gets_client_expiry_and_ping", Tok(), quick=True),
    connect_only("connect_hs384_token_connects", Tok(alg="HS384")),
    connect_only("connect_hs512_token_connects", Tok(alg="HS512")),
    connect_only("connect_token_without_exp_never_expires", Tok(exp_in=None)),
    connect_only("connect_expired_token_gets_109", Tok(exp_in=-10), quick=True),
    connect_only("connect_nbf_in_future_gets_109", Tok(claims={"nbf": 4102444800})),
    connect_then_close("connect_bad_signature_closes_3500", Tok(secret=BAD_SECRET)),
    connect_then_close("connect_alg_none_closes_3500", Tok(raw=UNSIGNED)),
    connect_then_close("connect_garbage_token_closes_3500", Tok(raw="not-a-jwt")),
    connect_then_close("connect_numeric_sub_closes_3500", Tok(claims={"sub": 42})),
    connect_then_close("connect_channel_claim_closes_3500", Tok(claims={"channel": "x"})),
    connect_then_close("connect_float_expire_at_closes_3500", Tok(claims={"expire_at": 1.5e12})),
    connect_only("connect_expire_at_overrides_exp", Tok(expire_at_in=100)),
    connect_only("connect_expire_at_zero_never_expires", Tok(claims={"expire_at": 0})),
    connect_only("connect_expire_at_in_past_gets_110", Tok(expire_at_in=-100)),
    connect_only("connect_anonymous_token_connects", Tok(sub="")),
    connect_then_close("connect_anonymous_token_refused_3507", Tok(sub=""), "no_anon_tokens"),
    Scenario(
        "connect_without_token_closes_3501",
        "base",
        (
            Open("a"),
            Cmd("a", {"connect": {}}),
            Closed("a"),
        ),
        quick=True,
    ),
    Scenario(
        "connect_without_token_allowed_anonymous",
        "anonymous",
        (
            Open("a"),
            Cmd("a", {"connect": {}}),
        ),
    ),
    connect_only(
        "connect_channels_claim_subscribes_server_side",
        Tok(claims={"channels": ["chat:srv", "news"]}),
    ),
    connect_only(
        "connect_subs_claim_returns_data",
        Tok(claims={"subs": {"chat:srv": {"data": {"hello": 1}, "info": {"i": 2}}}}),
    ),
    connect_only(
        "connect_channels_claim_unknown_namespace_gets_102", Tok(claims={"channels": ["nope:x"]})
    ),
    connect_only("connect_bad_b64info", Tok(claims={"b64info": "***"})),
    connect_only("connect_token_valid_for_two_years", Tok(exp_in=2 * 365 * 86400)),
    Scenario(
        "connect_info_and_b64info_reach_join_push",
        "base",
        (
            *connect("a"),
            sub("a", "chat:info"),
            *connect("b", Tok(sub="7", claims={"info": {"name": "seven"}})),
            sub("b", "chat:info"),
            Push("a"),
            *connect("c", Tok(sub="8", claims={"b64info": B64_INFO})),
            sub("c", "chat:info"),
            Push("a"),
        ),
    ),
]

KEYS = [
    connect_only("connect_rs256_token_connects", Tok(alg="RS256"), "keys"),
    connect_only("connect_es256_token_connects", Tok(alg="ES256"), "keys"),
    connect_then_close(
        "connect_rs256_wrong_key_closes_3500", Tok(alg="RS256", wrong_key=True), "keys"
    ),
    connect_then_close(
        "connect_es256_wrong_key_closes_3500", Tok(alg="ES256", wrong_key=True), "keys"
    ),
    connect_then_close("connect_hs256_without_hmac_key_closes_3500", Tok(), "rsa_only"),
    connect_then_close("connect_es256_without_ecdsa_key_closes_3500", Tok(alg="ES256"), "rsa_only"),
    connect_only(
        "connect_audience_and_issuer_match",
        Tok(claims={"aud": "rotary-tests", "iss": "compat-iss"}),
        "audiss",
    ),
    connect_only(
        "connect_audience_list_matches",
        Tok(claims={"aud": ["x", "rotary-tests"], "iss": "compat-iss"}),
        "audiss",
    ),
    connect_then_close(
        "connect_wrong_audience_closes_3500",
        Tok(claims={"aud": "other", "iss": "compat-iss"}),
        "audiss",
    ),
    connect_then_close(
        "connect_wrong_issuer_closes_3500",
        Tok(claims={"aud": "rotary-tests", "iss": "other"}),
        "audiss",
    ),
    connect_then_close(
        "connect_missing_audience_closes_3500", Tok(claims={"iss": "compat-iss"}), "audiss"
    ),
]

EXPIRY = [
    Scenario(
        "connection_expires_with_3005",
        "base",
        (
            *connect("a", Tok(exp_in=2)),
            Closed("a"),
        ),
    ),
    Scenario(
        "refresh_extends_connection",
        "base",
        (
            *connect("a", Tok(exp_in=2)),
            Cmd("a", {"refresh": {"token": Tok(exp_in=600)}}),
            Sleep(3.5),
            Cmd("a", {"rpc": {"method": "nope", "data": {}}}),
        ),
    ),
    Scenario(
        "refresh_with_expired_token_closes_3005",
        "base",
        (
            *connect("a"),
            Cmd("a", {"refresh": {"token": Tok(exp_in=-5)}}),
            Closed("a"),
        ),
    ),
    Scenario(
        "refresh_with_bad_signature_closes_3500",
        "base",
        (
            *connect("a"),
            Cmd("a", {"refresh": {"token": Tok(secret=BAD_SECRET)}}),
            Closed("a"),
        ),
    ),
    Scenario(
        "refresh_for_another_user_closes_3500",
        "base",
        (
            *connect("a"),
            Cmd("a", {"refresh": {"token": Tok(sub="43")}}),
            Closed("a"),
        ),
    ),
    Scenario(
        "refresh_without_token_closes_3501",
        "base",
        (
            *connect("a"),
            Cmd("a", {"refresh": {}}),
            Closed("a"),
        ),
    ),
    Scenario(
        "refresh_with_expire_at_in_past_gets_110",
        "base",
        (
            *connect("a"),
            Cmd("a", {"refresh": {"token": Tok(expire_at_in=-50)}}),
        ),
    ),
]
