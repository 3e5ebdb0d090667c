"""Settings of the token verifiers, as the config layer hands them over.

These are plain frozen values; `rotary.config` maps Centrifugo's v5 flat keys and v6 nested
keys onto them (docs/config.md). Durations are seconds as floats; times are Unix seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["AuthSettings", "TokenSettings"]


@dataclass(frozen=True, slots=True)
class TokenSettings:
    """How one kind of token (connection, or subscription when configured apart) is checked.

    Keys (v5 flat / v6 nested under ``client.token`` or ``client.subscription_token``):
    ``hmac_secret_key``, ``rsa_public_key`` (SPKI PEM or X.509 certificate PEM),
    ``ecdsa_public_key`` (same forms), ``ed25519_public_key`` (Rotary's own key: SPKI PEM of
    an Ed25519 key, enabling EdDSA without JWKS), ``jwks_public_endpoint``, ``audience``,
    ``audience_regex``, ``issuer``, ``issuer_regex``, ``user_id_claim``,
    ``hmac_previous_secret_key`` and ``hmac_previous_secret_key_valid_until`` (v6.8 names).
    """

    hmac_secret_key: str = ""
    hmac_previous_secret_key: str = ""
    hmac_previous_secret_key_valid_until: int = 0
    rsa_public_key: str = ""
    ecdsa_public_key: str = ""
    ed25519_public_key: str = ""
    jwks_public_endpoint: str = ""
    audience: str = ""
    audience_regex: str = ""
    issuer: str = ""
    issuer_regex: str = ""
    user_id_claim: str = ""


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """Everything the token core needs.

    `subscription` is None unless separate subscription-token configuration is enabled
    (v5 ``separate_subscription_token_config``, v6 ``client.subscription_token.enabled``);
    then subscription tokens are checked only with it, never with `connection`.
    """

    connection: TokenSettings = field(default_factory=TokenSettings)
    subscription: TokenSettings | None = None
    #: Seconds of clock skew tolerated on ``exp`` and ``nbf`` (``token_leeway``; 0 as Centrifugo).
    leeway: float = 0.0
    #: ``client_insecure_skip_token_signature_verify``: claims are trusted unsigned (dev only).
    insecure_skip_signature: bool = False
    #: Entries of the verified-token cache (``token_cache_size``; 0 disables it).
    cache_size: int = 65536
    #: JWKS keys are kept this many seconds (``token_jwks_cache_ttl``).
    jwks_cache_ttl: float = 3600.0
    #: One JWKS fetch may take at most this many seconds (``token_jwks_timeout``).
    jwks_timeout: float = 1.0
    #: After a JWKS fetch, no new one starts for this many seconds: unknown ``kid`` values
    #: (including an attacker's random ones) are refused from the cache meanwhile.
    jwks_refetch_interval: float = 5.0
    #: Longest token accepted, in bytes (``token_max_size``); longer ones are refused unread.
    max_token_size: int = 16384
