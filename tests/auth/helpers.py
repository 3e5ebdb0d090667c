"""Settings and token builders shared by the token-core tests.

Tokens are produced with PyJWT (an independent implementation) unless a test needs a shape
PyJWT refuses to make; those are assembled by hand with the standard library.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from rotary.auth import Outcome, TokenRejected, TokenVerifier
from rotary.auth.settings import AuthSettings, TokenSettings

NOW = 1_700_000_000.0
SECRET = "connection-secret-" + "s" * 64
OTHER_SECRET = "another-secret-" + "o" * 64


@dataclass(frozen=True)
class KeyPair:
    """A private key object (for PyJWT) and the public PEM texts Rotary is configured with."""

    private: Any
    public_pem: str
    private_pem: str


def _public_pem(private: Any) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _private_pem(private: Any) -> str:
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def pair(private: Any) -> KeyPair:
    """A KeyPair of a cryptography private key."""
    return KeyPair(private, _public_pem(private), _private_pem(private))


def settings(*, subscription: TokenSettings | None = None, **fields: Any) -> AuthSettings:
    """AuthSettings whose connection TokenSettings get the TokenSettings-named `fields`."""
    token_fields = {k: v for k, v in fields.items() if k in TokenSettings.__dataclass_fields__}
    auth_fields = {k: v for k, v in fields.items() if k not in token_fields}
    return AuthSettings(
        connection=TokenSettings(**token_fields), subscription=subscription, **auth_fields
    )


def verifier(*, channel_known: Callable[[str], bool] | None = None, **fields: Any) -> TokenVerifier:
    """A verifier with HMAC `SECRET` unless keys are given, and `fields` as in `settings`."""
    if not any(key.endswith(("_key", "_endpoint")) for key in fields):
        fields["hmac_secret_key"] = SECRET
    if channel_known is None:
        return TokenVerifier(settings(**fields))
    return TokenVerifier(settings(**fields), channel_known=channel_known)


def hs256(claims: dict[str, Any], secret: str = SECRET, **headers: Any) -> str:
    """An HS256 token made by PyJWT."""
    return jwt.encode(claims, secret, algorithm="HS256", headers=headers or None)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: Any, payload: Any, secret: bytes | str = SECRET) -> str:
    """An HS256-signed token whose header and payload may be anything (bytes are kept raw)."""
    parts = []
    for part in (header, payload):
        raw = part if isinstance(part, bytes) else json.dumps(part).encode()
        parts.append(b64url(raw))
    signing_input = ".".join(parts).encode()
    key = secret.encode() if isinstance(secret, str) else secret
    signature = hmac.digest(key, signing_input, hashlib.sha256)
    return f"{signing_input.decode()}.{b64url(signature)}"


def rejection(call: Callable[[], object]) -> TokenRejected:
    """Run `call`, which must raise TokenRejected, and return the exception."""
    with pytest.raises(TokenRejected) as caught:
        call()
    return caught.value


def assert_refused(call: Callable[[], object], outcome: Outcome, reason: str) -> TokenRejected:
    """`call` raises TokenRejected with exactly this outcome and reason."""
    exc = rejection(call)
    assert (exc.outcome, exc.reason) == (outcome, reason), exc.detail
    return exc
