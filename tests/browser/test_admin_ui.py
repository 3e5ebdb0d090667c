"""The admin UI in headless Chromium against a real server and a real SDK client."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import OpenPage, Screenshot
from tests.functional.conftest import SECRET, ServerHandle, default_config
from tests.sdk.harness import TokenFactory, open_driver

pytestmark = [pytest.mark.sdk, pytest.mark.timeout(60)]

PASSWORD = "browser-test-password"
CHANNEL = "chat:admin-ui"
USER = "sdk-user"
CHANNEL_OPTIONS = {
    "presence": True,
    "join_leave": True,
    "history_size": 10,
    "history_ttl": "300s",
    "allow_subscribe_for_client": True,
}


def admin_config() -> dict[str, Any]:
    return {
        **default_config(),
        "admin": True,
        "admin_password": PASSWORD,
        "admin_secret": "browser-test-admin-secret",
        "name": "rotary-browser-test",
        "namespaces": [{"name": "chat", **CHANNEL_OPTIONS}],
    }


@pytest.fixture
def server(rotary_server: Any) -> ServerHandle:
    handle: ServerHandle = rotary_server(admin_config())
    return handle


async def log_in(page: Any, password: str = PASSWORD) -> None:
    await page.get_by_label("Admin password").fill(password)
    await page.get_by_role("button", name="Log in").click()


async def clients_shown(page: Any) -> str:
    return str(await page.locator('#nodes td[data-field="num_clients"]').inner_text())


async def call_action(page: Any, method: str, fields: dict[str, str]) -> str:
    await page.get_by_role("link", name="Actions").click()
    await page.get_by_label("Server API method").select_option(method)
    for name, value in fields.items():
        await page.locator(f"#field-{name}").fill(value)
    await page.get_by_role("button", name=f"Call {method}").click()
    answer = page.locator("#action-answer")
    await answer.and_(page.locator("[data-outcome]")).wait_for()
    return str(await answer.inner_text())


async def test_the_admin_sees_an_sdk_client_publishes_to_it_and_disconnects_it(
    server: ServerHandle, open_page: OpenPage, screenshot: Screenshot
) -> None:
    page = await open_page(server.http_url + "/")
    await screenshot(page, "admin-login")
    await log_in(page)
    await page.locator("#nodes th", has_text="rotary-browser-test").wait_for()
    assert await clients_shown(page) == "0"

    async with open_driver("python") as sdk:
        await sdk.connect(server.ws_url, token=TokenFactory(SECRET).connection(USER))
        await sdk.wait_for(lambda e: e["ev"] == "connected")
        await sdk.subscribe(CHANNEL)
        await sdk.wait_for(lambda e: e["ev"] == "sub_subscribed")
        # The status page polls every 2 s: the count follows without a reload.
        count = page.locator('#nodes td[data-field="num_clients"]', has_text=re.compile("^1$"))
        await count.wait_for()
        await screenshot(page, "admin-status")

        await page.get_by_role("link", name="Channels").click()
        row = page.locator("#channels-table tr", has_text=CHANNEL)
        assert re.search(r"\b1\b", await row.inner_text())
        await row.get_by_role("button").click()
        await page.locator("#channel-presence", has_text=USER).wait_for()

        answer = await call_action(page, "publish", {"channel": CHANNEL, "data": '{"text": "hi"}'})
        assert '"offset": 1' in answer
        received = await sdk.wait_for(lambda e: e["ev"] == "publication")
        assert received["data"] == {"text": "hi"}
        await page.get_by_role("link", name="Channels").click()
        await page.locator("#channels-table tr", has_text=CHANNEL).get_by_role("button").click()
        await page.locator("#channel-history", has_text='"text": "hi"').wait_for()
        await screenshot(page, "admin-channels")

        start = len(sdk.events)
        await call_action(page, "disconnect", {"user": USER})
        gone = await sdk.wait_for(lambda e: e["ev"] in ("disconnected", "connecting"), start=start)
        assert gone["code"] >= 3000
        await screenshot(page, "admin-actions")


async def test_a_wrong_password_is_refused_and_the_api_needs_a_token(
    server: ServerHandle, open_page: OpenPage
) -> None:
    page = await open_page(server.http_url + "/", allow=("status of 400", "status of 401"))
    await log_in(page, "not the password")
    await page.get_by_role("alert").filter(has_text="Wrong password.").wait_for()
    assert await page.locator("#nav").is_hidden()
    status = await page.evaluate(
        "fetch('/admin/api', {method: 'POST', body: '{\"method\": \"info\"}'}).then(r => r.status)"
    )
    assert status == 401


async def test_every_page_fits_a_phone_screen_without_sideways_scrolling(
    server: ServerHandle, open_page: OpenPage
) -> None:
    page = await open_page(server.http_url + "/", viewport={"width": 360, "height": 740})
    await log_in(page)
    for view in ("status", "channels", "actions"):
        await page.get_by_role("link", name=view.capitalize()).click()
        await page.locator(f"#view-{view}").wait_for()
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{view} is {overflow}px wider than the screen"


async def test_the_login_form_works_from_the_keyboard_alone(
    server: ServerHandle, open_page: OpenPage
) -> None:
    page = await open_page(server.http_url + "/")
    await page.locator("#password").wait_for()
    for _ in range(10):  # skip link, then the form: Tab until the password field has focus
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.id") == "password":
            break
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await page.locator("#nav").wait_for()
