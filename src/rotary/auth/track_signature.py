"""Track signatures of shared poll channels (docs/shared-poll.md "Signatures").

A backend lets a client track keys of a shared poll channel by signing them:
``<iat>:<expiry>:<hex HMAC-SHA256>`` where the HMAC, keyed by ``shared_poll.hmac_secret_key``,
covers ``iat NUL expiry NUL user NUL channel NUL hex(SHA-256(keys joined by NUL))``. The
signature covers the whole key set of the batch, in the order the client sends it.

Pure functions: the caller passes `now`. All hashing is `cryptography`'s; the comparison is
constant-time. Nothing here logs or returns a signature.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

__all__ = ["GRACE_S", "TrackSecrets", "check_track_signature"]

#: Seconds a signature stays good after its expiry, for clocks a little apart (as Centrifugo).
GRACE_S = 5

#: What a signature check concluded: good, not made with our secret, or past its expiry.
Verdict = Literal["ok", "invalid", "expired"]


@dataclass(frozen=True, slots=True)
class TrackSecrets:
    """The current secret and, during a rotation, the previous one.

    `previous_valid_until` (unix seconds, 0: no limit) refuses signatures issued after it with
    the previous secret.
    """

    current: str
    previous: str = ""
    previous_valid_until: int = 0


def check_track_signature(
    secrets: TrackSecrets, signature: str, *, channel: str, user: str, keys: list[str], now: float
) -> tuple[Verdict, int]:
    """The verdict on `signature` for `keys` of `channel` tracked by `user`, and its expiry.

    The expiry (unix seconds, 0: none) is meaningful only with "ok". The signature is
    verified before its timestamps are trusted.
    """
    parts = signature.split(":", 2)
    if len(parts) != 3 or not all(p.isdigit() for p in parts[:2]):
        return "invalid", 0
    iat_text, expiry_text, mac_hex = parts
    message = _message(iat_text, expiry_text, user, channel, keys)
    good = _matches(secrets.current, message, mac_hex)
    if not good and secrets.previous:
        late = 0 < secrets.previous_valid_until < int(iat_text)
        good = not late and _matches(secrets.previous, message, mac_hex)
    if not good:
        return "invalid", 0
    expiry = int(expiry_text)
    if expiry and expiry + GRACE_S < now:
        return "expired", 0
    return "ok", expiry


def _message(iat: str, expiry: str, user: str, channel: str, keys: list[str]) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update("\x00".join(keys).encode())
    keys_hex = digest.finalize().hex()
    return "\x00".join((iat, expiry, user, channel, keys_hex)).encode()


def _matches(secret: str, message: bytes, mac_hex: str) -> bool:
    mac = crypto_hmac.HMAC(secret.encode(), hashes.SHA256())
    mac.update(message)
    expected = mac.finalize().hex().encode()
    return hmac.compare_digest(expected, mac_hex.encode())
