"""Zalo OA: signed events into the inbox, consultation replies through a local
Zalo API, the single-use refresh token (refreshed once even by two hubs at once),
receipts, and the 7-day window."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.channels.zalo.events import SIGNATURE_HEADER, ZaloEvent, normalise, signature_header
from hub.channels.zalo.tokens import STATE_KEY
from hub.clock import FrozenClock
from hub.inbox.model import Attachment, Identity
from hub.inbox.store import ConversationFilter
from tests.channels.messaging import (
    add_agent,
    only_conversation,
    recorded,
    recorded_json,
    stored_counts,
    wait_status,
    with_ids,
)
from tests.channels.twilio_hub import start_twilio_hub, text_in
from tests.peers.server import FileServer
from tests.peers.twilio import TwilioPeer
from tests.peers.zalo import ZaloPeer, signed_event
from tests.web.browser import chromium, open_unassigned, shot, signed_in_page
from tests.web.conftest import add_person

__all__ = ["chromium"]  # the fixture, used by name

APP_ID = "3608465248940903967"
OA_ID = "3886132808798806453"
USER = "2468458835296197922"
APP_SECRET = "zalo-app-secret-0123"
SEED_ACCESS = "seed-access-token"
SEED_REFRESH = "seed-refresh-token"
PATH = "/webhooks/zalo/zalo-oa"
START = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
FOLLOWER = Identity(channel=f"zalo:{OA_ID}", address=USER)


@pytest.fixture
async def zalo():
    peer = ZaloPeer(
        app_id=APP_ID, app_secret=APP_SECRET, access_token=SEED_ACCESS, refresh_token=SEED_REFRESH
    )
    await peer.start()
    yield peer
    await peer.stop()


@pytest.fixture
async def files():
    server = FileServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def clock():
    return FrozenClock(START)


@pytest.fixture
def zalo_settings(make_settings, zalo, monkeypatch):
    # The replies' files are served by a local peer on 127.0.0.1, a network hub
    # does not fetch from unless told (hub.outbound_http).
    return make_settings(
        accounts=[zalo_account(zalo, monkeypatch)],
        delivery={"fetch_allowed_networks": ["127.0.0.1/32"]},
    )


def zalo_account(zalo: ZaloPeer, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The `[[accounts]]` entry of the OA, its secrets in the environment."""
    monkeypatch.setenv("HUB_TEST_ZALO_SECRET", APP_SECRET)
    monkeypatch.setenv("HUB_TEST_ZALO_ACCESS", SEED_ACCESS)
    monkeypatch.setenv("HUB_TEST_ZALO_REFRESH", SEED_REFRESH)
    return {
        "id": "zalo-oa",
        "channel": "zalo",
        "app_id": APP_ID,
        "oa_id": OA_ID,
        "app_secret_env": "HUB_TEST_ZALO_SECRET",
        "access_token_env": "HUB_TEST_ZALO_ACCESS",
        "refresh_token_env": "HUB_TEST_ZALO_REFRESH",
        "api_url": zalo.url,
        "oauth_url": zalo.url,
    }


@pytest.fixture
async def hub(start_hub, zalo_settings, clock):
    return await start_hub(zalo_settings, clock=clock)


async def deliver(hub, body: bytes, secret: str = APP_SECRET):
    raw, headers = signed_event(body, app_id=APP_ID, secret_key=secret)
    return await hub.client.post(PATH, data=raw, headers=headers)


# -- pure parts ------------------------------------------------------------------


def test_signature_is_sha256_of_app_id_body_timestamp_and_secret():
    body = recorded("zalo", "user_send_text.json")
    expected = hashlib.sha256(
        (APP_ID + body.decode() + "1767225600000" + APP_SECRET).encode()
    ).hexdigest()
    assert signature_header(APP_ID, body, "1767225600000", APP_SECRET) == f"mac={expected}"


def test_normalise_images_files_stickers_and_locations():
    def one(name):
        event = ZaloEvent.model_validate(recorded_json("zalo", name))
        [message] = normalise(
            event, account_id="zalo-oa", oa_id=OA_ID, default_region="VN"
        ).messages
        return message

    image = one("user_send_image.json")
    assert image.sender.identities == [FOLLOWER]
    assert image.text == "ảnh sản phẩm bị lỗi"
    assert image.attachments == [
        Attachment(
            name="image", content_type="image/*", url="https://photo-zmp3.zmdcdn.me/full/abc.jpg"
        )
    ]
    file = one("user_send_file.json").attachments[0]
    assert (file.name, file.content_type, file.size) == ("hoa-don.pdf", "application/pdf", 48213)
    assert one("user_send_sticker.json").attachments[0].name == "sticker"
    assert "10.776889, 106.700897" in one("user_send_location.json").text
    assert one("user_send_text.json").sent_at == datetime(2026, 1, 1, tzinfo=UTC)


def test_shared_information_links_the_phone_to_the_follower():
    event = ZaloEvent.model_validate(recorded_json("zalo", "user_submit_info.json"))
    [message] = normalise(event, account_id="zalo-oa", oa_id=OA_ID, default_region="VN").messages
    assert message.sender.identities == [FOLLOWER]
    # Claimed, not proven: linked when nobody has it, never choosing the contact.
    assert message.sender.claimed == [Identity(channel="phone", address="+84901234567")]


def test_management_events_are_skipped():
    event = ZaloEvent.model_validate(recorded_json("zalo", "follow.json"))
    batch = normalise(event, account_id="zalo-oa", oa_id=OA_ID, default_region="VN")
    assert batch.messages == [] and batch.skipped == ["event 'follow'"]


_attachment = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["image", "file", "sticker", "gif", "location", "link", "audio", "x"]
        ),
        "payload": st.fixed_dictionaries(
            {},
            optional={
                "url": st.text(max_size=20),
                "size": st.one_of(st.text(max_size=6), st.integers(0, 10**9)),
                "name": st.text(max_size=10),
                "coordinates": st.fixed_dictionaries(
                    {"latitude": st.floats(-90, 90), "longitude": st.floats(-180, 180)}
                ),
            },
        ),
    }
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    event_name=st.sampled_from(
        ["user_send_text", "user_send_image", "user_send_file", "user_seen_message", "follow"]
    ),
    msg_id=st.text(min_size=1, max_size=20),
    text=st.one_of(st.none(), st.text(max_size=40)),
    attachments=st.lists(_attachment, max_size=3),
    timestamp=st.one_of(st.text(max_size=14), st.integers(0, 10**14)),
)
def test_normalise_accepts_any_well_formed_event(event_name, msg_id, text, attachments, timestamp):
    sender, recipient = (OA_ID, USER) if event_name == "user_seen_message" else (USER, OA_ID)
    message = {"msg_id": msg_id, "msg_ids": [msg_id], "attachments": attachments}
    if text is not None:
        message["text"] = text
    event = ZaloEvent.model_validate(
        {
            "app_id": APP_ID,
            "event_name": event_name,
            "sender": {"id": sender},
            "recipient": {"id": recipient},
            "message": message,
            "timestamp": timestamp,
        }
    )
    batch = normalise(event, account_id="zalo-oa", oa_id=OA_ID, default_region="VN")
    for inbound in batch.messages:
        assert inbound.external_id == msg_id and inbound.sender.identities == [FOLLOWER]
        assert inbound.text or inbound.attachments
    if event_name == "user_seen_message":
        assert batch.reports[0].status == "read" and msg_id in batch.reports[0].external_ids


# -- the webhook -------------------------------------------------------------------


async def test_signed_event_lands_in_the_followers_conversation(hub):
    response = await deliver(hub, recorded("zalo", "user_send_text.json"))
    assert response.status == 200
    conversation = await only_conversation(hub)
    assert conversation.channel == "zalo" and conversation.contact_address == USER
    contact = await hub.runtime.store.get_contact(conversation.contact_id)
    assert contact.identities == [FOLLOWER]
    [message] = await hub.runtime.store.list_messages(conversation.id)
    assert message.text == "Chào shop, cho mình hỏi giá sản phẩm"
    assert message.external_id == "96d3cdf3af150460909"


async def test_tampered_or_unsigned_events_are_refused_and_nothing_stored(hub):
    body = recorded("zalo", "user_send_text.json")
    _, headers = signed_event(body, app_id=APP_ID, secret_key=APP_SECRET)
    tampered = await hub.client.post(
        PATH, data=body.replace(b"gi\xc3\xa1", b"GIA"), headers=headers
    )
    assert tampered.status == 403
    unsigned = await hub.client.post(PATH, data=body)
    assert unsigned.status == 403
    assert "missing X-ZEvent-Signature" in (await unsigned.json())["error"]["message"]
    wrong = await deliver(hub, body, secret="another-secret-000")
    assert wrong.status == 403
    assert await stored_counts(hub) == (0, 0, 0)


async def test_the_same_event_delivered_twice_is_stored_once(hub):
    for _ in range(2):
        assert (await deliver(hub, recorded("zalo", "user_send_image.json"))).status == 200
    assert await stored_counts(hub) == (1, 1, 1)


async def test_management_events_are_acknowledged_and_store_nothing(hub):
    assert (await deliver(hub, recorded("zalo", "follow.json"))).status == 200
    assert await stored_counts(hub) == (0, 0, 0)


# -- replies -------------------------------------------------------------------------


async def conversation_id(hub) -> str:
    await deliver(hub, recorded("zalo", "user_send_text.json"))
    return (await only_conversation(hub)).id


async def test_agent_reply_reaches_zalo_with_the_exact_body(hub, zalo):
    agent, _ = await add_agent(hub)
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), agent, "Dạ giá 250.000đ ạ")
    sent = await wait_status(hub, reply.id, "sent")
    [request] = zalo.sent
    assert request.access_token == SEED_ACCESS
    assert request.body == {
        "recipient": {"user_id": USER},
        "message": {"text": "Dạ giá 250.000đ ạ"},
    }
    assert sent.external_id == "zmsg0001"


async def test_reply_with_an_image_and_a_file(hub, zalo, files):
    image = Attachment(
        name="ao.jpg", content_type="image/jpeg", url=files.add("ao.jpg", b"JPEG", "image/jpeg")
    )
    pdf = files.add("bang-gia.pdf", b"%PDF-1.4 price list", "application/pdf")
    document = Attachment(name="bang-gia.pdf", content_type="application/pdf", url=pdf)
    reply, _ = await hub.runtime.inbox.reply(
        await conversation_id(hub), None, "Mẫu và bảng giá ạ", attachments=[image, document]
    )
    await wait_status(hub, reply.id, "sent")
    assert [r.body["message"] for r in zalo.sent] == [
        {
            "attachment": {
                "type": "template",
                "payload": {
                    "template_type": "media",
                    "elements": [{"media_type": "image", "url": image.url}],
                },
            },
            "text": "Mẫu và bảng giá ạ",
        },
        {"attachment": {"type": "file", "payload": {"token": "filetoken1"}}},
    ]
    assert zalo.uploads == [("bang-gia.pdf", b"%PDF-1.4 price list")]


async def test_a_reply_over_2000_characters_goes_as_several_texts_in_order(hub, zalo, files):
    image = Attachment(
        name="ao.jpg", content_type="image/jpeg", url=files.add("ao.jpg", b"JPEG", "image/jpeg")
    )
    first = "Dạ, shop gửi anh bảng size chi tiết của mẫu áo này. " * 30  # 1560 characters
    second = "Đổi trả miễn phí trong 7 ngày. " * 30
    text = first.strip() + "\n\n" + second.strip()
    reply, _ = await hub.runtime.inbox.reply(
        await conversation_id(hub), None, text, attachments=[image]
    )
    sent = await wait_status(hub, reply.id, "sent")
    # Too long for the image's caption too: the image alone, then the text in order.
    assert [r.body["message"].get("text") for r in zalo.sent] == [
        None,
        first.strip(),
        second.strip(),
    ]
    assert sent.external_id == "zmsg0001"


async def test_a_long_reply_whose_second_text_is_throttled_once_sends_each_text_once(hub, zalo):
    zalo.answers_at[2] = {"error": -32, "message": "Your OA reached limit call api"}
    first = "Dạ, shop gửi anh bảng size chi tiết của mẫu áo này. " * 30
    second = "Đổi trả miễn phí trong 7 ngày. " * 30
    text = first.strip() + "\n\n" + second.strip()
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), None, text)
    sent = await wait_status(hub, reply.id, "sent")
    texts = [r.body["message"]["text"] for r in zalo.sent]
    assert texts == [first.strip(), second.strip(), second.strip()]  # the 2nd refused once
    assert sent.attempts == 2
    assert sent.sent_parts == ["zmsg0001", "zmsg0003"]
    assert sent.external_id == "zmsg0001"


async def test_a_reply_whose_text_fails_after_its_file_went_uploads_and_sends_it_once(
    hub, zalo, files
):
    zalo.answers_at[2] = (502, "Bad Gateway")
    pdf = files.add("bang-gia.pdf", b"%PDF-1.4 price list", "application/pdf")
    document = Attachment(name="bang-gia.pdf", content_type="application/pdf", url=pdf)
    reply, _ = await hub.runtime.inbox.reply(
        await conversation_id(hub), None, "Bảng giá đây ạ", attachments=[document]
    )
    sent = await wait_status(hub, reply.id, "sent")
    file = {"attachment": {"type": "file", "payload": {"token": "filetoken1"}}}
    text = {"text": "Bảng giá đây ạ"}
    assert [r.body["message"] for r in zalo.sent] == [file, text, text]
    assert zalo.uploads == [("bang-gia.pdf", b"%PDF-1.4 price list")]
    assert sent.attempts == 2 and sent.sent_parts == ["zmsg0001", "zmsg0003"]


async def test_provider_refusal_fails_the_reply_with_its_reason(hub, zalo):
    zalo.answers = [{"error": -213, "message": "User has not followed OA"}]
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), None, "hello")
    failed = await wait_status(hub, reply.id, "failed")
    assert failed.error == "Zalo refused the message: User has not followed OA (error -213)"
    assert failed.attempts == 1


async def test_rate_limits_and_server_errors_are_retried(hub, zalo):
    zalo.answers = [
        {"error": -32, "message": "Your OA reached limit call api"},
        (502, "Bad Gateway"),
    ]
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), None, "hello")
    assert (await wait_status(hub, reply.id, "sent")).attempts == 3


async def test_reply_after_7_days_is_refused_up_front_naming_the_rule(hub, zalo, clock):
    conversation = await conversation_id(hub)
    _, token = await add_agent(hub)
    clock.advance(timedelta(days=7, minutes=1))
    response = await hub.api(
        "POST", f"/api/v1/conversations/{conversation}/messages", token, json={"text": "hi"}
    )
    assert response.status == 409
    error = (await response.json())["error"]
    assert error["code"] == "reply_window_closed"
    assert "Zalo OA (consultation messages need an interaction within 7 days)" in error["message"]
    assert "within 7 days" in error["message"]
    assert zalo.sent == []
    clock.advance(timedelta(days=-1))  # inside the window again: accepted
    ok = await hub.api(
        "POST", f"/api/v1/conversations/{conversation}/messages", token, json={"text": "hi"}
    )
    assert ok.status == 202


async def customer_wrote_at(hub, conversation: str) -> datetime:
    """When Zalo says the follower sent the conversation's one message."""
    [message] = await hub.runtime.store.list_messages(conversation)
    return datetime.fromisoformat(message.meta.get("sent_at") or message.created_at.isoformat())


async def test_the_conversation_says_when_replies_become_paid_and_when_they_stop(hub, clock):
    """The workspace's composer says it before the agent writes: after 48 hours
    a reply counts against the OA's paid quota, after 7 days none can go."""
    conversation = await conversation_id(hub)
    _, token = await add_agent(hub)
    last = await customer_wrote_at(hub, conversation)

    async def window() -> dict[str, Any]:
        response = await hub.api("GET", f"/api/v1/conversations/{conversation}", token)
        assert response.status == 200
        return (await response.json())["reply_window"]

    now = await window()
    assert now["rule"] == "Zalo OA (consultation messages need an interaction within 7 days)"
    assert now["hours"] == 168 and now["paid_after_hours"] == 48
    assert datetime.fromisoformat(now["last_customer_at"]) == last
    assert datetime.fromisoformat(now["closes_at"]) == last + timedelta(days=7)
    assert datetime.fromisoformat(now["paid_from"]) == last + timedelta(hours=48)
    assert "paid message quota" in now["paid_rule"]
    assert now["open"] is True and datetime.fromisoformat(now["now"]) == clock.now()
    clock.set(last + timedelta(days=7, minutes=1))
    assert (await window())["open"] is False


async def test_the_providers_own_window_error_fails_the_reply_with_its_reason(hub, zalo):
    zalo.answers = [
        {"error": -230, "message": "User has not interacted with the OA in the past 7 days"}
    ]
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), None, "hello")
    failed = await wait_status(hub, reply.id, "failed")
    assert failed.error == (
        "Zalo: outside the OA's 7-day consultation window — User has not interacted with the OA"
        " in the past 7 days (error -230)"
    )


async def test_receipts_move_the_reply_to_delivered_then_read(hub, zalo):
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), None, "hello")
    sent = await wait_status(hub, reply.id, "sent")
    await deliver(hub, with_ids("zalo", "user_received_message.json", sent.external_id))
    assert (await hub.runtime.store.get_message(reply.id)).status == "delivered"
    await deliver(hub, with_ids("zalo", "user_seen_message.json", sent.external_id))
    assert (await hub.runtime.store.get_message(reply.id)).status == "read"


# -- tokens --------------------------------------------------------------------------


async def test_expired_access_token_is_refreshed_and_the_reply_sent(hub, zalo):
    zalo.expire_access_tokens()
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), None, "hello")
    sent = await wait_status(hub, reply.id, "sent")
    assert sent.attempts == 1
    assert zalo.refresh_calls == [SEED_REFRESH]
    assert [r.access_token for r in zalo.sent] == ["access-001-xyz"]
    state = await hub.runtime.store.channel_state("zalo-oa", STATE_KEY)
    assert state["access_token"] == "access-001-xyz" and state["refresh_token"] == "refresh-001-xyz"
    assert state["expires_at"] == (START + timedelta(seconds=90000)).isoformat()


async def test_token_near_expiry_is_refreshed_before_sending(hub, zalo):
    await hub.runtime.store.save_channel_state(
        "zalo-oa",
        STATE_KEY,
        {
            "access_token": SEED_ACCESS,
            "refresh_token": SEED_REFRESH,
            "expires_at": (START + timedelta(minutes=10)).isoformat(),
        },
    )
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), None, "hello")
    await wait_status(hub, reply.id, "sent")
    assert zalo.refresh_calls == [SEED_REFRESH]
    assert [r.access_token for r in zalo.sent] == ["access-001-xyz"]


async def test_two_hubs_refreshing_at_once_spend_the_refresh_token_once(
    start_hub, zalo_settings, zalo, clock
):
    first = await start_hub(zalo_settings, clock=clock)
    second = await start_hub(zalo_settings, clock=clock, with_worker=False)
    zalo.refresh_delay = 0.3  # both ask while the first refresh is still under way
    pairs = await asyncio.gather(
        first.runtime.channels["zalo-oa"].tokens.refresh(rejected=SEED_ACCESS),
        second.runtime.channels["zalo-oa"].tokens.refresh(rejected=SEED_ACCESS),
    )
    assert zalo.refresh_calls == [SEED_REFRESH]
    assert pairs[0] == pairs[1] and pairs[0].access_token == "access-001-xyz"


async def test_a_dead_refresh_token_fails_the_reply_naming_what_to_do(hub, zalo):
    zalo.expire_access_tokens()
    zalo.valid_refresh.clear()
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), None, "hello")
    failed = await wait_status(hub, reply.id, "failed")
    assert failed.error.startswith(
        "Zalo refused to refresh the OA access token (Invalid refresh token"
    )
    assert "an OA admin must grant the app access again" in failed.error


def test_signed_event_helper_matches_the_header_name():
    raw, headers = signed_event(
        recorded("zalo", "follow.json"), app_id=APP_ID, secret_key=APP_SECRET
    )
    assert (
        headers[SIGNATURE_HEADER].startswith("mac=") and json.loads(raw)["event_name"] == "follow"
    )


# -- one customer on two channels --------------------------------------------------


@pytest.fixture
async def zalo_and_hotline(make_settings, start_hub, zalo, clock, monkeypatch):
    """A hub with the Zalo OA and an SMS hotline (on the Twilio peer)."""
    twilio = TwilioPeer()
    await twilio.start()
    try:
        hub = await start_twilio_hub(
            make_settings,
            start_hub,
            twilio,
            monkeypatch,
            extra_accounts=[zalo_account(zalo, monkeypatch)],
            clock=clock,
        )
        yield hub, twilio
    finally:
        await twilio.stop()


async def test_sharing_someone_elses_phone_does_not_make_a_follower_that_customer(
    zalo_and_hotline,
):
    # Bình texts the hotline first; then a Zalo follower shares Bình's number in
    # the OA's form. The follower must not become Bình (and see her history).
    hub, twilio = zalo_and_hotline
    status, _ = await text_in(twilio, "Mình là Bình, hỏi đơn hàng", sid="SM" + "8" * 32)
    assert status == 200
    assert (await deliver(hub, recorded("zalo", "user_submit_info.json"))).status == 200

    store = hub.runtime.store
    by_account = {
        c.account_id: c
        for c in (await store.list_conversations(ConversationFilter(), limit=10)).items
    }
    binh = await store.get_contact(by_account["hotline"].contact_id)
    follower = await store.get_contact(by_account["zalo-oa"].contact_id)
    assert binh.id != follower.id
    assert binh.identities == [Identity(channel="phone", address="+84901234567")]
    assert follower.identities == [FOLLOWER]


async def test_a_follower_who_shares_their_phone_is_the_contact_who_texts_from_it(
    zalo_and_hotline,
):
    hub, twilio = zalo_and_hotline
    assert (await deliver(hub, recorded("zalo", "user_send_text.json"))).status == 200
    # The follower shares their phone ("84901234567") with the OA...
    assert (await deliver(hub, recorded("zalo", "user_submit_info.json"))).status == 200
    # ...and later texts the hotline from it.
    status, _ = await text_in(twilio, "Mình là Bình, hỏi đơn hàng", sid="SM" + "7" * 32)
    assert status == 200

    store = hub.runtime.store
    page = await store.list_conversations(ConversationFilter(), limit=10)
    assert sorted(c.account_id for c in page.items) == ["hotline", "zalo-oa"]
    [contact_id] = {c.contact_id for c in page.items}
    contact = await store.get_contact(contact_id)
    assert contact.identities == [FOLLOWER, Identity(channel="phone", address="+84901234567")]
    by_account = {c.account_id: c for c in page.items}
    assert by_account["hotline"].contact_address == "+84901234567"
    assert by_account["zalo-oa"].contact_address == USER
    [sms] = await store.list_messages(by_account["hotline"].id)
    assert sms.text == "Mình là Bình, hỏi đơn hàng" and sms.sender.id == contact_id


async def test_the_composer_says_when_a_reply_will_be_paid(hub, clock, chromium):
    """Past 48 hours Zalo still takes a consultation reply, but counts it
    against the OA's paid quota: the agent is told before writing."""
    conversation = await conversation_id(hub)
    await add_person(hub, "lan@example.vn")
    last = await customer_wrote_at(hub, conversation)
    clock.set(last + timedelta(hours=30))
    page = await signed_in_page(chromium, hub, "lan@example.vn")
    await open_unassigned(page, conversation)
    assert await page.locator("#window-note").is_hidden()  # free, and days left
    clock.set(last + timedelta(hours=50))
    await page.reload()
    await open_unassigned(page, conversation)
    note = page.locator("#window-note")
    await note.wait_for()
    assert await note.text_content() == (
        "Đã quá 2 ngày kể từ tin cuối của khách: tin trả lời này tính vào hạn mức tin trả phí"
        " của OA. Khung trả lời đóng sau 4 ngày nữa."
    )
    assert "paid message quota" in await note.get_attribute("title")
    await shot(page, "reply-window-paid")
    assert page.errors == []
