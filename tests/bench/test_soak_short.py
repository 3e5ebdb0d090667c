"""The short form of `bench soak` (make test): after churn, every client leaving brings
the server's descriptors and every per-user and per-channel count back to their baseline;
and a client the server cuts is counted by its close code."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from bench.common import API_KEY
from bench.servers import ROTARY_STANDARD, start_rotary_with, ws_path
from bench.soak import soak, soak_churn, soak_open


def test_short_soak_returns_descriptors_and_counts_to_their_baseline() -> None:
    figures = soak(60, 3.0)["figures"]
    for key in ("fds", "num_clients", "num_users", "num_channels", "num_subs"):
        assert figures[f"soak_{key}_after"] == figures[f"soak_{key}_before"], key
    assert figures["soak_num_clients_before"] == 0
    assert figures["soak_dropped_by_server"] == 0, "the server closed a soak client on its own"


@pytest.mark.timeout(60)
def test_a_client_the_server_disconnects_is_counted_by_its_close_code() -> None:
    server = start_rotary_with(ROTARY_STANDARD)

    async def churn_after_user_u3_is_cut() -> dict[str, object]:
        url = server.url(ws_path("rotary"))
        await soak_open(url=url, exp=2**31 - 1, start=0, count=10)
        # Cut before the churn: a cut racing the churn's own reconnects may find u3 between
        # two connections, and its close frame would arrive after the last sweep.
        cut = {"user": "u3", "disconnect": {"code": 4500, "reason": "soak test"}}
        await asyncio.to_thread(_api, server.url("/api/disconnect", "http"), cut)
        return await soak_churn(seconds=2.0, start=0, count=10)

    try:
        reply = asyncio.run(churn_after_user_u3_is_cut())
    finally:
        server.stop()
    assert reply["dropped"] == {"closed by the server: 4500": 1}


def _api(url: str, params: dict[str, object]) -> None:
    import urllib.request

    request = urllib.request.Request(
        url, data=orjson.dumps(params), headers={"X-API-Key": API_KEY}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert b'"error"' not in response.read()
