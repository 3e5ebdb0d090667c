"""Every differential scenario, as data (see `tests.compat.dsl` for the step language).

Conventions: connections are named "a", "b"; `connect(conn, tok)` opens and connects;
channels live in the namespaces of `tests.compat.configs` ("chat": presence, join/leave,
history and recovery, subscribable by any user; "plain": everything off; no namespace:
subscribable by any user). Each module holds one family: tokens, channels, server, options,
and uni (the unidirectional transports).
"""

from __future__ import annotations

from tests.compat.dsl import Scenario
from tests.compat.scenarios import channels, maps, options, server, tokens, uni

__all__ = ["SCENARIOS", "by_id"]

SCENARIOS: list[Scenario] = [
    *tokens.CONNECTION_TOKENS,
    *tokens.KEYS,
    *tokens.EXPIRY,
    *channels.SUBSCRIPTION_TOKENS,
    *channels.NAMESPACES,
    *server.PRESENCE_HISTORY,
    *server.API,
    *server.LIMITS,
    *options.OPTIONS,
    *uni.UNI,
    *maps.MAPS,
]


def by_id() -> dict[str, Scenario]:
    """Scenarios by id (ids are unique: a test checks it)."""
    return {s.id: s for s in SCENARIOS}
