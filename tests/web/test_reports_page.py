"""The Reports page in headless Chromium: an admin sees the figures as cards,
charts (the vendored Chart.js, under the page's CSP) and tables with CSV
downloads; a marketer sees only the campaign funnel; names are text, never
markup. The screenshot goes to tests/artifacts/reports.png."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hub.campaigns.model import Audience, AudienceFilter, Campaign
from hub.inbox.model import Agent, Contact, Identity
from tests.web.browser import ARTIFACTS, chromium, signed_in_page  # noqa: F401
from tests.web.conftest import call
from tests.web.test_reports_api import history

HOSTILE = '<img src=x onerror="window.pwned=1">'


async def open_reports(page: Any) -> None:
    await page.click("#reports-open")
    await page.wait_for_selector("#reports[data-loaded]")


async def test_an_admin_reads_the_week_as_cards_charts_and_tables(chromium, team_hub):  # noqa: F811
    hub = team_hub
    await history(hub, hub.runtime.clock.now() - timedelta(days=2))
    await hub.runtime.store.add_agent(
        Agent(name=HOSTILE, email="hostile@example.vn", created_at=hub.runtime.clock.now())
    )
    # A laptop set to another zone than the office's.
    page = await signed_in_page(chromium, hub, "an@example.vn", timezone="America/New_York")
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    await open_reports(page)
    # The period on the clock of the zone it names, not the laptop's.
    period = (await call(hub, "GET", "/api/v1/reports/summary?since=7d", hub.an))["period"]
    until = datetime.fromisoformat(period["until"])
    shown = await page.locator("#report-period").inner_text()
    assert period["timezone"] == "Asia/Ho_Chi_Minh" and shown.endswith("(Asia/Ho_Chi_Minh)")
    assert until.astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%H:%M") in shown
    assert until.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M") not in shown
    cards = await page.locator("#report-summary .card-value").all_inner_texts()
    assert cards[:2] == ["3", "1"]  # opened, resolved
    assert cards[2] == "20 phút 00 giây"  # median first response (10 and 30 minutes)
    assert "3 / 2" in cards  # messages in / out
    # Four charts drawn by the vendored library.
    assert await page.evaluate("() => typeof window.Chart") == "function"
    assert await page.locator("#reports canvas").count() == 4
    agents = page.locator("#report-agents tbody")
    await agents.locator("td", has_text="Lan").wait_for()
    assert HOSTILE in await agents.inner_text()  # shown as text
    assert await page.evaluate("() => window.pwned") is None
    # Every table has its CSV, served by the API with the page's own filters.
    links = page.locator("#reports a.csv")
    assert await links.count() == 7
    href = await page.locator("#report-days a.csv").get_attribute("href")
    assert href.startswith("/api/v1/reports/days?since=7d") and href.endswith("format=csv")
    response = await page.request.get(str(hub.client.make_url(href)))
    assert response.status == 200 and response.headers["content-type"].startswith("text/csv")
    assert (await response.text()).startswith("day,opened,resolved")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "reports.png"))
    # The whole page, for people: scroll the dialog's content into one picture.
    height = await page.evaluate("() => document.querySelector('#reports').scrollHeight")
    await page.set_viewport_size({"width": 1400, "height": height})
    await page.screenshot(path=str(ARTIFACTS / "reports-full.png"))

    # A slice: the sales team only.
    await page.select_option("#report-team", "sales")
    await page.click("#report-filters button[type=submit]")
    await page.wait_for_function(
        "() => document.querySelector('#report-summary .card-value').textContent === '1'"
    )
    assert "null" not in await page.locator("#reports").inner_text()
    assert not page.errors and not violations, (page.errors, violations)


async def test_a_marketer_sees_the_campaign_funnel_only_in_english(chromium, team_hub):  # noqa: F811
    hub = team_hub
    page = await signed_in_page(chromium, hub, "mai@example.vn")
    await page.select_option("#workspace select.lang", "en")
    await open_reports(page)
    assert await page.locator("#report-summary").count() == 0
    assert await page.locator("#report-campaigns h3").inner_text() == "Campaigns"
    assert "No campaign ran in this period" in await page.locator("#report-campaigns").inner_text()
    assert await page.locator("#report-team").is_hidden()

    # A campaign launched yesterday to two contacts, one of whom wrote back.
    campaigns = hub.runtime.campaigns.store
    now = hub.runtime.clock.now()
    for n in range(2):
        await hub.runtime.store.add_contact(
            Contact(
                name=f"P{n}",
                identities=[Identity(channel="phone", address=f"+8490000000{n}")],
                created_at=now,
                updated_at=now,
            )
        )
    audience = Audience(name="all", filter=AudienceFilter(), created_at=now, updated_at=now)
    await campaigns.add_audience(audience)
    yesterday = now - timedelta(days=1)
    campaign = Campaign(
        name="<b>Tết</b> sale", channel="sms", account_id="shop", audience_id=audience.id,
        text="Hi", status="running", launched_at=yesterday, created_at=yesterday,
        updated_at=yesterday,
    )  # fmt: skip
    await campaigns.add_campaign(campaign)
    await campaigns.snapshot(campaign, AudienceFilter(), yesterday)
    [first, second] = [r.contact_id for r in await campaigns.due_recipients(campaign.id, now, 9)]
    await campaigns.claim(campaign.id, [first, second], now)
    await campaigns.finish(campaign.id, first, "sent", now)
    await campaigns.finish(campaign.id, second, "failed", now, reason="invalid")
    await campaigns.mark_replied(campaign.id, first, now, "c1")
    await page.click("#report-filters button[type=submit]")
    row = page.locator("#report-campaigns tbody tr")
    await row.wait_for()
    cells = await row.locator("td").all_inner_texts()
    # name, channel, audience, sent, delivered, failed, opted out, replied
    assert cells == ["<b>Tết</b> sale", "sms", "2", "1", "0", "1", "0", "1"]
    await page.screenshot(path=str(ARTIFACTS / "reports-marketer.png"))
    assert "null" not in await page.locator("#reports").inner_text()
    assert await page.locator("#report-campaigns canvas").count() == 1  # the funnel
    assert not page.errors
