"""Mutated tokens and odd claim values: the verifier answers or raises TokenRejected, nothing else.

Deterministic (seeded) so a failure reproduces.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from rotary.auth import TokenRejected, TokenVerifier
from tests.auth.helpers import NOW, hand_made, hs256, verifier

ALPHABET = "eyJ.-_=+/ !\x00é0aAzZ"
ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**63 - 1,
    2**64 - 1,
    1.5,
    -1e300,
    1e300,
    "",
    "x",
    "é\u2028",
    [],
    ["a", 1],
    [None],
    {},
    {"value": True},
    {"a": {"b": [1, {"c": None}]}},
]
CLAIMS = [
    "sub",
    "exp",
    "nbf",
    "iat",
    "jti",
    "aud",
    "iss",
    "info",
    "b64info",
    "channels",
    "subs",
    "meta",
    "expire_at",
    "channel",
    "client",
    "data",
    "b64data",
    "override",
    "uid",
]


def outcome(check: TokenVerifier, token: str, *, subscription: bool) -> str:
    """ "ok" or the refusal reason; any other exception fails the test."""
    try:
        if subscription:
            check.verify_subscription_sync(token, now=NOW, channel="c", user="u", client="k")
        else:
            check.verify_connection_sync(token, now=NOW)
    except TokenRejected as exc:
        assert exc.reason and exc.detail
        return exc.reason
    return "ok"


def mutations(token: str, rng: random.Random, count: int) -> list[str]:
    found = []
    for _ in range(count):
        at = rng.randrange(len(token))
        kind = rng.randrange(3)
        if kind == 0:
            found.append(token[:at] + rng.choice(ALPHABET) + token[at + 1 :])
        elif kind == 1:
            found.append(token[:at] + rng.choice(ALPHABET) + token[at:])
        else:
            found.append(token[:at])
    return found


@pytest.mark.parametrize("subscription", [False, True])
def test_mutated_tokens_are_answered_or_refused_never_crash(subscription: bool) -> None:
    rng = random.Random(2024)
    token = hs256({"sub": "u", "channel": "c", "exp": NOW + 60, "info": {"a": [1, 2]}})
    check = verifier(cache_size=0)
    reasons = {outcome(check, bad, subscription=subscription) for bad in mutations(token, rng, 600)}
    assert "signature" in reasons and "malformed" in reasons


@pytest.mark.parametrize("subscription", [False, True])
def test_odd_claim_values_are_answered_or_refused_never_crash(subscription: bool) -> None:
    rng = random.Random(7)
    checks = [
        verifier(cache_size=0),
        verifier(cache_size=0, audience="a", issuer="i", user_id_claim="uid"),
        verifier(cache_size=0, audience_regex="a", issuer_regex="i"),
    ]
    for _ in range(400):
        claims = {name: rng.choice(ODD_VALUES) for name in rng.sample(CLAIMS, rng.randint(1, 6))}
        token = hand_made({"alg": "HS256"}, claims)
        for check in checks:
            outcome(check, token, subscription=subscription)
