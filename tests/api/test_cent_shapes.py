"""The official `cent` client parses every answer of the HTTP binding (recording node)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cent import (
    AsyncClient,
    BatchRequest,
    BoolValue,
    BroadcastRequest,
    ChannelOptionsOverride,
    ChannelsRequest,
    Disconnect,
    DisconnectRequest,
    HistoryRemoveRequest,
    HistoryRequest,
    InfoRequest,
    PresenceRequest,
    PresenceStatsRequest,
    PublishRequest,
    RefreshRequest,
    StreamPosition,
    SubscribeRequest,
    UnsubscribeRequest,
)
from cent.exceptions import CentApiResponseError, CentUnauthorizedError

from rotary.api.executor import ApiExecutor
from rotary.api.http import add_api_routes
from rotary.config.model import ApiSettings
from rotary.engines.base import ClientInfo, HistoryResult, Publication
from rotary.engines.base import StreamPosition as Position
from rotary.protocol.codes import CommandError, ErrorCode
from rotary.protocol.codes import Disconnect as RotaryDisconnect
from tests.api.fakes import RecordingNode

KEY = "cent-shapes-key"


@pytest.fixture
def node() -> RecordingNode:
    return RecordingNode()


@pytest.fixture
async def server(node: RecordingNode) -> AsyncIterator[TestServer]:
    app = web.Application()
    add_api_routes(app, ApiExecutor(node), ApiSettings(key=KEY))
    async with TestServer(app, host="127.0.0.1") as srv:
        yield srv


@pytest.fixture
async def cent(server: TestServer) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(str(server.make_url("/api")), KEY) as client:
        yield client


async def test_cent_publish_and_broadcast(cent: AsyncClient, node: RecordingNode) -> None:
    result = await cent.publish(PublishRequest(channel="c", data={"a": 1}, tags={"t": "v"}))
    assert (result.offset, result.epoch) == (3, "abcd")
    node.failures["bad"] = CommandError(ErrorCode.UNKNOWN_CHANNEL)
    broadcast = await cent.broadcast(BroadcastRequest(channels=["x", "bad"], data=1))
    ok, failed = broadcast.responses
    assert ok.result is not None and ok.result.offset == 3
    assert failed.error is not None and failed.error.code == 102


async def test_cent_user_methods(cent: AsyncClient, node: RecordingNode) -> None:
    await cent.subscribe(
        SubscribeRequest(
            user="u",
            channel="c",
            info={"i": 1},
            recover_since=StreamPosition(offset=2, epoch="e"),
            override=ChannelOptionsOverride(join_leave=BoolValue(value=True)),
        )
    )
    await cent.unsubscribe(UnsubscribeRequest(user="u", channel="c"))
    await cent.disconnect(
        DisconnectRequest(user="u", whitelist=["w"], disconnect=Disconnect(code=4100, reason="r"))
    )
    await cent.refresh(RefreshRequest(user="u", expired=True))
    assert node.names() == ["api_subscribe", "api_unsubscribe", "api_disconnect", "api_refresh"]
    assert node.last("api_subscribe")["recover_since"] == Position(2, "e")
    assert node.last("api_disconnect")["disconnect"] == RotaryDisconnect(4100, "r")
    assert node.last("api_refresh")["expired"] is True


async def test_cent_presence_history_channels_info(cent: AsyncClient, node: RecordingNode) -> None:
    node.presence_entries = {"c1": ClientInfo("u1", "c1", conn_info=b'{"n":1}')}
    presence = await cent.presence(PresenceRequest(channel="c"))
    assert presence.presence["c1"].conn_info == {"n": 1}
    stats = await cent.presence_stats(PresenceStatsRequest(channel="c"))
    assert (stats.num_clients, stats.num_users) == (2, 1)
    node.history_result = HistoryResult(
        Position(5, "ep"), [Publication(b'{"m":1}', offset=5, info=ClientInfo("u", "c"))]
    )
    history = await cent.history(HistoryRequest(channel="c", limit=-1))
    assert (history.offset, history.epoch, history.publications[0].data) == (5, "ep", {"m": 1})
    assert history.publications[0].info is not None
    await cent.history_remove(HistoryRemoveRequest(channel="c"))
    node.channel_counts = {"c": 4}
    assert (await cent.channels(ChannelsRequest(pattern="*"))).channels["c"].num_clients == 4
    node.nodes = [{"uid": "u", "name": "n", "version": "0.1.0", "num_clients": 1, "uptime": 3}]
    assert (await cent.info(InfoRequest())).nodes[0].uid == "u"


async def test_cent_batch(cent: AsyncClient) -> None:
    result = await cent.batch(
        BatchRequest(
            requests=[PublishRequest(channel="c", data=1), PresenceStatsRequest(channel="c")],
            parallel=True,
        )
    )
    assert result.replies[0].offset == 3  # type: ignore[attr-defined]
    assert result.replies[1].num_users == 1  # type: ignore[attr-defined]


async def test_cent_sees_api_errors_and_bad_keys(cent: AsyncClient, server: TestServer) -> None:
    with pytest.raises(CentApiResponseError) as caught:
        await cent.presence(PresenceRequest(channel=""))
    assert caught.value.code == 107
    async with AsyncClient(str(server.make_url("/api")), "wrong") as bad:
        with pytest.raises(CentUnauthorizedError):
            await bad.info(InfoRequest())
