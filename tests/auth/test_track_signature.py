"""Track signatures of shared poll channels, made here as an app backend makes them
(stdlib hmac/hashlib, independent of the code under test)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from rotary.auth.track_signature import GRACE_S, TrackSecrets, check_track_signature

NOW = 1_800_000_000
SECRETS = TrackSecrets("current-secret")


def sign(
    secret: str,
    keys: list[str],
    *,
    iat: int = NOW,
    exp: int = NOW + 60,
    user: str = "u1",
    channel: str = "poll:1",
) -> str:
    keys_hash = hashlib.sha256("\x00".join(keys).encode()).hexdigest()
    payload = f"{iat}\x00{exp}\x00{user}\x00{channel}\x00{keys_hash}".encode()
    return f"{iat}:{exp}:{hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()}"


def check(
    signature: str, keys: list[str], secrets: TrackSecrets = SECRETS, **kw: object
) -> tuple[str, int]:
    args = {"channel": "poll:1", "user": "u1", "now": NOW, **kw}
    return check_track_signature(secrets, signature, keys=keys, **args)  # type: ignore[arg-type]


def test_good_signature_gives_its_expiry() -> None:
    assert check(sign("current-secret", ["a", "b"]), ["a", "b"]) == ("ok", NOW + 60)


@pytest.mark.parametrize(
    "changed",
    [{"keys": ["a"]}, {"keys": ["b", "a"]}, {"user": "u2"}, {"channel": "poll:2"}],
)
def test_signature_covers_keys_in_order_user_and_channel(changed: dict[str, object]) -> None:
    signature = sign("current-secret", ["a", "b"])
    keys = changed.pop("keys", ["a", "b"])
    assert check(signature, keys, **changed) == ("invalid", 0)  # type: ignore[arg-type]


@pytest.mark.parametrize("signature", ["", "abc", "1:2", "x:2:ff", "1:y:ff", "1:2:zz"])
def test_malformed_signatures_are_invalid(signature: str) -> None:
    assert check(signature, ["a"]) == ("invalid", 0)


def test_expired_signature_is_refused_after_the_grace_time_only() -> None:
    exp = NOW - GRACE_S
    assert check(sign("current-secret", ["a"], exp=exp), ["a"]) == ("ok", exp)
    late = sign("current-secret", ["a"], exp=exp - 1)
    assert check(late, ["a"]) == ("expired", 0)


def test_tampered_expiry_is_invalid_not_expired() -> None:
    iat, _, mac = sign("current-secret", ["a"]).split(":")
    assert check(f"{iat}:{NOW + 9999}:{mac}", ["a"]) == ("invalid", 0)


def test_previous_secret_is_accepted_until_its_limit() -> None:
    rotating = TrackSecrets("new-secret", "old-secret", previous_valid_until=NOW)
    assert check(sign("old-secret", ["a"], iat=NOW), ["a"], rotating)[0] == "ok"
    assert check(sign("old-secret", ["a"], iat=NOW + 1), ["a"], rotating)[0] == "invalid"
    assert check(sign("other", ["a"]), ["a"], rotating)[0] == "invalid"
