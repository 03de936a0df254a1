"""Helpers for the browser tests: headless Chromium (Debian's, driven by
Playwright), an agent signed in to the workspace, screenshots for people to look
at (tests/artifacts/, ignored by git), and opening a conversation from a view."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.channels.test_webchat_widget import CHROMIUM, CHROMIUM_FLAGS, HAVE_CHROMIUM
from tests.web.conftest import PASSWORD

ARTIFACTS = Path(__file__).parent.parent / "artifacts"
TIMEOUT = 15_000


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    if not HAVE_CHROMIUM:
        pytest.skip(f"Chromium is not installed at {CHROMIUM}: install Debian's `chromium`")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS
        )
        yield browser
        await browser.close()


async def signed_in_page(
    chromium,
    hub,
    email: str,
    *,
    screenshot: str | None = None,
    viewport: tuple[int, int] = (1400, 860),
    timezone: str | None = None,
) -> Any:
    width, height = viewport
    context = await chromium.new_context(
        viewport={"width": width, "height": height}, locale="vi-VN", timezone_id=timezone
    )
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    await page.goto(str(hub.client.make_url("/app")))
    await page.fill("#signin-email", email)
    await page.fill("#signin-password", PASSWORD)
    if screenshot:
        await shot(page, screenshot)
    await page.click("#signin-form button[type=submit]")
    await page.wait_for_selector("#workspace:not([hidden])")
    return page


async def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"workspace-{name}.png"))


async def open_unassigned(page, conversation_id: str) -> None:
    """Open a conversation from the Unassigned view, once its timeline shows."""
    await page.click("button[data-view=unassigned]")
    await page.click(f"#conversations li[data-id='{conversation_id}']")
    await page.wait_for_selector("#timeline .msg[data-id]")
