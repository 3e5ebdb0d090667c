"""Session-wide keys for the token-core tests (generated once: RSA generation is slow)."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from tests.auth.helpers import KeyPair, pair


@pytest.fixture(scope="session")
def rsa_key() -> KeyPair:
    return pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def other_rsa_key() -> KeyPair:
    return pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def ec_keys() -> dict[str, KeyPair]:
    """ES256/ES384/ES512 → a key on the matching curve."""
    curves = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
    return {alg: pair(ec.generate_private_key(curve)) for alg, curve in curves.items()}


@pytest.fixture(scope="session")
def ed_key() -> KeyPair:
    return pair(ed25519.Ed25519PrivateKey.generate())


@pytest.fixture(scope="session")
def rsa_cert_pem(rsa_key: KeyPair) -> str:
    """A self-signed X.509 certificate of `rsa_key`, in PEM."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rotary-test")])
    start = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(rsa_key.private.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .sign(rsa_key.private, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()
