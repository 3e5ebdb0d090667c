"""`TokenVerifier`: connection and subscription JWT verification with a verified-token cache.

Order of work for every token (docs/tokens.md "How a connection token is checked", docs/tokens.md
"How a subscription token is checked"), chosen for safety first:

1. length (INVALID ``too_large``, before any decoding); then the verified-token cache;
2. strict compact-JWS parsing (INVALID ``malformed``);
3. the signature, before any claim is trusted (INVALID ``algorithm``/``signature``/
   ``unknown_key``/``jwks_unavailable``). Centrifugo v5 checks aud/iss first and v6.5 moved
   the exact checks after the signature; the outcome is INVALID either way;
4. typed claims, aud/iss, the ``channel`` claim, time, namespaces, base64 fields, user
   (see `rotary.auth.claims`).

Rotary is safer than Centrifugo on two points: a bad top-level ``b64info`` in a connection
token is INVALID ``b64`` (Centrifugo answers a temporary error 100, docs/differences.md quirk 6),
and a JWKS
URL is never built from token claims.

The cache maps a whole token string (per token kind) to its verified result, a `Verified`
entry; a hit is a dict lookup plus an expiry comparison, the reconnect-storm path. An entry
never outlives its token's ``exp`` (plus leeway), nor the rotation window of the previous
HMAC secret that verified it (`Verified.until`, computed here and nowhere else). A cached
result does survive the removal of its JWKS key upstream until then. Callers that derive
something from a verified token (`rotary.policy.tokens`) keep it in the entry's `memo`, so
that it lives and dies with the entry. A subscription token's binding to a channel, user
and client is never cached: it is checked on every use (the rule of `bind_subscription`).
Namespace knowledge (`channel_known`) is assumed fixed for a verifier's life: a
configuration reload builds a new verifier (with an empty cache).

Two ways in: `connection_at_hand`/`subscription_at_hand` verify without waiting (a plain
call, the node's path for every token) and raise `JwksMiss` when a JWKS key has to be
fetched first; `verified_connection`/`verified_subscription` await that fetch and retry.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from orjson import JSONDecodeError
from orjson import loads as _loads

from rotary.auth.claims import connection_from_claims, payload_refusal, subscription_from_claims
from rotary.auth.jwks import AiohttpJwksFetch, JwksFetch, JwksKeySet
from rotary.auth.jws import parse_compact
from rotary.auth.keyring import JwksMiss, Keyring, compile_keyring
from rotary.auth.settings import AuthSettings
from rotary.auth.tokens import (
    ConnectionToken,
    Outcome,
    SubscribeOptions,
    SubscribeOverride,
    SubscriptionToken,
    TokenRejected,
)
from rotary.errors import ConfigError

__all__ = [
    "ConnectionToken",
    "JwksFetch",
    "JwksMiss",
    "Outcome",
    "SubscribeOptions",
    "SubscribeOverride",
    "SubscriptionToken",
    "TokenRejected",
    "TokenVerifier",
    "Verified",
    "bind_subscription",
]

_T = TypeVar("_T", ConnectionToken, SubscriptionToken)


class Verified(Generic[_T]):
    """One successful verification, as the verified-token cache keeps it.

    `token` is the verified token. `until` is the Unix time from which the verification must
    not be reused: the token's ``exp`` plus leeway, or the end of the previous HMAC
    secret's window when that secret verified it, whichever comes first (infinite when
    neither applies). `memo` belongs to the caller: something it derived from `token` alone
    (never from a request), kept and dropped with the entry; None until the caller sets it.
    """

    __slots__ = ("memo", "token", "until")

    token: _T
    until: float
    memo: Any

    def __init__(self, token: _T, until: float) -> None:
        self.token = token
        self.until = until
        self.memo = None


_Cache = OrderedDict[str, Verified[_T]]
_new = object.__new__


def _always_known(channel: str) -> bool:
    return True


class TokenVerifier:
    """Verifies connection and subscription tokens against one `AuthSettings`.

    Keys are parsed and patterns compiled here, once; any problem raises ConfigError listing
    every bad key. `channel_known(channel)` says whether a channel's namespace exists.
    `jwks_fetch` is the HTTP seam for JWKS (default: aiohttp, closed by `close`).
    Subscription tokens use `settings.subscription` alone when it is set (no fallback).
    """

    def __init__(
        self,
        settings: AuthSettings,
        *,
        channel_known: Callable[[str], bool] = _always_known,
        jwks_fetch: JwksFetch | None = None,
    ) -> None:
        self._settings = settings
        self._channel_known = channel_known
        default = AiohttpJwksFetch()
        self._fetch: JwksFetch = default if jwks_fetch is None else jwks_fetch
        self._own_fetch = default if jwks_fetch is None else None
        self._jwks: dict[str, JwksKeySet] = {}
        self._conn, self._sub = self._compile(settings)
        self._max_size = settings.max_token_size
        self._leeway = settings.leeway
        self._cache_size = settings.cache_size
        self._conn_cache: _Cache[ConnectionToken] = OrderedDict()
        self._sub_cache: _Cache[SubscriptionToken] = OrderedDict()
        self._hits = 0
        self._misses = 0

    def _compile(self, settings: AuthSettings) -> tuple[Keyring, Keyring]:
        """(connection, subscription) keyrings; raise ConfigError listing every problem."""
        problems: list[str] = []
        separate = settings.subscription
        connection, subscription = (
            compile_keyring(
                token_settings,
                prefix=prefix,
                skip_signature=settings.insecure_skip_signature,
                jwks_for=self._jwks_for,
                problems=problems if report else [],
            )
            for token_settings, prefix, report in (
                (settings.connection, "token_", True),
                (separate or settings.connection, "subscription_token_", separate is not None),
            )
        )
        if problems:
            raise ConfigError(problems)
        return connection, subscription

    def _jwks_for(self, url: str) -> JwksKeySet:
        keys = self._jwks.get(url)
        if keys is None:
            keys = self._jwks[url] = JwksKeySet(
                url,
                self._fetch,
                ttl=self._settings.jwks_cache_ttl,
                timeout=self._settings.jwks_timeout,
                refetch_interval=self._settings.jwks_refetch_interval,
            )
        return keys

    @property
    def cache_hits(self) -> int:
        """Verifications answered from the verified-token cache."""
        return self._hits

    @property
    def cache_misses(self) -> int:
        """Verifications that did the full work (whether they succeeded or not)."""
        return self._misses

    @property
    def jwks_fetches(self) -> int:
        """JWKS fetches started so far, over every configured URL."""
        return sum(keys.fetches for keys in self._jwks.values())

    def connection_at_hand(
        self, token: str, now: float, may_fetch: bool = True
    ) -> Verified[ConnectionToken]:
        """Verify a connection token at Unix time `now` without waiting; raise TokenRejected.

        The cache entry when there is one, else the full verification with the keys at hand.
        A token whose JWKS key is not cached raises `JwksMiss` when `may_fetch` (then await
        `verified_connection`, which fetches the key and does the work again: the stopped
        attempt counts as a miss), else is refused as INVALID ``unknown_key``
        (``jwks_unavailable`` when the last fetch failed). The entry is the cache's own when
        the cache is on (its `memo` is shared with later hits), a fresh one otherwise.
        The hot path of every connect.
        """
        if len(token) > self._max_size:
            raise _too_large()
        hit = self._conn_cache.get(token)
        if hit is not None and now < hit.until:
            self._hits += 1
            self._conn_cache.move_to_end(token)
            return hit
        return self._full(
            token, now, may_fetch, self._conn, connection_from_claims, self._conn_cache
        )

    def subscription_at_hand(
        self, token: str, now: float, may_fetch: bool = True
    ) -> Verified[SubscriptionToken]:
        """`connection_at_hand` for a subscription token, whose binding is not checked."""
        if len(token) > self._max_size:
            raise _too_large()
        hit = self._sub_cache.get(token)
        if hit is not None and now < hit.until:
            self._hits += 1
            self._sub_cache.move_to_end(token)
            return hit
        return self._full(
            token, now, may_fetch, self._sub, subscription_from_claims, self._sub_cache
        )

    async def verified_connection(self, token: str, *, now: float) -> Verified[ConnectionToken]:
        """`connection_at_hand`, fetching a JWKS key that is not cached first."""
        try:
            return self.connection_at_hand(token, now)
        except JwksMiss as miss:
            await miss.keys.refresh(now)
        return self.connection_at_hand(token, now, False)

    async def verified_subscription(self, token: str, *, now: float) -> Verified[SubscriptionToken]:
        """`verified_connection` for a subscription token, whose binding is not checked."""
        try:
            return self.subscription_at_hand(token, now)
        except JwksMiss as miss:
            await miss.keys.refresh(now)
        return self.subscription_at_hand(token, now, False)

    async def verify_connection(self, token: str, *, now: float) -> ConnectionToken:
        """Verify a connection token at Unix time `now`; raise TokenRejected."""
        return (await self.verified_connection(token, now=now)).token

    async def verify_subscription(
        self,
        token: str,
        *,
        now: float,
        channel: str | None = None,
        user: str | None = None,
        client: str | None = None,
    ) -> SubscriptionToken:
        """Verify a subscription token; raise TokenRejected.

        With `channel`/`user`/`client` given, the token must be bound to them (see
        `bind_subscription`). Binding is checked after verification, cached or not.
        """
        found = (await self.verified_subscription(token, now=now)).token
        return bind_subscription(found, channel=channel, user=user, client=client)

    def verify_connection_sync(self, token: str, *, now: float) -> ConnectionToken:
        """`verify_connection` for static keys (CLI, benchmarks).

        With JWKS configured only keys already cached are used: a key that would need a fetch
        is refused as INVALID ``unknown_key`` (``jwks_unavailable`` when the last fetch
        failed). Use the async method wherever JWKS may be configured.
        """
        return self.connection_at_hand(token, now, False).token

    def verify_subscription_sync(
        self,
        token: str,
        *,
        now: float,
        channel: str | None = None,
        user: str | None = None,
        client: str | None = None,
    ) -> SubscriptionToken:
        """`verify_subscription` for static keys; same JWKS limitation as above."""
        found = self.subscription_at_hand(token, now, False).token
        return bind_subscription(found, channel=channel, user=user, client=client)

    def _full(
        self,
        token: str,
        now: float,
        may_fetch: bool,
        keyring: Keyring,
        decode: Callable[..., _T],
        cache: _Cache[_T],
    ) -> Verified[_T]:
        """Parse, check the signature, then the claims; remember a success in `cache`."""
        self._misses += 1
        jws = parse_compact(token)
        try:
            keep_until = keyring.verify(jws, now, may_fetch)
            # load_claims, inlined: this is the hot path
            try:
                claims = _loads(jws[3])
            except JSONDecodeError:
                claims = None
            if type(claims) is not dict:
                raise payload_refusal()
            found = decode(claims, keyring.rules, self._channel_known, now, self._leeway)
        except TokenRejected as exc:
            exc.alg = exc.alg or jws[0]
            exc.claims = jws[3] if exc.claims is None else exc.claims
            raise
        # exp truncated to seconds: the entry may leave at most a second early, never late
        if found.exp is not None and found.exp + self._leeway < keep_until:
            keep_until = found.exp + self._leeway
        entry: Verified[_T] = _new(Verified)  # Verified(found, keep_until) minus the call
        entry.token, entry.until, entry.memo = found, keep_until, None
        if self._cache_size > 0:
            cache[token] = entry
            if len(cache) > self._cache_size:
                cache.popitem(last=False)
        return entry

    async def close(self) -> None:
        """Stop JWKS fetches in flight and close the default HTTP session."""
        for keys in self._jwks.values():
            await keys.close()
        if self._own_fetch is not None:
            await self._own_fetch.close()


def _too_large() -> TokenRejected:
    return TokenRejected(Outcome.INVALID, "too_large", "token is larger than token_max_size")


def bind_subscription(
    found: SubscriptionToken, *, channel: str | None, user: str | None, client: str | None
) -> SubscriptionToken:
    """`found` when it is bound to `channel`, `user` and `client`; raise TokenRejected.

    MISMATCH ``channel_mismatch``/``user_mismatch``/``client_mismatch``; None skips that
    comparison, and the ``client`` claim is compared only when non-empty.
    """
    if channel is not None and found.channel != channel:
        raise TokenRejected(Outcome.MISMATCH, "channel_mismatch", "token channel does not match")
    if user is not None and found.user != user:
        raise TokenRejected(Outcome.MISMATCH, "user_mismatch", "token user does not match")
    if client is not None and found.client and found.client != client:
        raise TokenRejected(Outcome.MISMATCH, "client_mismatch", "token client does not match")
    return found
