"""The marketer's page in headless Chromium: a marketer imports a CSV file and
sees why its bad rows were rejected, builds an audience watching its count,
writes a campaign with a server-rendered preview, test-sends it to their own
phone (the local Twilio peer receives it), sends it and watches it complete
without reloading; pauses and resumes another; an agent is not let in.
Screenshots of each screen go to tests/artifacts/marketer-*.png."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from tests.campaigns.conftest import CampaignHub, contact
from tests.conftest import eventually
from tests.peers.twilio import TwilioPeer
from tests.web.browser import ARTIFACTS, TIMEOUT, chromium  # noqa: F401
from tests.web.conftest import PASSWORD, add_person

LONG = 40_000  # a campaign's whole run, in milliseconds
MARKETER_PHONE = "+84909999999"
# Saved by Excel on a Vietnamese Windows: Windows-1258 with combining tone
# marks, ";" between cells, a leading 0 lost, a trailing row of separators.
CONTACTS_CSV = Path(__file__).parent.parent / "data" / "campaigns" / "hoi-cho-excel.csv"


async def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"marketer-{name}.png"), full_page=True)


async def open_page(chromium: Any, app: CampaignHub, email: str, **viewport: int) -> Any:  # noqa: F811
    size = viewport or {"width": 1400, "height": 900}
    context = await chromium.new_context(viewport=size, locale="vi-VN", accept_downloads=True)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    await page.goto(str(app.hub.client.make_url("/app")))
    await page.fill("#signin-email", email)
    await page.fill("#signin-password", PASSWORD)
    await page.click("#signin-form button[type=submit]")
    await page.wait_for_selector("#workspace:not([hidden])")
    return page


async def marketer(app: CampaignHub) -> None:
    await add_person(app.hub, "lan@shop.vn", role="marketer", phone=MARKETER_PHONE)


async def test_a_marketer_imports_targets_writes_tests_and_sends_a_campaign(
    chromium: Any,  # noqa: F811
    campaign_hub: Any,
    twilio_peer: TwilioPeer,
) -> None:
    app: CampaignHub = await campaign_hub()
    await marketer(app)
    # Someone who said no to SMS earlier: in the audience, skipped at send time.
    await app.store.add_contact(
        contact("Phạm Từ Chối", phone="+84901000009", tags=("hoi-cho",), opted_out="sms",
                thanh_pho="Hà Nội")
    )  # fmt: skip
    page = await open_page(chromium, app, "lan@shop.vn")
    # A marketer lands on the campaigns: the inbox is not theirs.
    await page.wait_for_selector("#marketing:not([hidden]) >> text=Chưa có chiến dịch nào.")
    assert await page.is_visible("#campaigns-open")
    await shot(page, "1-campaigns-empty")

    # -- import Excel's CSV file with a bad row, choosing nothing but the city --
    await page.click(".m-tabs >> text=Nhập danh bạ")
    await page.set_input_files("#import-file", str(CONTACTS_CSV))
    city = page.locator("select[data-column='Thành phố']")
    await city.wait_for()
    assert await page.text_content("#import-read-as") == (
        "Đọc tệp theo bảng mã Windows-1258, phân cách bằng “;”."
    )
    assert await page.input_value("select[data-column='Số điện thoại']") == "phone"
    await city.select_option("attributes.thanh_pho")
    await page.fill("#import-tags", "hoi-cho")
    await page.click("#import-start")
    await page.wait_for_selector("#import-progress[data-status=done]")
    rejected = page.locator("#import-rejected tbody tr")
    assert await rejected.count() == 1
    assert await rejected.locator("td").first.text_content() == "4"
    assert await rejected.locator(".reason").text_content() == "no phone and no e-mail"
    assert await page.text_content("#import-progress .c_created dd") == "3"
    assert "Bỏ qua 1 dòng trống." in (await page.text_content("#import-file-read-as") or "")
    await shot(page, "2-import-report")

    # -- an audience, its count following the filter ----------------------------
    await page.click(".m-tabs >> text=Tập khách hàng")
    await page.fill("#audience-name", "Hội chợ Hà Nội")
    await page.fill("#audience-tags-any", "hoi-cho")
    await page.wait_for_selector("#audience-count[data-count='4']")
    await page.click("#audience-add-attribute")
    await page.fill(".m-attribute .key", "thanh_pho")
    await page.fill(".m-attribute .value", "Hà Nội")
    await page.wait_for_selector("#audience-count[data-count='3']")
    await page.select_option("#audience-consent", "not_opted_out")
    await page.wait_for_selector("#audience-count[data-count='2']")
    await page.select_option("#audience-consent", "any")  # opted-out ones are counted at send
    await page.wait_for_selector("#audience-count[data-count='3']")
    await page.click("#audience-save")
    await page.wait_for_selector("#audience-list li >> text=Hội chợ Hà Nội")
    await shot(page, "3-audience")

    # -- compose, preview, test send -------------------------------------------------
    await page.click("#audience-list li >> text=Tạo chiến dịch")  # with this audience
    await page.fill("#campaign-name", "Hội chợ tháng 3")
    await page.wait_for_selector("#campaign-audience-count >> text=3 người nhận")
    assert (
        await page.eval_on_selector("#campaign-audience", "s => s.options[s.selectedIndex].text")
        == "Hội chợ Hà Nội"
    )
    await page.fill("#campaign-text", "Chào ")
    await page.click("#campaign-variables >> text={{ contact.given_name }}")
    await page.type("#campaign-text", ", hẹn gặp tại hội chợ!")
    preview = page.locator("#campaign-preview-text")
    await page.wait_for_selector("#campaign-preview-text >> text=hẹn gặp tại hội chợ!")
    assert (await preview.text_content() or "").startswith("Chào ")
    assert "Tu choi QC" in (await preview.text_content() or "")  # the opt-out line, as sent
    assert "UCS-2" in (await page.text_content("#campaign-sms-size") or "")
    # A template mistake is named in plain words, not a blank preview.
    await page.type("#campaign-text", " {{ contact.nmae }}")
    await page.wait_for_selector("#campaign-preview-error >> text=nmae")
    for _ in range(len(" {{ contact.nmae }}")):
        await page.press("#campaign-text", "Backspace")
    await page.wait_for_selector("#campaign-preview-text")
    assert await page.input_value("#campaign-test-to") == MARKETER_PHONE
    await page.click("#campaign-test")
    await page.wait_for_selector(f"#campaign-test-result >> text={MARKETER_PHONE}")
    [test] = twilio_peer.sent
    assert test.get("To") == MARKETER_PHONE
    assert (test.get("Body") or "").endswith("hẹn gặp tại hội chợ!\nTu choi QC: soan TC gui 8xxx")
    await shot(page, "4-compose-preview")

    # -- send now, after a confirmation naming the count -------------------------------
    await page.click("#campaign-send-now")
    await page.wait_for_selector("#m-confirm[open] >> text=3 người nhận")
    await shot(page, "5-confirm")
    await page.click("#m-confirm-yes")
    await page.wait_for_selector("#campaign-status[data-status=completed]", timeout=LONG)
    figure = "#campaign-figures [data-figure={}] dd"
    assert await page.text_content(figure.format("total")) == "3"
    assert await page.text_content(figure.format("sent")) == "2"
    assert await page.text_content(figure.format("opted_out")) == "1"
    await page.wait_for_selector("#recipient-rows tr[data-status=sent] >> nth=1")
    statuses = await page.eval_on_selector_all(
        "#recipient-rows tr", "rows => rows.map(r => [r.cells[0].textContent, r.dataset.status])"
    )
    assert sorted(statuses) == [
        ["+84901000001", "sent"],
        ["+84901000002", "sent"],
        ["+84901000009", "skipped"],
    ]
    await page.select_option("#recipient-status", "skipped")
    await page.wait_for_selector(
        "#recipient-rows tr[data-status=skipped] >> text=đã từ chối nhận tin"
    )
    assert await page.locator("#recipient-rows tr").count() == 1
    await shot(page, "6-campaign-completed")
    sent_to = sorted(m.get("To") for m in twilio_peer.sent[1:])
    assert sent_to == ["+84901000001", "+84901000002"]

    # The recipients download as CSV with the session the page has.
    href = await page.get_attribute("#recipient-csv", "href")
    response = await page.request.get(str(app.hub.client.make_url(href)))
    assert response.ok
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [(r["name"], r["reason"]) for r in rows] == [("Phạm Từ Chối", "opted_out")]

    # The list shows it completed; the English interface says so in English.
    await page.click(".m-tabs >> text=Chiến dịch")
    await page.wait_for_selector("#campaign-rows tr[data-status=completed] >> text=2 / 3")
    await page.select_option("header select.lang", "en")
    await page.wait_for_selector("#campaign-rows >> text=Completed")
    assert await page.text_content(".m-tabs a.current") == "Campaigns"
    await shot(page, "7-list-english")

    # At a phone's width the page still works: one column, nothing cut off.
    campaign_id = await page.get_attribute("#campaign-rows tr", "data-id")
    phone = await open_page(chromium, app, "lan@shop.vn", width=390, height=844)
    await phone.goto(str(app.hub.client.make_url(f"/app#campaigns/{campaign_id}")))
    await phone.wait_for_selector("#campaign-status[data-status=completed]")
    overflow = await phone.evaluate(
        "() => document.querySelector('#marketing').scrollWidth"
        " - document.querySelector('#marketing').clientWidth"
    )
    assert overflow <= 0
    await shot(phone, "8-mobile-detail")
    await phone.goto(str(app.hub.client.make_url("/app#campaigns/new")))
    await phone.wait_for_selector("#campaign-form")
    await shot(phone, "9-mobile-compose")
    assert page.errors == [] and phone.errors == []


async def test_a_marketer_pauses_and_resumes_a_running_campaign(
    chromium: Any,  # noqa: F811
    campaign_hub: Any,
    twilio_peer: TwilioPeer,
) -> None:
    app: CampaignHub = await campaign_hub(defaults={"rate_per_second": 4, "daily_cap": 0})
    await marketer(app)
    for n in range(40):
        await app.store.add_contact(contact(f"Khách {n}", phone=f"+849020000{n:02d}"))
    _, audience = await app.api("POST", "/api/v1/audiences", json={"name": "VIP"})
    _, campaign = await app.api(
        "POST",
        "/api/v1/campaigns",
        json={"name": "Chậm", "channel": "sms", "account_id": "hotline",
              "audience_id": audience["id"], "text": "Ưu đãi"},
    )  # fmt: skip
    page = await open_page(chromium, app, "lan@shop.vn")
    await page.click(f"#campaign-rows tr[data-id='{campaign['id']}']")
    await page.wait_for_selector("#campaign-send-now")  # a draft opens in the composer
    await page.click("#campaign-send-now")
    await page.click("#m-confirm-yes")
    await page.wait_for_selector("#campaign-status[data-status=running]")
    # Figures move without a reload.
    await page.wait_for_function(
        "() => Number(document.querySelector('[data-figure=sent] dd').textContent) > 0"
    )
    await page.click("#campaign-pause")
    await page.wait_for_selector("#campaign-status[data-status=paused]")

    async def settled() -> bool:
        _, result = await app.api("GET", f"/api/v1/campaigns/{campaign['id']}")
        return bool(result["progress"]["sending"] == 0)

    await eventually(settled)
    _, paused = await app.api("GET", f"/api/v1/campaigns/{campaign['id']}")
    assert 0 < paused["progress"]["sent"] == len(twilio_peer.sent) < 40
    await page.wait_for_function(
        "sent => document.querySelector('[data-figure=sent] dd').textContent === String(sent)",
        arg=paused["progress"]["sent"],
    )
    await shot(page, "10-paused")
    await page.click("#campaign-resume")
    await page.wait_for_selector("#campaign-status[data-status=completed]", timeout=LONG)
    assert await page.text_content("[data-figure=sent] dd") == "40"
    assert len({m.get("To") for m in twilio_peer.sent}) == len(twilio_peer.sent) == 40
    await shot(page, "11-resumed-completed")
    assert page.errors == []


async def test_an_agent_is_not_offered_the_page_and_an_admin_goes_back_and_forth(
    chromium: Any,  # noqa: F811
    campaign_hub: Any,
) -> None:
    app: CampaignHub = await campaign_hub()
    await add_person(app.hub, "minh@shop.vn", role="agent")
    page = await open_page(chromium, app, "minh@shop.vn")
    assert not await page.is_visible("#campaigns-open")
    await page.goto(str(app.hub.client.make_url("/app#campaigns")))
    await page.wait_for_selector("#workspace:not([hidden])")
    assert await page.is_hidden("#marketing")
    answers = await page.evaluate(
        """async () => Promise.all(['/api/v1/campaigns', '/api/v1/audiences',
             '/api/v1/campaign-options', '/api/v1/contacts/imports/x'].map(async (path) => {
               const answer = await fetch(path);
               return [answer.status, (await answer.json()).error.code];
             }))"""
    )
    assert answers == [[403, "forbidden"]] * 4
    assert page.errors == []

    # An admin has both: the inbox first, the campaigns a click away, and back.
    await add_person(app.hub, "chi@shop.vn", role="admin")
    admin = await open_page(chromium, app, "chi@shop.vn")
    # The inbox shows once the page knows who signed in (a wait, not a look:
    # a look right after sign-in raced that answer on a loaded machine).
    await admin.wait_for_selector("#conversations", state="visible")
    assert await admin.is_hidden("#marketing")
    await admin.click("#campaigns-open")
    await admin.wait_for_selector("#marketing:not([hidden]) #campaign-rows")
    assert await admin.is_hidden("#conversations")
    await admin.click("#m-inbox")
    await admin.wait_for_selector("#conversations", state="visible")
    assert await admin.is_hidden("#marketing") and admin.errors == []


async def test_a_marketer_schedules_an_email_campaign_and_can_cancel_it(
    chromium: Any,  # noqa: F811
    campaign_hub: Any,
) -> None:
    app: CampaignHub = await campaign_hub()
    await marketer(app)
    await app.store.add_contact(contact("Nguyễn Văn Bình", email="binh@example.com"))
    await app.api("POST", "/api/v1/audiences", json={"name": "Khách e-mail"})
    page = await open_page(chromium, app, "lan@shop.vn")
    await page.click(".m-tabs >> text=Chiến dịch mới")
    await page.fill("#campaign-name", "Bản tin")
    await page.select_option("#campaign-channel", "email")
    assert await page.input_value("#campaign-account") == "news"
    assert await page.input_value("#campaign-test-to") == "lan@shop.vn"  # their own mailbox
    await page.select_option("#campaign-audience", label="Khách e-mail")
    await page.fill("#campaign-subject", "Tin mới cho {{ contact.given_name }}")
    await page.fill("#campaign-text", "Xin chào {{ contact.name }}")
    await page.wait_for_selector("#campaign-preview-subject >> text=Tin mới cho Bình")
    assert "/unsubscribe/" in (await page.text_content("#campaign-preview-text") or "")
    assert not await page.is_visible("#campaign-sms-size")
    # The hub's clock says 2026-03-10 10:00 in Vietnam: the next morning is later.
    await page.fill("#campaign-at", "2026-03-11T09:00")
    await page.click("#campaign-schedule")
    await page.wait_for_selector("#m-confirm[open] >> text=1 người nhận")
    await page.click("#m-confirm-yes")
    await page.wait_for_selector("#campaign-status[data-status=scheduled]")
    _, campaigns = await app.api("GET", "/api/v1/campaigns")
    [scheduled] = campaigns["items"]
    assert scheduled["status"] == "scheduled" and scheduled["subject"].startswith("Tin mới")
    await shot(page, "12-scheduled")
    await page.click("#campaign-cancel")
    await page.click("#m-confirm-yes")
    await page.wait_for_selector("#campaign-status[data-status=cancelled]")
    assert page.errors == []
