"""Hostile and broken tokens: each is refused with the right outcome and reason."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from rotary.auth import Outcome, TokenVerifier
from tests.auth.helpers import (
    NOW,
    OTHER_SECRET,
    SECRET,
    KeyPair,
    assert_refused,
    b64url,
    hand_made,
    hs256,
    verifier,
)

INVALID = Outcome.INVALID
EXP = int(NOW) + 3600
GOOD = {"sub": "42", "exp": EXP}


def connect_with(check: TokenVerifier, token: str) -> Callable[[], object]:
    return lambda: check.verify_connection_sync(token, now=NOW)


def refused_on_connect(token: str, reason: str, outcome: Outcome = INVALID, **fields: Any) -> Any:
    return assert_refused(connect_with(verifier(**fields), token), outcome, reason)


def refused_on_subscribe(token: str, reason: str, outcome: Outcome = INVALID, **fields: Any) -> Any:
    check = verifier(**fields)
    return assert_refused(lambda: check.verify_subscription_sync(token, now=NOW), outcome, reason)


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    parts = [b64url(json.dumps(part).encode()) for part in (header, claims)]
    return ".".join([*parts, signature])


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_in_any_case_is_refused(alg: str) -> None:
    exc = refused_on_connect(unsigned({"alg": alg, "typ": "JWT"}, GOOD), "algorithm")
    assert exc.detail == f"unsupported JWT algorithm: {alg}"
    assert exc.alg == alg


def test_alg_none_is_refused_on_subscribe_too() -> None:
    refused_on_subscribe(unsigned({"alg": "none"}, {**GOOD, "channel": "c"}), "algorithm")


def test_unsupported_algorithm_is_refused() -> None:
    token = hand_made({"alg": "PS256", "typ": "JWT"}, GOOD)
    exc = refused_on_connect(token, "algorithm")
    assert exc.detail == "unsupported JWT algorithm: PS256"


def test_hs256_signed_with_the_rsa_public_pem_is_refused_when_only_rsa_is_configured(
    rsa_key: KeyPair,
) -> None:
    token = hand_made({"alg": "HS256", "typ": "JWT"}, GOOD, secret=rsa_key.public_pem)
    exc = refused_on_connect(token, "algorithm", rsa_public_key=rsa_key.public_pem)
    assert exc.detail == "disabled JWT algorithm: HS256"


def test_hs256_signed_with_the_rsa_public_pem_is_refused_when_hmac_is_configured_too(
    rsa_key: KeyPair,
) -> None:
    token = hand_made({"alg": "HS256", "typ": "JWT"}, GOOD, secret=rsa_key.public_pem)
    refused_on_connect(
        token, "signature", hmac_secret_key=SECRET, rsa_public_key=rsa_key.public_pem
    )


def test_rs256_without_an_rsa_key_is_a_disabled_algorithm(rsa_key: KeyPair) -> None:
    token = jwt.encode(GOOD, rsa_key.private, algorithm="RS256")
    exc = refused_on_connect(token, "algorithm")
    assert exc.detail == "disabled JWT algorithm: RS256"


def test_token_signed_with_another_secret_is_refused() -> None:
    exc = refused_on_connect(hs256(GOOD, secret=OTHER_SECRET), "signature")
    assert exc.detail == "signature is not valid"
    assert exc.claims is not None and b'"sub":"42"' in exc.claims


def test_token_signed_with_another_rsa_key_is_refused(
    rsa_key: KeyPair, other_rsa_key: KeyPair
) -> None:
    token = jwt.encode(GOOD, other_rsa_key.private, algorithm="RS256")
    refused_on_connect(token, "signature", rsa_public_key=rsa_key.public_pem)


def test_tampered_payload_is_refused() -> None:
    header, _, signature = hs256(GOOD).split(".")
    forged = b64url(b'{"sub":"admin","exp":%d}' % EXP)
    refused_on_connect(f"{header}.{forged}.{signature}", "signature")


def test_tampered_header_is_refused() -> None:
    _, payload, signature = hs256(GOOD).split(".")
    header = b64url(b'{"alg":"HS256","typ":"JWT","kid":"x"}')
    refused_on_connect(f"{header}.{payload}.{signature}", "signature")


def test_tampered_signature_is_refused() -> None:
    token = hs256(GOOD)
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    refused_on_connect(flipped, "signature")


def test_truncated_signature_is_refused() -> None:
    token = hs256(GOOD)
    refused_on_connect(token[: token.rindex(".") + 11], "signature")


@pytest.mark.parametrize("where", [0, 1, 2])
def test_padded_base64_in_any_part_is_malformed(where: int) -> None:
    parts = hs256({"sub": "4"}).split(".")
    parts[where] += "=" * (-len(parts[where]) % 4 or 4)
    refused_on_connect(".".join(parts), "malformed")


@pytest.mark.parametrize("bad", ["+", "/", "!", " ", "\n"])
def test_characters_outside_base64url_are_malformed(bad: str) -> None:
    header, payload, signature = hs256(GOOD).split(".")
    refused_on_connect(f"{header}.{payload[:8]}{bad}{payload[9:]}.{signature}", "malformed")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-token",
        "eyJhbGciOiJIUzI1NiJ9",
        "eyJhbGciOiJIUzI1NiJ9.e30",
        "eyJhbGciOiJIUzI1NiJ9.e30.e30.e30",
        "eyJhbGciOiJIUzI1NiJ9.e30.sig\u00e9",
    ],
)
def test_tokens_without_three_ascii_parts_are_malformed(token: str) -> None:
    refused_on_connect(token, "malformed")


def test_header_that_is_not_json_is_malformed() -> None:
    # "eyJ" then garbage: looks like the start of a JSON object, is not one
    token = "eyJub3Q." + hs256(GOOD).split(".", 1)[1]
    refused_on_connect(token, "malformed")


@pytest.mark.parametrize(
    "header", [b'["HS256"]', b'"HS256"', b"{}", b'{"alg":5}', b'{"alg":"HS256","kid":7}']
)
def test_header_that_is_not_an_object_with_a_string_alg_is_malformed(header: bytes) -> None:
    refused_on_connect(hand_made(header, GOOD), "malformed")


@pytest.mark.parametrize("crit", [["exp"], ["b64"], ["urn:example:unknown"], [], "exp", None])
def test_properly_signed_token_with_a_crit_header_is_malformed(crit: Any) -> None:
    # RFC 7515 §4.1.11: unknown critical extensions must be refused; Rotary knows none,
    # and an empty or ill-typed crit is as unacceptable as a populated one.
    exc = refused_on_connect(hand_made({"alg": "HS256", "crit": crit}, GOOD), "malformed")
    assert "crit" in exc.detail


def test_crit_header_is_refused_on_subscribe_too() -> None:
    token = hand_made({"alg": "HS256", "crit": ["exp"]}, {**GOOD, "channel": "$x"})
    refused_on_subscribe(token, "malformed")


@pytest.mark.parametrize("payload", [b"not json", b'["sub"]', b"42", b""])
def test_signed_payload_that_is_not_a_json_object_is_malformed(payload: bytes) -> None:
    exc = refused_on_connect(hand_made({"alg": "HS256"}, payload), "malformed")
    assert exc.alg == "HS256"


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": 42},
        {"exp": "1700000000"},
        {"exp": True},
        {"nbf": [1]},
        {"iat": "x"},
        {"jti": 1},
        {"iss": 1},
        {"aud": 1},
        {"aud": ["a", 1]},
        {"expire_at": 1.5},
        {"expire_at": 1e9},
        {"expire_at": "1"},
        {"expire_at": 2**63},
        {"channels": "news"},
        {"channels": ["news", 1]},
        {"subs": ["news"]},
        {"subs": {"news": "yes"}},
        {"subs": {"news": {"override": {"presence": True}}}},
        {"subs": {"news": {"override": {"presence": {"value": "yes"}}}}},
        {"subs": {"news": {"b64info": 1}}},
        {"b64info": 1},
        {"channel": ["a"]},
    ],
)
def test_connection_claims_of_the_wrong_type_are_refused(claims: dict[str, Any]) -> None:
    # made by hand: PyJWT itself refuses to encode some of these (a numeric iss)
    refused_on_connect(hand_made({"alg": "HS256", "typ": "JWT"}, claims), "claims")


@pytest.mark.parametrize(
    "claims",
    [
        {"channel": ["c"]},
        {"channel": "c", "sub": 1},
        {"channel": "c", "client": 1},
        {"channel": "c", "override": []},
        {"channel": "c", "override": {"presence": {"value": 1}}},
        {"channel": "c", "b64data": False},
        {"channel": "c", "expire_at": 10.0},
    ],
)
def test_subscription_claims_of_the_wrong_type_are_refused(claims: dict[str, Any]) -> None:
    refused_on_subscribe(hs256(claims), "claims")


def test_token_expiring_exactly_now_is_expired() -> None:
    exc = refused_on_connect(hs256({"exp": int(NOW)}), "expired", Outcome.EXPIRED)
    assert exc.detail == "token expired"


def test_expired_subscription_token_is_expired() -> None:
    token = hs256({"channel": "c", "exp": int(NOW) - 1})
    refused_on_subscribe(token, "expired", Outcome.EXPIRED)


def test_token_not_valid_yet_is_reported_as_expired() -> None:
    refused_on_connect(hs256({"nbf": int(NOW)}), "not_yet_valid", Outcome.EXPIRED)
    refused_on_subscribe(hs256({"channel": "c", "nbf": NOW + 1}), "not_yet_valid", Outcome.EXPIRED)


def test_leeway_accepts_slightly_expired_and_slightly_early_tokens() -> None:
    check = verifier(leeway=5.0)
    assert check.verify_connection_sync(hs256({"sub": "a", "exp": NOW - 4}), now=NOW).user == "a"
    assert check.verify_connection_sync(hs256({"sub": "b", "nbf": NOW + 4}), now=NOW).user == "b"
    token = hs256({"exp": NOW - 5})
    assert_refused(connect_with(check, token), Outcome.EXPIRED, "expired")


@pytest.mark.parametrize(
    ("claims", "rules", "reason"),
    [
        ({"aud": "other"}, {"audience": "svc"}, "audience"),
        ({}, {"audience": "svc"}, "audience"),
        ({"aud": ["svcx", "x-svc"]}, {"audience": "svc"}, "audience"),
        ({"iss": "evil"}, {"issuer": "me"}, "issuer"),
        ({}, {"issuer": "me"}, "issuer"),
        ({"aud": ["a", "b"]}, {"audience_regex": "^svc$"}, "audience"),
        ({"iss": "https://evil.test"}, {"issuer_regex": r"example\.com"}, "issuer"),
    ],
)
def test_audience_and_issuer_mismatches_are_invalid(
    claims: dict[str, Any], rules: dict[str, str], reason: str
) -> None:
    refused_on_connect(hs256(claims), reason, **rules)
    refused_on_subscribe(hs256({**claims, "channel": "c"}), reason, **rules)


def test_wrong_audience_is_invalid_even_when_the_token_is_also_expired() -> None:
    refused_on_connect(hs256({"aud": "x", "exp": 1}), "audience", audience="svc")


def test_bad_signature_wins_over_every_claim_problem() -> None:
    token = hs256({"aud": "x", "exp": 1, "channel": "c", "sub": 5}, secret=OTHER_SECRET)
    refused_on_connect(token, "signature", audience="svc")


def test_oversized_token_is_refused_before_decoding() -> None:
    exc = refused_on_connect("x" * 101, "too_large", max_token_size=100)
    assert exc.claims is None and exc.alg == ""
    big = hs256({"sub": "a", "pad": "p" * 200})
    refused_on_subscribe(big, "too_large", max_token_size=100)


def test_ecdsa_signature_of_the_wrong_length_is_refused(ec_keys: dict[str, KeyPair]) -> None:
    key = ec_keys["ES256"]
    token = jwt.encode(GOOD, key.private, algorithm="ES256")
    signing_input = token.rsplit(".", 1)[0]
    der = key.private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    check = verifier(ecdsa_public_key=key.public_pem)
    assert_refused(connect_with(check, f"{signing_input}.{b64url(der)}"), INVALID, "signature")
    raw = jwt.utils.base64url_decode(token.rsplit(".", 1)[1])
    longer = signing_input + "." + b64url(bytes(1) + raw)
    assert_refused(connect_with(check, longer), INVALID, "signature")


def test_connection_token_with_a_channel_claim_is_invalid() -> None:
    exc = refused_on_connect(hs256({"sub": "a", "channel": "news"}), "channel_claim")
    assert "can not contain channel claim" in exc.detail


def test_subscription_token_without_channel_is_invalid() -> None:
    refused_on_subscribe(hs256({"sub": "a"}), "missing_channel")
    refused_on_subscribe(hs256({"sub": "a", "channel": ""}), "missing_channel")


def known(channel: str) -> bool:
    return not channel.startswith("nope:")


@pytest.mark.parametrize(
    "claims",
    [
        {"channels": ["news", "nope:x"]},
        {"subs": {"nope:y": {}}},
    ],
)
def test_connection_token_naming_an_unknown_namespace_is_unknown_channel(
    claims: dict[str, Any],
) -> None:
    refused_on_connect(
        hs256(claims), "unknown_channel", Outcome.UNKNOWN_CHANNEL, channel_known=known
    )


def test_subscription_token_for_an_unknown_namespace_is_unknown_channel() -> None:
    token = hs256({"channel": "nope:z"})
    refused_on_subscribe(token, "unknown_channel", Outcome.UNKNOWN_CHANNEL, channel_known=known)


@pytest.mark.parametrize(
    "claims",
    [
        {"b64info": "not base64!"},
        {"b64info": "YQ"},
        {"subs": {"news": {"b64info": "%%%"}}},
        {"subs": {"news": {"b64data": "YWJj="}}},
    ],
)
def test_bad_base64_info_in_a_connection_token_is_invalid(claims: dict[str, Any]) -> None:
    refused_on_connect(hs256(claims), "b64")


def test_bad_base64_in_a_subscription_token_is_invalid() -> None:
    refused_on_subscribe(hs256({"channel": "c", "b64data": "@@"}), "b64")
    refused_on_subscribe(hs256({"channel": "c", "b64info": "YQ="}), "b64")


def test_insecure_mode_trusts_unsigned_claims_but_still_parses_them_strictly() -> None:
    check = verifier(insecure_skip_signature=True)
    token = unsigned({"alg": "none"}, {"sub": "dev"})
    assert check.verify_connection_sync(token, now=NOW).user == "dev"
    forged = hs256({"sub": "dev2"}, secret=OTHER_SECRET)
    assert check.verify_connection_sync(forged, now=NOW).user == "dev2"
    assert_refused(connect_with(check, unsigned({"alg": "none"}, {"sub": 1})), INVALID, "claims")
    assert_refused(
        connect_with(check, unsigned({"alg": "none"}, {"exp": 1})), Outcome.EXPIRED, "expired"
    )


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (hs256(GOOD, secret=OTHER_SECRET), "signature"),
        (hs256({"exp": 1}), "expired"),
        (hs256({"sub": 1}), "claims"),
        (hs256({"b64info": "!"}), "b64"),
    ],
)
def test_refusals_never_repeat_the_token_or_the_secret(token: str, reason: str) -> None:
    exc = assert_refused(connect_with(verifier(), token), rejection_outcome(reason), reason)
    for text in (exc.detail, str(exc), repr(exc)):
        assert token not in text and SECRET not in text


def rejection_outcome(reason: str) -> Outcome:
    return Outcome.EXPIRED if reason == "expired" else INVALID


def test_hmac_comparison_is_done_on_the_decoded_signature() -> None:
    # the same MAC, re-encoded with the standard alphabet, is not base64url: refused
    token = hs256(GOOD)
    signing_input, signature = token.rsplit(".", 1)
    mac = hmac.digest(SECRET.encode(), signing_input.encode(), hashlib.sha256)
    assert b64url(mac) == signature
    std = base64.b64encode(mac).decode().rstrip("=")
    if std != signature:  # the MAC happens to contain a "-" or "_" character
        refused_on_connect(f"{signing_input}.{std}", "malformed")
