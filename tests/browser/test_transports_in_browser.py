"""HTTP-streaming, SSE and unidirectional SSE in headless Chromium, across origins.

The test page is served by a small HTTP server on its own loopback port, so every request
from the page to Rotary is cross-origin: the browser enforces CORS for real. Rotary allows
that origin only; a second copy of the page, on another port, is a foreign origin.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

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


class _PageHandler(http.server.BaseHTTPRequestHandler):
    """The test page at ``/`` and centrifuge-js's browser build at ``/centrifuge.js``."""

    files: ClassVar[dict[str, tuple[Path, str]]] = {
        "/": (PAGE, "text/html; charset=utf-8"),
        "/centrifuge.js": (SDK, "text/javascript"),
    }

    def do_GET(self) -> None:
        if self.path not in self.files:
            self.send_error(404)
            return
        path, content_type = self.files[self.path]
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest shows the page's own errors."""


@contextlib.contextmanager
def _page_origin() -> Iterator[str]:
    """Serve the test page on a free loopback port (in a thread); yield its origin."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def _rotary(config: dict[str, Any], folder: Path) -> Iterator[ServerHandle]:
    """A `rotary` process with `config` on a free loopback port, until the block ends."""
    config_path, log_path = folder / "config.json", folder / "rotary.log"
    config_path.write_text(json.dumps(config))
    port = free_port()
    command = [sys.executable, "-m", "rotary", "-c", str(config_path), "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen([*command, "--address", "127.0.0.1"], stdout=log, stderr=log)
    handle = ServerHandle(port=port, config=config, process=process, log_path=log_path)
    try:
        _wait_healthy(handle)
        yield handle
    finally:
        handle.stop()


def _wait_healthy(handle: ServerHandle) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if handle.process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{handle.http_url}/health", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"rotary did not start:\n{handle.log()}")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """One server and two page origins for the whole module (starting Rotary takes seconds)."""
    if not SDK.is_file():
        missing(f"centrifuge-js's browser build ({SDK}; make web-deps)")
    with _page_origin() as allowed, _page_origin() as foreign:
        config = default_config() | {
            "http_stream": True,
            "sse": True,
            "uni_sse": True,
            "allow_subscribe_for_client": True,
            "allowed_origins": [allowed],
        }
        with _rotary(config, tmp_path_factory.mktemp("rotary")) as rotary:
            yield Setup(rotary=rotary, allowed=allowed, foreign=foreign)


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
