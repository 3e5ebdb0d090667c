"""Connection and subscription JWT verification: pure, with time passed in.

The public surface is `TokenVerifier` and the values it hands out (`rotary.auth.verifier`),
and `sign_token` (`rotary.auth.signing`) for the CLI and tests.
"""

from rotary.auth.jwks import AiohttpJwksFetch, JwksFetch
from rotary.auth.signing import sign_token
from rotary.auth.verifier import (
    ConnectionToken,
    Outcome,
    SubscribeOptions,
    SubscribeOverride,
    SubscriptionToken,
    TokenRejected,
    TokenVerifier,
)

__all__ = [
    "AiohttpJwksFetch",
    "ConnectionToken",
    "JwksFetch",
    "Outcome",
    "SubscribeOptions",
    "SubscribeOverride",
    "SubscriptionToken",
    "TokenRejected",
    "TokenVerifier",
    "sign_token",
]
