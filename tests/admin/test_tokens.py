"""Admin tokens: issued with the admin secret, checked before their payload is read."""

from __future__ import annotations

import base64

import orjson
import pytest

from rotary.admin.tokens import issue_admin_token, valid_admin_token

SECRET = "admin-secret-for-tests"
NOW = 1_800_000_000.0


def test_a_fresh_token_is_valid_until_its_ttl_runs_out() -> None:
    token = issue_admin_token(SECRET, now=NOW, ttl=60)
    assert valid_admin_token(SECRET, token, now=NOW)
    assert valid_admin_token(SECRET, token, now=NOW + 59)
    assert not valid_admin_token(SECRET, token, now=NOW + 60)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token = issue_admin_token("another-secret", now=NOW, ttl=60)
    assert not valid_admin_token(SECRET, token, now=NOW)


def test_a_token_with_a_later_expiry_written_in_is_refused() -> None:
    token = issue_admin_token(SECRET, now=NOW, ttl=60)
    _payload, mac = token.split(".")
    forged = base64.urlsafe_b64encode(orjson.dumps({"v": 1, "iat": 0, "exp": 4_000_000_000}))
    assert not valid_admin_token(SECRET, f"{forged.decode().rstrip('=')}.{mac}", now=NOW)


@pytest.mark.parametrize(
    "token", ["", ".", "a.b.c", "not-base64!.also-not!", "x" * 600, "e30.AAAA"]
)
def test_malformed_tokens_are_refused_without_error(token: str) -> None:
    assert not valid_admin_token(SECRET, token, now=NOW)


def test_an_empty_secret_neither_issues_nor_accepts_tokens() -> None:
    with pytest.raises(ValueError):
        issue_admin_token("", now=NOW, ttl=60)
    token = issue_admin_token(SECRET, now=NOW, ttl=60)
    assert not valid_admin_token("", token, now=NOW)


def test_a_connection_jwt_signed_with_the_same_secret_is_not_an_admin_token() -> None:
    from rotary.auth import sign_token

    jwt = sign_token({"sub": "admin", "exp": int(NOW + 60)}, alg="HS256", key=SECRET)
    assert not valid_admin_token(SECRET, jwt, now=NOW)
