"""Keys and rules are checked once, when the verifier is built: problems are ConfigError."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization

from rotary.auth import TokenVerifier
from rotary.auth.settings import AuthSettings, TokenSettings
from rotary.errors import ConfigError
from tests.auth.helpers import SECRET, KeyPair, settings


def problems_of(auth: AuthSettings) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        TokenVerifier(auth)
    return caught.value.problems


def test_pkcs1_rsa_public_key_is_refused_at_load(rsa_key: KeyPair) -> None:
    pkcs1 = (
        rsa_key.private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
        .decode()
    )
    assert pkcs1.startswith("-----BEGIN RSA PUBLIC KEY-----")
    [problem] = problems_of(settings(rsa_public_key=pkcs1))
    assert problem.startswith("token_rsa_public_key:")


def test_garbage_pem_is_refused_naming_the_key() -> None:
    [problem] = problems_of(settings(ecdsa_public_key="-----BEGIN PUBLIC KEY-----\nxx\n"))
    assert problem.startswith("token_ecdsa_public_key:")


def test_key_of_the_wrong_type_is_refused(rsa_key: KeyPair, ec_keys: dict[str, KeyPair]) -> None:
    [problem] = problems_of(settings(rsa_public_key=ec_keys["ES256"].public_pem))
    assert problem.startswith("token_rsa_public_key:")
    [problem] = problems_of(settings(ecdsa_public_key=rsa_key.public_pem))
    assert problem.startswith("token_ecdsa_public_key:")
    [problem] = problems_of(settings(ed25519_public_key=rsa_key.public_pem))
    assert problem.startswith("token_ed25519_public_key:")


def test_jwks_url_with_placeholders_is_refused_with_the_reason() -> None:
    url = "https://{{tenant}}.example.com/jwks"
    [problem] = problems_of(settings(jwks_public_endpoint=url))
    assert "token_jwks_public_endpoint" in problem
    assert "{{placeholders}} are not supported" in problem


def test_jwks_url_must_be_http() -> None:
    [problem] = problems_of(settings(jwks_public_endpoint="file:///etc/passwd"))
    assert problem.startswith("token_jwks_public_endpoint:")


def test_exact_and_regex_audience_together_are_refused() -> None:
    [problem] = problems_of(settings(hmac_secret_key=SECRET, audience="a", audience_regex="a"))
    assert "audience_regex" in problem


def test_bad_regex_and_bad_user_id_claim_are_all_reported() -> None:
    found = problems_of(settings(hmac_secret_key=SECRET, issuer_regex="(", user_id_claim="user.id"))
    assert [p.split(":")[0] for p in found] == ["token_issuer_regex", "token_user_id_claim"]


def test_subscription_config_problems_are_named_with_their_prefix() -> None:
    sub = TokenSettings(rsa_public_key="not a key")
    [problem] = problems_of(settings(hmac_secret_key=SECRET, subscription=sub))
    assert problem.startswith("subscription_token_rsa_public_key:")


def test_previous_hmac_secret_alone_is_refused() -> None:
    [problem] = problems_of(settings(hmac_previous_secret_key=SECRET))
    assert problem.startswith("token_hmac_previous_secret_key:")
