"""The workspace page in headless Chromium (Debian's, driven by Playwright):
an agent signs in, takes an unassigned conversation, replies with a canned
response, notes with a mention, sees the customer's next message arrive
without a reload, and resolves; a colleague on the same conversation sees the
"is replying" hint. Customer markup never runs. Screenshots of the main
screens go to tests/artifacts/ (ignored by git) for people to look at."""

from __future__ import annotations

from datetime import timedelta

from hub.inbox.model import Message, Sender
from tests.conftest import eventually
from tests.inbox.test_store_contract import saved_message
from tests.web.browser import TIMEOUT, chromium, open_unassigned, shot, signed_in_page
from tests.web.conftest import PASSWORD, call, inbound

__all__ = ["chromium"]  # the fixture, used by name


async def test_an_agent_works_a_conversation_from_sign_in_to_resolved(chromium, team_hub):
    hub = team_hub
    await call(
        hub,
        "POST",
        "/api/v1/canned-responses",
        hub.an,
        status=201,
        json={"shortcut": "gia", "text": "Dạ, sản phẩm này giá 250.000đ ạ."},
    )
    conversation_id = await inbound(hub, "m1", "cust-1", text="Cho em hỏi giá áo này?")
    store = hub.runtime.store

    page = await signed_in_page(chromium, hub, "lan@example.vn", screenshot="1-sign-in")
    # No conversation open: the contact panel shows no empty headings and forms.
    assert await page.locator("#attribute-form").is_hidden()
    await open_unassigned(page, conversation_id)
    await page.wait_for_selector(".msg.inbound >> text=Cho em hỏi giá áo này?")
    assert await page.locator("#attribute-form").is_visible()
    await shot(page, "2-unassigned-conversation")

    # A colleague (an admin) has the same conversation open.
    colleague = await signed_in_page(chromium, hub, "an@example.vn")
    await colleague.click(f"#conversations li[data-id='{conversation_id}']")
    await colleague.wait_for_selector(".msg.inbound")

    await page.click("#take")

    async def taken() -> bool:
        conversation = await store.get_conversation(conversation_id)
        return conversation.assignee_id == hub.lan.agent.id

    await eventually(taken)
    await page.wait_for_selector("#take", state="hidden")
    # Taken, it leaves the unassigned list.
    listed = f"#conversations li[data-id='{conversation_id}']"
    await page.wait_for_selector(listed, state="detached")

    # `/gia` + Tab inserts the canned response; the colleague sees "Lan is replying".
    await page.click("#reply-text")
    await page.keyboard.type("/gi")
    await page.wait_for_selector("#suggestions:not([hidden]) >> text=/gia")
    await page.keyboard.press("Tab")
    assert await page.input_value("#reply-text") == "Dạ, sản phẩm này giá 250.000đ ạ."
    await colleague.wait_for_selector("#collision >> text=Lan")
    await shot(colleague, "3-collision-hint")
    await page.click("#send")
    await page.wait_for_selector(".msg.outbound >> text=Dạ, sản phẩm này giá 250.000đ ạ.")

    async def replied() -> bool:
        messages = await store.list_messages(conversation_id)
        return [m.direction for m in messages] == ["inbound", "outbound"]

    await eventually(replied)

    # A private note with a mention, in the note colour.
    await page.check("input[name=mode][value=note]")
    await page.fill("#reply-text", "@minh anh xem giúp đơn này")
    await page.keyboard.press("Control+Enter")
    note = page.locator(".msg.note >> text=@minh anh xem giúp đơn này")
    await note.wait_for()
    colours = await page.evaluate(
        """() => [document.querySelector('.msg.note'), document.querySelector('.msg.outbound')]
             .map(el => getComputedStyle(el).backgroundColor)"""
    )
    assert colours[0] != colours[1]
    [stored_note] = [m for m in await store.list_messages(conversation_id) if m.direction == "note"]
    assert stored_note.meta["mentions"] == [hub.minh.agent.id]

    # Waiting on the customer: pending until they write.
    await page.click("#pending")
    await page.wait_for_selector("#pending", state="hidden")

    async def pending() -> bool:
        return (await store.get_conversation(conversation_id)).status == "pending"

    await eventually(pending)
    # The customer writes again: it appears without a reload, and is open work again.
    await inbound(hub, "m2", "cust-1", text="Còn size M không ạ?")
    await page.wait_for_selector(".msg.inbound >> text=Còn size M không ạ?")
    await page.wait_for_selector("#pending:not([hidden])")
    await shot(page, "4-conversation")

    await page.click("#resolve")
    await page.wait_for_selector("#reopen:not([hidden])")

    async def resolved() -> bool:
        return (await store.get_conversation(conversation_id)).status == "resolved"

    await eventually(resolved)
    # The contact panel: identities, and attributes an agent keeps up to date.
    await page.wait_for_selector("#identities li >> text=api:shop: cust-1")
    await page.fill("#attribute-key", "size")
    await page.fill("#attribute-value", "M")
    await page.click("#attribute-form button")
    await page.wait_for_selector("#attributes dd >> text=M")
    contact = await store.get_contact((await store.get_conversation(conversation_id)).contact_id)
    assert contact.attributes == {"size": "M"}
    # The English interface.
    await page.select_option("header select.lang", "en")
    assert await page.text_content("#reopen") == "Reopen"
    await shot(page, "5-resolved-english")
    # Keyboard: "?" shows the shortcuts; "r" goes back to the reply box.
    await page.click("#timeline")
    await page.keyboard.press("?")
    await page.wait_for_selector("#help[open]")
    await page.keyboard.press("Escape")
    await page.keyboard.press("r")
    assert await page.evaluate("() => document.activeElement.id") == "reply-text"
    assert page.errors == [] and colleague.errors == []


XSS_TEXT = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
XSS_HTML = (
    "<p>Kính gửi quý công ty</p><script>parent.__xss = 3</script>"
    '<img src="x" onerror="parent.__xss = 4"><a href="javascript:parent.__xss=5">bấm</a>'
)


async def test_customer_markup_is_shown_as_text_and_never_runs(chromium, team_hub):
    hub = team_hub
    conversation_id = await inbound(hub, "m1", "cust-1", text=XSS_TEXT)
    conversation = await hub.runtime.store.get_conversation(conversation_id)
    now = hub.runtime.clock.now()
    # An e-mail whose HTML still carries script (as if sanitising had missed it):
    # the page must hold even then.
    await hub.runtime.store.add_message(
        Message(
            conversation_id=conversation.id,
            account_id=conversation.account_id,
            channel=conversation.channel,
            direction="inbound",
            sender=Sender(kind="contact", id=conversation.contact_id, name="Khách"),
            text="Kính gửi quý công ty",
            html=XSS_HTML,
            created_at=now,
            updated_at=now,
        )
    )
    page = await signed_in_page(chromium, hub, "lan@example.vn")
    await open_unassigned(page, conversation_id)
    shown = page.locator(".msg.inbound .text").first
    await shown.wait_for()
    assert await shown.text_content() == XSS_TEXT
    frame = page.locator("iframe.email")
    await frame.wait_for()
    assert await frame.get_attribute("sandbox") == ""
    await page.frame_locator("iframe.email").locator("text=Kính gửi quý công ty").wait_for()
    await page.wait_for_timeout(300)  # give an injected handler every chance to fire
    assert await page.evaluate("() => window.__xss") is None
    await shot(page, "6-markup-as-text")
    response = await hub.client.get("/app")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy


async def test_after_the_stream_drops_the_page_catches_up_without_a_reload(chromium, team_hub):
    from hub.app import STREAM

    hub = team_hub
    conversation_id = await inbound(hub, "m1", "cust-1", text="Tin thứ nhất")
    page = await signed_in_page(chromium, hub, "lan@example.vn")
    await open_unassigned(page, conversation_id)
    await page.wait_for_selector(".msg.inbound >> text=Tin thứ nhất")
    await page.wait_for_selector("#connection.up")
    # The hub drops every agent socket (a restart); the customer writes meanwhile,
    # before the page has reconnected, so the live event cannot reach it.
    await hub.app[STREAM].shutdown()
    await page.wait_for_selector("#connection.down")
    second = await inbound(hub, "m2", "cust-2", text="Khách mới trong lúc mất kết nối")
    await inbound(hub, "m3", "cust-1", text="Tin thứ hai")
    await page.wait_for_selector("#connection.up")
    await page.wait_for_selector(".msg.inbound >> text=Tin thứ hai")
    await page.wait_for_selector(f"#conversations li[data-id='{second}']")
    assert page.errors == []


async def test_an_admin_changes_a_role_and_reads_the_audit_log_in_the_page(chromium, team_hub):
    hub = team_hub
    page = await signed_in_page(chromium, hub, "an@example.vn")
    await page.click("#admin-open")
    row = page.locator(f"#admin-agents tr[data-id='{hub.minh.agent.id}']")
    await row.locator("select").select_option("marketer")

    async def demoted() -> bool:
        return (await hub.runtime.store.get_agent(hub.minh.agent.id)).role == "marketer"

    await eventually(demoted)
    await page.wait_for_selector("#admin-audit >> text=agent.role_changed")
    await page.wait_for_selector("#admin-audit >> text=auth.signed_in")
    await shot(page, "7-admin")
    # Demoted, minh sees no conversations, in the page or through the API: a
    # marketer lands on the campaigns.
    minh = await signed_in_page(chromium, hub, "minh@example.vn")
    await minh.wait_for_selector("#marketing:not([hidden]) .m-tabs")
    assert await minh.is_hidden("#conversations")
    assert await minh.locator("#conversations li.item").count() == 0
    assert page.errors == [] and minh.errors == []


# Records what the page shows as browser notifications (the browser's own API,
# observed; the page's code is untouched).
RECORD_NOTIFICATIONS = """
window.__notes = [];
window.Notification = class {
  static permission = 'granted';
  static requestPermission() { return Promise.resolve('granted'); }
  constructor(title, options) { window.__notes.push({ title, body: options.body }); }
};
"""


async def test_new_messages_elsewhere_and_mentions_raise_browser_notifications(chromium, team_hub):
    hub = team_hub
    first = await inbound(hub, "m1", "cust-1", text="Đơn thứ nhất")
    context = await chromium.new_context(locale="vi-VN")
    await context.add_init_script(RECORD_NOTIFICATIONS)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    await page.goto(str(hub.client.make_url("/app")))
    await page.fill("#signin-email", "lan@example.vn")
    await page.fill("#signin-password", PASSWORD)
    await page.click("#signin-form button[type=submit]")
    await open_unassigned(page, first)
    await page.wait_for_selector("#connection.up")
    await inbound(hub, "m2", "cust-2", text="Khách khác hỏi", name="Lê Thị Hoa")
    await page.wait_for_function("() => window.__notes.length === 1")
    await call(
        hub,
        "POST",
        f"/api/v1/conversations/{first}/notes",
        hub.minh,
        status=404,
        json={"text": "@lan ?"},
    )  # minh (sales) cannot even see it...
    await call(
        hub,
        "POST",
        f"/api/v1/conversations/{first}/notes",
        hub.an,
        status=201,
        json={"text": "@lan gọi lại cho khách nhé"},
    )  # ...an (admin) can
    await page.wait_for_function("() => window.__notes.length === 2")
    notes = await page.evaluate("() => window.__notes")
    assert notes[0] == {"title": "Tin nhắn mới từ Lê Thị Hoa", "body": "Khách khác hỏi"}
    assert notes[1] == {"title": "An nhắc đến bạn", "body": "@lan gọi lại cho khách nhé"}


async def test_an_agent_creates_a_token_seen_once_and_revokes_it_in_the_page(chromium, team_hub):
    hub = team_hub
    page = await signed_in_page(chromium, hub, "lan@example.vn")
    await page.click("#tokens-open")
    await page.fill("#token-name", "Zalo CRM")
    await page.click("#token-form button")
    await page.wait_for_selector("#token-new:not([hidden])")
    token = (await page.locator("#token-value").text_content()).strip()
    assert token.startswith("hub_")
    assert (await hub.api("GET", "/api/v1/agents/me", token)).status == 200
    row = page.locator("#token-list tr", has_text="Zalo CRM")
    await row.wait_for()
    await row.locator("button").click()
    await row.wait_for(state="detached")
    assert (await hub.api("GET", "/api/v1/agents/me", token)).status == 401
    assert page.errors == []


async def test_an_agent_merges_two_records_of_one_customer_from_the_contact_panel(
    chromium, team_hub
):
    hub = team_hub
    first = await inbound(hub, "m1", "a", phone="+84901111111", name="Lan")
    second = await inbound(hub, "m2", "b", account="misc", email="lan@example.vn", name="Lan T.")
    page = await signed_in_page(chromium, hub, "lan@example.vn")
    page.on("dialog", lambda dialog: dialog.accept())
    await open_unassigned(page, first)
    await page.wait_for_selector("#identities li >> text=+84901111111")
    await page.fill("#merge-search", "lan@exa")
    await page.click("#merge-results li button")
    await page.wait_for_selector("#identities li >> text=lan@example.vn")
    await page.wait_for_selector("#earlier a >> text=api · ")
    kept = (await hub.runtime.store.get_conversation(first)).contact_id
    assert (await hub.runtime.store.get_conversation(second)).contact_id == kept
    await shot(page, "8-merged-contact")
    assert page.errors == []


async def test_a_campaign_with_no_account_to_send_from_says_so(chromium, team_hub):
    # This hub has API-channel accounts only: no SMS or e-mail account a
    # campaign could go out from. The form says so, rather than offering an
    # empty "Send from" menu and buttons that would fail.
    page = await signed_in_page(chromium, team_hub, "mai@example.vn")
    await page.goto(str(team_hub.client.make_url("/app#campaigns/new")))
    warning = page.locator("#campaign-no-account")
    await warning.wait_for()
    assert "Chưa có tài khoản SMS nào để gửi" in await warning.inner_text()
    # Nothing is routed to a marketer: no presence menu, no notifications button.
    assert await page.locator("#presence").is_hidden() and await page.locator("#notify").is_hidden()
    for button in ("#campaign-test", "#campaign-schedule", "#campaign-send-now"):
        assert await page.locator(button).is_disabled()
    await page.select_option("#campaign-channel", "email")
    assert "Chưa có tài khoản E-mail nào" in await warning.inner_text()
    await shot(page, "campaign-no-account")
    assert page.errors == []


async def test_the_sign_in_page_loads_without_a_failed_request(chromium, team_hub):
    # Every file the page asks for is there (a missing favicon showed as an
    # error in the console of every page).
    page = await (await chromium.new_context()).new_page()
    failed: list[tuple[int, str]] = []
    page.on("response", lambda r: failed.append((r.status, r.url)) if r.status >= 400 else None)
    await page.goto(str(team_hub.client.make_url("/app")))
    await page.wait_for_load_state("networkidle")
    session = str(team_hub.client.make_url("/api/v1/auth/session"))
    assert failed == [(401, session)]  # "not signed in yet", which the page asks first
    icon = await team_hub.client.get("/favicon.ico")
    assert icon.status == 200 and icon.headers["Content-Type"] == "image/svg+xml"


async def test_a_long_timeline_opens_at_its_end_and_shows_earlier_messages_on_request(
    chromium, team_hub
):
    from hub.app import STREAM

    hub = team_hub
    for n in range(64):
        conversation_id = await inbound(hub, f"m{n}", "cust-1", text=f"tin {n}")
    page = await signed_in_page(chromium, hub, "lan@example.vn")
    await open_unassigned(page, conversation_id)
    await page.wait_for_selector(".msg.inbound >> text='tin 63'")
    # The newest 50, and a way back to the rest.
    assert await page.locator(".msg").count() == 50
    assert await page.locator(".msg >> text='tin 13'").count() == 0
    await page.wait_for_selector("#load-older")
    first_shown = page.locator(".msg >> text='tin 14'")
    await page.locator("#load-older").scroll_into_view_if_needed()
    await shot(page, "10-long-timeline-start")

    await page.click("#load-older")
    await page.wait_for_selector(".msg.inbound >> text='tin 0'", state="attached")
    assert await page.locator(".msg").count() == 64
    assert await page.locator("#load-older").count() == 0
    texts = await page.locator(".msg .body").all_inner_texts()
    assert [text.strip() for text in texts] == [f"tin {n}" for n in range(64)]
    # What the agent was reading stays in view: the older messages arrive above it.
    box, timeline = await first_shown.bounding_box(), await page.locator("#timeline").bounding_box()
    assert timeline["y"] <= box["y"] <= timeline["y"] + timeline["height"]
    await shot(page, "11-long-timeline-earlier-messages")

    # After the stream drops, the page catches up without losing the older pages.
    await page.wait_for_selector("#connection.up")
    await hub.app[STREAM].shutdown()
    await page.wait_for_selector("#connection.down")
    await inbound(hub, "m64", "cust-1", text="tin 64")
    await page.wait_for_selector("#connection.up")
    await page.wait_for_selector(".msg.inbound >> text='tin 64'")
    assert await page.locator(".msg").count() == 65
    assert page.errors == []


async def test_a_customers_whole_history_shows_earlier_messages_on_request(chromium, team_hub):
    hub = team_hub
    for n in range(60):
        account, sender = ("shop", "cust-1") if n % 2 else ("crm", "cust-9")
        conversation_id = await inbound(
            hub, f"h{n}", sender, account=account, text=f"tin {n}", phone="0901234567"
        )
    page = await signed_in_page(chromium, hub, "an@example.vn")
    await page.click(f"#conversations li[data-id='{conversation_id}']")
    await page.wait_for_selector(".msg.inbound >> text='tin 59'")
    assert await page.locator(".msg").count() == 30  # this conversation's, one page
    await page.wait_for_selector("#earlier li a")  # the other conversation: history loaded
    await page.check("#whole-history")
    await page.wait_for_selector(".msg >> text='tin 58'")
    assert await page.locator(".msg").count() == 50
    await page.click("#load-older")
    await page.wait_for_selector(".msg >> text='tin 0'", state="attached")
    texts = await page.locator(".msg .body").all_inner_texts()
    assert [text.strip() for text in texts] == [f"tin {n}" for n in range(60)]
    assert await page.locator("#load-older").count() == 0

    # The open conversation's next message shows in the whole history as it comes...
    await inbound(hub, "h60", "cust-1", account="shop", text="tin 60", phone="0901234567")
    await page.wait_for_selector(".msg >> text='tin 60'")
    # ...and after the stream drops, the other channel's news joins the pages read.
    from hub.app import STREAM

    await page.wait_for_selector("#connection.up")
    await hub.app[STREAM].shutdown()
    await page.wait_for_selector("#connection.down")
    await inbound(hub, "h61", "cust-9", account="crm", text="tin 61", phone="0901234567")
    await page.wait_for_selector("#connection.up")
    await page.wait_for_selector(".msg >> text='tin 61'")
    texts = await page.locator(".msg .body").all_inner_texts()
    assert [text.strip() for text in texts] == [f"tin {n}" for n in range(62)]
    assert page.errors == []


async def test_messages_made_on_a_whole_second_keep_their_place_among_the_rest(chromium, team_hub):
    # JSON writes 12:00:05 as "...:05Z" and 12:00:05.5 as "...:05.500000Z":
    # compared as text, the first sorts after the second.
    hub = team_hub
    conversation_id = await inbound(hub, "m0", "cust-1", text="tin 0")
    conversation = await hub.runtime.store.get_conversation(conversation_id)
    start = conversation.created_at.replace(microsecond=0) + timedelta(seconds=1)
    async with hub.runtime.store.transaction():
        for n in range(1, 60):
            await saved_message(
                hub.runtime.store,
                conversation,
                text=f"tin {n}",
                created_at=start + timedelta(milliseconds=500 * n),
            )
    page = await signed_in_page(chromium, hub, "lan@example.vn")
    await open_unassigned(page, conversation_id)
    await page.click("#load-older")
    await page.wait_for_selector(".msg >> text='tin 0'", state="attached")
    texts = await page.locator(".msg .body").all_inner_texts()
    assert [text.strip() for text in texts] == [f"tin {n}" for n in range(60)]
