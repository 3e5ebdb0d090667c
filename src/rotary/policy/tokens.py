"""Adapts `rotary.auth.TokenVerifier` to the node's `Authenticator` seam, with revocation.

The node knows nothing of JWT; it sees `ConnectCredentials`/`SubscribeCredentials` and
`TokenProblem` kinds. Outcome → kind: INVALID → "invalid", EXPIRED → "expired",
UNKNOWN_CHANNEL → "unknown_channel", MISMATCH → "mismatch".

Revocation (spec §9, docs/revocation.md) is checked here, right after a token verified,
whether the verifier answered from its cache or did the full work: a token that a record
in the `RevocationStore` refuses raises kind "revoked" with reason ``revoked_jti`` or
``revoked_user``. The check is the store's synchronous O(1) look-up, never I/O.

With a `Metrics`, every verification is counted (kind, outcome, reason), as are cache hits
and misses and revocation checks.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from rotary.auth import Outcome, TokenRejected, TokenVerifier
from rotary.engines.revocation import RevocationStore, TokenIdentity
from rotary.metrics import Metrics
from rotary.node.auth import (
    ConnectCredentials,
    ServerSubOptions,
    SubscribeCredentials,
    TokenProblem,
    TokenProblemKind,
)

__all__ = ["REVOCATION_WORDS", "VerifierAuthenticator"]

_T = TypeVar("_T")

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


def _problem(exc: TokenRejected) -> TokenProblem:
    return TokenProblem(_KINDS.get(exc.outcome, "invalid"), exc.reason, detail=exc.detail)


class VerifierAuthenticator:
    """An `Authenticator` backed by a `TokenVerifier` and, optionally, a revocation store.

    `revocation` None checks no revocation; `metrics` None counts nothing.
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
        tok = await self._verified("connection", self._verifier.verify_connection(token, now=now))
        identity = TokenIdentity.of_connection(tok)
        self._check_revocation(identity, now)
        subs = {
            ch: ServerSubOptions(info=o.info, data=o.data, override=o.override)
            for ch, o in tok.subs.items()
        }
        return ConnectCredentials(
            user=tok.user,
            expire_at=tok.expire_at,
            info=tok.info,
            channels=tok.channels,
            subs=subs,
            meta=tok.meta,
            identity=identity,
        )

    async def subscribe_token(
        self, token: str, *, now: float, channel: str, user: str, client: str
    ) -> SubscribeCredentials:
        verifying = self._verifier.verify_subscription(
            token, now=now, channel=channel, user=user, client=client
        )
        tok = await self._verified("subscription", verifying)
        identity = TokenIdentity.of_subscription(tok)
        self._check_revocation(identity, now)
        return SubscribeCredentials(
            user=tok.user,
            channel=tok.channel,
            client=tok.client,
            expire_at=tok.expire_at,
            info=tok.info,
            data=tok.data,
            override=tok.override,
            identity=identity,
        )

    async def _verified(self, kind: str, verifying: Awaitable[_T]) -> _T:
        """Await the verifier; count the cache look-up and a refusal; map TokenRejected."""
        metrics, verifier = self._metrics, self._verifier
        hits, misses = verifier.cache_hits, verifier.cache_misses
        try:
            return await verifying
        except TokenRejected as exc:
            problem = _problem(exc)
            if metrics is not None:
                metrics.token_verified(kind, problem.kind, problem.reason)
            raise problem from exc
        finally:
            if metrics is not None and verifier.cache_hits > hits:
                metrics.token_cache(hit=True)
            elif metrics is not None and verifier.cache_misses > misses:
                metrics.token_cache(hit=False)

    def _check_revocation(self, identity: TokenIdentity, now: float) -> None:
        """Raise TokenProblem "revoked" when a record refuses `identity`; count the check."""
        store, metrics = self._revocation, self._metrics
        reason = None if store is None else store.is_revoked(identity, now=now)
        if metrics is not None:
            if store is not None:
                metrics.revocation_checked(revoked=reason is not None)
            metrics.token_verified(identity.kind, "revoked" if reason else "ok", reason or "")
        if reason is not None:
            detail = REVOCATION_WORDS.get(reason, reason)
            raise TokenProblem("revoked", reason, user=identity.user, detail=detail)

    async def close(self) -> None:
        """Release the verifier's resources (JWKS HTTP session)."""
        await self._verifier.close()
