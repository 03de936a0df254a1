"""The unsubscribe page a campaign's link opens: in the contact's language (as
the mail's footer was), locked down like every page hub shows customers, and
working in a real browser under that lock (its style allowed by hash, the
button posting to hub)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.campaigns.conftest import CampaignHub, contact
from tests.channels.test_webchat_widget import CHROMIUM, CHROMIUM_FLAGS, HAVE_CHROMIUM


def link_path(app: CampaignHub, contact_id: str) -> str:
    campaigns = app.hub.runtime.campaigns
    assert campaigns is not None
    url = campaigns.links.url("c-spring", contact_id, "email")
    return "/unsubscribe/" + url.split("/unsubscribe/", 1)[1]


async def test_the_unsubscribe_page_speaks_the_contacts_language_and_is_locked_down(
    campaign_hub: Any,
) -> None:
    app: CampaignHub = await campaign_hub()
    lan = contact("Trần Thị Lan", email="lan@example.vn")
    john = contact("John Smith", email="john@example.com").model_copy(update={"language": "en-GB"})
    for person in (lan, john):
        await app.store.add_contact(person)

    page = await app.hub.client.get(link_path(app, lan.id))
    text = await page.text()
    assert page.status == 200 and '<html lang="vi">' in text
    assert "Bạn muốn ngừng nhận các tin này?" in text and ">Hủy đăng ký</button>" in text
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "script-src" not in policy
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"

    english = await app.hub.client.get(link_path(app, john.id))
    assert '<html lang="en">' in await english.text()
    done = await app.hub.client.post(
        link_path(app, john.id), data={"List-Unsubscribe": "One-Click"}
    )
    assert done.status == 200 and "You will not receive these messages any more." in (
        await done.text()
    )
    stored = await app.store.get_contact(john.id)
    assert stored is not None and stored.consent["email"].status == "opted_out"

    forged = await app.hub.client.get(link_path(app, lan.id)[:-2] + "xx")
    assert forged.status == 404 and "Liên kết hủy đăng ký này không hợp lệ." in await forged.text()
    assert forged.headers["Content-Security-Policy"] == policy


async def test_the_unsubscribe_page_works_in_a_browser_under_its_policy(campaign_hub: Any) -> None:
    if not HAVE_CHROMIUM:
        pytest.skip(f"Chromium is not installed at {CHROMIUM}: install Debian's `chromium`")
    from playwright.async_api import async_playwright

    app: CampaignHub = await campaign_hub()
    lan = contact("Trần Thị Lan", email="lan@example.vn")
    await app.store.add_contact(lan)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS
        )
        page = await browser.new_page()
        refused: list[str] = []
        page.on(
            "console",
            lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
        )
        await page.goto(str(app.hub.client.make_url(link_path(app, lan.id))))
        # The page's own style block is allowed (by its hash): the text is centred.
        assert await page.evaluate("getComputedStyle(document.body).textAlign") == "center"
        await page.click("button")
        await page.wait_for_selector("text=Đã hủy đăng ký")
        await browser.close()
    assert refused == []
    stored = await app.store.get_contact(lan.id)
    assert stored is not None and stored.consent["email"].status == "opted_out"
