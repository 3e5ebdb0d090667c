"""Life cycle of streaming connections on a real server: a client that goes away is forgotten,
shutdown ends every stream with a disconnect push, and the connection limit covers them."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.functional.cluster_helpers import until
from tests.functional.conftest import default_config, make_token
from tests.functional.streams import open_stream

STREAMS = {"http_stream": True, "sse": True, "uni_sse": True, "uni_http_stream": True}


def _clients(server: Any) -> int:
    return int(server.api("info", {})["result"]["nodes"][0]["num_clients"])


async def test_a_streaming_client_that_goes_away_is_forgotten(rotary_server: Any) -> None:
    server = rotary_server({**default_config(), **STREAMS})
    async with aiohttp.ClientSession() as http:
        bidi = await open_stream(
            http, "sse", server.http_url, [{"id": 1, "connect": {"token": make_token("a")}}]
        )
        uni = await open_stream(
            http, "uni_http_stream", server.http_url, {"token": make_token("b")}
        )
        assert "id" in await bidi.next() and "connect" in await uni.next()
        assert _clients(server) == 2
        await bidi.close()
        await uni.close()
        await until(lambda: _clients(server) == 0, what="both sessions forgotten")


async def test_shutdown_ends_every_stream_with_a_disconnect_push(rotary_server: Any) -> None:
    server = rotary_server({**default_config(), **STREAMS})
    async with aiohttp.ClientSession() as http:
        bidi = await open_stream(
            http, "http_stream", server.http_url, [{"id": 1, "connect": {"token": make_token("a")}}]
        )
        uni = await open_stream(http, "uni_sse_get", server.http_url, {"token": make_token("b")})
        assert "id" in await bidi.next() and "connect" in await uni.next()
        server.process.terminate()
        shutdown = {"code": 3001, "reason": "shutdown"}
        assert await bidi.next() == {"push": {"disconnect": shutdown}}
        assert await uni.next() == {"disconnect": shutdown}
        assert await bidi.ended() == [] and await uni.ended() == []
    assert server.process.wait(10) == 0


async def test_the_connection_limit_counts_streams_and_websockets_together(
    rotary_server: Any, ws_connect: Any
) -> None:
    server = rotary_server({**default_config(), **STREAMS, "client_connection_limit": 2})
    client = await ws_connect(server)
    assert "connect" in await client.request({"id": 1, "connect": {"token": make_token()}})
    async with aiohttp.ClientSession() as http:
        uni = await open_stream(http, "uni_http_stream", server.http_url, {"token": make_token()})
        assert "connect" in await uni.next()
        url = f"{server.http_url}/connection/uni_sse"
        async with http.get(url, params={"cf_connect": "{}"}) as refused:
            assert refused.status == 503
        await uni.close()
