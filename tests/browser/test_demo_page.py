"""The demo chat of `rotary dev` in headless Chromium: two visitors, presence, history, refresh."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import OpenPage, Screenshot, missing
from tests.functional.conftest import free_port

pytestmark = pytest.mark.timeout(60)

SDK = Path(__file__).parents[2] / "web" / "node_modules" / "centrifuge" / "dist" / "centrifuge.js"


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[str]:
    """`rotary dev` on a free loopback port (its config created in `tmp_path`); its base URL."""
    if not SDK.is_file():
        missing(f"centrifuge-js's browser build ({SDK}; make web-deps)")
    port = free_port()
    command = [sys.executable, "-m", "rotary", "dev", "--port", str(port)]
    command += ["--address", "127.0.0.1", "--demo-sdk", str(SDK)]
    log = (tmp_path / "rotary.log").open("wb")
    process = subprocess.Popen(command, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, tmp_path / "rotary.log")
        yield url
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"rotary dev exited:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"rotary dev did not start:\n{log.read_text()}")


async def visit(open_page: OpenPage, url: str, user: str) -> Any:
    page = await open_page(f"{url}/demo/?user={user}&room=browser-test&ttl=5")
    await page.locator("body[data-state=connected]").wait_for()
    await page.locator("#online li", has_text=user).wait_for()
    return page


async def test_a_message_travels_between_two_pages_and_survives_a_reload(
    dev_server: str, open_page: OpenPage, screenshot: Screenshot
) -> None:
    alice = await visit(open_page, dev_server, "alice")
    bob = await visit(open_page, dev_server, "bob")
    await alice.locator("#messages li.system", has_text="bob joined").wait_for()
    await alice.locator("#online li", has_text="bob").wait_for()

    await alice.get_by_role("textbox", name="Message").fill("hello bob")
    await alice.get_by_role("button", name="Send").click()
    await bob.locator("#messages li", has_text="hello bob").wait_for()
    assert await bob.locator("#messages li[data-user=alice]").count() == 1

    await bob.reload()
    await bob.locator("#messages li[data-user=alice]", has_text="hello bob").wait_for()
    await alice.locator("#messages li.system", has_text="bob left").wait_for()

    # Tokens live 5 s: the SDK asks the dev server for a new one before the old one ends.
    await alice.locator("#events li[data-kind=refresh]").wait_for(timeout=15_000)
    assert await alice.locator("body[data-state=connected]").count() == 1
    await screenshot(alice, "demo")


def test_the_token_endpoint_exists_only_in_development_mode(rotary_server: Any) -> None:
    server = rotary_server()
    request = urllib.request.Request(
        f"{server.http_url}/demo/token", data=b'{"user": "mallory"}', method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    refused.value.close()
    assert refused.value.code == 404
