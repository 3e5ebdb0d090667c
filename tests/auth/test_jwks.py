"""JWKS verification against a real aiohttp server on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from rotary.auth import Outcome, TokenRejected, TokenVerifier
from rotary.metrics import Metrics
from rotary.policy.tokens import VerifierAuthenticator
from tests.auth.helpers import NOW, SECRET, KeyPair, settings


@dataclass
class JwksServer:
    """What the endpoint answers, and how many GETs it saw."""

    url: str = ""
    keys: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    requests: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        body = json.dumps({"keys": self.keys})
        return web.Response(status=self.status, text=body, content_type="application/json")


@pytest.fixture
async def server() -> AsyncIterator[JwksServer]:
    state = JwksServer()
    app = web.Application()
    app.router.add_get("/jwks", state.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    state.url = f"http://{host}:{port}/jwks"
    yield state
    await runner.cleanup()


def jwk(key: KeyPair, kid: str, **extra: Any) -> dict[str, Any]:
    """The public JWK of `key` as PyJWT writes it, with `kid`, ``use: sig`` and `extra`."""
    public = key.private.public_key()
    family: Any = OKPAlgorithm
    if isinstance(public, rsa.RSAPublicKey):
        family = RSAAlgorithm
    elif isinstance(public, ec.EllipticCurvePublicKey):
        family = ECAlgorithm
    return {**family.to_jwk(public, as_dict=True), "kid": kid, "use": "sig", **extra}


@pytest.fixture
async def check(server: JwksServer) -> AsyncIterator[TokenVerifier]:
    found = TokenVerifier(settings(jwks_public_endpoint=server.url, jwks_timeout=0.5))
    yield found
    await found.close()


def signed(key: KeyPair, alg: str, kid: str | None, sub: str = "u") -> str:
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode({"sub": sub}, key.private, algorithm=alg, headers=headers)


async def refused(call: Any, reason: str) -> TokenRejected:
    with pytest.raises(TokenRejected) as caught:
        await call
    assert (caught.value.outcome, caught.value.reason) == (Outcome.INVALID, reason)
    return caught.value


async def test_rs256_token_verifies_through_jwks_and_the_key_is_cached(
    server: JwksServer, check: TokenVerifier, rsa_key: KeyPair
) -> None:
    server.keys = [jwk(rsa_key, "k1", alg="RS256")]
    first = await check.verify_connection(signed(rsa_key, "RS256", "k1", "a"), now=NOW)
    second = await check.verify_connection(signed(rsa_key, "RS256", "k1", "b"), now=NOW + 1)
    assert (first.user, second.user, server.requests) == ("a", "b", 1)


async def test_ecdsa_and_ed25519_keys_verify_through_jwks(
    server: JwksServer, check: TokenVerifier, ec_keys: dict[str, KeyPair], ed_key: KeyPair
) -> None:
    server.keys = [jwk(ec_keys["ES384"], "ec"), jwk(ed_key, "ed")]
    assert (await check.verify_connection(signed(ec_keys["ES384"], "ES384", "ec"), now=NOW)).user
    assert (await check.verify_connection(signed(ed_key, "EdDSA", "ed"), now=NOW)).user
    assert server.requests == 1


async def test_concurrent_misses_share_one_fetch(
    server: JwksServer, check: TokenVerifier, rsa_key: KeyPair
) -> None:
    server.keys = [jwk(rsa_key, "k1")]
    server.delay = 0.1
    tokens = [signed(rsa_key, "RS256", "k1", f"user{n}") for n in range(20)]
    found = await asyncio.gather(*(check.verify_connection(t, now=NOW) for t in tokens))
    assert [token.user for token in found] == [f"user{n}" for n in range(20)]
    assert server.requests == 1


async def test_unknown_kid_is_refused_and_random_kids_do_not_cause_fetches(
    server: JwksServer, check: TokenVerifier, rsa_key: KeyPair
) -> None:
    server.keys = [jwk(rsa_key, "k1")]
    for n in range(10):
        token = signed(rsa_key, "RS256", f"random-{n}")
        await refused(check.verify_connection(token, now=NOW + n * 0.1), "unknown_key")
    assert server.requests == 1
    await refused(
        check.verify_connection(signed(rsa_key, "RS256", "x"), now=NOW + 6), "unknown_key"
    )
    assert server.requests == 2


async def test_key_added_upstream_is_found_after_the_refetch_interval(
    server: JwksServer, check: TokenVerifier, rsa_key: KeyPair, other_rsa_key: KeyPair
) -> None:
    server.keys = [jwk(rsa_key, "old")]
    await check.verify_connection(signed(rsa_key, "RS256", "old"), now=NOW)
    server.keys.append(jwk(other_rsa_key, "new"))
    token = signed(other_rsa_key, "RS256", "new", "n")
    await refused(check.verify_connection(token, now=NOW + 1), "unknown_key")
    assert (await check.verify_connection(token, now=NOW + 10)).user == "n"


async def test_token_without_kid_is_refused_without_fetching(
    server: JwksServer, check: TokenVerifier, rsa_key: KeyPair
) -> None:
    server.keys = [jwk(rsa_key, "k1")]
    await refused(check.verify_connection(signed(rsa_key, "RS256", None), now=NOW), "unknown_key")
    assert server.requests == 0


async def test_jwks_endpoint_failing_is_jwks_unavailable_after_two_attempts(
    server: JwksServer, check: TokenVerifier, rsa_key: KeyPair
) -> None:
    server.status = 500
    exc = await refused(
        check.verify_connection(signed(rsa_key, "RS256", "k1"), now=NOW), "jwks_unavailable"
    )
    assert exc.alg == "RS256" and exc.claims == b'{"sub":"u"}'
    assert server.requests == 2


async def test_jwks_endpoint_too_slow_is_jwks_unavailable(
    server: JwksServer, rsa_key: KeyPair
) -> None:
    server.keys = [jwk(rsa_key, "k1")]
    server.delay = 1.0
    check = TokenVerifier(settings(jwks_public_endpoint=server.url, jwks_timeout=0.1))
    token = signed(rsa_key, "RS256", "k1")
    await refused(check.verify_connection(token, now=NOW), "jwks_unavailable")
    await check.close()


async def test_jwks_endpoint_not_listening_is_jwks_unavailable(rsa_key: KeyPair) -> None:
    check = TokenVerifier(settings(jwks_public_endpoint="http://127.0.0.1:9/jwks"))
    token = signed(rsa_key, "RS256", "k1")
    await refused(check.verify_connection(token, now=NOW), "jwks_unavailable")
    await check.close()


async def test_token_alg_must_match_the_jwks_key(
    server: JwksServer, check: TokenVerifier, rsa_key: KeyPair, ec_keys: dict[str, KeyPair]
) -> None:
    server.keys = [jwk(rsa_key, "rs", alg="RS512"), jwk(ec_keys["ES256"], "ec")]
    exc = await refused(
        check.verify_connection(signed(rsa_key, "RS256", "rs"), now=NOW), "algorithm"
    )
    assert "does not match" in exc.detail
    # an EC key never verifies an RS256 token, even one claiming its kid
    await refused(check.verify_connection(signed(rsa_key, "RS256", "ec"), now=NOW), "algorithm")


async def test_jwks_replaces_static_keys_even_hmac(server: JwksServer, rsa_key: KeyPair) -> None:
    server.keys = [jwk(rsa_key, "k1")]
    check = TokenVerifier(settings(jwks_public_endpoint=server.url, hmac_secret_key=SECRET))
    token = jwt.encode({"sub": "u"}, SECRET, algorithm="HS256", headers={"kid": "k1"})
    await refused(check.verify_connection(token, now=NOW), "algorithm")
    await check.close()


async def test_keys_not_for_signing_are_ignored(
    server: JwksServer, check: TokenVerifier, rsa_key: KeyPair
) -> None:
    server.keys = [jwk(rsa_key, "k1", use="enc")]
    await refused(check.verify_connection(signed(rsa_key, "RS256", "k1"), now=NOW), "unknown_key")


async def test_keys_expire_after_the_cache_ttl_and_removed_keys_stop_working(
    server: JwksServer, rsa_key: KeyPair
) -> None:
    server.keys = [jwk(rsa_key, "k1")]
    check = TokenVerifier(settings(jwks_public_endpoint=server.url, jwks_cache_ttl=60.0))
    await check.verify_connection(signed(rsa_key, "RS256", "k1", "a"), now=NOW)
    server.keys = []
    assert (await check.verify_connection(signed(rsa_key, "RS256", "k1", "b"), now=NOW + 59)).user
    token = signed(rsa_key, "RS256", "k1", "c")
    await refused(check.verify_connection(token, now=NOW + 61), "unknown_key")
    assert server.requests == 2
    await check.close()


async def test_subscription_tokens_share_the_jwks_key_set(
    server: JwksServer, check: TokenVerifier, rsa_key: KeyPair
) -> None:
    server.keys = [jwk(rsa_key, "k1")]
    token = jwt.encode({"channel": "c"}, rsa_key.private, algorithm="RS256", headers={"kid": "k1"})
    assert (await check.verify_subscription(token, now=NOW, channel="c")).channel == "c"
    await check.verify_connection(signed(rsa_key, "RS256", "k1"), now=NOW)
    assert server.requests == 1 and check.jwks_fetches == 1


async def test_sync_verification_uses_only_keys_already_fetched(
    server: JwksServer, check: TokenVerifier, rsa_key: KeyPair
) -> None:
    server.keys = [jwk(rsa_key, "k1")]
    token = signed(rsa_key, "RS256", "k1", "sync")
    with pytest.raises(TokenRejected):
        check.verify_connection_sync(token, now=NOW)
    await check.verify_connection(signed(rsa_key, "RS256", "k1", "async"), now=NOW)
    assert check.verify_connection_sync(token, now=NOW).user == "sync"


async def test_the_authenticator_waits_for_the_jwks_fetch_and_counts_one_miss(
    server: JwksServer, check: TokenVerifier, rsa_key: KeyPair
) -> None:
    metrics = Metrics()
    auth = VerifierAuthenticator(check, metrics=metrics)
    server.keys = [jwk(rsa_key, "k1")]
    token = signed(rsa_key, "RS256", "k1", "a")
    sub = jwt.encode({"sub": "a", "channel": "$c"}, rsa_key.private, "RS256", {"kid": "k1"})
    assert (await auth.connect_token(token, now=NOW)).user == "a"
    assert (await auth.connect_token(token, now=NOW)).user == "a"
    found = await auth.subscribe_token(sub, now=NOW, channel="$c", user="a", client="c")
    assert found.channel == "$c" and server.requests == 1
    cache = "rotary_token_cache_total"
    assert metrics.registry.get_sample_value(cache, {"result": "miss"}) == 2
    assert metrics.registry.get_sample_value(cache, {"result": "hit"}) == 1
