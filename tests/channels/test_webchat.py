"""The web-chat channel's socket protocol, through the real hub server: visitors,
tokens, resume, limits, origins, typing and "seen", and sending to visitors.

The real widget in Chromium is in `test_webchat_widget.py`; these tests speak
the same protocol with a Python client, to check each rule precisely.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.channels.webchat.channel import WebChatChannel
from hub.channels.webchat.limits import RateLimiter
from hub.channels.webchat.options import WebChatOptions, normalise_origin
from hub.channels.webchat.protocol import Identify, normalise_details
from hub.channels.webchat.tokens import VisitorTokens
from hub.clock import FrozenClock
from hub.errors import ConfigError, InvalidRequest
from hub.inbox.model import Identity, Message, Sender
from hub.keys import derive
from tests.channels.test_api import post
from tests.conftest import eventually
from tests.hub_process import HubProcess, hub_command
from tests.peers.api_sender import message
from tests.peers.widget_client import AgentStreamClient, WidgetClient
from tests.web.test_api import add_agent

SITE = "https://shop.example.vn"


def webchat_account(**options: Any) -> dict[str, Any]:
    return {
        "id": "web",
        "channel": "webchat",
        "name": "Shop chat",
        "allowed_origins": [SITE],
        "greeting": {"en": "Hi! How can we help?", "vi": "Xin chào! Shop có thể giúp gì ạ?"},
        **options,
    }


def api_account(callback_url: str, account_id: str = "shop") -> dict[str, Any]:
    return {
        "id": account_id,
        "channel": "api",
        "secret_env": "HUB_TEST_API_SECRET",
        "callback_url": callback_url,
    }


@pytest.fixture
def settings_with(make_settings, callback_peer):
    def build(*accounts: dict[str, Any], **overrides: Any):
        return make_settings(
            accounts=[api_account(callback_peer.url), *(accounts or [webchat_account()])],
            **overrides,
        )

    return build


@pytest.fixture
async def hub(settings_with, start_hub):
    hub = await start_hub(settings_with())
    hub.agent, hub.token = await add_agent(hub, "lan@shop.vn")
    return hub


def visitor(hub, **kwargs: Any) -> WidgetClient:
    return WidgetClient(
        hub.client.session, str(hub.client.make_url("/webchat/web/socket")), **kwargs
    )


def agent_stream(hub, token: str) -> AgentStreamClient:
    return AgentStreamClient(hub.client.session, str(hub.client.make_url("/api/v1/stream")), token)


async def reply(hub, conversation_id: str, text: str) -> dict[str, Any]:
    response = await hub.api(
        "POST", f"/api/v1/conversations/{conversation_id}/messages", hub.token, json={"text": text}
    )
    assert response.status == 202, await response.text()
    return await response.json()


async def message_status(hub, message_id: str) -> str:
    stored = await hub.runtime.store.get_message(message_id)
    assert stored is not None
    return stored.status or ""


async def status_becomes(hub, message_id: str, status: str) -> None:
    async def check() -> bool:
        return await message_status(hub, message_id) == status

    await eventually(check)


# -- pure parts ----------------------------------------------------------------


def test_origins_are_normalised_as_browsers_send_them():
    assert normalise_origin("HTTPS://Shop.Example.VN:443/") == "https://shop.example.vn"
    assert normalise_origin("http://127.0.0.1:8000") == "http://127.0.0.1:8000"
    for bad in ("shop.example.vn", "ftp://x.vn", "https://x.vn/page", "https://"):
        with pytest.raises(ValueError):
            normalise_origin(bad)
    options = WebChatOptions(allowed_origins=["https://shop.example.vn/"])
    assert options.allows("https://shop.example.vn")
    assert not options.allows("https://evil.example")
    assert not options.allows(None)
    assert WebChatOptions(allowed_origins=["*"]).allows(None)


def test_visitor_tokens_refuse_forgery_other_accounts_and_old_age():
    clock = FrozenClock()
    tokens = VisitorTokens(b"k" * 32, "web", clock, timedelta(days=30))
    token = tokens.issue("visitor-1")
    assert tokens.visitor(token) == "visitor-1"
    payload, signature = token.split(".")
    assert tokens.visitor(payload + "." + signature[:-2] + "AA") is None
    assert tokens.visitor(payload[:-1] + "." + signature) is None
    assert VisitorTokens(b"x" * 32, "web", clock, timedelta(days=30)).visitor(token) is None
    assert VisitorTokens(b"k" * 32, "other", clock, timedelta(days=30)).visitor(token) is None
    for junk in ("", ".", "a.b.c", "x" * 600, "%%%.%%%"):
        assert tokens.visitor(junk) is None
    clock.advance(timedelta(days=31))
    assert tokens.visitor(token) is None


def test_rate_limiter_allows_a_burst_then_refills():
    now = [0.0]
    limiter = RateLimiter(3, 60, monotonic=lambda: now[0])
    assert [limiter.take("v") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("v") == pytest.approx(1.0)
    assert limiter.take("other") == 0
    now[0] += 1.0
    assert limiter.take("v") == 0


@given(
    name=st.text(max_size=200),
    email=st.one_of(st.none(), st.text(max_size=60), st.emails()),
    phone=st.one_of(
        st.none(), st.text(max_size=20), st.from_regex(r"\+?[0-9 ]{6,14}", fullmatch=True)
    ),
)
def test_details_normalise_to_identities_or_a_clear_invalid_request(name, email, phone):
    frame = Identify(type="identify", client_id="c1", name=name, email=email, phone=phone)
    try:
        inbound = normalise_details(frame, account_id="web", visitor_id="v1", default_region="VN")
    except InvalidRequest as exc:
        assert exc.message.startswith(("email:", "phone:"))
        return
    assert inbound.sender.identities[0] == Identity(channel="web", address="v1")
    assert inbound.direction == "event" and inbound.external_id == "v1:c1"


def test_resume_sends_what_follows_the_last_message_with_an_overlap():
    clock = FrozenClock()

    def at(seconds: int, message_id: str) -> Message:
        moment = clock.now() + timedelta(seconds=seconds)
        return Message(
            id=message_id,
            conversation_id="c",
            account_id="web",
            channel="webchat",
            direction="inbound",
            sender=Sender(kind="contact"),
            created_at=moment,
            updated_at=moment,
        )

    timeline = [at(0, "a"), at(100, "b"), at(110, "c"), at(200, "d")]
    since, resumed = WebChatChannel._since(timeline, "c")
    assert resumed and [m.id for m in since] == ["b", "c", "d"]  # b is within the overlap
    since, resumed = WebChatChannel._since(timeline, "unknown")
    assert not resumed and [m.id for m in since] == ["a", "b", "c", "d"]


# -- the widget script -----------------------------------------------------------


async def test_widget_script_is_served_once_with_caching_headers(settings_with, start_hub):
    shop2 = webchat_account(id="web2", allowed_origins=["https://other.example.vn"])
    hub = await start_hub(settings_with(webchat_account(), shop2))
    response = await hub.client.get("/widget.js")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/javascript")
    assert "max-age=" in response.headers["Cache-Control"]
    etag = response.headers["ETag"]
    body = await response.text()
    assert "data-account" in body and "attachShadow" in body
    again = await hub.client.get("/widget.js", headers={"If-None-Match": etag})
    assert again.status == 304
    plain = await hub.client.get("/widget.js", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers and await plain.text() == body
    assert response.headers.get("Content-Encoding") == "gzip"  # the client asked for it
    # Both accounts have their socket.
    for account in ("web", "web2"):
        refused = await hub.client.get(f"/webchat/{account}/socket")
        assert refused.status == 403  # no Origin: refused before anything else


# -- connecting ------------------------------------------------------------------


async def test_socket_from_a_disallowed_origin_is_refused_before_it_opens(hub):
    for origin in ("https://evil.example", None):
        client = visitor(hub, origin=origin)
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.open()
        assert refused.value.status == 403
    response = await hub.client.get(
        "/webchat/web/socket", headers={"Origin": "https://evil.example"}
    )
    body = await response.json()
    assert body["error"]["code"] == "forbidden" and "allowed_origins" in body["error"]["message"]


async def test_any_origin_when_configured_with_a_star(settings_with, start_hub):
    hub = await start_hub(settings_with(webchat_account(allowed_origins=["*"])))
    client = visitor(hub, origin="https://anywhere.example")
    welcome = await client.connect()
    assert welcome["visitor_id"]
    await client.close()


async def test_first_frame_must_be_hello(hub):
    client = visitor(hub)
    await client.open()
    await client.say("hi")
    error = await client.next("error")
    assert error["code"] == "hello_expected"
    await eventually(lambda: asyncio.sleep(0, client.ws.closed))


async def test_new_visitor_is_welcomed_with_a_token_and_the_accounts_config(hub):
    client = visitor(hub)
    welcome = await client.connect()
    assert welcome["conversation_id"] is None and welcome["messages"] == []
    assert welcome["agents_online"] is False
    assert welcome["config"]["greeting"]["vi"] == "Xin chào! Shop có thể giúp gì ạ?"
    assert welcome["config"]["title"] == {"en": "Shop chat", "vi": "Shop chat"}
    assert welcome["known"] == {"name": False, "email": False, "phone": False}
    await client.close()


# -- messages in and out -----------------------------------------------------------


async def test_visitor_message_is_stored_as_plain_text_and_acknowledged(hub):
    client = visitor(hub)
    welcome = await client.connect()
    text = '<img src=x onerror="alert(1)"> Áo size M còn không ạ?'
    client_id = await client.say(text)
    ack = await client.next("ack")
    assert ack["client_id"] == client_id and ack["message"]["text"] == text
    stored = await hub.runtime.store.get_message(ack["message"]["id"])
    assert stored is not None and stored.text == text and stored.html is None
    assert stored.channel == "webchat" and stored.direction == "inbound"
    conversation = await hub.runtime.store.get_conversation(stored.conversation_id)
    assert conversation.contact_address == welcome["visitor_id"]
    contact = await hub.runtime.store.get_contact(conversation.contact_id)
    assert Identity(channel="web", address=welcome["visitor_id"]) in contact.identities
    # ... and it is in the REST API's timeline, byte for byte.
    response = await hub.api("GET", f"/api/v1/conversations/{conversation.id}/messages", hub.token)
    items = (await response.json())["items"]
    assert [(m["text"], m["html"]) for m in items] == [(text, None)]
    await client.close()


async def test_the_same_client_id_twice_is_stored_once(hub):
    client = visitor(hub)
    await client.connect()
    await client.say("xin chào", client_id="c-1")
    first = await client.next("ack")
    await client.say("xin chào", client_id="c-1")
    second = await client.next("ack")
    assert first["message"]["id"] == second["message"]["id"]
    stored = await hub.runtime.store.get_message(first["message"]["id"])
    assert len(await hub.runtime.store.list_messages(stored.conversation_id)) == 1
    await client.close()


async def test_agent_reply_reaches_the_visitor_then_delivered_then_read(hub):
    client = visitor(hub)
    await client.connect()
    await client.say("Cho em hỏi giá ạ")
    ack = await client.next("ack")
    conversation_id = (await hub.runtime.store.get_message(ack["message"]["id"])).conversation_id
    sent = await reply(hub, conversation_id, "Dạ, 250.000đ ạ")
    pushed = await client.next("message", lambda f: f["message"]["from"] == "agent")
    assert pushed["message"]["id"] == sent["id"]
    assert pushed["message"]["text"] == "Dạ, 250.000đ ạ"
    assert pushed["message"]["author"] == hub.agent.name
    await status_becomes(hub, sent["id"], "sent")
    await client.send({"type": "received", "up_to": sent["id"]})
    await status_becomes(hub, sent["id"], "delivered")
    await client.send({"type": "seen", "up_to": sent["id"]})
    await status_becomes(hub, sent["id"], "read")
    await client.close()


async def test_a_reply_while_the_visitor_is_away_is_sent_and_shown_on_resume(hub):
    client = visitor(hub)
    await client.connect()
    await client.say("first")
    ack = await client.next("ack")
    conversation_id = (await hub.runtime.store.get_message(ack["message"]["id"])).conversation_id
    await client.close()
    sent = await reply(hub, conversation_id, "answered while you were away")
    await status_becomes(hub, sent["id"], "sent")  # in the transcript, not yet on a screen
    back = visitor(hub, token=client.token)
    welcome = await back.connect(after=ack["message"]["id"])
    assert welcome["resumed"] is True
    assert welcome["conversation_id"] == conversation_id
    ids = [m["id"] for m in welcome["messages"]]
    assert sent["id"] in ids and len(ids) == len(set(ids))
    await back.close()


async def test_returning_visitor_continues_the_same_conversation_and_a_bad_token_does_not(hub):
    first = visitor(hub)
    welcome = await first.connect()
    await first.say("hello")
    ack = await first.next("ack")
    await first.close()

    again = visitor(hub, token=first.token)
    back = await again.connect()
    assert back["visitor_id"] == welcome["visitor_id"]
    assert [m["id"] for m in back["messages"]] == [ack["message"]["id"]]
    assert back["resumed"] is False
    await again.say("me again")
    second_ack = await again.next("ack")
    one = await hub.runtime.store.get_message(ack["message"]["id"])
    two = await hub.runtime.store.get_message(second_ack["message"]["id"])
    assert one.conversation_id == two.conversation_id
    await again.close()

    forged = visitor(hub, token=first.token[:-3] + "abc")
    stranger = await forged.connect()
    assert stranger["visitor_id"] != welcome["visitor_id"] and stranger["messages"] == []
    await forged.close()


async def test_a_visitors_other_tabs_see_their_messages(hub):
    tab1 = visitor(hub)
    await tab1.connect()
    await tab1.say("first")
    await tab1.next("ack")
    tab2 = visitor(hub, token=tab1.token)
    await tab2.connect()
    await tab1.say("typed in tab 1")
    shown = await tab2.next("message", lambda f: f["message"]["text"] == "typed in tab 1")
    assert shown["message"]["from"] == "visitor"
    await tab1.close()
    await tab2.close()


async def test_a_visitors_tabs_that_opened_before_the_first_message_follow_it(hub):
    tab1 = visitor(hub)
    await tab1.connect()
    tab2 = visitor(hub, token=tab1.token)
    await tab2.connect()
    await tab1.say("the very first message")
    await tab1.next("ack")
    ack_id = tab1.of_type("ack")[0]["message"]["id"]
    conversation_id = (await hub.runtime.store.get_message(ack_id)).conversation_id
    sent = await reply(hub, conversation_id, "welcome!")
    await tab2.next("message", lambda f: f["message"]["id"] == sent["id"])
    await tab1.close()
    await tab2.close()


# -- limits and bad frames -----------------------------------------------------------


async def test_too_long_and_empty_messages_get_clear_error_frames(settings_with, start_hub):
    hub = await start_hub(settings_with(webchat_account(max_message_chars=100)))
    client = visitor(hub)
    await client.connect()
    client_id = await client.say("x" * 101)
    error = await client.next("error")
    assert error == {
        "type": "error",
        "code": "message_too_long",
        "message": "a message may have at most 100 characters (this one has 101)",
        "client_id": client_id,
        "_taken": True,
    }
    await client.say("   ")
    assert (await client.next("error"))["code"] == "empty_message"
    await client.say("x" * 100)
    await client.next("ack")
    # A frame far beyond any message is cut off by the server with "message too big".
    await client.say("x" * 10_000)
    await eventually(lambda: asyncio.sleep(0, client.closed_with is not None))
    assert client.closed_with == aiohttp.WSCloseCode.MESSAGE_TOO_BIG


async def test_rate_limit_gives_an_error_frame_with_retry_after(settings_with, start_hub):
    hub = await start_hub(
        settings_with(webchat_account(rate_limit_burst=3, rate_limit_per_minute=6))
    )
    client = visitor(hub)
    await client.connect()
    for n in range(4):
        await client.say(f"message {n}", client_id=f"m{n}")
    for _ in range(3):
        await client.next("ack")
    error = await client.next("error")
    assert error["code"] == "rate_limited" and error["client_id"] == "m3"
    assert 5 < error["retry_after"] <= 10
    assert "too many messages" in error["message"]
    await client.close()


async def test_malformed_frames_are_answered_not_fatal(hub):
    client = visitor(hub)
    await client.connect()
    for raw in ("not json", '{"type": "dance"}', '{"type": "message", "client_id": "a b"}'):
        await client.ws.send_str(raw)
        assert (await client.next("error"))["code"] == "invalid_frame"
    await client.ws.send_bytes(b"\x00")
    assert (await client.next("error"))["code"] == "invalid_frame"
    await client.send({"type": "ping"})
    await client.next("pong")
    await client.close()


# -- pre-chat details, offline ---------------------------------------------------------


async def test_details_are_a_claim_an_agent_turns_into_a_link_by_merging(hub):
    # Typed details prove nothing (test_typing_someone_elses_email_does_not_open_
    # their_chat): the visitor stays their own contact until an agent merges.
    shop = await post(
        hub, message("order-1", "cust-9", email="Binh@Example.VN", name="Nguyễn Văn Bình")
    )
    contact_id = (await shop.json())["contact_id"]
    client = visitor(hub)
    welcome = await client.connect()
    await client.send(
        {"type": "identify", "client_id": "form-1", "name": "Bình", "email": "binh@example.vn"}
    )
    identified = await client.next("identified")
    assert identified["known"]["email"] is False  # the address is the shop contact's
    await client.say("Đơn hàng của tôi đâu?")
    ack = await client.next("ack")
    stored = await hub.runtime.store.get_message(ack["message"]["id"])
    conversation = await hub.runtime.store.get_conversation(stored.conversation_id)
    assert conversation.contact_id != contact_id
    # The agent sees the details as an event in the timeline; the visitor does not.
    timeline = await hub.runtime.store.list_messages(conversation.id)
    assert [m.direction for m in timeline] == ["event", "inbound"]
    assert "binh@example.vn" in timeline[0].text
    await client.close()
    merged = await hub.api(
        "POST",
        f"/api/v1/contacts/{contact_id}/merge",
        hub.token,
        json={"contact_id": conversation.contact_id},
    )
    assert merged.status == 200, await merged.text()
    contact = await hub.runtime.store.get_contact(contact_id)
    assert Identity(channel="web", address=welcome["visitor_id"]) in contact.identities
    back = visitor(hub, token=client.token)
    welcome = await back.connect()
    assert welcome["known"] == {"name": True, "email": True, "phone": False}
    assert [m["from"] for m in welcome["messages"]] == ["visitor"]
    await back.close()


async def test_bad_details_get_an_error_naming_the_field(hub):
    client = visitor(hub)
    await client.connect()
    await client.send({"type": "identify", "client_id": "f", "email": "not-an-address"})
    error = await client.next("error")
    assert error["code"] == "invalid_details" and error["message"].startswith("email:")
    await client.send({"type": "identify", "client_id": "g", "phone": "12"})
    assert (await client.next("error"))["message"].startswith("phone:")
    await client.close()


async def test_widgets_learn_when_an_agent_comes_online(hub):
    client = visitor(hub)
    welcome = await client.connect()
    assert welcome["agents_online"] is False
    response = await hub.api(
        "PUT", "/api/v1/agents/me/presence", hub.token, json={"presence": "online"}
    )
    assert response.status == 200
    change = await client.next("availability")
    assert change["agents_online"] is True
    await client.close()


# -- typing and seen, both ways ----------------------------------------------------------


async def test_typing_and_seen_flow_between_visitor_and_agent(hub):
    client = visitor(hub)
    await client.connect()
    await client.say("xin chào")
    ack = await client.next("ack")
    message_id = ack["message"]["id"]
    conversation_id = (await hub.runtime.store.get_message(message_id)).conversation_id
    stream = agent_stream(hub, hub.token)
    hello = await stream.connect()
    assert hello["agent"]["id"] == hub.agent.id and "password_hash" not in hello["agent"]

    await client.send({"type": "typing", "typing": True})
    typing = await stream.event("conversation.typing")
    assert typing["conversation_id"] == conversation_id and typing["by"]["kind"] == "contact"

    await stream.send({"type": "typing", "conversation_id": conversation_id, "typing": True})
    shown = await client.next("typing")
    assert shown == {"type": "typing", "typing": True, "author": hub.agent.name, "_taken": True}

    await stream.send({"type": "read", "conversation_id": conversation_id, "up_to": message_id})
    seen = await client.next("seen")
    assert seen["up_to"] == message_id
    read = await stream.event("conversation.read")
    assert read["up_to"] == message_id and read["reader"]["id"] == hub.agent.id
    conversation = await hub.runtime.store.get_conversation(conversation_id)
    assert conversation.unread_count == 0
    await stream.close()
    await client.close()


# -- sending: rerouting a reply to someone who left ------------------------------------------


@pytest.fixture
async def mail_fallback(settings_with, start_hub, callback_peer):
    """A web chat whose offline visitors are answered through another account; an
    API-channel account stands in, to see exactly what is sent. With a real e-mail
    account: tests/channels/email/test_webchat_fallback.py."""
    fallback = api_account(callback_peer.url, account_id="mail")
    settings = settings_with(
        webchat_account(offline_email_account="mail", offline_email_after_seconds=0.5),
        fallback,
        delivery={"max_attempts": 5},
    )
    hub = await start_hub(settings)
    hub.agent, hub.token = await add_agent(hub, "lan@shop.vn")
    hub.peer = callback_peer
    return hub


async def hub_lets_go(hub, client: WidgetClient) -> None:
    """Close the visitor's socket and wait until the hub has noticed."""
    await client.close()
    channel = hub.runtime.channels["web"]

    async def gone() -> bool:
        return len(channel.sockets) == 0

    await eventually(gone)


async def conversation_of(hub, client: WidgetClient) -> str:
    ack = await client.next("ack")
    return (await hub.runtime.store.get_message(ack["message"]["id"])).conversation_id


async def test_reply_to_a_visitor_who_left_an_email_and_left_goes_by_the_fallback(mail_fallback):
    hub = mail_fallback
    client = visitor(hub)
    await client.connect()
    await client.send({"type": "identify", "client_id": "f1", "email": "Mai@Example.VN"})
    await client.next("identified")
    await client.say("Nobody is here, please email me")
    conversation_id = await conversation_of(hub, client)
    await hub_lets_go(hub, client)
    sent = await reply(hub, conversation_id, "Here is your answer by e-mail")
    await status_becomes(hub, sent["id"], "sent")
    [delivery] = hub.peer.deliveries
    assert delivery.body["to"]["id"] == "mai@example.vn"
    assert delivery.body["text"] == "Here is your answer by e-mail"
    assert delivery.body["conversation_id"] == conversation_id
    stored = await hub.runtime.store.get_message(sent["id"])
    assert stored.meta["route"]["account_id"] == "mail"
    assert stored.meta["route"]["to"] == "mai@example.vn"
    # The visitor who comes back finds it in the chat too.
    back = visitor(hub, token=client.token)
    welcome = await back.connect()
    assert sent["id"] in [m["id"] for m in welcome["messages"]]
    await back.close()


async def test_reply_to_a_connected_visitor_stays_in_the_chat(mail_fallback):
    hub = mail_fallback
    client = visitor(hub)
    await client.connect()
    await client.send({"type": "identify", "client_id": "f1", "email": "mai@example.vn"})
    await client.next("identified")
    await client.say("still here")
    conversation_id = await conversation_of(hub, client)
    sent = await reply(hub, conversation_id, "live answer")
    await client.next("message", lambda f: f["message"]["id"] == sent["id"])
    await status_becomes(hub, sent["id"], "sent")
    assert hub.peer.deliveries == []
    assert "route" not in (await hub.runtime.store.get_message(sent["id"])).meta
    await client.close()


async def test_reply_to_a_visitor_without_email_is_kept_for_their_return(mail_fallback):
    hub = mail_fallback
    client = visitor(hub)
    await client.connect()
    await client.say("no email from me")
    conversation_id = await conversation_of(hub, client)
    await hub_lets_go(hub, client)
    sent = await reply(hub, conversation_id, "kept for you")
    await status_becomes(hub, sent["id"], "sent")
    assert hub.peer.deliveries == []


async def test_a_reference_to_an_unknown_account_stops_the_hub(settings_with, start_hub):
    with pytest.raises(ConfigError, match="refers to account 'nope'"):
        await start_hub(settings_with(webchat_account(offline_email_account="nope")))


async def test_bad_options_are_named(settings_with, start_hub):
    with pytest.raises(ConfigError, match="allowed_origins"):
        await start_hub(settings_with(webchat_account(allowed_origins=["shop.example.vn"])))
    with pytest.raises(ConfigError, match="color"):
        await start_hub(settings_with(webchat_account(color="red")))
    with pytest.raises(ConfigError, match="launcher_side"):
        await start_hub(settings_with(webchat_account(launcher_side="middle")))
    with pytest.raises(ConfigError, match="launcher_bottom"):
        await start_hub(settings_with(webchat_account(launcher_bottom=-5)))


# -- across hub processes and restarts ----------------------------------------------------


async def test_reply_sent_through_another_hub_process_reaches_the_visitor(settings_with, start_hub):
    settings = settings_with()
    a = await start_hub(settings, with_worker=False)
    b = await start_hub(settings, with_worker=True)
    b.agent, b.token = await add_agent(b, "lan@shop.vn")
    client = visitor(a)
    await client.connect()
    stream = agent_stream(b, b.token)
    await stream.connect()
    await client.say("hello from process A")
    created = await stream.event(
        "message.created", lambda d: d["message"]["text"] == "hello from process A"
    )
    conversation_id = created["message"]["conversation_id"]
    sent = await reply(b, conversation_id, "answer from process B")
    await client.next("message", lambda f: f["message"]["id"] == sent["id"])
    await stream.send({"type": "typing", "conversation_id": conversation_id, "typing": True})
    await client.next("typing")
    await stream.close()
    await client.close()


async def test_visitor_token_survives_a_restart_with_the_kept_key(settings_with, start_hub):
    settings = settings_with()
    first = await start_hub(settings)
    client = visitor(first)
    welcome = await client.connect()
    await client.close()
    await first.client.close()
    key_file = settings.data_dir / "secret.key"
    assert key_file.exists() and oct(key_file.stat().st_mode)[-3:] == "600"
    second = await start_hub(settings)
    again = visitor(second, token=client.token)
    assert (await again.connect())["visitor_id"] == welcome["visitor_id"]
    await again.close()


async def test_hub_secret_key_from_the_environment_wins(settings_with, start_hub):
    settings = settings_with(secret_key="s" * 40)
    hub = await start_hub(settings)
    client = visitor(hub)
    await client.connect()
    await client.close()
    assert not (settings.data_dir / "secret.key").exists()
    tokens = VisitorTokens(
        derive(b"s" * 40, "webchat-visitor-token"),
        "web",
        hub.runtime.clock,
        timedelta(days=1),
    )
    assert tokens.visitor(client.token) is not None


async def test_the_agent_stream_needs_a_token(hub):
    response = await hub.client.get("/api/v1/stream")
    assert response.status == 401
    bad = agent_stream(hub, "hub_wrong")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await bad.open()
    assert refused.value.status == 401


async def test_the_agent_stream_pushes_inbox_events_and_answers_bad_frames(hub):
    stream = agent_stream(hub, hub.token)
    await stream.connect()
    await post(hub, message("m-1", "cust-1", text="from the shop"))
    created = await stream.event("message.created")
    assert created["message"]["text"] == "from the shop"
    await stream.event("conversation.created")
    for frame in ('{"type": "fly"}', "nope", '{"type": "typing"}'):
        await stream.ws.send_str(frame)
        assert (await stream.next("error"))["code"] == "invalid_frame"
    await stream.send({"type": "typing", "conversation_id": "0" * 24, "typing": True})
    assert (await stream.next("error"))["code"] == "not_found"
    await stream.close()


async def test_a_chosen_route_is_kept_when_the_send_is_retried(mail_fallback):
    hub = mail_fallback
    client = visitor(hub)
    await client.connect()
    await client.send({"type": "identify", "client_id": "f1", "email": "mai@example.vn"})
    await client.next("identified")
    await client.say("email me")
    conversation_id = await conversation_of(hub, client)
    await hub_lets_go(hub, client)
    hub.peer.answers = [503]  # the mail system fails once...
    hub.peer.delay = 0.7  # ...slowly, while the visitor comes back
    sent = await reply(hub, conversation_id, "by e-mail, even on retry")

    async def routed() -> bool:
        stored = await hub.runtime.store.get_message(sent["id"])
        return "route" in stored.meta

    await eventually(routed)  # the first try is on its way to the mail system
    back = visitor(hub, token=client.token)
    await back.connect()

    async def two_tries() -> bool:
        return len(hub.peer.deliveries) == 2

    await eventually(two_tries)
    await status_becomes(hub, sent["id"], "sent")
    assert [d.body["to"]["id"] for d in hub.peer.deliveries] == ["mai@example.vn"] * 2
    assert not any(f["message"]["id"] == sent["id"] for f in back.of_type("message"))
    await back.close()


async def test_store_outage_gives_a_retry_error_and_the_resend_is_stored_once(hub):
    client = visitor(hub)
    await client.connect()
    store = hub.runtime.store
    await store.close()
    try:
        await client.say("while the database is down", client_id="outage-1")
        error = await client.next("error")
        assert error["code"] == "unavailable" and error["client_id"] == "outage-1"
        assert error["retry_after"] > 0
    finally:
        await store.open()
    await client.say("while the database is down", client_id="outage-1")
    ack = await client.next("ack")
    await client.say("while the database is down", client_id="outage-1")
    again = await client.next("ack")
    assert ack["message"]["id"] == again["message"]["id"]
    await client.close()


@pytest.mark.slow
async def test_visitor_resumes_after_the_real_hub_is_killed_and_restarted(tmp_path):
    """kill -9 on `hub serve`; a new one on the same port and data folder
    accepts the visitor's token (the kept key) and the widget resumes."""
    config = tmp_path / "hub.toml"
    config.write_text(
        f'[[accounts]]\nid = "web"\nchannel = "webchat"\nallowed_origins = ["{SITE}"]\n',
        encoding="utf-8",
    )
    data = tmp_path / "data"
    await asyncio.to_thread(
        hub_command,
        "agent", "add", "--email", "lan@shop.vn", "--name", "Lan", "--online",
        config=config, data_dir=data,
    )  # fmt: skip
    token = (
        await asyncio.to_thread(
            hub_command, "token", "create", "--agent", "lan@shop.vn", config=config, data_dir=data
        )
    ).stdout.strip()
    first = await asyncio.to_thread(HubProcess(config, data).start)
    second = HubProcess(config, data)
    second.port = first.port
    async with aiohttp.ClientSession() as session:
        client = WidgetClient(session, f"{first.url}/webchat/web/socket")
        welcome = await client.connect()
        await client.say("before the crash")
        ack = await client.next("ack")
        await asyncio.to_thread(first.kill)
        await eventually(lambda: asyncio.sleep(0, client.closed_with is not None))
        await asyncio.to_thread(second.start)
        try:
            back = WidgetClient(session, f"{second.url}/webchat/web/socket", token=client.token)
            resumed = await back.connect(after=ack["message"]["id"])
            assert resumed["visitor_id"] == welcome["visitor_id"]
            assert resumed["resumed"] is True
            conversation_id = resumed["conversation_id"]
            headers = {"Authorization": f"Bearer {token}"}
            async with session.post(
                f"{second.url}/api/v1/conversations/{conversation_id}/messages",
                json={"text": "after the restart"},
                headers=headers,
            ) as response:
                assert response.status == 202
                sent = await response.json()
            await back.next("message", lambda f: f["message"]["id"] == sent["id"])
            await back.close()
        finally:
            assert await asyncio.to_thread(second.interrupt) == 0, second.log()


async def test_typing_someone_elses_email_does_not_open_their_chat(hub):
    # The pre-chat form proves nothing: whoever typed a customer's e-mail into a
    # fresh widget became that customer, was shown their chat on reconnecting
    # (addresses, order numbers, codes) and was pushed the replies to them.
    customer = visitor(hub)
    await customer.connect()
    await customer.send({"type": "identify", "client_id": "f1", "email": "mai@example.vn"})
    await customer.next("identified")
    await customer.say("Giao tới 12 Lê Lợi, đơn 777")
    conversation_id = await conversation_of(hub, customer)
    await reply(hub, conversation_id, "Mã hoàn tiền của chị: R-5521")
    await customer.close()

    stranger = visitor(hub)
    await stranger.connect()
    await stranger.send({"type": "identify", "client_id": "s1", "email": "mai@example.vn"})
    identified = await stranger.next("identified")
    assert identified["known"]["email"] is False  # not theirs to have
    again = visitor(hub, token=stranger.token)
    welcome = await again.connect()
    assert welcome["conversation_id"] != conversation_id
    assert not any("R-5521" in m["text"] or "Lê Lợi" in m["text"] for m in welcome["messages"])
    later = await reply(hub, conversation_id, "Đơn 777 đã giao")
    await asyncio.sleep(0.3)  # nothing is pushed to them: wait a moment to see it stays so
    assert not any(f["message"]["id"] == later["id"] for f in again.of_type("message"))
    await stranger.close()
    await again.close()
    # The address stays the customer's; the agent sees in the stranger's chat what
    # they claimed, and merges the two contacts if it really is the same person.
    [shared] = [
        m
        for m in await hub.runtime.store.list_messages(welcome["conversation_id"])
        if m.direction == "event"
    ]
    assert "mai@example.vn" in shared.text
    owners = await hub.runtime.store.contacts_owning(
        [Identity(channel="email", address="mai@example.vn")]
    )
    [owner] = owners
    assert owner.id == (await hub.runtime.store.get_conversation(conversation_id)).contact_id


async def test_an_email_left_after_chatting_is_given_to_the_visitors_contact(hub):
    # A known visitor in an open conversation takes ingest's quick path; an
    # address they claim that nobody has must still become theirs.
    client = visitor(hub)
    await client.connect()
    await client.say("Hello")
    conversation_id = await conversation_of(hub, client)
    await client.send({"type": "identify", "client_id": "f1", "email": "tuan@example.vn"})
    identified = await client.next("identified")
    assert identified["known"]["email"] is True
    conversation = await hub.runtime.store.get_conversation(conversation_id)
    contact = await hub.runtime.store.get_contact(conversation.contact_id)
    assert Identity(channel="email", address="tuan@example.vn") in contact.identities
    await client.close()
