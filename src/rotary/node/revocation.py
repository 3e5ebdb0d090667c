"""Token revocation on a node: the two API writes, and cutting live sessions.

The records live in the node's `RevocationStore` (`rotary.engines.revocation`); every node
sharing the store learns of every record through the store's listeners. `watch` registers
this node's listener, which ends what a new record refuses (docs/revocation.md):

- a connection whose connection token it refuses: disconnect 3011 "force reconnect" (the
  SDK reconnects with the token it holds, draws error 109 and asks for a new token);
- a client-side subscription whose subscription token it refuses: unsubscribe push 2501
  "subscription expired" (the SDK resubscribes, draws 109 and asks for a new token).

Server-side subscriptions have no token of their own and end with their connection. Every
cut is logged as one denial line (action ``revocation``). A subscription registered while
a record arrived is caught by `recheck_subscription`, which the subscribe handler calls
once the subscription is live.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rotary.engines.revocation import (
    REVOKED_JTI,
    REVOKED_USER,
    RevocationEvent,
    RevocationStore,
    TokenIdentity,
)
from rotary.logs import log_denial
from rotary.node.ending import end_subscription
from rotary.protocol.codes import (
    CommandError,
    DisconnectCode,
    ErrorCode,
    UnsubscribeCode,
)

if TYPE_CHECKING:
    from rotary.node.contracts import NodeServices, Session
    from rotary.node.subscription import Subscription

__all__ = [
    "CONNECTION_CUT",
    "SUBSCRIPTION_CUT",
    "invalidate_user_tokens",
    "on_record",
    "recheck_subscription",
    "revoke_token",
    "watch",
]

_log = logging.getLogger("rotary.revocation")

#: What a live connection gets when its token is revoked.
CONNECTION_CUT = DisconnectCode.FORCE_RECONNECT
#: What a live client-side subscription gets when its token is revoked.
SUBSCRIPTION_CUT = UnsubscribeCode.EXPIRED


def _store(node: NodeServices) -> RevocationStore:
    if node.revocation is None:
        raise CommandError(ErrorCode.NOT_AVAILABLE)
    return node.revocation


async def revoke_token(node: NodeServices, jti: str, *, expire_at: int = 0) -> None:
    """Refuse the token whose ``jti`` is `jti` on every node until `expire_at` (0: default).

    108 "not available" without a store; engine failures are counted and raised.
    """
    if not jti:
        raise CommandError(ErrorCode.BAD_REQUEST)
    try:
        await _store(node).revoke_token(jti, expire_at=expire_at)
    except CommandError:
        raise
    except Exception:
        _engine_error(node, "revoke_token")
        raise


async def invalidate_user_tokens(
    node: NodeServices, user: str, *, issued_before: int = 0, expire_at: int = 0, channel: str = ""
) -> None:
    """Refuse `user`'s tokens with ``iat`` before `issued_before` (0: now) until `expire_at`.

    `channel` limits it to subscription tokens of that channel.
    """
    if not user:
        raise CommandError(ErrorCode.BAD_REQUEST)
    before = issued_before if issued_before > 0 else int(node.clock.now())
    try:
        await _store(node).invalidate_user_tokens(
            user, issued_before=before, expire_at=expire_at, channel=channel
        )
    except CommandError:
        raise
    except Exception:
        _engine_error(node, "invalidate_user_tokens")
        raise


def _engine_error(node: NodeServices, op: str) -> None:
    if node.metrics is not None:
        node.metrics.engine_error(op)


def watch(node: NodeServices) -> None:
    """Cut `node`'s live sessions whenever its store learns of a record (no store: nothing)."""
    if node.revocation is not None:
        node.revocation.add_listener(lambda event: on_record(node, event))


def on_record(node: NodeServices, event: RevocationEvent) -> None:
    """End every local connection and subscription whose token `event` refuses."""
    reason = REVOKED_JTI if event.kind == "token" else REVOKED_USER
    sessions = node.sessions(event.user) if event.kind == "user" else node.connected_sessions()
    for session in sessions:
        _cut_session(session, event, reason)


def _cut_session(s: Session, event: RevocationEvent, reason: str) -> None:
    if s.closed:
        return
    identity = s.token_identity
    if identity is not None and event.affects(identity):
        _deny(s, reason, identity, "", f"disconnect {CONNECTION_CUT.code}")
        s.disconnect(CONNECTION_CUT)
        return
    for sub in list(s.subs.values()):
        ident = sub.token_identity
        if ident is not None and not sub.ended and event.affects(ident):
            _cut_subscription(s, sub, reason, ident)


def _cut_subscription(s: Session, sub: Subscription, reason: str, ident: TokenIdentity) -> None:
    _deny(s, reason, ident, sub.channel, f"unsubscribe {SUBSCRIPTION_CUT.code}")
    end_subscription(s, sub, SUBSCRIPTION_CUT)


def recheck_subscription(s: Session, sub: Subscription, now: float) -> None:
    """End `sub` now if a record that arrived while it was being established refuses it.

    `now` may be any time since `sub` was authorized: a record in force later was in force
    then too (records only leave by expiring), so an earlier time is never more lenient.
    """
    store, ident = s.node.revocation, sub.token_identity
    if store is None or ident is None or sub.ended:
        return
    reason = store.is_revoked(ident, now=now)
    if reason is not None:
        _cut_subscription(s, sub, reason, ident)


def _deny(s: Session, reason: str, ident: TokenIdentity, channel: str, cut: str) -> None:
    log_denial(
        _log,
        action="revocation",
        reason=reason,
        user=ident.user,
        client=s.id,
        channel=channel,
        outcome="revoked",
        detail=f"live {ident.kind} cut: {cut}",
    )
