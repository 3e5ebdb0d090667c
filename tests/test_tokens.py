"""rotary.tokens: what it issues is accepted by Rotary's verifier and by PyJWT; what a server
would refuse is refused at issue time, naming the claim."""

from __future__ import annotations

import base64
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from rotary.auth import TokenVerifier
from rotary.auth.settings import AuthSettings, TokenSettings
from rotary.tokens import TokenError, connection_token, subscription_token

SECRET = "backend-secret-" + "k" * 60


def _pems(private: Any) -> tuple[str, str]:
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


@pytest.fixture(scope="module")
def keys() -> dict[str, tuple[str, str]]:
    """alg → (private PEM, public PEM)."""
    return {
        "RS256": _pems(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "ES256": _pems(ec.generate_private_key(ec.SECP256R1())),
        "ES384": _pems(ec.generate_private_key(ec.SECP384R1())),
        "ES512": _pems(ec.generate_private_key(ec.SECP521R1())),
        "EdDSA": _pems(ed25519.Ed25519PrivateKey.generate()),
    }


def _verifier(**fields: str) -> TokenVerifier:
    return TokenVerifier(AuthSettings(connection=TokenSettings(**fields)))


def test_hmac_connection_token_is_accepted_by_rotary_and_pyjwt() -> None:
    token = connection_token("42", key=SECRET, ttl=600, info={"name": "Ann"}, meta={"plan": 1})
    found = _verifier(hmac_secret_key=SECRET).verify_connection_sync(token, now=time.time())
    assert (found.user, found.info, found.meta) == ("42", b'{"name":"Ann"}', b'{"plan":1}')
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 600
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_bytes_secret_signs_like_the_same_text() -> None:
    token = connection_token("42", key=SECRET.encode())
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["sub"] == "42"


@pytest.mark.parametrize("alg", ["RS256", "ES256", "ES384", "ES512", "EdDSA"])
def test_pem_key_picks_its_algorithm_and_verifies_in_rotary_and_pyjwt(
    alg: str, keys: dict[str, tuple[str, str]]
) -> None:
    private_pem, public_pem = keys[alg]
    token = subscription_token("42", "$room", key=private_pem, ttl=60)
    assert jwt.get_unverified_header(token)["alg"] == alg
    assert jwt.decode(token, public_pem, algorithms=[alg])["channel"] == "$room"
    field = {"RS256": "rsa_public_key", "EdDSA": "ed25519_public_key"}.get(alg, "ecdsa_public_key")
    found = _verifier(**{field: public_pem}).verify_subscription_sync(
        token, now=time.time(), channel="$room", user="42"
    )
    assert found.channel == "$room"


def test_explicit_alg_overrides_the_default() -> None:
    token = connection_token("42", key=SECRET, alg="HS512")
    assert jwt.decode(token, SECRET, algorithms=["HS512"])["sub"] == "42"


def test_override_plain_values_are_written_in_centrifugo_form() -> None:
    token = subscription_token(
        "42", "$room", key=SECRET, override={"presence": False, "force_recovery": True}
    )
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["override"] == {"presence": {"value": False}, "force_recovery": {"value": True}}
    found = _verifier(hmac_secret_key=SECRET).verify_subscription_sync(token, now=time.time())
    assert (found.override.presence, found.override.force_recovery) == (False, True)


def test_connection_token_claims_are_written_as_given() -> None:
    later = int(time.time()) + 3600
    token = connection_token(
        "42",
        key=SECRET,
        expire_at=later,
        b64info=base64.b64encode(b"raw").decode(),
        aud=["a", "b"],
        iss="backend",
        jti="t-1",
        channels=["news"],
        subs={"$room": {"info": {"x": 1}, "override": {"join_leave": True}}},
    )
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="a")
    assert claims["expire_at"] == later
    assert "exp" not in claims
    assert claims["subs"] == {
        "$room": {"info": {"x": 1}, "override": {"join_leave": {"value": True}}}
    }
    assert (claims["iss"], claims["jti"], claims["channels"]) == ("backend", "t-1", ["news"])
    found = _verifier(hmac_secret_key=SECRET, audience="a").verify_connection_sync(
        token, now=time.time()
    )
    assert (found.info, found.channels, found.expire_at) == (b"raw", ("$room",), later)


REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("empty user", {"user": ""}, "sub"),
    ("user not a string", {"user": 42}, "sub"),
    ("zero ttl", {"ttl": 0}, "exp"),
    ("negative ttl", {"ttl": -5}, "exp"),
    ("ttl not an int", {"ttl": "60"}, "exp"),
    ("expire_at in the past", {"expire_at": 1_000}, "expire_at"),
    ("expire_at in milliseconds", {"expire_at": int(time.time() * 1000) + 60_000}, "expire_at"),
    ("negative expire_at", {"expire_at": -1}, "expire_at"),
    ("b64info not base64", {"b64info": "not base64!"}, "b64info"),
    ("b64info without padding", {"b64info": "cmF3Cg"}, "b64info"),
    ("info not JSON", {"info": {"when": object()}}, "info"),
    ("info and b64info together", {"info": {}, "b64info": "e30="}, "info"),
    ("empty audience", {"aud": ""}, "aud"),
    ("audience list with a non-string", {"aud": ["a", 1]}, "aud"),
    ("empty issuer", {"iss": ""}, "iss"),
    ("empty jti", {"jti": ""}, "jti"),
    ("unknown alg", {"alg": "none"}, "alg"),
    ("HMAC secret with an RSA alg", {"alg": "RS256"}, "key"),
    ("empty secret", {"key": ""}, "key"),
    ("key of the wrong type", {"key": 12345}, "key"),
]


@pytest.mark.parametrize(("case", "change", "claim"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_subscription_token_refusal_names_the_claim(
    case: str, change: dict[str, Any], claim: str
) -> None:
    arguments: dict[str, Any] = {"user": "42", "channel": "$room", "key": SECRET, **change}
    with pytest.raises(TokenError) as caught:
        subscription_token(**arguments)
    assert caught.value.claim == claim, case
    assert isinstance(caught.value, ValueError)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(("case", "change", "claim"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_connection_token_refusal_names_the_claim(
    case: str, change: dict[str, Any], claim: str
) -> None:
    arguments: dict[str, Any] = {"user": "42", "key": SECRET, **change}
    with pytest.raises(TokenError) as caught:
        connection_token(**arguments)
    assert caught.value.claim == claim, case


@pytest.mark.parametrize(
    ("override", "claim"),
    [
        ({"presense": False}, "override.presense"),
        ({"presence": "no"}, "override.presence"),
        ({"presence": {"value": False}}, "override.presence"),
        ({"presence": 0}, "override.presence"),
    ],
)
def test_bad_override_is_refused(override: dict[str, Any], claim: str) -> None:
    with pytest.raises(TokenError) as caught:
        subscription_token("42", "$room", key=SECRET, override=override)
    assert caught.value.claim == claim


def test_empty_channel_is_refused() -> None:
    with pytest.raises(TokenError) as caught:
        subscription_token("42", "", key=SECRET)
    assert caught.value.claim == "channel"


@pytest.mark.parametrize(
    ("channels", "subs", "claim"),
    [
        ("news", None, "channels"),
        (["news", ""], None, "channels"),
        (None, {"": {}}, "subs"),
        (None, {"news": {"colour": 1}}, "subs.news.colour"),
        (None, {"news": {"b64data": "%%"}}, "subs.news.b64data"),
        (None, {"news": {"override": {"history": True}}}, "subs.news.override.history"),
        (None, {"news": "options"}, "subs.news"),
    ],
)
def test_bad_server_side_channels_are_refused(channels: Any, subs: Any, claim: str) -> None:
    with pytest.raises(TokenError) as caught:
        connection_token("42", key=SECRET, channels=channels, subs=subs)
    assert caught.value.claim == claim


def test_pem_key_with_an_hmac_alg_is_refused(keys: dict[str, tuple[str, str]]) -> None:
    # Signing HS256 with a private key PEM would publish a token forgeable from the public key.
    with pytest.raises(TokenError) as caught:
        connection_token("42", key=keys["RS256"][0], alg="HS256")
    assert caught.value.claim == "key"


def test_pem_key_of_another_curve_than_alg_is_refused(keys: dict[str, tuple[str, str]]) -> None:
    with pytest.raises(TokenError) as caught:
        connection_token("42", key=keys["ES256"][0], alg="ES384")
    assert caught.value.claim == "key"


def test_garbled_pem_is_refused() -> None:
    with pytest.raises(TokenError) as caught:
        connection_token("42", key="-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----")
    assert caught.value.claim == "key"
