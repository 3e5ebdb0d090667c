"""Adapts `rotary.auth.TokenVerifier` to the node's `Authenticator` seam.

The node knows nothing of JWT; it sees `ConnectCredentials`/`SubscribeCredentials` and
`TokenProblem` kinds. Outcome → kind: INVALID → "invalid", EXPIRED → "expired",
UNKNOWN_CHANNEL → "unknown_channel", MISMATCH → "mismatch".
"""

from __future__ import annotations

from rotary.auth import Outcome, TokenRejected, TokenVerifier
from rotary.node.auth import (
    ConnectCredentials,
    ServerSubOptions,
    SubscribeCredentials,
    TokenProblem,
    TokenProblemKind,
)

__all__ = ["VerifierAuthenticator"]

_KINDS: dict[Outcome, TokenProblemKind] = {
    Outcome.INVALID: "invalid",
    Outcome.EXPIRED: "expired",
    Outcome.UNKNOWN_CHANNEL: "unknown_channel",
    Outcome.MISMATCH: "mismatch",
}


def _problem(exc: TokenRejected) -> TokenProblem:
    return TokenProblem(_KINDS.get(exc.outcome, "invalid"), exc.reason)


class VerifierAuthenticator:
    """An `Authenticator` backed by a `TokenVerifier`."""

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    async def connect_token(self, token: str, *, now: float) -> ConnectCredentials:
        try:
            tok = await self._verifier.verify_connection(token, now=now)
        except TokenRejected as exc:
            raise _problem(exc) from exc
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
        )

    async def subscribe_token(
        self, token: str, *, now: float, channel: str, user: str, client: str
    ) -> SubscribeCredentials:
        try:
            tok = await self._verifier.verify_subscription(
                token, now=now, channel=channel, user=user, client=client
            )
        except TokenRejected as exc:
            raise _problem(exc) from exc
        return SubscribeCredentials(
            user=tok.user,
            channel=tok.channel,
            client=tok.client,
            expire_at=tok.expire_at,
            info=tok.info,
            data=tok.data,
            override=tok.override,
        )

    async def close(self) -> None:
        """Release the verifier's resources (JWKS HTTP session)."""
        await self._verifier.close()
