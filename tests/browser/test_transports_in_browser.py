"""HTTP-streaming, SSE and unidirectional SSE in headless Chromium, across origins.

The test page is served by a small aiohttp app on its own loopback port, so every request
from the page to Rotary is cross-origin: the browser enforces CORS for real. Rotary allows
that origin only; a second copy of the page, on another port, is a foreign origin.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.browser.conftest import OpenPage, missing
from tests.functional.conftest import ServerHandle, default_config, free_port, make_token

pytestmark = pytest.mark.timeout(60)

SDK = Path(__file__).parents[2] / "web" / "node_modules" / "centrifuge" / "dist" / "centrifuge.js"
PAGE = Path(__file__).parent / "pages" / "transports.html"

#: What Chromium logs for the WebSocket endpoint that refuses connections (the fallback's cause).
BLOCKED_WEBSOCKET = "WebSocket connection to"


@dataclass
class Setup:
    """A Rotary server, the allowed page origin and a foreign one."""

    rotary: ServerHandle
    allowed: str
    foreign: str

    def publish(self, channel: str, data: Any) -> dict[str, Any]:
        return self.rotary.api("publish", {"channel": channel, "data": data})


async def _serve_page() -> tuple[web.AppRunner, str]:
    """The test page at ``/`` and centrifuge-js's browser build at ``/centrifuge.js``."""

    async def page(_: web.Request) -> web.FileResponse:
        return web.FileResponse(PAGE)

    async def sdk(_: web.Request) -> web.FileResponse:
        return web.FileResponse(SDK)

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/centrifuge.js", sdk)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def setup(rotary_server: Callable[..., ServerHandle]) -> AsyncIterator[Setup]:
    if not SDK.is_file():
        missing(f"centrifuge-js's browser build ({SDK}; make web-deps)")
    allowed_runner, allowed = await _serve_page()
    foreign_runner, foreign = await _serve_page()
    config = default_config() | {
        "http_stream": True,
        "sse": True,
        "uni_sse": True,
        "allow_subscribe_for_client": True,
        "allowed_origins": [allowed],
    }
    try:
        rotary = await asyncio.to_thread(rotary_server, config)
        yield Setup(rotary=rotary, allowed=allowed, foreign=foreign)
    finally:
        await allowed_runner.cleanup()
        await foreign_runner.cleanup()


def _unreachable_websocket() -> str:
    """A WebSocket URL on a loopback port nobody listens on."""
    return f"ws://127.0.0.1:{free_port()}/connection/websocket"


async def _waited(page: Any, expression: str) -> Any:
    """The value of `expression` in `page` once it is truthy (10 s at most)."""
    handle = await page.wait_for_function(expression)
    return await handle.json_value()


async def _received(page: Any, what: str) -> list[Any]:
    """Wait until `window.seen[what]` is not empty; return it."""
    await page.wait_for_function(f"window.seen.{what}.length > 0")
    items: list[Any] = await page.evaluate(f"window.seen.{what}")
    return items


@pytest.mark.parametrize(
    ("streams", "expected"),
    [(["http_stream", "sse"], "http_stream"), (["sse"], "sse")],
    ids=["http_stream-first", "sse-only"],
)
async def test_the_sdk_falls_back_from_a_dead_websocket_and_receives_a_publication(
    setup: Setup, open_page: OpenPage, streams: list[str], expected: str
) -> None:
    page = await open_page(f"{setup.allowed}/", allow=(BLOCKED_WEBSOCKET,))
    posted: list[str] = []
    page.on("request", lambda r: posted.append(urllib.parse.urlsplit(r.url).path))
    base = setup.rotary.http_url
    transports = [{"transport": "websocket", "endpoint": _unreachable_websocket()}]
    transports += [{"transport": name, "endpoint": f"{base}/connection/{name}"} for name in streams]
    channel = f"browser-{uuid.uuid4().hex}"
    token = make_token("browser-user")

    await page.evaluate(
        "([transports, emulation, token, channel]) =>"
        " { connectWithFallback(transports, emulation, token, channel); }",
        [transports, f"{base}/emulation", token, channel],
    )
    assert await _waited(page, "window.seen.transport") == expected

    await asyncio.to_thread(setup.publish, channel, {"text": f"over {expected}"})
    assert await _received(page, "publications") == [{"text": f"over {expected}"}]
    assert "/emulation" in posted  # the subscribe went there, cross-origin JSON: preflighted


async def test_a_plain_event_source_receives_a_publication_on_a_token_channel(
    setup: Setup, open_page: OpenPage
) -> None:
    page = await open_page(f"{setup.allowed}/")
    channel = f"browser-uni-{uuid.uuid4().hex}"
    connect = json.dumps({"token": make_token("reader", channels=[channel])})
    url = f"{setup.rotary.http_url}/connection/uni_sse?cf_connect={urllib.parse.quote(connect)}"

    await page.evaluate("(url) => listenUni(url)", url)
    reply = await _waited(page, "window.seen.connect")
    assert channel in reply["subs"]

    await asyncio.to_thread(setup.publish, channel, {"text": "to a bare EventSource"})
    await page.wait_for_function("window.seen.uni.some((m) => m.pub)")
    messages = await page.evaluate("window.seen.uni")
    publications = [m for m in messages if "pub" in m]
    assert publications[0]["channel"] == channel
    assert publications[0]["pub"]["data"] == {"text": "to a bare EventSource"}


async def _try_from(page: Any, base: str) -> tuple[str, str]:
    """What `page` gets from a POST to /emulation and from an EventSource on uni_sse."""
    # An unknown session: an allowed page reads the 404, a refused one reads nothing.
    unknown = json.dumps({"session": "none", "node": "none", "data": ""})
    connect = urllib.parse.quote(json.dumps({"token": make_token("visitor")}))
    fetched = await page.evaluate(
        "([url, body]) => tryFetch(url, body)", [f"{base}/emulation", unknown]
    )
    streamed = await page.evaluate(
        "(url) => tryEventSource(url)", f"{base}/connection/uni_sse?cf_connect={connect}"
    )
    return fetched, streamed


def _status_for_origin(url: str, origin: str) -> int:
    request = urllib.request.Request(url, headers={"Origin": origin})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as refused:
        refused.close()
        return int(refused.code)


async def test_a_page_from_an_origin_not_allowed_is_refused_with_403(
    setup: Setup, open_page: OpenPage
) -> None:
    base = setup.rotary.http_url
    allowed = await open_page(f"{setup.allowed}/", allow=("status of 404",))
    assert await _try_from(allowed, base) == ("ok 404", "open")

    # Chromium logs the refusal as a CORS failure: the 403 carries no CORS headers.
    foreign = await open_page(f"{setup.foreign}/", allow=("CORS policy", "net::ERR_FAILED"))
    assert await _try_from(foreign, base) == ("TypeError", "error")

    # What the browser hid from the page: the server's answer to that origin.
    uni_sse = f"{base}/connection/uni_sse?cf_connect=%7B%7D"
    assert await asyncio.to_thread(_status_for_origin, uni_sse, setup.foreign) == 403
