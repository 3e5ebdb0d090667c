"""Tags filters in the subscribe path (docs/channels.md "Tags filters"): recovery in both
modes, positioned delivery, and what a filtered subscribe result carries."""

from __future__ import annotations

from typing import Any

from rotary.channels.options import ChannelOptions, ChannelSettings, Namespace
from rotary.config.model import ClientSettings
from rotary.engines.base import HistoryFilter
from tests.node.conftest import MakeHarness
from tests.node.fakes import Conn, Harness, settle

ENG = {"key": "team", "cmp": "eq", "val": "eng"}


def _opts(mode: str) -> ChannelOptions:
    return ChannelOptions(
        allow_subscribe_for_client=True,
        allow_tags_filter=True,
        history_size=20,
        history_ttl=300.0,
        force_recovery=True,
        force_recovery_mode=mode,
    )


CHANNELS = ChannelSettings(
    namespaces=(Namespace("cache", _opts("cache")), Namespace("stream", _opts("stream")))
)


async def _h(make_harness: MakeHarness) -> Harness:
    return await make_harness(settings=ClientSettings(ping_interval=0), channels=CHANNELS)


async def _publish(h: Harness, channel: str, teams: list[str]) -> str:
    for n, team in enumerate(teams, 1):
        await h.node.api_publish(channel, b'{"n":%d}' % n, tags={"team": team})
    return (await h.node.broker.history(channel, HistoryFilter())).position.epoch


async def _subscribe(h: Harness, channel: str, **fields: Any) -> tuple[Conn, dict[str, Any]]:
    conn = await h.connect(user="1")
    reply = await conn.request({"id": 2, "subscribe": {"channel": channel, "tf": ENG, **fields}})
    return conn, reply


async def test_stream_recovery_hands_over_only_matching_publications(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    epoch = await _publish(h, "stream:a", ["eng", "ops", "eng", "ops"])
    _, reply = await _subscribe(h, "stream:a", recover=True, offset=0, epoch=epoch)
    result = reply["subscribe"]
    assert result["recovered"] is True
    assert [p["offset"] for p in result["publications"]] == [1, 3]


async def test_cache_recovery_hands_over_the_newest_matching_publication(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    epoch = await _publish(h, "cache:a", ["eng", "eng", "ops", "ops"])
    conn, reply = await _subscribe(h, "cache:a", recover=True, offset=1, epoch=epoch)
    result = reply["subscribe"]
    assert result["recovered"] is True
    assert [p["offset"] for p in result["publications"]] == [2]
    await h.node.api_publish("cache:a", b'{"n":5}', tags={"team": "eng"})
    await settle()
    pushes = [m["push"]["pub"]["offset"] for m in conn.messages() if "push" in m]
    assert pushes == [5], "the position stands at the top, past the dropped ones"


async def test_cache_recovery_with_nothing_matching_is_not_recovered(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    epoch = await _publish(h, "cache:b", ["ops", "ops"])
    _, reply = await _subscribe(h, "cache:b", recover=True, offset=1, epoch=epoch)
    result = reply["subscribe"]
    assert result["was_recovering"] is True and "recovered" not in result  # false: left out
    assert "publications" not in result


async def test_a_positioned_filtered_subscriber_keeps_its_subscription_across_dropped_ones(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    conn, reply = await _subscribe(h, "stream:c")
    assert reply["subscribe"]["positioned"] is True
    await _publish(h, "stream:c", ["ops", "ops", "eng"])
    await settle()
    messages = conn.messages()
    assert [m["push"]["pub"]["data"] for m in messages if "push" in m] == [{"n": 3}]
    assert "stream:c" in conn.session.subs and conn.closed is None
