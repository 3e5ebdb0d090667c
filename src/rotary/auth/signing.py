"""Token signing: the one signer behind `rotary.tokens`, the CLI (``gentoken``,
``gensubtoken``) and the tests.

Produces compact JWS with the header ``{"alg":…,"typ":"JWT"}`` and the claims as compact
JSON. The key is the HMAC secret for HS* (text taken as UTF-8, or bytes), a private key
PEM for RS*/ES*/EdDSA. ES* signatures come out in JOSE form (raw ``r||s``).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from rotary.errors import ConfigError

__all__ = ["alg_for_key", "sign_token"]

_HMAC: dict[str, hashes.HashAlgorithm] = {
    "HS256": hashes.SHA256(),
    "HS384": hashes.SHA384(),
    "HS512": hashes.SHA512(),
}
_RSA: dict[str, hashes.HashAlgorithm] = {
    "RS256": hashes.SHA256(),
    "RS384": hashes.SHA384(),
    "RS512": hashes.SHA512(),
}
_EC: dict[str, tuple[hashes.HashAlgorithm, str, int]] = {
    "ES256": (hashes.SHA256(), "secp256r1", 32),
    "ES384": (hashes.SHA384(), "secp384r1", 48),
    "ES512": (hashes.SHA512(), "secp521r1", 66),
}


_CURVE_ALGS = {curve: alg for alg, (_, curve, _) in _EC.items()}


def alg_for_key(key: str | bytes) -> str:
    """The algorithm a key signs with by default: HS256 for a secret, else by the PEM's type.

    RSA → RS256, EC P-256/384/521 → ES256/384/512, Ed25519 → EdDSA. Raise ConfigError for a
    PEM that is not an unencrypted private key of one of those types.
    """
    pem = key.encode() if isinstance(key, str) else key
    if not _looks_like_pem(pem):
        return "HS256"
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ConfigError(["signing key: not an unencrypted private key PEM"]) from None
    if isinstance(private, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    if isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name in _CURVE_ALGS:
        return _CURVE_ALGS[private.curve.name]
    raise ConfigError(["signing key: use RSA, ECDSA P-256/384/521 or Ed25519"])


def _looks_like_pem(key: bytes) -> bool:
    return key.lstrip().startswith(b"-----BEGIN")


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def sign_token(claims: Mapping[str, object], *, alg: str, key: str | bytes) -> str:
    """A compact JWS of `claims` signed with `alg`; raise ConfigError for a bad alg or key."""
    header = _b64url(orjson.dumps({"alg": alg, "typ": "JWT"}))
    signing_input = header + b"." + _b64url(orjson.dumps(dict(claims)))
    signature = _sign(signing_input, alg, key.encode() if isinstance(key, str) else key)
    return (signing_input + b"." + _b64url(signature)).decode("ascii")


def _sign(signing_input: bytes, alg: str, key: bytes) -> bytes:
    if alg in _HMAC:
        # A private key used as an HMAC secret would sign, and publish a token whose
        # signature anyone holding the public key can forge: never do it.
        if _looks_like_pem(key):
            raise ConfigError([f"signing key: a PEM key cannot be an {alg} secret"])
        if not key:
            raise ConfigError(["signing key: the HMAC secret is empty"])
        mac = crypto_hmac.HMAC(key, _HMAC[alg])
        mac.update(signing_input)
        return mac.finalize()
    private = _private_key(key, alg)
    if alg in _RSA and isinstance(private, rsa.RSAPrivateKey):
        return private.sign(signing_input, padding.PKCS1v15(), _RSA[alg])
    if alg in _EC and isinstance(private, ec.EllipticCurvePrivateKey):
        hash_type, curve, size = _EC[alg]
        if private.curve.name != curve:
            raise ConfigError([f"signing key: {alg} needs curve {curve}"])
        r, s = decode_dss_signature(private.sign(signing_input, ec.ECDSA(hash_type)))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if alg == "EdDSA" and isinstance(private, ed25519.Ed25519PrivateKey):
        return private.sign(signing_input)
    raise ConfigError([f"signing key: not usable for {alg}"])


def _private_key(pem: bytes, alg: str) -> Any:
    if alg not in _RSA and alg not in _EC and alg != "EdDSA":
        raise ConfigError([f"signing: unsupported JWT algorithm {alg}"])
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ConfigError(["signing key: not a private key PEM"]) from None
