"""Every supported algorithm verifies PyJWT's tokens, and `sign_token` satisfies PyJWT."""

from __future__ import annotations

import jwt
import pytest

from rotary.auth import Outcome, sign_token
from rotary.errors import ConfigError
from tests.auth.helpers import NOW, SECRET, KeyPair, assert_refused, hs256, verifier

CLAIMS = {"sub": "42", "exp": int(NOW) + 3600}


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_tokens_of_every_size_verify_with_the_secret(alg: str) -> None:
    token = jwt.encode(CLAIMS, SECRET, algorithm=alg)
    assert verifier().verify_connection_sync(token, now=NOW).user == "42"


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512"])
def test_rsa_tokens_verify_with_an_spki_public_key(alg: str, rsa_key: KeyPair) -> None:
    token = jwt.encode(CLAIMS, rsa_key.private, algorithm=alg)
    found = verifier(rsa_public_key=rsa_key.public_pem).verify_connection_sync(token, now=NOW)
    assert found.user == "42"


def test_rsa_tokens_verify_with_a_certificate(rsa_key: KeyPair, rsa_cert_pem: str) -> None:
    token = jwt.encode(CLAIMS, rsa_key.private, algorithm="RS256")
    found = verifier(rsa_public_key=rsa_cert_pem).verify_connection_sync(token, now=NOW)
    assert found.user == "42"


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512"])
def test_ecdsa_tokens_verify_with_the_key_of_their_curve(
    alg: str, ec_keys: dict[str, KeyPair]
) -> None:
    token = jwt.encode(CLAIMS, ec_keys[alg].private, algorithm=alg)
    check = verifier(ecdsa_public_key=ec_keys[alg].public_pem)
    assert check.verify_connection_sync(token, now=NOW).user == "42"


def test_ecdsa_key_enables_only_the_algorithm_of_its_curve(ec_keys: dict[str, KeyPair]) -> None:
    token = jwt.encode(CLAIMS, ec_keys["ES384"].private, algorithm="ES384")
    check = verifier(ecdsa_public_key=ec_keys["ES256"].public_pem)
    exc = assert_refused(
        lambda: check.verify_connection_sync(token, now=NOW), Outcome.INVALID, "algorithm"
    )
    assert exc.detail == "disabled JWT algorithm: ES384"


def test_eddsa_tokens_verify_with_a_static_ed25519_key(ed_key: KeyPair) -> None:
    token = jwt.encode(CLAIMS, ed_key.private, algorithm="EdDSA")
    check = verifier(ed25519_public_key=ed_key.public_pem)
    assert check.verify_connection_sync(token, now=NOW).user == "42"


def test_several_key_types_work_side_by_side(rsa_key: KeyPair, ec_keys: dict[str, KeyPair]) -> None:
    check = verifier(
        hmac_secret_key=SECRET,
        rsa_public_key=rsa_key.public_pem,
        ecdsa_public_key=ec_keys["ES256"].public_pem,
    )
    for token in (
        hs256(CLAIMS),
        jwt.encode(CLAIMS, rsa_key.private, algorithm="RS256"),
        jwt.encode(CLAIMS, ec_keys["ES256"].private, algorithm="ES256"),
    ):
        assert check.verify_connection_sync(token, now=NOW).user == "42"


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_sign_token_hmac_output_is_accepted_by_pyjwt(alg: str) -> None:
    token = sign_token(CLAIMS, alg=alg, key=SECRET)
    assert jwt.decode(token, SECRET, algorithms=[alg], options={"verify_exp": False}) == CLAIMS
    assert jwt.get_unverified_header(token) == {"alg": alg, "typ": "JWT"}


def test_sign_token_asymmetric_output_is_accepted_by_pyjwt(
    rsa_key: KeyPair, ec_keys: dict[str, KeyPair], ed_key: KeyPair
) -> None:
    pairs = [("RS256", rsa_key), ("RS512", rsa_key), ("EdDSA", ed_key)]
    pairs += [(alg, key) for alg, key in ec_keys.items()]
    for alg, key in pairs:
        token = sign_token(CLAIMS, alg=alg, key=key.private_pem)
        public = key.private.public_key()
        options = {"verify_exp": False}
        assert jwt.decode(token, public, algorithms=[alg], options=options) == CLAIMS


def test_sign_token_refuses_a_key_of_the_wrong_kind(ec_keys: dict[str, KeyPair]) -> None:
    with pytest.raises(ConfigError):
        sign_token(CLAIMS, alg="RS256", key=ec_keys["ES256"].private_pem)
    with pytest.raises(ConfigError):
        sign_token(CLAIMS, alg="ES384", key=ec_keys["ES256"].private_pem)
    with pytest.raises(ConfigError):
        sign_token(CLAIMS, alg="none", key=SECRET)


async def test_async_verification_gives_the_same_result_as_sync() -> None:
    check = verifier()
    token = hs256(CLAIMS)
    assert await check.verify_connection(token, now=NOW) == check.verify_connection_sync(
        token, now=NOW
    )
    await check.close()
