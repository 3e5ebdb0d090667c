"""Token revocation: the store contract, its value types, and the local table both stores use.

Two kinds of record (docs/revocation.md, Centrifugo PRO's ``revoke_token`` /
``invalidate_user_tokens``):

- a *token* record: the token whose ``jti`` is `jti` is refused until `expire_at`;
- a *user* record: every token of `user` issued strictly before `issued_before` (its ``iat``
  is smaller) is refused until `expire_at`. With a `channel` the record concerns only
  subscription tokens of that channel; without one it concerns the user's connection tokens
  and all of the user's subscription tokens. A token without ``iat`` cannot prove that it is
  newer, so it is refused while any user record for it is in force.

Records only ever become stricter: writing a record that exists keeps the larger
`expire_at` (and, for a user record, the larger `issued_before`). Nothing un-revokes a token
except the record's expiry. ``expire_at`` 0 (or negative) keeps a record for
`DEFAULT_RECORD_TTL` seconds; an ``expire_at`` already in the past stores nothing.

Checks (`RevocationStore.is_revoked`) are synchronous local look-ups on every node: a store
shared by many nodes keeps a local mirror, so that the connect and subscribe paths never
wait for the network.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

if TYPE_CHECKING:
    from rotary.clock import Clock
    from rotary.config.model import EngineSettings

__all__ = [
    "DEFAULT_RECORD_TTL",
    "REVOKED_JTI",
    "REVOKED_USER",
    "RevocationEvent",
    "RevocationListener",
    "RevocationStore",
    "RevocationTable",
    "TokenIdentity",
    "call_listeners",
    "record_expiry",
    "revocation_store_for",
]

_log = logging.getLogger("rotary.revocation")

#: Seconds a record is kept when the caller gave no ``expire_at`` (30 days).
DEFAULT_RECORD_TTL = 30 * 24 * 3600
#: Reasons `RevocationStore.is_revoked` returns.
REVOKED_JTI = "revoked_jti"
REVOKED_USER = "revoked_user"


class _Claimed(Protocol):
    # Structural, so that this layer needs nothing of rotary.auth.
    @property
    def user(self) -> str: ...
    @property
    def jti(self) -> str: ...
    @property
    def iat(self) -> int | None: ...


class _ChannelClaimed(_Claimed, Protocol):
    @property
    def channel(self) -> str: ...


class TokenIdentity(NamedTuple):
    """What a verified token tells about itself, as far as revocation is concerned.

    `kind` is ``"connection"`` or ``"subscription"``; `jti` is "" when the token has no
    ``jti`` claim (it then cannot be revoked one by one); `iat` is None without ``iat``;
    `channel` is the subscription token's channel ("" for connection tokens). An immutable
    record (a named tuple, the cheapest to build: one per verified token).
    """

    kind: str
    user: str
    jti: str
    iat: int | None
    channel: str = ""

    @staticmethod
    def of_connection(token: _Claimed) -> TokenIdentity:
        """The identity of a verified connection token (`rotary.auth.ConnectionToken`)."""
        values = ("connection", token.user, token.jti, token.iat, "")
        identity: TokenIdentity = _tuple_new(TokenIdentity, values)
        return identity

    @staticmethod
    def of_subscription(token: _ChannelClaimed) -> TokenIdentity:
        """The identity of a verified subscription token (`rotary.auth.SubscriptionToken`)."""
        values = ("subscription", token.user, token.jti, token.iat, token.channel)
        identity: TokenIdentity = _tuple_new(TokenIdentity, values)
        return identity


# The class call goes through a generated Python __new__; this builds the same record.
_tuple_new: Any = tuple.__new__


@dataclass(frozen=True, slots=True)
class RevocationEvent:
    """One record written on some node, as every node's listeners receive it.

    `kind` ``"token"``: `jti` and `expire_at` are set. `kind` ``"user"``: `user`,
    `issued_before`, `expire_at` and optionally `channel` are set. The values are the
    record as it stands after the write (merged with an earlier one), not the request.
    """

    kind: Literal["token", "user"]
    expire_at: int
    jti: str = ""
    user: str = ""
    issued_before: int = 0
    channel: str = ""

    def affects(self, token: TokenIdentity) -> bool:
        """Whether this record, while in force, refuses `token` (ignores expiry)."""
        if self.kind == "token":
            return bool(token.jti) and token.jti == self.jti
        if token.user != self.user:
            return False
        if self.channel and (token.kind != "subscription" or token.channel != self.channel):
            return False
        return token.iat is None or token.iat < self.issued_before


#: A listener is called once per record a node learns about (see `RevocationStore`).
RevocationListener = Callable[[RevocationEvent], None]


class RevocationStore(Protocol):
    """Where revocation records live; one instance per node.

    Contract:
    - A record written through any node's store is seen by `is_revoked` on every node
      sharing the store within about one second, and by stores started later (until the
      record expires).
    - `is_revoked` is synchronous, does no I/O and costs O(1) (amortised): it is on the
      connect/subscribe hot path.
    - Listeners run on every node for every record that node learns about (its own writes,
      other nodes' writes, records found when reloading after a lost notification channel),
      at most once per change, in the event loop; the node uses them to cut live sessions
      whose token the record refuses (`RevocationEvent.affects`). A listener must not block
      and its exceptions are logged, not raised.
    """

    async def revoke_token(self, jti: str, *, expire_at: int) -> None:
        """Refuse the token whose ``jti`` is `jti` until `expire_at` (0: default TTL)."""

    async def invalidate_user_tokens(
        self, user: str, *, issued_before: int, expire_at: int, channel: str = ""
    ) -> None:
        """Refuse `user`'s tokens with ``iat`` < `issued_before` until `expire_at`.

        `channel` limits the record to subscription tokens of that channel.
        """

    def is_revoked(self, token: TokenIdentity, *, now: float) -> str | None:
        """`REVOKED_JTI`, `REVOKED_USER`, or None when no record in force refuses `token`."""

    async def start(self) -> None:
        """Load the records and start listening for new ones (before any check)."""

    async def close(self) -> None:
        """Stop listening and release connections. Idempotent."""

    def add_listener(self, fn: RevocationListener) -> None:
        """Call `fn` with every record this node learns about from now on."""


def record_expiry(expire_at: int, now: float) -> int | None:
    """The expiry to store for a requested `expire_at`; None when it already passed."""
    if expire_at <= 0:
        return int(now) + DEFAULT_RECORD_TTL
    if expire_at <= now:
        return None
    return expire_at


def revocation_store_for(engine: EngineSettings, *, clock: Clock) -> RevocationStore:
    """The store that goes with the configured engine: memory, or Redis on its settings."""
    if engine.type == "redis":
        from rotary.engines.redis.revocation import RedisRevocationStore

        return RedisRevocationStore(engine.redis, clock=clock)
    from rotary.engines.memory.revocation import MemoryRevocationStore

    return MemoryRevocationStore(clock)


def call_listeners(listeners: Iterable[RevocationListener], event: RevocationEvent) -> None:
    """Call every listener with `event`; a failing listener is logged and the rest still run."""
    for listener in listeners:
        try:
            listener(event)
        except Exception:
            _log.exception("a revocation listener failed")


_UserKey = tuple[str, str]


class RevocationTable:
    """The in-memory records of one node: a store's data, or a shared store's mirror.

    `merge_*` apply a record with the max rule of the module docstring and return the
    resulting event when something changed, else None. Expired records are dropped lazily,
    through a heap ordered by expiry, whenever the table is read or written.

    `holding` is False only when the table has no record at all: then `check` refuses
    nothing, and a store may answer without calling it (the usual case, on the hot path).
    """

    def __init__(self) -> None:
        self._tokens: dict[str, int] = {}
        self._users: dict[_UserKey, tuple[int, int]] = {}
        self._expiries: list[tuple[int, str, str, str]] = []
        self.holding = False

    def __len__(self) -> int:
        return len(self._tokens) + len(self._users)

    def merge_token(self, jti: str, expire_at: int, now: float) -> RevocationEvent | None:
        """Apply a token record; the event if it is new or now lasts longer."""
        self.purge(now)
        if expire_at <= now or self._tokens.get(jti, 0) >= expire_at:
            return None
        self._tokens[jti] = expire_at
        self.holding = True
        heapq.heappush(self._expiries, (expire_at, "t", jti, ""))
        return RevocationEvent("token", expire_at, jti=jti)

    def merge_user(
        self, user: str, channel: str, *, issued_before: int, expire_at: int, now: float
    ) -> RevocationEvent | None:
        """Apply a user record; the event if it is new or became stricter or longer."""
        self.purge(now)
        old_before, old_expiry = self._users.get((user, channel), (0, 0))
        before, expiry = max(old_before, issued_before), max(old_expiry, expire_at)
        if expiry <= now or (before, expiry) == (old_before, old_expiry):
            return None
        self._users[(user, channel)] = (before, expiry)
        self.holding = True
        if expiry != old_expiry:
            heapq.heappush(self._expiries, (expiry, "u", user, channel))
        return RevocationEvent("user", expiry, user=user, issued_before=before, channel=channel)

    def check(self, token: TokenIdentity, now: float) -> str | None:
        """`REVOKED_JTI`, `REVOKED_USER` or None for `token` at `now`.

        With no record at all (see `holding`) this is one attribute test.
        """
        if not self.holding:
            return None
        if self._expiries and self._expiries[0][0] <= now:
            self.purge(now)
        if token.jti and self._tokens.get(token.jti, 0) > now:
            return REVOKED_JTI
        if self._user_refuses(token, "", now):
            return REVOKED_USER
        scoped = token.kind == "subscription" and bool(token.channel)
        if scoped and self._user_refuses(token, token.channel, now):
            return REVOKED_USER
        return None

    def _user_refuses(self, token: TokenIdentity, channel: str, now: float) -> bool:
        record = self._users.get((token.user, channel))
        if record is None or record[1] <= now:
            return False
        return token.iat is None or token.iat < record[0]

    def purge(self, now: float) -> None:
        """Drop every record whose expiry is not after `now`."""
        heap = self._expiries
        while heap and heap[0][0] <= now:
            expiry, kind, first, second = heapq.heappop(heap)
            if kind == "t":
                if self._tokens.get(first) == expiry:
                    del self._tokens[first]
            elif self._users.get((first, second), (0, 0))[1] == expiry:
                del self._users[(first, second)]
        self.holding = bool(self._tokens or self._users)
