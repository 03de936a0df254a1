"""The workspace as a support agent uses it all day, in headless Chromium: what
a shared inbox must not get wrong under a busy agent's hands. A draft stays
with its conversation; a colleague's reply sent while an agent was writing is
shown before theirs goes; reading up the timeline is not pulled down by new
messages; a resolve is undone in one key; times are on the office's clock
whatever the laptop says; a phone shows the list or the conversation with a
way back; the keyboard alone opens conversations; an Enter that commits a
Vietnamese word is the input method's, not a send."""

from __future__ import annotations

import struct
import zlib
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from hub.inbox.model import Attachment, Message, Sender
from tests.conftest import eventually
from tests.web.browser import chromium, open_unassigned, shot, signed_in_page
from tests.web.conftest import call, inbound

__all__ = ["chromium"]  # the fixture, used by name


async def messages_of(hub, conversation_id: str) -> list[tuple[str, str]]:
    return [(m.direction, m.text) for m in await hub.runtime.store.list_messages(conversation_id)]


async def test_a_draft_stays_with_its_conversation_and_survives_a_reload(chromium, team_hub):
    hub = team_hub
    first = await inbound(hub, "m1", "cust-1", text="Áo này còn màu đỏ không?", name="Hồng")
    second = await inbound(hub, "m2", "cust-2", text="Do you ship to Đà Nẵng?", name="John")
    page = await signed_in_page(chromium, hub, "lan@example.vn")
    await open_unassigned(page, first)
    await page.fill("#reply-text", "Dạ còn ạ, chị lấy size nào")
    await page.dispatch_event("#reply-text", "input")
    # To another customer: the box is theirs, empty, never the first one's words.
    await page.click(f"#conversations li[data-id='{second}']")
    await page.wait_for_selector(".msg.inbound >> text=Do you ship to Đà Nẵng?")
    assert await page.input_value("#reply-text") == ""
    await page.check("input[name=mode][value=note]")
    await page.fill("#reply-text", "khách nước ngoài, hỏi phí ship")
    await page.dispatch_event("#reply-text", "input")
    await page.click(f"#conversations li[data-id='{first}']")
    await page.wait_for_selector(".msg.inbound >> text=Áo này còn màu đỏ không?")
    assert await page.input_value("#reply-text") == "Dạ còn ạ, chị lấy size nào"
    assert await page.is_checked("input[name=mode][value=reply]")
    # A reload (or a crashed tab) keeps both, each with its mode.
    await page.reload()
    await open_unassigned(page, second)
    assert await page.input_value("#reply-text") == "khách nước ngoài, hỏi phí ship"
    assert await page.is_checked("input[name=mode][value=note]")
    await page.click("#send")
    await page.wait_for_selector(".msg.note >> text=khách nước ngoài, hỏi phí ship")
    # Sent, the draft is gone: back to it later, the box is empty.
    await page.click(f"#conversations li[data-id='{first}']")
    await page.wait_for_selector(".msg.inbound >> text=Áo này còn màu đỏ không?")
    await page.click(f"#conversations li[data-id='{second}']")
    await page.wait_for_selector(".msg.note")
    assert await page.input_value("#reply-text") == ""
    assert await messages_of(hub, first) == [("inbound", "Áo này còn màu đỏ không?")]
    assert page.errors == []


async def test_a_colleagues_reply_sent_while_writing_is_shown_before_the_agents_goes(
    chromium, team_hub
):
    hub = team_hub
    conversation_id = await inbound(hub, "m1", "cust-1", text="Khi nào giao hàng ạ?")
    page = await signed_in_page(chromium, hub, "lan@example.vn")
    await open_unassigned(page, conversation_id)
    await page.wait_for_selector("#connection.up")
    await page.fill("#reply-text", "Dạ mai shop giao ạ")
    await page.dispatch_event("#reply-text", "input")
    # An (admin) answers the same customer meanwhile.
    await call(
        hub,
        "POST",
        f"/api/v1/conversations/{conversation_id}/messages",
        hub.an,
        status=202,
        json={"text": "Dạ chiều nay shop giao chị nhé"},
    )
    await page.wait_for_selector(".msg.outbound >> text=Dạ chiều nay shop giao chị nhé")
    await page.click("#send")
    warning = page.locator("#answered")
    await warning.wait_for()
    assert "An" in await warning.text_content()
    await shot(page, "day-answered-meanwhile")
    await page.wait_for_timeout(300)
    assert await messages_of(hub, conversation_id) == [
        ("inbound", "Khi nào giao hàng ạ?"),
        ("outbound", "Dạ chiều nay shop giao chị nhé"),
    ]
    assert await page.input_value("#reply-text") == "Dạ mai shop giao ạ"
    # Read, and sent anyway on the second press.
    await page.click("#send")

    async def sent() -> bool:
        return ("outbound", "Dạ mai shop giao ạ") in await messages_of(hub, conversation_id)

    await eventually(sent)
    await warning.wait_for(state="hidden")
    assert page.errors == []


async def test_reading_up_the_timeline_is_not_pulled_down_by_a_new_message(chromium, team_hub):
    hub = team_hub
    conversation_id = await inbound(hub, "m0", "cust-1", text="Tin số 0")
    for n in range(1, 25):
        await inbound(hub, f"m{n}", "cust-1", text=f"Tin số {n}")
    page = await signed_in_page(chromium, hub, "lan@example.vn", viewport=(1366, 768))
    await open_unassigned(page, conversation_id)
    await page.wait_for_selector("#connection.up")
    await page.wait_for_selector(".msg >> text=Tin số 24")
    timeline = page.locator("#timeline")
    await timeline.evaluate("(list) => { list.scrollTop = 0; }")
    await inbound(hub, "m25", "cust-1", text="Tin số 25")
    await page.wait_for_selector(".msg >> text=Tin số 25", state="attached")
    await page.wait_for_selector("#below:not([hidden])")
    assert await timeline.evaluate("(list) => list.scrollTop") == 0
    await shot(page, "day-new-below")
    # "New messages ↓" goes to the end; at the end, new messages are followed.
    await page.click("#below")
    await page.wait_for_selector("#below", state="hidden")
    await inbound(hub, "m26", "cust-1", text="Tin số 26")
    await page.locator(".msg >> text=Tin số 26").wait_for()
    at_end = "(l) => l.scrollHeight - l.scrollTop - l.clientHeight < 48"
    assert await timeline.evaluate(at_end)
    assert page.errors == []


async def test_a_resolve_is_undone_from_its_notice_or_with_z(chromium, team_hub):
    hub = team_hub
    store = hub.runtime.store
    conversation_id = await inbound(hub, "m1", "cust-1", text="Cảm ơn shop")
    page = await signed_in_page(chromium, hub, "lan@example.vn")
    await open_unassigned(page, conversation_id)

    async def status(expected: str) -> None:
        async def check() -> bool:
            return (await store.get_conversation(conversation_id)).status == expected

        await eventually(check)

    await page.click("#resolve")
    await page.wait_for_selector("#toast:not([hidden])")
    await status("resolved")
    await shot(page, "day-undo-resolve")
    await page.click("#toast-undo")
    await status("open")
    await page.wait_for_selector("#resolve:not([hidden])")
    # The keyboard: e resolves, z takes it back.
    await page.click("#timeline")
    await page.keyboard.press("e")
    await status("resolved")
    await page.wait_for_selector("#toast:not([hidden])")
    await page.keyboard.press("z")
    await status("open")
    await page.wait_for_selector("#toast", state="hidden")
    assert page.errors == []


async def test_times_are_on_the_office_clock_and_relative_in_the_list(chromium, team_hub):
    hub = team_hub
    conversation_id = await inbound(hub, "m1", "cust-1", text="Shop mở cửa mấy giờ?")
    [message] = await hub.runtime.store.list_messages(conversation_id)
    # The laptop's clock says UTC; the shop is in Hồ Chí Minh City.
    page = await signed_in_page(chromium, hub, "lan@example.vn", timezone="UTC")
    await open_unassigned(page, conversation_id)
    shown = await page.locator(".msg.inbound time").text_content()
    local = message.created_at.astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
    utc = message.created_at.astimezone(ZoneInfo("UTC"))
    assert local.strftime("%H:%M") in shown and utc.strftime("%H:%M") not in shown
    row = page.locator(f"#conversations li[data-id='{conversation_id}'] time.ago")
    assert await row.text_content() == "vừa xong"
    assert local.strftime("%H:%M") in await row.get_attribute("title")
    assert isinstance(message.created_at, datetime)
    assert page.errors == []


async def test_on_a_phone_the_list_and_the_conversation_take_turns(chromium, team_hub):
    hub = team_hub
    conversation_id = await inbound(
        hub, "m1", "cust-1", text="Em muốn đổi size áo " + "rất dài " * 60, name="Trần Quốc Bảo"
    )
    page = await signed_in_page(chromium, hub, "lan@example.vn", viewport=(390, 844))
    no_sideways = "() => document.documentElement.scrollWidth <= innerWidth"
    # The views are there to switch to (an agent's own list is often empty).
    await page.click("button[data-view=unassigned]")
    row = page.locator(f"#conversations li[data-id='{conversation_id}']")
    await row.wait_for()
    assert await page.is_hidden("#timeline")
    assert await page.evaluate(no_sideways)
    await shot(page, "day-phone-list")
    await row.click()
    await page.wait_for_selector(".msg.inbound >> text=Em muốn đổi size áo")
    assert await page.is_hidden("#conversations")
    assert await page.is_visible("#reply-text") and await page.is_visible("#send")
    assert await page.evaluate(no_sideways)
    await shot(page, "day-phone-conversation")
    await page.click("#back")
    await row.wait_for()
    assert await page.is_hidden("#timeline")
    assert page.errors == []


async def test_the_keyboard_opens_conversations_and_an_ime_enter_is_not_a_send(chromium, team_hub):
    hub = team_hub
    await call(
        hub,
        "POST",
        "/api/v1/canned-responses",
        hub.an,
        status=201,
        json={"shortcut": "cam-on", "text": "Cảm ơn chị đã ủng hộ shop!"},
    )
    first = await inbound(hub, "m1", "cust-1", text="Cho em hỏi")
    second = await inbound(hub, "m2", "cust-2", text="Shop ơi")
    page = await signed_in_page(chromium, hub, "lan@example.vn")
    await page.click("button[data-view=unassigned]")
    # Tab to a row, Enter opens it; the list refreshing under it keeps the focus.
    await page.focus(f"#conversations li[data-id='{second}']")
    await page.keyboard.press("Enter")
    await page.wait_for_selector(".msg.inbound >> text=Shop ơi")
    await page.focus(f"#conversations li[data-id='{first}']")
    await page.keyboard.press("Enter")
    await page.wait_for_selector(".msg.inbound >> text=Cho em hỏi")
    # Typing "/cam" then a word being composed by Telex: its Enter (and
    # Ctrl+Enter) commits the word, neither picking the suggestion nor sending.
    await page.click("#reply-text")
    await page.keyboard.type("/cam")
    await page.wait_for_selector("#suggestions:not([hidden])")
    for ctrl in (False, True):
        await page.evaluate(
            """(ctrl) => document.querySelector('#reply-text').dispatchEvent(new KeyboardEvent(
                 'keydown', {key: 'Enter', ctrlKey: ctrl, isComposing: true, bubbles: true,
                             cancelable: true}))""",
            ctrl,
        )
    await page.wait_for_timeout(300)
    assert await page.input_value("#reply-text") == "/cam"
    assert await messages_of(hub, first) == [("inbound", "Cho em hỏi")]
    assert page.errors == []


async def test_an_opened_conversation_counts_as_read_at_once(chromium, team_hub):
    hub = team_hub
    conversation_id = await inbound(hub, "m1", "cust-1", text="Alo shop")
    await inbound(hub, "m2", "cust-1", text="Shop ơi trả lời em với")
    page = await signed_in_page(chromium, hub, "lan@example.vn")
    await page.click("button[data-view=unassigned]")
    row = page.locator(f"#conversations li[data-id='{conversation_id}']")
    await row.locator(".count >> text=2").wait_for()
    await row.click()
    await page.wait_for_selector(".msg.inbound >> text=Shop ơi trả lời em với")
    # Not a second later, when an event comes round: as the agent opens it.
    assert await row.locator(".count").count() == 0
    await page.wait_for_selector("button[data-view=unassigned] .count", state="detached")
    assert (await hub.runtime.store.get_conversation(conversation_id)).unread_count == 0
    assert page.errors == []


async def test_colleagues_with_the_same_conversation_open_see_each_other(chromium, team_hub):
    hub = team_hub
    conversation_id = await inbound(hub, "m1", "cust-1", text="Em cần đổi hàng")
    other = await inbound(hub, "m2", "cust-2", text="Shop ơi")
    lan = await signed_in_page(chromium, hub, "lan@example.vn")
    await lan.wait_for_selector("#connection.up")
    await open_unassigned(lan, conversation_id)
    an = await signed_in_page(chromium, hub, "an@example.vn")
    await an.wait_for_selector("#connection.up")
    await an.click(f"#conversations li[data-id='{conversation_id}']")
    # Each learns of the other at once (not at the next 20 s repeat).
    await lan.wait_for_selector("#viewers:not([hidden]) >> text=An", timeout=5000)
    await an.wait_for_selector("#viewers:not([hidden]) >> text=Lan", timeout=5000)
    await shot(lan, "day-also-viewing")
    # An moves on: Lan is alone again; An closes the tab: gone from the other too.
    await an.click(f"#conversations li[data-id='{other}']")
    await lan.wait_for_selector("#viewers", state="hidden", timeout=5000)
    await lan.click(f"#conversations li[data-id='{other}']")
    await lan.wait_for_selector("#viewers:not([hidden]) >> text=An", timeout=5000)
    await an.context.close()
    await lan.wait_for_selector("#viewers", state="hidden", timeout=5000)
    assert lan.errors == [] and an.errors == []


def png(width: int, height: int) -> bytes:
    """A real PNG (grey pixels), as a customer's phone photo would be one."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x80\x80\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def test_a_customers_photo_is_shown_in_the_timeline_and_a_file_not_kept_says_so(
    chromium, team_hub
):
    hub = team_hub
    photo = png(160, 120)
    uploaded = await call(
        hub,
        "POST",
        "/api/v1/attachments?name=ao-giao-sai.png",
        hub.lan,
        status=201,
        data=photo,
        headers={"Content-Type": "image/png"},
    )
    conversation_id = await inbound(hub, "m1", "cust-1", text="Shop giao sai màu rồi")
    for n in range(15):
        await inbound(hub, f"m{n + 2}", "cust-1", text=f"Tin số {n}")
    conversation = await hub.runtime.store.get_conversation(conversation_id)
    now = hub.runtime.clock.now()
    await hub.runtime.store.add_message(
        Message(
            conversation_id=conversation.id,
            account_id=conversation.account_id,
            channel=conversation.channel,
            direction="inbound",
            sender=Sender(kind="contact", id=conversation.contact_id, name="Khách"),
            text="Ảnh đây ạ",
            attachments=[
                Attachment(
                    name="ao-giao-sai.png",
                    content_type="image/png",
                    size=len(photo),
                    storage_key=uploaded["storage_key"],
                ),
                Attachment(
                    name="video.mp4", content_type="video/mp4", size=30_000_000, too_large=True
                ),
            ],
            created_at=now,
            updated_at=now,
        )
    )
    page = await signed_in_page(chromium, hub, "lan@example.vn")
    await open_unassigned(page, conversation_id)
    preview = page.locator(".msg img.preview")
    await preview.wait_for()
    await page.wait_for_function(
        "() => document.querySelector('.msg img.preview').naturalWidth === 160"
    )
    # The photo came in after the timeline was drawn at its end: it is still there.
    at_end = "(l) => l.scrollHeight - l.scrollTop - l.clientHeight < 48"
    assert await page.locator("#timeline").evaluate(at_end)
    assert await page.locator(".msg .attachment.gone").text_content() == (
        "📎 video.mp4 · 28,6 MB · quá lớn, không được lưu"
    )
    await shot(page, "day-photo")
    assert page.errors == []


async def test_a_dropped_network_is_said_plainly_and_retried(chromium, team_hub):
    hub = team_hub
    first = await inbound(hub, "m1", "cust-1", text="Tin của khách một")
    second = await inbound(hub, "m2", "cust-2", text="Tin của khách hai")
    page = await signed_in_page(chromium, hub, "lan@example.vn")
    await open_unassigned(page, first)
    # The Wi-Fi goes (the browser's own offline mode: every request fails).
    await page.context.set_offline(True)
    await page.click(f"#conversations li[data-id='{second}']")
    await page.wait_for_selector("#load-error:not([hidden]) >> text=Không kết nối được")
    assert await page.is_hidden("#open")
    await page.fill("#search", "khách")
    await page.wait_for_selector("#list-error:not([hidden]) >> text=Không kết nối được")
    # What was listed stays listed: stale beats blank.
    assert await page.locator("#conversations li.item").count() == 2
    await shot(page, "day-offline")
    await page.context.set_offline(False)
    await page.click("#load-error-retry")
    await page.wait_for_selector(".msg.inbound >> text=Tin của khách hai")
    await page.click("#list-error-retry")
    await page.wait_for_selector("#list-error", state="hidden")
    assert page.errors == []


async def test_snoozes_are_on_the_office_clock(chromium, team_hub):
    hub = team_hub
    store = hub.runtime.store
    office = ZoneInfo("Asia/Ho_Chi_Minh")
    conversation_id = await inbound(hub, "m1", "cust-1", text="Mai em chuyển khoản nhé")
    page = await signed_in_page(chromium, hub, "lan@example.vn", timezone="UTC")
    await open_unassigned(page, conversation_id)

    async def snoozed_until() -> datetime | None:
        return (await store.get_conversation(conversation_id)).snoozed_until

    async def expect(moment: datetime) -> None:
        async def check() -> bool:
            return await snoozed_until() == moment

        await eventually(check)

    today = datetime.now(office).date()
    await page.select_option("#snooze", "tomorrow")
    await expect(datetime.combine(today + timedelta(days=1), time(8), office))
    await page.wait_for_selector("#status >> text=Tạm hoãn đến 08:00")
    monday = today + timedelta(days=(7 - today.weekday()) or 7)
    await page.select_option("#snooze", "next_week")
    await expect(datetime.combine(monday, time(8), office))
    # A time picked by hand is read on the office's clock too, not the laptop's.
    await page.select_option("#snooze", "custom")
    await page.fill("#snooze-until", f"{monday.isoformat()}T14:30")
    await page.click("#snooze-at")
    await expect(datetime.combine(monday, time(14, 30), office))
    await page.wait_for_selector("#snooze-custom", state="hidden")
    assert page.errors == []


async def test_an_agent_back_after_the_away_grace_sees_themself_online(chromium, team_hub):
    # No tab open past the grace: the hub marked Lan away. Signing in again opens
    # a socket and the hub sets her online; her presence menu must say so, not
    # the "away" her sign-in read a moment before. A change made elsewhere (an
    # admin, another tab) shows too.
    hub = team_hub
    lan = hub.lan.agent.id
    await hub.runtime.store.update_agent(lan, presence="online")
    assert await hub.runtime.presence.settle(lan) == "away"
    page = await signed_in_page(chromium, hub, "lan@example.vn")
    await page.wait_for_function("() => document.querySelector('#presence').value === 'online'")
    assert (await hub.runtime.store.get_agent(lan)).presence == "online"
    await call(hub, "PUT", "/api/v1/agents/me/presence", hub.lan, json={"presence": "offline"})
    await page.wait_for_function("() => document.querySelector('#presence').value === 'offline'")
    assert page.errors == []
