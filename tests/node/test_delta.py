"""Fossil delta compression of publications (rotary.node.delta), decoded the way the SDKs do
it (centrifuge-python's decoder as the oracle)."""

from __future__ import annotations

from typing import Any

import orjson
from centrifuge.fossil import apply_delta

from rotary.channels.options import ChannelOptions, ChannelSettings, Namespace
from rotary.config.model import ClientSettings
from rotary.engines.base import HistoryFilter, Publication, StreamPosition
from tests.node.conftest import MakeHarness
from tests.node.fakes import Conn, Harness, settle

_OPEN = {"allow_subscribe_for_client": True, "allowed_delta_types": ("fossil",)}
_HISTORY = {"history_size": 20, "history_ttl": 300.0, "force_recovery": True}
CHANNELS = ChannelSettings(
    without_namespace=ChannelOptions(allow_subscribe_for_client=True),
    namespaces=(
        Namespace("dp", ChannelOptions(**_OPEN, **_HISTORY, delta_publish=True)),  # type: ignore[arg-type]
        Namespace("api", ChannelOptions(**_OPEN, **_HISTORY)),  # type: ignore[arg-type]
        Namespace("bare", ChannelOptions(**_OPEN, delta_publish=True)),  # type: ignore[arg-type]
    ),
)
DOC = {"title": "a slowly changing document", "body": "x" * 400}


def _doc(n: int) -> bytes:
    return orjson.dumps({**DOC, "n": n})


class Decoder:
    """What an SDK does with the publications of a delta subscription."""

    def __init__(self) -> None:
        self.prev = b""
        self.deltas = 0

    def feed(self, pub: dict[str, Any]) -> Any:
        data = pub["data"]
        assert isinstance(data, str), pub
        if pub.get("delta"):
            self.prev = bytes(apply_delta(self.prev, data.encode()))
            self.deltas += 1
        else:
            self.prev = data.encode()
        return orjson.loads(self.prev)


async def _h(make_harness: MakeHarness) -> Harness:
    return await make_harness(settings=ClientSettings(ping_interval=0), channels=CHANNELS)


async def _sub(conn: Conn, channel: str, **extra: object) -> dict[str, Any]:
    reply = await conn.request({"id": 2, "subscribe": {"channel": channel, **extra}})
    return dict(reply["subscribe"])


def _pubs(conn: Conn) -> list[dict[str, Any]]:
    return [m["push"]["pub"] for m in conn.messages() if "pub" in m.get("push", {})]


async def test_delta_is_negotiated_only_where_fossil_is_allowed(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    assert (await _sub(conn, "dp:a", delta="fossil"))["delta"] is True
    assert "delta" not in await _sub(conn, "plain", delta="fossil")
    assert "delta" not in await _sub(conn, "dp:b")


async def test_first_publication_is_whole_and_the_next_are_deltas(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    await _sub(conn, "dp:a", delta="fossil")
    for n in range(4):
        await h.node.api_publish("dp:a", _doc(n))
    await settle()
    pubs, decoder = _pubs(conn), Decoder()
    assert [p.get("delta", False) for p in pubs] == [False, True, True, True]
    assert [decoder.feed(p)["n"] for p in pubs] == [0, 1, 2, 3]
    assert all(len(p["data"]) < 40 for p in pubs[1:])


async def test_publications_without_the_delta_flag_arrive_whole(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    await _sub(conn, "api:a", delta="fossil")
    await h.node.api_publish("api:a", _doc(0))
    await h.node.api_publish("api:a", _doc(1))
    await h.node.api_publish("api:a", _doc(2), delta=True)
    await settle()
    pubs, decoder = _pubs(conn), Decoder()
    assert [p.get("delta", False) for p in pubs] == [False, False, True]
    assert [decoder.feed(p)["n"] for p in pubs] == [0, 1, 2]


async def test_subscribers_without_delta_get_plain_publications(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    await _sub(conn, "dp:a")
    await h.node.api_publish("dp:a", _doc(0))
    await h.node.api_publish("dp:a", _doc(1))
    await settle()
    assert [p["data"]["n"] for p in _pubs(conn)] == [0, 1]


async def test_channel_without_history_sends_whole_string_data(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    assert (await _sub(conn, "bare:a", delta="fossil"))["delta"] is True
    await h.node.api_publish("bare:a", _doc(0))
    await h.node.api_publish("bare:a", _doc(1))
    await settle()
    pubs, decoder = _pubs(conn), Decoder()
    assert [p.get("delta", False) for p in pubs] == [False, False]
    assert [decoder.feed(p)["n"] for p in pubs] == [0, 1]


async def test_recovered_publications_form_a_chain_and_live_ones_continue_it(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    for n in range(3):
        await h.node.api_publish("dp:a", _doc(n))
    epoch = (await h.node.broker.history("dp:a", HistoryFilter())).position.epoch
    conn = await h.connect(user="1")
    result = await _sub(conn, "dp:a", delta="fossil", recover=True, offset=0, epoch=epoch)
    recovered, decoder = result["publications"], Decoder()
    assert [p.get("delta", False) for p in recovered] == [False, True, True]
    assert [decoder.feed(p)["n"] for p in recovered] == [0, 1, 2]
    await h.node.api_publish("dp:a", _doc(3))
    await settle()
    [live] = _pubs(conn)
    assert live["delta"] is True and decoder.feed(live)["n"] == 3


async def test_after_a_recovery_with_nothing_missed_the_next_publication_is_whole(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    position = await h.node.api_publish("dp:a", _doc(0))
    conn = await h.connect(user="1")
    extra = {"recover": True, "offset": position.offset, "epoch": position.epoch}
    result = await _sub(conn, "dp:a", delta="fossil", **extra)
    assert result["recovered"] is True and "publications" not in result
    await h.node.api_publish("dp:a", _doc(1))
    await settle()
    [live] = _pubs(conn)
    assert "delta" not in live and Decoder().feed(live)["n"] == 1


async def test_a_gap_ends_a_delta_subscription_with_2500(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    await _sub(conn, "dp:a", delta="fossil")
    position = await h.node.api_publish("dp:a", _doc(0))
    lost = Publication(_doc(2), offset=position.offset + 2, use_delta=True)
    h.node.hub.broadcast_publication("dp:a", lost, StreamPosition(lost.offset, position.epoch))
    await settle()
    messages = conn.messages()
    unsubs = [m["push"]["unsubscribe"] for m in messages if "unsubscribe" in m["push"]]
    assert unsubs == [{"code": 2500, "reason": "insufficient state"}]
    assert len([m for m in messages if "pub" in m["push"]]) == 1
