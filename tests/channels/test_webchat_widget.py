"""The real widget (`widget.js`) in headless Chromium, on a company website
served by a local HTTP server, talking to a real hub.

Chromium is Debian's (`/usr/bin/chromium`), driven by Playwright's Python
package; these tests skip, saying so, where it is not installed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub.inbox.model import Identity
from hub.inbox.store import ConversationFilter
from tests.channels.test_api import post
from tests.channels.test_webchat import agent_stream, api_account, reply, status_becomes
from tests.conftest import eventually
from tests.peers.api_sender import message
from tests.peers.network_path import NetworkPath
from tests.peers.website import NONCE, Website
from tests.web.test_api import add_agent

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOST = "#hub-chat"
TRANSCRIPT_JS = """() => {
  const host = document.querySelector('#hub-chat');
  if (!host) return null;
  return Array.from(host.shadowRoot.querySelectorAll('[data-part=message]'))
    .filter(row => !row.classList.contains('greeting'))
    .map(row => ({
      id: row.dataset.id,
      from: row.dataset.from,
      text: row.querySelector('.b').textContent,
      state: row.classList.contains('pending') ? 'pending'
           : row.classList.contains('failed') ? 'failed' : '',
    }));
}"""


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not HAVE_CHROMIUM:
        pytest.skip(
            "Chromium is not installed at /usr/bin/chromium: install Debian's `chromium`"
            " package (.ci/run does) to run the widget in a real browser"
        )
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS
        )
        yield chromium
        await chromium.close()


@pytest.fixture
async def site() -> AsyncIterator[Website]:
    website = Website()
    await website.start()
    yield website
    await website.stop()


@pytest.fixture
def widget_settings(make_settings, callback_peer, site):
    def build(**options: Any):
        account = {
            "id": "web",
            "channel": "webchat",
            "name": "Cửa hàng ABC",
            "allowed_origins": [site.origin],
            "greeting": {"en": "Hi! How can we help?", "vi": "Xin chào! Shop giúp gì được ạ?"},
            **options,
        }
        return make_settings(accounts=[api_account(callback_peer.url), account])

    return build


@pytest.fixture
async def hub(widget_settings, start_hub, site):
    hub = await start_hub(widget_settings())
    hub.agent, hub.token = await add_agent(hub, "lan@shop.vn", presence="online")
    site.hub_url = str(hub.client.make_url("")).rstrip("/")
    return hub


class Widget:
    """The widget on one page, as a visitor uses it."""

    def __init__(self, page: Any) -> None:
        self.page = page

    def part(self, name: str) -> Any:
        return self.page.locator(f"{HOST} [data-part={name}]")

    async def load(self, url: str) -> None:
        await self.page.goto(url)
        await self.connected()

    async def connected(self, timeout: float = 15_000) -> None:
        # A locator, not wait_for_function: that evaluates a string, which a
        # page's strict Content-Security-Policy refuses.
        await self.page.locator(f"{HOST}[data-state=online]").wait_for(
            state="attached", timeout=timeout
        )

    async def open(self) -> None:
        await self.part("bubble").click()
        await self.part("panel").wait_for(state="visible")

    async def say(self, text: str) -> None:
        await self.part("input").fill(text)
        await self.part("input").press("Enter")

    async def transcript(self) -> list[dict[str, str]]:
        rows: list[dict[str, str]] = await self.page.evaluate(TRANSCRIPT_JS)
        return rows

    async def shows(self, text: str, *, sender: str | None = None, stored: bool = True) -> None:
        async def check() -> bool:
            return any(
                row["text"] == text
                and (sender is None or row["from"] == sender)
                and (not stored or row["id"])
                for row in await self.transcript()
            )

        await eventually(check, timeout=15)


async def new_widget(browser: Any, **context: Any) -> Widget:
    page = await (await browser.new_context(**context)).new_page()
    return Widget(page)


async def visitor_conversations(hub) -> list[Any]:
    page = await hub.runtime.store.list_conversations(
        ConversationFilter(channel="webchat"), limit=100
    )
    return page.items


async def api_timeline(hub, conversation_id: str) -> list[dict[str, Any]]:
    response = await hub.api("GET", f"/api/v1/conversations/{conversation_id}/messages", hub.token)
    assert response.status == 200
    return (await response.json())["items"]


async def only_conversation(hub) -> str:
    async def one() -> bool:
        return len(await visitor_conversations(hub)) == 1

    await eventually(one)
    return (await visitor_conversations(hub))[0].id


async def test_visitor_writes_agent_answers_in_the_real_widget(browser, hub, site):
    widget = await new_widget(browser)
    await widget.load(site.url())
    await widget.open()
    await widget.part("list").get_by_text("Hi! How can we help?").wait_for()
    await widget.say("Xin chào, áo này còn size M không ạ?")
    await widget.shows("Xin chào, áo này còn size M không ạ?", sender="visitor")

    # The message arrives through the API, as any agent tool sees it.
    conversation_id = await only_conversation(hub)
    [inbound] = await api_timeline(hub, conversation_id)
    assert inbound["text"] == "Xin chào, áo này còn size M không ạ?"
    assert inbound["channel"] == "webchat" and inbound["html"] is None

    stream = agent_stream(hub, hub.token)
    await stream.connect()
    await widget.part("input").type("đợi chút")
    typing = await stream.event("conversation.typing")
    assert typing["typing"] is True and typing["conversation_id"] == conversation_id
    await stream.send({"type": "typing", "conversation_id": conversation_id, "typing": True})
    await widget.part("typing").get_by_text("Lan is typing…").wait_for()

    sent = await reply(hub, conversation_id, "Dạ còn ạ, anh lấy màu gì ạ?")
    await widget.shows("Dạ còn ạ, anh lấy màu gì ạ?", sender="agent")
    await status_becomes(hub, sent["id"], "read")  # the chat was open and in view
    await stream.send({"type": "read", "conversation_id": conversation_id, "up_to": inbound["id"]})
    await widget.part("seen").wait_for()
    assert await widget.part("seen").inner_text() == "Seen"
    await stream.close()


async def test_socket_cut_and_restored_keeps_the_transcript_exact(
    browser, hub, site, widget_settings, start_hub
):
    widget = await new_widget(browser)
    await widget.load(site.url())
    await widget.open()
    await widget.say("message 1")
    await widget.shows("message 1")
    conversation_id = await only_conversation(hub)
    await reply(hub, conversation_id, "answer 1")
    await widget.shows("answer 1")

    # 1. The hub closes the socket; a reply is sent before the widget is back.
    await hub.runtime.channels["web"].shutdown()
    answer2 = await reply(hub, conversation_id, "answer 2 (sent while cut off)")
    await status_becomes(hub, answer2["id"], "sent")
    await widget.connected()
    await widget.shows("answer 2 (sent while cut off)")

    # 2. The widget's hub goes away entirely. Meanwhile an agent answers through
    #    another hub process (same store and Redis) and the visitor writes; then
    #    a new hub starts on the widget's port and the widget resumes.
    other = await start_hub(widget_settings())
    other.agent, other.token = hub.agent, hub.token
    port = hub.client.port
    await hub.client.close()
    await widget.page.wait_for_function(
        "document.querySelector('#hub-chat').getAttribute('data-state') === 'reconnecting'"
    )
    await widget.part("connection").wait_for()
    answer3 = await reply(other, conversation_id, "answer 3 (sent while the hub was down)")
    await status_becomes(other, answer3["id"], "sent")
    await widget.say("message 2 (written while the hub was down)")
    await asyncio.sleep(0.5)
    assert (await widget.transcript())[-1]["state"] == "pending"
    again = await start_hub(widget_settings(), port=port)
    again.agent, again.token = hub.agent, hub.token
    await widget.connected(timeout=40_000)
    await widget.shows("answer 3 (sent while the hub was down)")
    await widget.shows("message 2 (written while the hub was down)")
    await reply(again, conversation_id, "answer 4")
    await widget.shows("answer 4")

    expected = [
        {"id": m["id"], "text": m["text"]}
        for m in await api_timeline(again, conversation_id)
        if m["direction"] in ("inbound", "outbound")
    ]
    shown = [{"id": row["id"], "text": row["text"]} for row in await widget.transcript()]
    assert shown == expected
    assert [m["text"] for m in expected] == [
        "message 1",
        "answer 1",
        "answer 2 (sent while cut off)",
        "answer 3 (sent while the hub was down)",
        "message 2 (written while the hub was down)",
        "answer 4",
    ]


async def test_returning_visitor_continues_the_same_conversation(browser, hub, site):
    context = await browser.new_context()
    first = Widget(await context.new_page())
    await first.load(site.url())
    await first.open()
    await first.say("first visit")
    await first.shows("first visit")
    await first.page.close()

    # Same browser storage, another day, another page of the site.
    back = Widget(await context.new_page())
    await back.load(site.url("/other"))
    await back.open()
    await back.shows("first visit")
    await back.say("second visit")
    await back.shows("second visit")
    conversation_id = await only_conversation(hub)
    texts = [m["text"] for m in await api_timeline(hub, conversation_id)]
    assert texts == ["first visit", "second visit"]

    # Someone else (no shared storage) is someone else.
    stranger = await new_widget(browser)
    await stranger.load(site.url())
    await stranger.open()
    assert await stranger.transcript() == []


async def test_prechat_form_with_an_existing_contacts_email_goes_on_without_linking(
    browser, widget_settings, start_hub, site
):
    hub = await start_hub(
        widget_settings(prechat_form="required", prechat_fields=["name", "email"])
    )
    hub.agent, hub.token = await add_agent(hub, "lan@shop.vn", presence="online")
    site.hub_url = str(hub.client.make_url("")).rstrip("/")
    known = await post(hub, message("order-7", "cust-7", email="binh@example.vn"))
    contact_id = (await known.json())["contact_id"]

    widget = await new_widget(browser)
    await widget.load(site.url())
    await widget.open()
    await widget.part("prechat").wait_for()
    assert not await widget.part("input").is_visible()  # required: the form comes first
    await widget.page.locator(f"{HOST} [data-part=prechat] input[name=name]").fill("Bình")
    await widget.page.locator(f"{HOST} [data-part=prechat] input[name=email]").fill(
        "Binh@Example.VN"
    )
    await widget.part("prechat-submit").click()
    await widget.part("input").wait_for(state="visible")
    await widget.say("Đơn hàng order-7 của tôi đâu rồi?")
    await widget.shows("Đơn hàng order-7 của tôi đâu rồi?")

    # A typed address proves nothing: the visitor is not made the shop's contact
    # (whose chat they would be shown); an agent merges them if they are one.
    [conversation] = await visitor_conversations(hub)
    assert conversation.contact_id != contact_id
    contact = await hub.runtime.store.get_contact(contact_id)
    assert not any(i.channel == "web" for i in contact.identities)


async def test_offline_widget_says_so_and_takes_an_email(browser, widget_settings, start_hub, site):
    hub = await start_hub(widget_settings())
    _, token = await add_agent(hub, "lan@shop.vn", presence="offline")
    site.hub_url = str(hub.client.make_url("")).rstrip("/")
    widget = await new_widget(browser)
    await widget.load(site.url())
    await widget.open()
    status = widget.part("status")
    assert await status.get_attribute("data-online") == "false"
    assert "No one is online right now" in await status.inner_text()
    await widget.part("offline-form").wait_for()
    await widget.page.locator(f"{HOST} [data-part=offline-form] input").fill("Mai@Example.VN")
    await widget.part("offline-submit").click()
    await widget.part("offline-thanks").wait_for()

    async def linked() -> bool:
        owners = await hub.runtime.store.contacts_by_identity(
            [Identity(channel="email", address="mai@example.vn")]
        )
        return bool(owners)

    await eventually(linked)
    await widget.say("Please write back")
    await widget.shows("Please write back")
    [conversation] = await visitor_conversations(hub)
    contact = await hub.runtime.store.get_contact(conversation.contact_id)
    assert Identity(channel="email", address="mai@example.vn") in contact.identities

    # An agent comes online: the widget says so, live.
    response = await hub.api(
        "PUT", "/api/v1/agents/me/presence", token, json={"presence": "online"}
    )
    assert response.status == 200
    await widget.page.wait_for_function(
        "document.querySelector('#hub-chat').shadowRoot"
        ".querySelector('[data-part=status]').dataset.online === 'true'"
    )


async def test_html_in_messages_is_shown_as_text_and_never_runs(browser, hub, site):
    widget = await new_widget(browser)
    await widget.load(site.url())
    await widget.open()
    visitor_text = (
        '<img src=x onerror="window.__pwned=1"><b>bold</b><script>window.__pwned=2</script>'
    )
    await widget.say(visitor_text)
    await widget.shows(visitor_text)
    conversation_id = await only_conversation(hub)
    agent_text = '<script>window.__pwned=3</script><a href="javascript:window.__pwned=4">x</a>'
    await reply(hub, conversation_id, agent_text)
    await widget.shows(agent_text)
    assert await widget.page.evaluate("window.__pwned") is None
    markup = await widget.page.evaluate(
        "document.querySelector('#hub-chat').shadowRoot"
        ".querySelectorAll('[data-part=list] img, [data-part=list] script,"
        " [data-part=list] b, [data-part=list] a').length"
    )
    assert markup == 0
    [stored, _] = await api_timeline(hub, conversation_id)
    assert stored["text"] == visitor_text and stored["html"] is None


async def test_a_site_not_in_allowed_origins_gets_no_chat(browser, hub, site):
    other = Website()
    other.hub_url = site.hub_url
    await other.start()
    try:
        widget = await new_widget(browser)
        await widget.page.goto(other.url())
        await asyncio.sleep(2)
        assert await widget.page.locator(HOST).count() == 0  # nothing rendered
        assert await visitor_conversations(hub) == []
    finally:
        await other.stop()


async def test_rate_limited_messages_show_an_error_and_are_sent_later(
    browser, widget_settings, start_hub, site
):
    hub = await start_hub(widget_settings(rate_limit_burst=2, rate_limit_per_minute=120))
    hub.agent, hub.token = await add_agent(hub, "lan@shop.vn", presence="online")
    site.hub_url = str(hub.client.make_url("")).rstrip("/")
    widget = await new_widget(browser)
    await widget.load(site.url())
    await widget.open()
    for n in range(4):
        await widget.say(f"quick {n}")
    await widget.part("error").get_by_text("too many messages", exact=False).wait_for()
    for n in range(4):
        await widget.shows(f"quick {n}")
    conversation_id = await only_conversation(hub)
    texts = [m["text"] for m in await api_timeline(hub, conversation_id)]
    assert sorted(texts) == [f"quick {n}" for n in range(4)]


async def test_vietnamese_strings_and_a_mobile_screen(browser, hub, site):
    site.lang = "vi"
    widget = await new_widget(browser, viewport={"width": 390, "height": 844}, is_mobile=True)
    await widget.load(site.url())
    assert await widget.part("bubble").get_attribute("aria-label") == "Mở khung chat"
    await widget.open()
    assert await widget.part("input").get_attribute("placeholder") == "Nhập tin nhắn…"
    await widget.part("list").get_by_text("Xin chào! Shop giúp gì được ạ?").wait_for()
    box = await widget.part("panel").bounding_box()
    assert box is not None and box["width"] == 390  # full screen on a phone


BACKGROUND_JS = """selector => getComputedStyle(
  document.querySelector('#hub-chat').shadowRoot.querySelector(selector)
).backgroundColor"""


async def test_the_configured_colour_paints_the_widget(browser, widget_settings, start_hub, site):
    hub = await start_hub(widget_settings(color="#C0392B"))
    await add_agent(hub, "lan@shop.vn", presence="online")
    site.hub_url = str(hub.client.make_url("")).rstrip("/")
    widget = await new_widget(browser)
    await widget.load(site.url())
    red = "rgb(192, 57, 43)"
    assert await widget.page.evaluate(BACKGROUND_JS, "[data-part=bubble]") == red
    await widget.open()
    await widget.say("What colour is this?")
    await widget.shows("What colour is this?", sender="visitor")
    for part in (".head", "[data-part=message][data-from=visitor] .b", "[data-part=send]"):
        assert await widget.page.evaluate(BACKGROUND_JS, part) == red, part


# -- the widget on real websites and real phones ---------------------------------

ARTIFACTS = Path(__file__).parent.parent / "artifacts"
# What shop themes really ship: resets that reach every element, a root font
# size for rem maths, and a sticky header on the highest z-index there is.
HOSTILE_CSS = """<style>
*{box-sizing:content-box!important;margin:0}
button{all:unset}
html{font-size:10px}
div{position:relative;z-index:1}
textarea{font-size:1.2rem}
.site-header{position:fixed;left:0;right:0;top:0;height:64px;z-index:2147483647;background:#222}
</style>"""
SITE_HEADER = '<header class="site-header"></header>'
TOPMOST_JS = """selector => {
  const node = document.querySelector('#hub-chat').shadowRoot.querySelector(selector);
  const box = node.getBoundingClientRect();
  const x = box.left + box.width / 2, y = box.top + box.height / 2;
  return document.elementFromPoint(x, y)?.id === 'hub-chat'
    && node.contains(document.querySelector('#hub-chat').shadowRoot.elementFromPoint(x, y));
}"""


async def in_shadow(widget: Widget, selector: str, script: str) -> Any:
    """Run `script` (a function body) with `node`, the widget's part at `selector`."""
    return await widget.page.locator(f"{HOST} {selector}").evaluate(f"node => {{ {script} }}")


async def test_a_hostile_site_stylesheet_and_a_doubled_snippet_do_not_break_the_widget(
    browser, hub, site
):
    site.head, site.body, site.snippets = HOSTILE_CSS, SITE_HEADER, 2
    widget = await new_widget(
        browser, viewport={"width": 360, "height": 640}, is_mobile=True, has_touch=True
    )
    await widget.load(site.url())
    assert await widget.page.locator(HOST).count() == 1  # pasted twice, shown once
    box = await widget.part("bubble").bounding_box()
    assert box is not None and (box["width"], box["height"]) == (56, 56)
    assert await widget.page.evaluate(TOPMOST_JS, "[data-part=bubble]")
    await widget.open()
    # Full screen on the phone, over the site's max-z-index header: the close
    # button is reachable, not hidden under the header.
    assert await widget.page.evaluate(TOPMOST_JS, "[data-part=close]")
    assert await in_shadow(widget, "[data-part=input]", "return getComputedStyle(node).boxSizing")
    await widget.say("Trang của shop có CSS riêng")
    await widget.shows("Trang của shop có CSS riêng")
    await only_conversation(hub)
    ARTIFACTS.mkdir(exist_ok=True)
    await widget.page.screenshot(path=str(ARTIFACTS / "webchat-hostile-site.png"))


async def test_a_strict_content_security_policy_still_gets_a_styled_working_widget(
    browser, hub, site
):
    ws_origin = site.hub_url.replace("http://", "ws://")
    site.csp = (
        f"default-src 'self'; script-src {site.hub_url}; connect-src {ws_origin};"
        f" style-src 'self' 'nonce-{NONCE}'; img-src 'self'; require-trusted-types-for 'script'"
    )
    widget = await new_widget(browser)
    await widget.page.add_init_script(
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    await widget.load(site.url())
    await widget.open()
    assert (
        await in_shadow(widget, "[data-part=bubble]", "return getComputedStyle(node).position")
        == "fixed"
    )
    box = await widget.part("bubble").bounding_box()
    assert box is not None and (box["width"], box["height"]) == (56, 56)
    await widget.say("CSP nghiêm ngặt")
    await widget.shows("CSP nghiêm ngặt")
    assert await widget.page.evaluate("window.__violations") == []


async def test_on_a_small_phone_the_chat_fits_and_the_input_does_not_zoom(browser, hub, site):
    widget = await new_widget(
        browser, viewport={"width": 360, "height": 640}, is_mobile=True, has_touch=True
    )
    await widget.load(site.url())
    bubble = await widget.part("bubble").bounding_box()
    assert bubble is not None and bubble["x"] + bubble["width"] <= 360
    await widget.part("bubble").tap()
    await widget.part("panel").wait_for(state="visible")
    panel = await widget.part("panel").bounding_box()
    assert panel == {"x": 0, "y": 0, "width": 360, "height": 640}
    assert not await widget.part("bubble").is_visible()  # the panel has its own close
    field = await widget.part("input").bounding_box()
    assert field is not None and field["y"] + field["height"] <= 640
    # iOS zooms into any field whose text is smaller than 16px, and stays zoomed.
    size = await in_shadow(widget, "[data-part=input]", "return getComputedStyle(node).fontSize")
    assert float(size.removesuffix("px")) >= 16
    await widget.say("Gửi từ điện thoại 📱")
    await widget.shows("Gửi từ điện thoại 📱")
    ARTIFACTS.mkdir(exist_ok=True)
    await widget.page.screenshot(path=str(ARTIFACTS / "webchat-phone-360.png"))
    await widget.part("close").tap()
    await widget.part("bubble").wait_for(state="visible")


async def test_links_in_replies_open_safely_in_a_new_tab_and_long_words_wrap(browser, hub, site):
    widget = await new_widget(browser, viewport={"width": 800, "height": 700})
    await widget.load(site.url())
    await widget.open()
    await widget.say("Cho em xem mẫu ạ")
    await widget.shows("Cho em xem mẫu ạ")
    conversation_id = await only_conversation(hub)
    text = (
        "Mẫu đây ạ: https://shop.example.vn/ao-thun?size=M&mau=do, hoặc "
        "(http://shop.example.vn/sale). Không phải link: javascript:alert(1) " + "x" * 300
    )
    await reply(hub, conversation_id, text)
    await widget.shows(text)
    links = await widget.page.evaluate(
        """() => Array.from(document.querySelector('#hub-chat').shadowRoot
          .querySelectorAll('[data-part=message][data-from=agent] .b a'))
          .map(a => [a.getAttribute('href'), a.textContent, a.target, a.rel])"""
    )
    assert links == [
        [
            "https://shop.example.vn/ao-thun?size=M&mau=do",
            "https://shop.example.vn/ao-thun?size=M&mau=do",
            "_blank",
            "noopener noreferrer nofollow",
        ],
        [
            "http://shop.example.vn/sale",
            "http://shop.example.vn/sale",
            "_blank",
            "noopener noreferrer nofollow",
        ],
    ]
    fits = await in_shadow(
        widget,
        "[data-part=message][data-from=agent]:not(.greeting) .b",
        "const list = node.closest('.list').getBoundingClientRect();"
        "return node.scrollWidth <= node.clientWidth"
        " && node.getBoundingClientRect().right <= list.right",
    )
    assert fits


async def test_the_keyboard_alone_opens_uses_and_closes_the_chat(browser, hub, site):
    widget = await new_widget(browser)
    await widget.load(site.url())
    bubble = widget.part("bubble")
    assert await bubble.get_attribute("aria-label") == "Open chat"
    assert await bubble.get_attribute("aria-expanded") == "false"
    await bubble.focus()
    await widget.page.keyboard.press("Enter")
    await widget.part("panel").wait_for(state="visible")
    assert await bubble.get_attribute("aria-expanded") == "true"
    assert await widget.part("input").evaluate("node => node.getRootNode().activeElement === node")
    await widget.page.keyboard.type("chỉ dùng bàn phím")
    await widget.page.keyboard.press("Tab")
    assert await widget.part("send").evaluate("node => node.getRootNode().activeElement === node")
    assert (await widget.part("send").inner_text()) == "Send"
    await widget.page.keyboard.press("Enter")
    await widget.shows("chỉ dùng bàn phím")
    await widget.page.keyboard.press("Escape")
    await widget.part("panel").wait_for(state="hidden")
    # Focus goes back to the launcher, not lost to the top of the page.
    assert await bubble.evaluate("node => node.getRootNode().activeElement === node")


async def test_enter_that_ends_an_ime_composition_does_not_send_half_a_word(browser, hub, site):
    widget = await new_widget(browser)
    await widget.load(site.url())
    await widget.open()
    field = widget.part("input")
    await field.fill("Cho em hỏi gi")
    # Safari (macOS and iOS) fires the Enter that commits a Telex/VNI word with
    # isComposing already false, but keyCode 229; Chromium with isComposing.
    for init in ({"keyCode": 229}, {"isComposing": True}):
        await field.evaluate(
            "(node, init) => node.dispatchEvent(new KeyboardEvent('keydown',"
            " {key: 'Enter', bubbles: true, cancelable: true, ...init}))",
            init,
        )
    await asyncio.sleep(0.3)
    assert await field.input_value() == "Cho em hỏi gi"
    assert await widget.transcript() == []
    await field.fill("Cho em hỏi giá")
    await field.press("Enter")
    await widget.shows("Cho em hỏi giá")


async def test_the_widget_speaks_the_site_language_unless_told_otherwise(browser, hub, site):
    site.html_lang = "vi"
    widget = await new_widget(browser, locale="en-US")
    await widget.load(site.url())
    assert await widget.part("bubble").get_attribute("aria-label") == "Mở khung chat"
    await widget.open()
    await widget.part("list").get_by_text("Xin chào! Shop giúp gì được ạ?").wait_for()

    site.html_lang = "en-GB"
    english = await new_widget(browser, locale="vi-VN")
    await english.load(site.url())
    assert await english.part("bubble").get_attribute("aria-label") == "Open chat"

    site.html_lang = ""  # no lang on the page: the browser's
    browser_vi = await new_widget(browser, locale="vi-VN")
    await browser_vi.load(site.url())
    assert await browser_vi.part("bubble").get_attribute("aria-label") == "Mở khung chat"


async def test_a_connection_that_died_silently_is_replaced_when_the_phone_is_back(
    browser, hub, site
):
    path = NetworkPath("127.0.0.1", hub.client.port)
    await path.start()
    site.hub_url = path.url
    try:
        widget = await new_widget(browser, viewport={"width": 360, "height": 640}, is_mobile=True)
        await widget.load(site.url())
        await widget.open()
        await widget.say("trước khi đổi mạng")
        await widget.shows("trước khi đổi mạng")
        conversation_id = await only_conversation(hub)

        # Wi-Fi to 4G: the open socket goes silent without closing.
        await widget.page.context.set_offline(True)
        path.silence()
        answer = await reply(hub, conversation_id, "trả lời lúc đang mất mạng")
        await widget.say("viết lúc đang mất mạng")
        await widget.page.context.set_offline(False)  # the browser says "online"

        await widget.shows("trả lời lúc đang mất mạng", sender="agent")
        await widget.shows("viết lúc đang mất mạng", sender="visitor")
        await status_becomes(hub, answer["id"], "read")
        texts = [row["text"] for row in await widget.transcript()]
        assert texts == [
            "trước khi đổi mạng",
            "trả lời lúc đang mất mạng",
            "viết lúc đang mất mạng",
        ]
        stored = [m["text"] for m in await api_timeline(hub, conversation_id)]
        assert stored == texts  # nothing lost, nothing twice
    finally:
        await path.stop()


async def test_a_second_tab_shares_the_conversation_without_doubling_it(browser, hub, site):
    context = await browser.new_context()
    first = Widget(await context.new_page())
    await first.load(site.url())
    await first.open()
    await first.say("tab một")
    await first.shows("tab một")
    second = Widget(await context.new_page())
    await second.load(site.url("/san-pham"))
    await second.open()
    await second.shows("tab một")
    await second.say("tab hai")
    await first.shows("tab hai")
    conversation_id = await only_conversation(hub)
    await reply(hub, conversation_id, "trả lời cả hai tab")
    for tab in (first, second):
        await tab.shows("trả lời cả hai tab")
        assert [row["text"] for row in await tab.transcript()] == [
            "tab một",
            "tab hai",
            "trả lời cả hai tab",
        ]


# A shop's own fixed bottom bar on phones, with its most important button.
BOTTOM_BAR = (
    '<nav style="position:fixed;left:0;right:0;bottom:0;height:64px;background:#fff;'
    'display:flex;justify-content:flex-end;align-items:center;z-index:50">'
    '<button id="buy" style="width:120px;height:44px;margin-right:12px">Mua ngay</button></nav>'
)
ON_TOP_JS = """id => {
  const box = document.getElementById(id).getBoundingClientRect();
  return document.elementFromPoint(box.right - 30, box.top + 10)?.id === id;
}"""


async def test_the_launcher_can_be_moved_off_the_sites_own_bottom_buttons(
    browser, widget_settings, start_hub, site
):
    site.body = BOTTOM_BAR
    phone = {"viewport": {"width": 360, "height": 640}, "is_mobile": True, "has_touch": True}
    hub = await start_hub(widget_settings())
    site.hub_url = str(hub.client.make_url("")).rstrip("/")
    default = await new_widget(browser, **phone)
    await default.load(site.url())
    assert not await default.page.evaluate(ON_TOP_JS, "buy")  # the bubble covers "buy"
    await hub.client.close()

    hub = await start_hub(widget_settings(launcher_bottom=76, launcher_side="left"))
    site.hub_url = str(hub.client.make_url("")).rstrip("/")
    moved = await new_widget(browser, **phone)
    await moved.load(site.url())
    assert await moved.page.evaluate(ON_TOP_JS, "buy")
    box = await moved.part("bubble").bounding_box()
    assert box is not None and box["x"] == 20 and box["y"] + box["height"] == 640 - 76
    await moved.open()
    panel = await moved.part("panel").bounding_box()
    assert panel == {"x": 0, "y": 0, "width": 360, "height": 640}  # still the whole screen
    await moved.part("close").tap()
    ARTIFACTS.mkdir(exist_ok=True)
    await moved.page.screenshot(path=str(ARTIFACTS / "webchat-launcher-moved.png"))


WATCH_LIST_JS = """() => {
  const list = document.querySelector('#hub-chat').shadowRoot.querySelector('[data-part=list]');
  window.__announced = [];
  window.__removed = 0;
  for (const row of list.children) row.__before = true;
  new MutationObserver(records => records.forEach(r => {
    r.addedNodes.forEach(n => window.__announced.push(n.textContent));
    window.__removed += r.removedNodes.length;
  })).observe(list, {childList: true});
}"""


async def test_screen_readers_hear_each_new_message_once_not_the_whole_chat_again(
    browser, hub, site
):
    widget = await new_widget(browser)
    await widget.load(site.url())
    await widget.open()
    await widget.say("câu hỏi một")
    await widget.shows("câu hỏi một")
    conversation_id = await only_conversation(hub)
    await reply(hub, conversation_id, "trả lời một")
    await widget.shows("trả lời một")
    await widget.page.evaluate(WATCH_LIST_JS)

    stream = agent_stream(hub, hub.token)
    await stream.connect()
    await stream.send({"type": "typing", "conversation_id": conversation_id, "typing": True})
    await widget.part("typing").wait_for()
    await reply(hub, conversation_id, "trả lời hai")
    await widget.shows("trả lời hai")
    await widget.say("câu hỏi hai")
    await widget.shows("câu hỏi hai")  # "sending…", then stored: the same row
    await stream.close()
    announced = await widget.page.evaluate("window.__announced")
    assert announced == ["Lan is typing…", "Lan" + "trả lời hai", "câu hỏi hai" + "Sending…"]
    # The rows that were there are still the very same nodes.
    kept = await widget.page.evaluate(
        """() => Array.from(document.querySelector('#hub-chat').shadowRoot
          .querySelectorAll('[data-part=message]')).map(row => Boolean(row.__before))"""
    )
    assert kept == [True, True, True, False, False]


async def test_a_message_written_offline_survives_its_tab_being_closed(browser, hub, site):
    path = NetworkPath("127.0.0.1", hub.client.port)
    await path.start()
    site.hub_url = path.url
    try:
        context = await browser.new_context()
        first, second = Widget(await context.new_page()), Widget(await context.new_page())
        await first.load(site.url())
        await second.load(site.url("/san-pham"))
        await first.open()
        await second.open()
        path.silence()  # the phone loses the network: both tabs' sockets go silent
        await first.say("viết ở tab một khi mất mạng")
        await second.say("viết ở tab hai khi mất mạng")
        await first.page.close()  # closed before the network came back

        await second.page.evaluate("window.dispatchEvent(new Event('online'))")
        await second.shows("viết ở tab một khi mất mạng")
        await second.shows("viết ở tab hai khi mất mạng")
        conversation_id = await only_conversation(hub)
        stored = sorted(m["text"] for m in await api_timeline(hub, conversation_id))
        assert stored == ["viết ở tab hai khi mất mạng", "viết ở tab một khi mất mạng"]
    finally:
        await path.stop()


async def test_a_pasted_text_over_the_limit_is_kept_and_says_so_not_cut_short(
    browser, widget_settings, start_hub, site
):
    hub = await start_hub(widget_settings(max_message_chars=40))
    hub.agent, hub.token = await add_agent(hub, "lan@shop.vn", presence="online")
    site.hub_url = str(hub.client.make_url("")).rstrip("/")
    widget = await new_widget(browser)
    await widget.load(site.url())
    await widget.open()
    pasted = "Địa chỉ giao hàng: 12 Nguyễn Huệ, Quận 1, TP.HCM 🏠"  # 50 characters
    await widget.part("input").focus()
    await widget.page.keyboard.insert_text(pasted)  # as a paste puts it in
    assert await widget.part("input").input_value() == pasted  # all of it, not 40
    await widget.part("input").press("Enter")
    await widget.part("too-long").get_by_text("Too long to send: 50 of at most 40").wait_for()
    assert await widget.part("input").input_value() == pasted  # not sent, not lost
    grown = await widget.part("input").bounding_box()
    assert grown is not None and grown["height"] > 60  # the box grew to show it
    ARTIFACTS.mkdir(exist_ok=True)
    await widget.part("panel").screenshot(path=str(ARTIFACTS / "webchat-too-long.png"))
    assert await widget.transcript() == []

    shorter = "12 Nguyễn Huệ, Quận 1, TP.HCM 🏠"  # 31: the emoji counts one, as in the hub
    await widget.part("input").fill(shorter)
    assert not await widget.part("too-long").is_visible()
    await widget.part("input").press("Enter")
    await widget.shows(shorter)
    emptied = await widget.part("input").bounding_box()
    assert emptied is not None and emptied["height"] < 45  # one line again
