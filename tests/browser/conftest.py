"""Headless Chromium through Playwright, for tests of pages served by Rotary.

Debian's ``chromium`` is driven through Playwright's ``executable_path``: no browser is ever
downloaded (``tools/ensure.sh chromium`` installs the package; ``make test`` runs it). Where
chromium is missing the tests skip, except under ``CI=true``, where they fail.

Fixtures:

- `browser`: a launched Chromium (one per test; about half a second).
- `open_page`: ``await open_page(url, allow=("status of 400",))`` → a page in a fresh
  context (own storage, as a separate visitor). Every console error and uncaught page
  error fails the test at teardown, unless its text contains one of `allow`.
- `screenshot`: ``await screenshot(page, "admin-status")`` writes
  ``$ROTARY_SCREENSHOTS/admin-status.png`` when that variable names a folder (the docs' images
  come from ``ROTARY_SCREENSHOTS=docs/img``), and nothing otherwise.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.functional.conftest import rotary_server  # noqa: F401 - shared with the browser tests

#: Where Debian installs chromium; ROTARY_CHROMIUM may name another binary.
CHROMIUM = os.environ.get("ROTARY_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/browser carries the ``browser`` marker."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.browser)


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def missing(what: str) -> None:
    """Skip the test for lack of `what`, or fail it under CI (nothing may skip there)."""
    if under_ci():
        pytest.fail(f"{what} is missing (CI=true: tools/ensure.sh and make should provide it)")
    pytest.skip(f"{what} is missing")


@dataclass
class PageLog:
    """Console errors and uncaught exceptions of one page."""

    allow: tuple[str, ...] = ()
    errors: list[str] = field(default_factory=list)

    def console(self, message: Any) -> None:
        if message.type == "error":
            self.add(f"console error: {message.text}")

    def add(self, text: str) -> None:
        if not any(allowed in text for allowed in self.allow):
            self.errors.append(text)


@pytest.fixture
def chromium() -> str:
    """The chromium binary the tests drive."""
    if not Path(CHROMIUM).is_file():
        missing(f"chromium ({CHROMIUM}; tools/ensure.sh chromium)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        missing("the playwright package (make install)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


OpenPage = Callable[..., Awaitable[Any]]


@pytest.fixture
async def open_page(browser: Any) -> AsyncIterator[OpenPage]:
    logs: list[PageLog] = []

    async def open_(url: str, *, allow: Iterable[str] = (), viewport: Any = None) -> Any:
        context = await browser.new_context(viewport=viewport or {"width": 1100, "height": 760})
        page = await context.new_page()
        log = PageLog(tuple(allow))
        page.on("console", log.console)
        page.on("pageerror", lambda error: log.add(f"page error: {error}"))
        page.set_default_timeout(10_000)
        logs.append(log)
        await page.goto(url)
        return page

    yield open_
    errors = [error for log in logs for error in log.errors]
    assert errors == [], "the pages logged errors"


Screenshot = Callable[[Any, str], Awaitable[None]]


@pytest.fixture
def screenshot() -> Screenshot:
    folder = os.environ.get("ROTARY_SCREENSHOTS", "")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)

    async def take(page: Any, name: str) -> None:
        if folder:
            await page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)

    return take
