"""publish, presence, history, rpc, the outbound queue and the server-API surface."""

from __future__ import annotations

import asyncio

import pytest

from rotary.auth import SubscribeOverride
from rotary.channels.options import ChannelOptions, ChannelSettings
from rotary.config.model import ClientSettings
from rotary.engines.base import ClientInfo, HistoryFilter, Publication, StreamPosition
from rotary.node.auth import ConnectCredentials
from rotary.node.outbox import Outbox
from rotary.protocol.codes import CommandError, Disconnect
from tests.node.conftest import MakeHarness
from tests.node.fakes import RecordingTransport, settle

OPTIONS = ChannelOptions(
    allow_subscribe_for_client=True,
    allow_publish_for_subscriber=True,
    presence=True,
    allow_presence_for_subscriber=True,
    history_size=5,
    history_ttl=60.0,
    allow_history_for_subscriber=True,
)
CHANNELS = ChannelSettings(without_namespace=OPTIONS)


async def test_publish_for_subscriber_needs_the_subscription(make_harness: MakeHarness) -> None:
    h = await make_harness(channels=CHANNELS)
    conn = await h.connect(user="1", info=b'{"n":1}')
    denied = await conn.request({"id": 2, "publish": {"channel": "a", "data": {"x": 1}}})
    assert denied["error"]["code"] == 103
    await conn.request({"id": 3, "subscribe": {"channel": "a"}})
    await conn.send({"id": 4, "publish": {"channel": "a", "data": {"x": 1}}})
    assert conn.messages() == [
        {
            "push": {
                "channel": "a",
                "pub": {
                    "data": {"x": 1},
                    "info": {"user": "1", "client": "client-1", "conn_info": {"n": 1}},
                    "offset": 1,
                },
            }
        },
        {"id": 4, "publish": {}},
    ]


async def test_publish_without_data_closes_3501(make_harness: MakeHarness) -> None:
    h = await make_harness(channels=CHANNELS)
    conn = await h.connect(user="1")
    await conn.send({"id": 2, "publish": {"channel": "a"}})
    assert conn.closed is not None and conn.closed.code == 3501


async def test_presence_and_stats_list_subscribers(make_harness: MakeHarness) -> None:
    h = await make_harness(channels=CHANNELS)
    conn = await h.connect(user="1")
    await conn.request({"id": 2, "subscribe": {"channel": "a"}})
    presence = await conn.request({"id": 3, "presence": {"channel": "a"}})
    assert presence["presence"] == {"presence": {"client-1": {"user": "1", "client": "client-1"}}}
    stats = await conn.request({"id": 4, "presence_stats": {"channel": "a"}})
    assert stats["presence_stats"] == {"num_clients": 1, "num_users": 1}


async def test_history_caps_the_limit(make_harness: MakeHarness) -> None:
    settings = ClientSettings(history_max_publication_limit=2)
    h = await make_harness(settings=settings, channels=CHANNELS)
    for n in range(4):
        await h.node.api_publish("a", b'{"n":%d}' % n)
    conn = await h.connect(user="1")
    await conn.request({"id": 2, "subscribe": {"channel": "a"}})
    reply = await conn.request({"id": 3, "history": {"channel": "a", "limit": 100}})
    assert len(reply["history"]["publications"]) == 2
    assert reply["history"]["offset"] == 4


async def test_empty_history_still_has_publications_epoch_and_offset(
    make_harness: MakeHarness,
) -> None:
    h = await make_harness(channels=CHANNELS)
    conn = await h.connect(user="1")
    await conn.request({"id": 2, "subscribe": {"channel": "a"}})
    reply = await conn.request({"id": 3, "history": {"channel": "a", "limit": 0}})
    assert set(reply["history"]) == {"publications", "epoch", "offset"}


async def test_rpc_without_handler_gets_108(make_harness: MakeHarness) -> None:
    h = await make_harness()
    conn = await h.connect(user="1")
    reply = await conn.request({"id": 2, "rpc": {"method": "x"}})
    assert reply["error"] == {"code": 108, "message": "not available"}


async def test_queue_over_its_limit_disconnects_3008(make_harness: MakeHarness) -> None:
    h = await make_harness(settings=ClientSettings(queue_max_size=100), channels=CHANNELS)
    conn = await h.connect(user="1")
    await conn.request({"id": 2, "subscribe": {"channel": "a"}})
    for _ in range(10):
        h.node.hub.broadcast_publication(
            "a", Publication(b'"' + b"x" * 40 + b'"'), StreamPosition()
        )
    await settle()
    assert conn.closed is not None and conn.closed.code == 3008


class _StuckTransport(RecordingTransport):
    async def write(self, frame: bytes) -> None:
        await asyncio.sleep(3600)


async def test_write_slower_than_the_timeout_disconnects_3009() -> None:
    transport = _StuckTransport()
    failures: list[Disconnect] = []
    outbox = Outbox(transport, max_size=1000, write_timeout=0.01, on_failure=failures.append)
    runner = asyncio.get_running_loop().create_task(outbox.run())
    outbox.push(b"{}")
    await asyncio.wait_for(runner, 5)
    assert [d.code for d in failures] == [3009]
    assert transport.closed is not None and transport.closed.code == 3009


async def test_queued_messages_are_joined_into_one_frame() -> None:
    transport = RecordingTransport()
    outbox = Outbox(transport, max_size=1000, write_timeout=1, on_failure=lambda d: None)
    for n in range(3):
        outbox.push(b'{"n":%d}' % n)
    runner = asyncio.get_running_loop().create_task(outbox.run())
    await settle()
    outbox.close(Disconnect(3001, "shutdown"))
    await runner
    assert transport.frames == [b'{"n":0}\n{"n":1}\n{"n":2}']


async def test_api_publish_uses_namespace_history(make_harness: MakeHarness) -> None:
    h = await make_harness(channels=CHANNELS)
    position = await h.node.api_publish("a", b"{}")
    assert position.offset == 1
    history = await h.node.api_history("a", HistoryFilter(limit=-1))
    assert len(history.publications) == 1


async def test_api_presence_is_108_when_presence_is_off(make_harness: MakeHarness) -> None:
    h = await make_harness()
    with pytest.raises(CommandError) as info:
        await h.node.api_presence("a")
    assert info.value.error.code == 108


async def test_api_unknown_namespace_is_102(make_harness: MakeHarness) -> None:
    h = await make_harness()
    with pytest.raises(CommandError) as info:
        await h.node.api_publish("nope:a", b"{}")
    assert info.value.error.code == 102


async def test_api_disconnect_spares_the_whitelist(make_harness: MakeHarness) -> None:
    h = await make_harness()
    h.auth.connect["t"] = ConnectCredentials(user="1")
    first = await h.connect(token="t")
    second = await h.connect(token="t")
    await h.node.api_disconnect("1", whitelist=[first.session.id])
    await settle()
    assert first.closed is None
    assert second.closed is not None and second.closed.code == 3503


async def test_api_refresh_with_expired_flag_closes_3005(make_harness: MakeHarness) -> None:
    h = await make_harness()
    conn = await h.connect(user="1")
    await h.node.api_refresh("1", expired=True)
    await settle()
    assert conn.closed is not None and conn.closed.code == 3005


async def test_api_subscribe_with_override_and_info(make_harness: MakeHarness) -> None:
    h = await make_harness(channels=CHANNELS)
    conn = await h.connect(user="1")
    override = SubscribeOverride(force_positioning=True)
    await h.node.api_subscribe("1", "a", info=b'{"i":1}', override=override)
    await settle()
    [push] = conn.messages()
    assert push["push"]["channel"] == "a"
    assert push["push"]["subscribe"]["positioned"] is True
    presence = await h.node.api_presence("a")
    assert presence["client-1"] == ClientInfo("1", "client-1", None, b'{"i":1}')


async def test_info_counts_and_channels(make_harness: MakeHarness) -> None:
    h = await make_harness(channels=CHANNELS)
    conn = await h.connect(user="1")
    await conn.request({"id": 2, "subscribe": {"channel": "a"}})
    info = h.node.info()
    assert (info["num_clients"], info["num_users"], info["num_channels"], info["num_subs"]) == (
        1,
        1,
        1,
        1,
    )
    assert await h.node.api_channels("a*") == {"a": 1}
    await conn.close()
    assert h.node.info()["num_clients"] == 0 and h.node.info()["num_subs"] == 0
