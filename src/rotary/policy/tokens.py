"""Adapts `rotary.auth.TokenVerifier` to the node's `Authenticator` seam, with revocation.

The node knows nothing of JWT; it sees `ConnectCredentials`/`SubscribeCredentials` and
`TokenProblem` kinds. Outcome → kind: INVALID → "invalid", EXPIRED → "expired",
UNKNOWN_CHANNEL → "unknown_channel", MISMATCH → "mismatch".

Revocation (docs/revocation.md) is checked here, right after a token verified,
whether the verifier answered from its cache or did the full work: a token that a record
in the `RevocationStore` refuses raises kind "revoked" with reason ``revoked_jti`` or
``revoked_user``. The check is the store's synchronous O(1) look-up, never I/O.

With a `Metrics`, every verification is counted (kind, outcome, reason), as are cache hits
and misses and revocation checks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from rotary.auth import Outcome, SubscribeOverride, TokenRejected, TokenVerifier
from rotary.auth.tokens import NO_OVERRIDE
from rotary.auth.verifier import (
    ConnectionToken,
    JwksMiss,
    SubscriptionToken,
    Verified,
    bind_subscription,
)
from rotary.engines.revocation import RevocationStore, TokenIdentity
from rotary.metrics import Metrics
from rotary.node.auth import (
    ConnectCredentials,
    ServerSubOptions,
    SubscribeCredentials,
    TokenProblem,
    TokenProblemKind,
    new_connect_credentials,
    new_subscribe_credentials,
)

__all__ = ["REVOCATION_WORDS", "VerifierAuthenticator"]

_T = TypeVar("_T", ConnectionToken, SubscriptionToken)

_KINDS: dict[Outcome, TokenProblemKind] = {
    Outcome.INVALID: "invalid",
    Outcome.EXPIRED: "expired",
    Outcome.UNKNOWN_CHANNEL: "unknown_channel",
    Outcome.MISMATCH: "mismatch",
}

#: Plain words for the revocation reasons (the CLI and the docs use the same ones).
REVOCATION_WORDS = {
    "revoked_jti": "the token's jti was revoked (revoke_token)",
    "revoked_user": "the user's tokens issued before a cut-off were invalidated "
    "(invalidate_user_tokens), and this token's iat is older or missing",
}


_NO_SERVER_SUBS: Mapping[str, ServerSubOptions] = MappingProxyType({})


def _problem(exc: TokenRejected) -> TokenProblem:
    return TokenProblem(_KINDS.get(exc.outcome, "invalid"), exc.reason, detail=exc.detail)


def _override(override: SubscribeOverride) -> SubscribeOverride | None:
    """None for an override that overrides nothing, which the node then skips."""
    return None if override is NO_OVERRIDE or override == NO_OVERRIDE else override


# TokenIdentity records built once per verified token, every field in order: the named
# tuple's generated __new__ (and TokenIdentity.of_*, which build the same) cost a call more.
_tuple_new: Any = tuple.__new__


def _connect_memo(tok: ConnectionToken) -> ConnectCredentials:
    """The credentials (with identity) of a verified connection token (pure: cached)."""
    user, expire_at, _, iat, jti, info, channels, token_subs, meta = tok
    identity = _tuple_new(TokenIdentity, ("connection", user, jti, iat, ""))  # of_connection
    subs = _NO_SERVER_SUBS
    if token_subs:
        subs = {
            ch: ServerSubOptions(info=o.info, data=o.data, override=_override(o.override))
            for ch, o in token_subs.items()
        }
    return new_connect_credentials(user, expire_at, info, channels, subs, meta, identity)


def _subscribe_memo(tok: SubscriptionToken) -> SubscribeCredentials:
    """The credentials (with identity) of a verified subscription token (pure, like above)."""
    user, channel, client, expire_at, _, iat, jti, info, data, override = tok
    identity = _tuple_new(TokenIdentity, ("subscription", user, jti, iat, channel))
    plain: SubscribeOverride | None = override
    if override is NO_OVERRIDE or override == NO_OVERRIDE:  # _override, inlined
        plain = None
    return new_subscribe_credentials(user, channel, client, expire_at, info, data, plain, identity)


class VerifierAuthenticator:
    """An `Authenticator` backed by a `TokenVerifier` and, optionally, a revocation store.

    `revocation` None checks no revocation; `metrics` None counts nothing. The credentials
    of a verified token are built once and kept in the verifier's cache entry (`memo`), so a
    cache hit costs a look-up, the binding check (subscriptions) and the revocation check;
    the entry's lifetime is the verifier's alone.
    """

    def __init__(
        self,
        verifier: TokenVerifier,
        *,
        revocation: RevocationStore | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._verifier = verifier
        self._revocation = revocation
        self._metrics = metrics

    async def connect_token(self, token: str, *, now: float) -> ConnectCredentials:
        verifier = self._verifier
        try:
            entry = self._at_hand("connection", verifier.connection_at_hand, token, now)
        except JwksMiss:  # its key must be fetched first
            entry = await self._verify("connection", verifier.verified_connection(token, now=now))
        creds: ConnectCredentials | None = entry.memo
        if creds is None:
            creds = entry.memo = _connect_memo(entry.token)
        identity = creds.identity
        assert identity is not None  # set by _connect_memo
        store = self._revocation
        reason = None if store is None else store.is_revoked(identity, now=now)
        if reason is not None or self._metrics is not None:
            self._revocation_outcome(identity, reason)
        return creds

    async def subscribe_token(
        self, token: str, *, now: float, channel: str, user: str, client: str
    ) -> SubscribeCredentials:
        verifier = self._verifier
        try:
            entry = self._at_hand("subscription", verifier.subscription_at_hand, token, now)
        except JwksMiss:  # its key must be fetched first
            verifying = verifier.verified_subscription(token, now=now)
            entry = await self._verify("subscription", verifying)
        creds: SubscribeCredentials | None = entry.memo
        if creds is None:
            creds = entry.memo = _subscribe_memo(entry.token)
        identity = creds.identity
        assert identity is not None  # set by _subscribe_memo
        # bind_subscription's rule on the credentials (copies of the token's claims), which
        # then says what does not match.
        if creds.channel != channel or creds.user != user or creds.client not in ("", client):
            raise self._unbound(entry.token, channel, user, client)
        store = self._revocation
        reason = None if store is None else store.is_revoked(identity, now=now)
        if reason is not None or self._metrics is not None:
            self._revocation_outcome(identity, reason)
        return creds

    def _at_hand(
        self,
        kind: str,
        verify: Callable[[str, float], Verified[_T]],
        token: str,
        now: float,
    ) -> Verified[_T]:
        """``verify(token, now)`` (a verifier's ``*_at_hand``) with refusals mapped and counted.

        Raises TokenProblem for a refused token and lets `JwksMiss` through, uncounted (the
        caller then awaits `_verify`, which counts the look-up). With a `Metrics` the cache
        look-up is counted as a hit or a miss.
        """
        metrics, verifier = self._metrics, self._verifier
        hits = misses = 0
        if metrics is not None:
            hits, misses = verifier.cache_hits, verifier.cache_misses
        try:
            entry = verify(token, now)
        except TokenRejected as exc:
            self._count_lookup(hits, misses)
            raise self._refused(kind, exc) from exc
        if metrics is not None:
            self._count_lookup(hits, misses)
        return entry

    async def _verify(self, kind: str, verifying: Awaitable[Verified[_T]]) -> Verified[_T]:
        """Await the verifier (a JWKS key to fetch); count the look-up; map refusals."""
        verifier = self._verifier
        hits, misses = verifier.cache_hits, verifier.cache_misses
        try:
            return await verifying
        except TokenRejected as exc:
            raise self._refused(kind, exc) from exc
        finally:
            self._count_lookup(hits, misses)

    def _count_lookup(self, hits: int, misses: int) -> None:
        """Count one cache look-up from the verifier's counters taken before it (`metrics`).

        A JWKS fetch in between may let another caller fill the cache: then it is a hit.
        """
        metrics, verifier = self._metrics, self._verifier
        if metrics is not None and verifier.cache_hits > hits:
            metrics.token_cache(hit=True)
        elif metrics is not None and verifier.cache_misses > misses:
            metrics.token_cache(hit=False)

    def _unbound(
        self, found: SubscriptionToken, channel: str, user: str, client: str
    ) -> TokenProblem:
        """The refusal of `found` bound to another channel, user or client, counted."""
        try:
            bind_subscription(found, channel=channel, user=user, client=client)
        except TokenRejected as exc:
            problem = self._refused("subscription", exc)
            problem.__cause__ = exc
            return problem
        mismatch = TokenRejected(Outcome.MISMATCH, "binding", "token binding does not match")
        return self._refused("subscription", mismatch)

    def _refused(self, kind: str, exc: TokenRejected) -> TokenProblem:
        """The TokenProblem for a refusal, counted."""
        problem = _problem(exc)
        if self._metrics is not None:
            self._metrics.token_verified(kind, problem.kind, problem.reason)
        return problem

    def _revocation_outcome(self, identity: TokenIdentity, reason: str | None) -> None:
        """Count the check (with a `Metrics`); raise TokenProblem "revoked" for a `reason`."""
        metrics = self._metrics
        if metrics is not None:
            if self._revocation is not None:
                metrics.revocation_checked(revoked=reason is not None)
            metrics.token_verified(identity.kind, "revoked" if reason else "ok", reason or "")
        if reason is not None:
            detail = REVOCATION_WORDS.get(reason, reason)
            raise TokenProblem("revoked", reason, user=identity.user, detail=detail)

    async def close(self) -> None:
        """Release the verifier's resources (JWKS HTTP session)."""
        await self._verifier.close()
