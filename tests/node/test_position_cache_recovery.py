"""Cache recovery mode (``force_recovery_mode: "cache"``, docs/protocol.md "History and recovery"):
only the latest pub."""

from __future__ import annotations

from typing import Any

from rotary.channels.options import ChannelOptions, ChannelSettings, Namespace
from rotary.config.model import ClientSettings
from rotary.engines.base import HistoryFilter
from tests.node.conftest import MakeHarness
from tests.node.fakes import Harness, settle


def _opts(mode: str, size: int = 10) -> ChannelOptions:
    return ChannelOptions(
        allow_subscribe_for_client=True,
        history_size=size,
        history_ttl=300.0,
        force_recovery=True,
        force_recovery_mode=mode,
    )


CHANNELS = ChannelSettings(
    namespaces=(
        Namespace("cache", _opts("cache")),
        Namespace("tiny", _opts("cache", size=1)),
        Namespace("stream", _opts("stream")),
    ),
)


async def _h(make_harness: MakeHarness) -> Harness:
    return await make_harness(settings=ClientSettings(ping_interval=0), channels=CHANNELS)


async def _publish(h: Harness, channel: str, count: int) -> str:
    for n in range(1, count + 1):
        await h.node.api_publish(channel, b'{"n":%d}' % n)
    return (await h.node.broker.history(channel, HistoryFilter())).position.epoch


async def _recover(h: Harness, channel: str, offset: int, epoch: str) -> dict[str, Any]:
    conn = await h.connect(user="1")
    req = {"channel": channel, "recover": True, "offset": offset, "epoch": epoch}
    reply = await conn.request({"id": 2, "subscribe": req})
    result: dict[str, Any] = reply["subscribe"]
    return result


async def test_cache_mode_recovers_only_the_latest_publication(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    epoch = await _publish(h, "cache:a", 5)
    result = await _recover(h, "cache:a", 1, epoch)
    assert result["recovered"] is True and result["was_recovering"] is True
    assert [p["offset"] for p in result["publications"]] == [5]
    assert result["publications"][0]["data"] == {"n": 5}
    assert result["offset"] == 1


async def test_stream_mode_on_the_same_history_recovers_every_missed_publication(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    epoch = await _publish(h, "stream:a", 5)
    result = await _recover(h, "stream:a", 1, epoch)
    assert [p["offset"] for p in result["publications"]] == [2, 3, 4, 5]


async def test_cache_mode_client_at_the_top_gets_nothing_but_is_recovered(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    epoch = await _publish(h, "cache:a", 3)
    result = await _recover(h, "cache:a", 3, epoch)
    assert result["recovered"] is True and "publications" not in result
    assert result["offset"] == 3


async def test_cache_mode_ignores_an_epoch_change(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    await _publish(h, "cache:a", 2)
    result = await _recover(h, "cache:a", 7, "zzzz")
    assert result["recovered"] is True
    assert [p["offset"] for p in result["publications"]] == [2]


async def test_cache_mode_beyond_history_size_still_gets_the_latest(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    epoch = await _publish(h, "tiny:a", 4)
    result = await _recover(h, "tiny:a", 1, epoch)
    assert [p["offset"] for p in result["publications"]] == [4]


async def test_cache_mode_with_empty_history_is_not_recovered(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    result = await _recover(h, "cache:a", 0, "")
    assert "recovered" not in result and "publications" not in result


async def test_cache_mode_subscriber_then_follows_the_stream(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    epoch = await _publish(h, "cache:a", 3)
    conn = await h.connect(user="1")
    req = {"channel": "cache:a", "recover": True, "offset": 1, "epoch": epoch}
    await conn.request({"id": 2, "subscribe": req})
    await h.node.api_publish("cache:a", b'{"n":4}')
    await settle()
    pushes = [m["push"] for m in conn.messages() if "push" in m]
    assert [p["pub"]["offset"] for p in pushes] == [4]
    assert conn.closed is None and "cache:a" in conn.session.subs
