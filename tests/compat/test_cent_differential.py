"""The official `cent` client gets the same answers from Centrifugo v6.9.1 and from Rotary.

One sequence of server API calls, through `cent` as an application would make them, against
each server; every result (as `cent` parses it) or error (code and message) is compared after
the usual normalisation (epochs). `info` is compared by its number of nodes only: node
names, uptimes and counters legitimately differ.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bench.centrifugo import start_centrifugo
from bench.common import ServerProcess, start_rotary
from cent import (
    AsyncClient,
    BatchRequest,
    BroadcastRequest,
    ChannelsRequest,
    DisconnectRequest,
    HistoryRemoveRequest,
    HistoryRequest,
    InfoRequest,
    PresenceRequest,
    PresenceStatsRequest,
    PublishRequest,
    RefreshRequest,
    SubscribeRequest,
    UnsubscribeRequest,
)
from cent.exceptions import CentApiResponseError

from tests.compat import configs
from tests.compat.compare import diff, normalise
from tests.compat.runner import Transcript

pytestmark = [pytest.mark.compat]

Call = Callable[[AsyncClient], Awaitable[Any]]

_CALLS: list[tuple[str, Call]] = [
    ("publish", lambda c: c.publish(PublishRequest(channel="chat:c", data={"n": 1}))),
    ("publish tags", lambda c: c.publish(PublishRequest(channel="news", data={}, tags={"k": "v"}))),
    ("publish unknown", lambda c: c.publish(PublishRequest(channel="nope:x", data={}))),
    (
        "broadcast",
        lambda c: c.broadcast(BroadcastRequest(channels=["news", "chat:c"], data={"b": 1})),
    ),
    ("presence", lambda c: c.presence(PresenceRequest(channel="chat:c"))),
    ("presence off", lambda c: c.presence(PresenceRequest(channel="news"))),
    ("presence_stats", lambda c: c.presence_stats(PresenceStatsRequest(channel="chat:c"))),
    ("history", lambda c: c.history(HistoryRequest(channel="chat:c", limit=-1))),
    (
        "history reverse",
        lambda c: c.history(HistoryRequest(channel="chat:c", limit=1, reverse=True)),
    ),
    ("history_remove", lambda c: c.history_remove(HistoryRemoveRequest(channel="chat:c"))),
    ("history after remove", lambda c: c.history(HistoryRequest(channel="chat:c", limit=-1))),
    ("channels", lambda c: c.channels(ChannelsRequest())),
    ("subscribe", lambda c: c.subscribe(SubscribeRequest(user="42", channel="chat:c"))),
    ("unsubscribe", lambda c: c.unsubscribe(UnsubscribeRequest(user="42", channel="chat:c"))),
    ("disconnect", lambda c: c.disconnect(DisconnectRequest(user="42"))),
    ("refresh", lambda c: c.refresh(RefreshRequest(user="42", expired=True))),
    (
        "batch",
        lambda c: c.batch(
            BatchRequest(
                requests=[
                    PublishRequest(channel="chat:c", data={"n": 2}),
                    PresenceStatsRequest(channel="chat:c"),
                ],
                parallel=False,
            )
        ),
    ),
]


@pytest.fixture(scope="module")
def servers(centrifugo_binary: Path) -> Iterator[dict[str, ServerProcess]]:
    cfg = configs.config("base")
    started = {"centrifugo": start_centrifugo(cfg), "rotary": start_rotary(cfg)}
    try:
        yield started
    finally:
        for server in started.values():
            server.stop()


async def _answers(server: ServerProcess) -> list[Any]:
    out: list[Any] = []
    async with AsyncClient(server.url("/api", "http"), configs.API_KEY) as client:
        for name, call in _CALLS:
            try:
                result = await call(client)
            except CentApiResponseError as exc:
                out.append({name: {"error": [exc.code, exc.message]}})
            else:
                out.append({name: json.loads(result.model_dump_json())})
        info = await client.info(InfoRequest())
        out.append({"info nodes": len(info.nodes)})
    return out


async def test_cent_gets_the_same_answers_from_both_servers(
    servers: dict[str, ServerProcess],
) -> None:
    answers = {name: normalise(Transcript(await _answers(s))) for name, s in servers.items()}
    found = diff(answers["centrifugo"], answers["rotary"])
    shown = {k: "\n".join(json.dumps(e, sort_keys=True) for e in v) for k, v in answers.items()}
    assert not found, (
        f"centrifugo:\n{shown['centrifugo']}\nrotary:\n{shown['rotary']}\n"
        + "\n".join(str(d) for d in found)
    )
