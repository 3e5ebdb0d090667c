"""Revocation and subscribing: a record that arrives while a subscription is being established."""

from __future__ import annotations

from typing import Any

from rotary.channels.options import ChannelOptions, ChannelSettings, Namespace
from rotary.config.model import ClientSettings
from rotary.engines.base import ClientInfo, PresenceManager
from rotary.engines.memory.revocation import MemoryRevocationStore
from rotary.engines.revocation import TokenIdentity
from rotary.node import revocation
from rotary.node.auth import SubscribeCredentials
from tests.node.conftest import MakeHarness
from tests.node.fakes import Harness

PRESENCE = ChannelOptions(allow_subscribe_for_client=True, presence=True)
CHANNELS = ChannelSettings(without_namespace=PRESENCE, namespaces=(Namespace("pp", PRESENCE),))
EXPIRED_PUSH = {"code": 2501, "reason": "subscription expired"}


class RevokingPresence:
    """Presence that revokes a jti while a subscriber is being added (mid-establishment)."""

    def __init__(self, inner: PresenceManager, store: MemoryRevocationStore, jti: str) -> None:
        self._inner = inner
        self._store = store
        self._jti = jti

    async def add_presence(self, channel: str, client: str, info: ClientInfo, **kw: Any) -> None:
        if self._jti:
            await self._store.revoke_token(self._jti, expire_at=0)
        await self._inner.add_presence(channel, client, info, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def _harness(make_harness: MakeHarness, *, revoke_during_subscribe: str) -> Harness:
    h = await make_harness(settings=ClientSettings(ping_interval=0), channels=CHANNELS)
    store = MemoryRevocationStore(h.clock)
    h.node.revocation = store
    revocation.watch(h.node)
    h.node.presence = RevokingPresence(h.node.presence, store, revoke_during_subscribe)  # type: ignore[assignment]
    return h


def _creds(jti: str) -> SubscribeCredentials:
    identity = TokenIdentity("subscription", "1", jti, None, "$pp:a")
    return SubscribeCredentials("1", "$pp:a", identity=identity)


async def test_a_jti_revoked_while_the_subscription_is_established_ends_it_with_2501(
    make_harness: MakeHarness,
) -> None:
    h = await _harness(make_harness, revoke_during_subscribe="j1")
    h.auth.subscribe["t"] = _creds("j1")
    conn = await h.connect(user="1")

    await conn.send({"id": 2, "subscribe": {"channel": "$pp:a", "token": "t"}})

    messages = conn.messages()
    assert messages[0] == {"id": 2, "subscribe": {}}
    assert messages[1]["push"] == {"channel": "$pp:a", "unsubscribe": EXPIRED_PUSH}
    assert "$pp:a" not in conn.session.subs


async def test_a_record_for_another_token_leaves_the_new_subscription_alone(
    make_harness: MakeHarness,
) -> None:
    h = await _harness(make_harness, revoke_during_subscribe="someone-else")
    h.auth.subscribe["t"] = _creds("j1")
    conn = await h.connect(user="1")

    await conn.send({"id": 2, "subscribe": {"channel": "$pp:a", "token": "t"}})

    assert conn.messages() == [{"id": 2, "subscribe": {}}]
    assert "$pp:a" in conn.session.subs
