"""The official `cent` client against a real rotary process, for every OSS method it offers.

Effects on connections are checked with a raw WebSocket client (aiohttp) speaking protocol v2
JSON: it connects with an HS256 token, answers pings, and collects pushes and the close code.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import jwt
import pytest
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

from tests.functional.conftest import API_KEY, SECRET, ServerHandle, default_config

WAIT = 10.0  # upper bound for anything to arrive; never a timing assertion
ROOM = "chat:room"


def api_config() -> dict[str, Any]:
    """Default config plus a ``chat`` namespace with presence, history and client subscribe."""
    return {
        **default_config(),
        "namespaces": [
            {
                "name": "chat",
                "presence": True,
                "join_leave": True,
                "history_size": 10,
                "history_ttl": "300s",
                "allow_subscribe_for_client": True,
            }
        ],
    }


def token(user: str, **claims: Any) -> str:
    return jwt.encode({"sub": user, "exp": int(time.time()) + 3600, **claims}, SECRET, "HS256")


class WsClient:
    """A protocol-v2 JSON WebSocket connection: commands by id, pushes in a queue."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.pushes: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.closed = asyncio.Event()
        self.client_id = ""
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            for line in msg.data.split("\n"):
                await self._dispatch(json.loads(line))
        self.closed.set()

    async def _dispatch(self, reply: dict[str, Any]) -> None:
        if not reply:
            await self.ws.send_str("{}")  # pong
        elif reply.get("id"):
            self._waiting.pop(reply["id"]).set_result(reply)
        elif "push" in reply:
            self.pushes.put_nowait(reply["push"])

    async def command(self, **command: Any) -> dict[str, Any]:
        """Send one command; its reply (raises on an error reply)."""
        cid = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[cid] = future
        await self.ws.send_str(json.dumps({"id": cid, **command}))
        reply = await asyncio.wait_for(future, WAIT)
        assert "error" not in reply, reply
        return reply

    async def push(self, kind: str) -> dict[str, Any]:
        """The next push carrying `kind` (``pub``, ``subscribe``, ``unsubscribe``…)."""
        while True:
            push = await asyncio.wait_for(self.pushes.get(), WAIT)
            if kind in push:
                return push

    async def close_code(self) -> int | None:
        """The close code once the server has closed the connection."""
        await asyncio.wait_for(self.closed.wait(), WAIT)
        return self.ws.close_code

    async def aclose(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


Connect = Callable[..., Any]


@pytest.fixture
async def server(rotary_server: Callable[..., ServerHandle]) -> ServerHandle:
    return rotary_server(api_config())


@pytest.fixture
async def cent(server: ServerHandle) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(server.api_url, API_KEY) as client:
        yield client


@pytest.fixture
async def connect(server: ServerHandle) -> AsyncIterator[Connect]:
    """`await connect(user)` → a connected WsClient (closed at the end of the test)."""
    session = aiohttp.ClientSession()
    clients: list[WsClient] = []

    async def open_one(user: str) -> WsClient:
        ws = await session.ws_connect(server.ws_url)
        client = WsClient(ws)
        clients.append(client)
        reply = await client.command(connect={"token": token(user)})
        client.client_id = reply["connect"]["client"]
        return client

    yield open_one
    for client in clients:
        await client.aclose()
    await session.close()


# publish / broadcast


async def test_publish_reaches_a_subscriber_and_reports_the_history_position(
    cent: AsyncClient, connect: Connect
) -> None:
    ws = await connect("alice")
    await ws.command(subscribe={"channel": ROOM})
    result = await cent.publish(PublishRequest(channel=ROOM, data={"text": "hi"}, tags={"k": "v"}))
    assert result.offset == 1
    assert result.epoch
    push = await ws.push("pub")
    assert push["channel"] == ROOM
    assert push["pub"]["data"] == {"text": "hi"}
    assert push["pub"]["tags"] == {"k": "v"}


async def test_publish_without_history_omits_offset_and_epoch(server: ServerHandle) -> None:
    assert server.api("publish", {"channel": "news", "data": {"x": 1}}) == {"result": {}}


async def test_publish_b64data_is_published_as_bytes(cent: AsyncClient) -> None:
    b64 = base64.b64encode(b'{"from":"b64"}').decode()
    await cent.publish(PublishRequest(channel="chat:b64", data=None, b64data=b64))
    history = await cent.history(HistoryRequest(channel="chat:b64", limit=-1))
    assert [p.data for p in history.publications] == [{"from": "b64"}]


async def test_publish_to_an_unknown_namespace_gets_error_102(cent: AsyncClient) -> None:
    with pytest.raises(CentApiResponseError) as caught:
        await cent.publish(PublishRequest(channel="nope:x", data={}))
    assert (caught.value.code, caught.value.message) == (102, "unknown channel")


async def test_broadcast_answers_each_channel_in_order(cent: AsyncClient, connect: Connect) -> None:
    ws = await connect("bob")
    await ws.command(subscribe={"channel": "chat:b"})
    result = await cent.broadcast(
        BroadcastRequest(channels=["chat:a", "nope:x", "chat:b"], data={"all": True})
    )
    first, unknown, last = result.responses
    assert first.result is not None and first.result.offset == 1
    assert unknown.error is not None and unknown.error.code == 102
    assert last.result is not None and last.result.offset == 1
    assert (await ws.push("pub"))["pub"]["data"] == {"all": True}


# subscribe / unsubscribe / disconnect / refresh


async def test_server_side_subscribe_pushes_subscribe_then_publications(
    cent: AsyncClient, connect: Connect
) -> None:
    ws = await connect("carol")
    await cent.subscribe(
        SubscribeRequest(
            user="carol",
            channel="chat:server",
            data={"welcome": 1},
            override=ChannelOptionsOverride(presence=BoolValue(value=True)),
        )
    )
    push = await ws.push("subscribe")
    assert push["channel"] == "chat:server"
    assert push["subscribe"].get("data") == {"welcome": 1}
    await cent.publish(PublishRequest(channel="chat:server", data={"n": 1}))
    assert (await ws.push("pub"))["pub"]["data"] == {"n": 1}


async def test_subscribe_with_recover_since_is_accepted(
    cent: AsyncClient, connect: Connect
) -> None:
    await connect("cid")
    request = SubscribeRequest(
        user="cid", channel="chat:rec", recover_since=StreamPosition(offset=0, epoch="")
    )
    assert (await cent.subscribe(request)).model_dump() == {}


async def test_unsubscribe_pushes_unsubscribe_with_code_2000(
    cent: AsyncClient, connect: Connect
) -> None:
    ws = await connect("dave")
    await ws.command(subscribe={"channel": ROOM})
    await cent.unsubscribe(UnsubscribeRequest(user="dave", channel=ROOM))
    push = await ws.push("unsubscribe")
    assert push["channel"] == ROOM
    assert push["unsubscribe"]["code"] == 2000


async def test_disconnect_closes_the_socket_with_3503_by_default(
    cent: AsyncClient, connect: Connect
) -> None:
    ws = await connect("erin")
    await cent.disconnect(DisconnectRequest(user="erin"))
    assert await ws.close_code() == 3503


async def test_disconnect_with_custom_code_and_whitelist_spares_the_whitelisted(
    cent: AsyncClient, connect: Connect
) -> None:
    kept = await connect("frank")
    dropped = await connect("frank")
    await cent.disconnect(
        DisconnectRequest(
            user="frank",
            whitelist=[kept.client_id],
            disconnect=Disconnect(code=4501, reason="go away"),
        )
    )
    assert await dropped.close_code() == 4501
    await kept.command(subscribe={"channel": ROOM})  # still connected


async def test_refresh_with_expired_closes_with_3005(cent: AsyncClient, connect: Connect) -> None:
    ws = await connect("gina")
    await cent.refresh(RefreshRequest(user="gina", expire_at=int(time.time()) + 600))
    await cent.refresh(RefreshRequest(user="gina", expired=True))
    assert await ws.close_code() == 3005


# presence / history / channels / info


async def test_presence_and_stats_show_a_subscribed_client(
    cent: AsyncClient, connect: Connect
) -> None:
    ws = await connect("hank")
    await ws.command(subscribe={"channel": ROOM})
    presence = await cent.presence(PresenceRequest(channel=ROOM))
    assert list(presence.presence) == [ws.client_id]
    entry = presence.presence[ws.client_id]
    assert (entry.user, entry.client) == ("hank", ws.client_id)
    stats = await cent.presence_stats(PresenceStatsRequest(channel=ROOM))
    assert (stats.num_clients, stats.num_users) == (1, 1)


async def test_presence_where_it_is_off_gets_error_108(cent: AsyncClient) -> None:
    with pytest.raises(CentApiResponseError) as caught:
        await cent.presence(PresenceRequest(channel="news"))
    assert caught.value.code == 108


async def test_history_filters_and_history_remove_keeps_the_position(
    cent: AsyncClient,
) -> None:
    for n in range(3):
        await cent.publish(PublishRequest(channel="chat:h", data={"n": n}))
    everything = await cent.history(HistoryRequest(channel="chat:h", limit=-1))
    assert [p.data["n"] for p in everything.publications] == [0, 1, 2]
    assert [p.offset for p in everything.publications] == [1, 2, 3]
    since = StreamPosition(offset=1, epoch=everything.epoch)
    after = await cent.history(HistoryRequest(channel="chat:h", limit=-1, since=since))
    assert [p.offset for p in after.publications] == [2, 3]
    newest = await cent.history(HistoryRequest(channel="chat:h", limit=1, reverse=True))
    assert [p.offset for p in newest.publications] == [3]
    await cent.history_remove(HistoryRemoveRequest(channel="chat:h"))
    emptied = await cent.history(HistoryRequest(channel="chat:h", limit=-1))
    assert (emptied.publications, emptied.offset, emptied.epoch) == ([], 3, everything.epoch)


async def test_history_since_another_epoch_gets_error_112(cent: AsyncClient) -> None:
    await cent.publish(PublishRequest(channel="chat:e", data={}))
    since = StreamPosition(offset=1, epoch="not-the-epoch")
    with pytest.raises(CentApiResponseError) as caught:
        await cent.history(HistoryRequest(channel="chat:e", limit=-1, since=since))
    assert caught.value.code == 112


async def test_channels_lists_active_channels_matching_the_pattern(
    cent: AsyncClient, connect: Connect
) -> None:
    ws = await connect("ivy")
    await ws.command(subscribe={"channel": ROOM})
    await ws.command(subscribe={"channel": "chat:other"})
    everything = await cent.channels(ChannelsRequest())
    assert everything.channels[ROOM].num_clients == 1
    filtered = await cent.channels(ChannelsRequest(pattern="chat:r*"))
    assert set(filtered.channels) == {ROOM}


async def test_info_describes_this_node(cent: AsyncClient, connect: Connect) -> None:
    await connect("jack")
    (node,) = (await cent.info(InfoRequest())).nodes
    assert node.uid
    assert node.name
    assert node.num_clients == 1


# batch, auth, the legacy endpoint


async def test_batch_replies_per_command_in_order(cent: AsyncClient, connect: Connect) -> None:
    ws = await connect("kim")
    await ws.command(subscribe={"channel": ROOM})
    result = await cent.batch(
        BatchRequest(
            requests=[
                PublishRequest(channel=ROOM, data={"i": 1}),
                PresenceStatsRequest(channel=ROOM),
                PublishRequest(channel=ROOM, data={"i": 2}),
            ],
            parallel=False,
        )
    )
    first, stats, second = result.replies
    assert (first.offset, second.offset) == (1, 2)  # type: ignore[attr-defined]
    assert stats.num_clients == 1  # type: ignore[attr-defined]
    assert [(await ws.push("pub"))["pub"]["data"]["i"] for _ in range(2)] == [1, 2]


async def test_parallel_batch_answers_every_command(cent: AsyncClient) -> None:
    requests = [PublishRequest(channel=f"chat:p{i}", data={"i": i}) for i in range(5)]
    result = await cent.batch(BatchRequest(requests=requests, parallel=True))
    assert [r.offset for r in result.replies] == [1] * 5  # type: ignore[attr-defined]


async def test_wrong_api_key_is_unauthorized(server: ServerHandle) -> None:
    async with AsyncClient(server.api_url, "wrong-key") as client:
        with pytest.raises(CentUnauthorizedError):
            await client.info(InfoRequest())


def test_legacy_endpoint_answers_one_line_per_command(server: ServerHandle) -> None:
    body = (
        b'{"id":1,"method":"publish","params":{"channel":"chat:l","data":1}}\n{"id":2,"method":9}'
    )
    req = urllib.request.Request(
        server.api_url, data=body, headers={"Authorization": f"apikey {API_KEY}"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=WAIT) as resp:
        lines = [json.loads(line) for line in resp.read().split(b"\n")]
    assert lines[0]["id"] == 1
    assert lines[0]["result"]["offset"] == 1
    assert lines[1]["id"] == 2
    assert len(lines[1]["result"]["nodes"]) == 1
