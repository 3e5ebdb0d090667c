"""The server API executor driving a real node: unsubscribe from every channel, history_remove
without history, and the `session` argument (only emulated and unidirectional connections have
one, so it matches no WebSocket connection)."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import pytest

from rotary.api.errors import ApiError
from rotary.api.executor import ApiExecutor
from rotary.channels.options import ChannelOptions, ChannelSettings, Namespace
from rotary.config.model import ClientSettings
from tests.node.fakes import Conn, Harness, settle
from tests.test_jsonbytes import SMALL_ENCODING_BUDGET

OPEN = ChannelOptions(allow_subscribe_for_client=True)
HISTORY = ChannelOptions(allow_subscribe_for_client=True, history_size=5, history_ttl=60.0)
LONG_HISTORY = ChannelOptions(history_size=1000, history_ttl=600.0)
CHANNELS = ChannelSettings(
    without_namespace=OPEN, namespaces=(Namespace("hh", HISTORY), Namespace("long", LONG_HISTORY))
)
SERVER_UNSUBSCRIBE = {"code": 2000, "reason": "server unsubscribe"}


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    harness = Harness(settings=ClientSettings(ping_interval=0), channels=CHANNELS)
    await harness.node.start()
    yield harness
    harness.node.disconnect_all()
    await harness.node.close()


@pytest.fixture
def api(h: Harness) -> ApiExecutor:
    return ApiExecutor(h.node)


async def _subscribed(h: Harness, user: str, *channels: str) -> Conn:
    conn = await h.connect(user=user)
    for n, channel in enumerate(channels, start=2):
        reply = await conn.request({"id": n, "subscribe": {"channel": channel}})
        assert "subscribe" in reply, reply
    conn.messages()
    return conn


def _unsubscribed(conn: Conn) -> list[str]:
    pushes = [m["push"] for m in conn.messages() if "unsubscribe" in m.get("push", {})]
    assert all(p["unsubscribe"] == SERVER_UNSUBSCRIBE for p in pushes)
    return sorted(p["channel"] for p in pushes)


async def _call(api: ApiExecutor, method: str, request: dict[str, Any]) -> Any:
    result = await api.call(method, request)
    await settle()
    return result


async def test_unsubscribe_with_empty_channel_leaves_every_channel(
    h: Harness, api: ApiExecutor
) -> None:
    conn = await _subscribed(h, "1", "a", "b", "hh:c")
    other = await _subscribed(h, "2", "a")
    assert await _call(api, "unsubscribe", {"user": "1", "channel": ""}) == {}
    assert _unsubscribed(conn) == ["a", "b", "hh:c"]
    assert conn.session.subs == {}
    assert _unsubscribed(other) == [] and "a" in other.session.subs


async def test_unsubscribe_without_channel_field_leaves_every_channel(
    h: Harness, api: ApiExecutor
) -> None:
    conn = await _subscribed(h, "1", "a", "b")
    await _call(api, "unsubscribe", {"user": "1"})
    assert _unsubscribed(conn) == ["a", "b"]


async def test_unsubscribe_from_one_channel_keeps_the_others(h: Harness, api: ApiExecutor) -> None:
    conn = await _subscribed(h, "1", "a", "b")
    await _call(api, "unsubscribe", {"user": "1", "channel": "a"})
    assert _unsubscribed(conn) == ["a"]
    assert list(conn.session.subs) == ["b"]


async def test_unsubscribe_from_unknown_namespace_is_102(api: ApiExecutor) -> None:
    with pytest.raises(ApiError) as err:
        await _call(api, "unsubscribe", {"user": "1", "channel": "nope:a"})
    assert err.value.code == 102


async def test_history_remove_on_a_channel_without_history_is_108(api: ApiExecutor) -> None:
    with pytest.raises(ApiError) as err:
        await _call(api, "history_remove", {"channel": "a"})
    assert err.value.code == 108


async def test_history_remove_on_a_channel_with_history_empties_it(
    h: Harness, api: ApiExecutor
) -> None:
    await h.node.api_publish("hh:c", b'{"n":1}')
    assert await _call(api, "history_remove", {"channel": "hh:c"}) == {}
    found = await _call(api, "history", {"channel": "hh:c", "limit": -1})
    assert found["publications"] == [] and found["offset"] == 1


async def test_unsubscribe_with_a_session_matches_no_connection(
    h: Harness, api: ApiExecutor
) -> None:
    conn = await _subscribed(h, "1", "a")
    assert await _call(api, "unsubscribe", {"user": "1", "channel": "a", "session": "s"}) == {}
    assert _unsubscribed(conn) == [] and "a" in conn.session.subs


async def test_disconnect_with_a_session_matches_no_connection(
    h: Harness, api: ApiExecutor
) -> None:
    conn = await _subscribed(h, "1")
    assert await _call(api, "disconnect", {"user": "1", "session": "s"}) == {}
    assert conn.closed is None
    await _call(api, "disconnect", {"user": "1"})
    assert conn.closed is not None and conn.closed.code == 3503


async def test_subscribe_and_refresh_with_a_session_match_no_connection(
    h: Harness, api: ApiExecutor
) -> None:
    conn = await _subscribed(h, "1")
    await _call(api, "subscribe", {"user": "1", "channel": "a", "session": "s"})
    await _call(api, "refresh", {"user": "1", "session": "s", "expired": True})
    assert conn.session.subs == {} and conn.closed is None
    assert [m for m in conn.messages() if m] == []


async def test_a_small_publication_kept_in_history_holds_little_memory(
    h: Harness, api: ApiExecutor
) -> None:
    """The data is kept trimmed to its length, not in the encoder's 4 KiB buffer."""
    await api.call("publish", {"channel": "long:warm", "data": {"n": -1}})
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(500):
            await api.call("publish", {"channel": "long:c", "data": {"n": n}})
        per_publication = (tracemalloc.get_traced_memory()[0] - before) / 500
    finally:
        tracemalloc.stop()
    history = await api.call("history", {"channel": "long:c", "limit": -1})

    assert len(history["publications"]) == 500
    assert per_publication < 4 * SMALL_ENCODING_BUDGET
