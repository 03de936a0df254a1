"""Twilio SMS: signed webhooks in, form POSTs to the Messages API out, status
callbacks, opt-out keywords and consent on every send, segments and diacritics."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.channels.twilio.rest import form_body
from hub.clock import FrozenClock
from hub.inbox.model import Identity
from hub.inbox.store import ConversationFilter
from tests.channels.twilio_hub import add_agent, start_twilio_hub, text_in
from tests.conftest import API_SECRET, eventually
from tests.peers.api_sender import message, signed
from tests.peers.twilio import ACCOUNT_SID, AUTH_TOKEN, LINE, TwilioPeer, recorded


@pytest.fixture
async def peer():
    peer = TwilioPeer()
    await peer.start()
    yield peer
    await peer.stop()


@pytest.fixture
async def hub(make_settings, start_hub, peer, monkeypatch):
    return await start_twilio_hub(make_settings, start_hub, peer, monkeypatch)


async def everything(hub):
    store = hub.runtime.store
    page = await store.list_conversations(ConversationFilter(), limit=100)
    return [m for c in page.items for m in await store.list_messages(c.id)]


async def reply(hub, token, conversation_id, text):
    response = await hub.api(
        "POST", f"/api/v1/conversations/{conversation_id}/messages", token, json={"text": text}
    )
    assert response.status == 202, await response.text()
    return (await response.json())["id"]


async def settled(hub, message_id, *statuses):
    async def done():
        stored = await hub.runtime.store.get_message(message_id)
        return stored.status in statuses

    await eventually(done)
    return await hub.runtime.store.get_message(message_id)


# -- in ----------------------------------------------------------------------


async def test_inbound_sms_is_stored_under_the_senders_e164_phone(hub, peer):
    status, twiml = await text_in(peer, "Chào shop, đơn #1024 giao chưa ạ?", sid="SM" + "1" * 32)
    assert status == 200 and twiml.strip().endswith("<Response />")
    [stored] = await everything(hub)
    assert stored.channel == "twilio" and stored.direction == "inbound"
    assert stored.text == "Chào shop, đơn #1024 giao chưa ạ?"
    assert stored.external_id == "SM" + "1" * 32
    contact = await hub.runtime.store.get_contact(stored.sender.id)
    assert contact.identities == [Identity(channel="phone", address="+84901234567")]
    conversation = await hub.runtime.store.get_conversation(stored.conversation_id)
    assert conversation.account_id == "hotline" and conversation.contact_address == "+84901234567"


async def test_mms_media_urls_become_attachments(hub, peer):
    status, _ = await peer.post(peer.webhook_url("hotline", "sms"), recorded("inbound_mms"))
    assert status == 200
    [stored] = await everything(hub)
    assert [(a.content_type, a.url.rsplit("/", 1)[1]) for a in stored.attachments] == [
        ("image/jpeg", "ME0a1b2c3d4e5f60718293a4b5c6d7e8f9"),
        ("application/pdf", "ME1b2c3d4e5f60718293a4b5c6d7e8f9a0"),
    ]
    assert stored.meta["kind"] == "mms"


async def test_a_replayed_webhook_is_stored_once(hub, peer):
    for _ in range(3):
        assert (await text_in(peer, "Alo", sid="SM" + "2" * 32))[0] == 200
    assert len(await everything(hub)) == 1


@pytest.mark.parametrize("tamper", ["body", "url", "token", "missing"])
async def test_a_bad_signature_is_403_and_nothing_is_stored(hub, peer, tamper):
    params = recorded("inbound_sms")
    url = peer.webhook_url("hotline", "sms")
    signature = peer.signature(url, params)
    if tamper == "body":
        params["Body"] = "Chuyển khoản vào tài khoản khác nhé"
    elif tamper == "url":
        # Signed for the address behind the proxy instead of the public one.
        signature = peer.signature(peer.hub_url + "webhooks/twilio/hotline/sms", params)
    elif tamper == "token":
        signature = TwilioPeer(auth_token="another-token-0000000000").signature(url, params)
    elif tamper == "missing":
        signature = ""
    status, body = await peer.post(url, params, signature=signature or " ")
    assert status == 403, body
    assert '"signature_invalid"' in body
    assert await everything(hub) == []


async def test_unknown_account_number_or_twilio_account_get_a_clear_4xx(hub, peer):
    status, body = await peer.post(peer.webhook_url("nobody", "sms"), recorded("inbound_sms"))
    assert status == 404 and "no twilio account 'nobody' is configured" in body
    other_number = {**recorded("inbound_sms"), "To": "+14155550199"}
    status, body = await peer.post(peer.webhook_url("hotline", "sms"), other_number)
    assert status == 422 and "+14155550199 is not account 'hotline'" in body
    other_account = {**recorded("inbound_sms"), "AccountSid": "AC" + "f" * 32}
    status, body = await peer.post(peer.webhook_url("hotline", "sms"), other_account)
    assert status == 403 and "for Twilio account ACffff" in body
    no_sender = {k: v for k, v in recorded("inbound_sms").items() if k != "From"}
    status, body = await peer.post(peer.webhook_url("hotline", "sms"), no_sender)
    assert status == 422 and "From: missing" in body
    assert await everything(hub) == []


async def test_one_customer_on_sms_and_another_channel_is_one_contact(
    make_settings, start_hub, peer, monkeypatch
):
    api = {"id": "shop", "channel": "api", "secret_env": "HUB_TEST_API_SECRET"}
    hub = await start_twilio_hub(make_settings, start_hub, peer, monkeypatch, extra_accounts=[api])
    body, headers = signed(message("web-1", "cust-9", phone="0901 234 567"), API_SECRET)
    assert (await hub.client.post("/webhooks/api/shop", data=body, headers=headers)).status == 200
    await text_in(peer, "Alo", sid="SM" + "3" * 32)
    messages = await everything(hub)
    assert len(messages) == 2 and len({m.sender.id for m in messages}) == 1


# -- out ---------------------------------------------------------------------


async def test_reply_goes_out_with_segments_and_status_callbacks_move_it_forward(hub, peer):
    _, token = await add_agent(hub, "lan@shop.vn")
    await text_in(peer, "Alo", sid="SM" + "4" * 32)
    [inbound] = await everything(hub)
    text = "Dạ, đơn hàng của anh đã được giao cho đơn vị vận chuyển, dự kiến tới nơi ngày mai ạ."
    message_id = await reply(hub, token, inbound.conversation_id, text)
    sent = await settled(hub, message_id, "sent", "failed")
    assert sent.status == "sent", sent.error
    [request] = peer.sent
    assert request.get("To") == "+84901234567" and request.get("From") == LINE
    assert request.get("Body") == text
    assert request.get("StatusCallback") == (
        f"{peer.public_url}/webhooks/twilio/hotline/sms/status?message={message_id}"
    )
    assert sent.external_id == request.sid
    shown = await (await hub.api("GET", f"/api/v1/messages/{message_id}", token)).json()
    assert shown["meta"]["sms"] == {
        "encoding": "UCS-2",
        "segments": 2,
        "units": len(text),
        "characters": len(text),
        "diacritics_stripped": False,
    }
    assert (await peer.status_callback(request, "sent"))[0] == 204
    assert (await peer.status_callback(request, "delivered"))[0] == 204
    assert (await hub.runtime.store.get_message(message_id)).status == "delivered"
    # A replayed or late callback never moves it back.
    assert (await peer.status_callback(request, "sent"))[0] == 204
    assert (await peer.status_callback(request, "delivered"))[0] == 204
    stored = await hub.runtime.store.get_message(message_id)
    assert stored.status == "delivered" and stored.meta["twilio_status"] == "delivered"


async def test_a_send_is_one_form_post_to_the_messages_api_as_twilio_documents_it(hub, peer):
    _, token = await add_agent(hub, "lan@shop.vn")
    await text_in(peer, "Alo", sid="SM" + "4" * 31 + "5")
    [inbound] = await everything(hub)
    text = "Giảm 20% + quà: a&b=c, #1 ~ 100%? Xem https://shop.vn/?a=1&b=2\nHết."
    await settled(hub, await reply(hub, token, inbound.conversation_id, text), "sent")
    [request] = peer.sent
    assert request.form["Body"] == [text] and request.form["To"] == ["+84901234567"]
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["Accept"] == "application/json"
    auth = aiohttp.BasicAuth.decode(request.auth or "")
    assert (auth.login, auth.password) == (ACCOUNT_SID, AUTH_TOKEN)


@given(st.lists(st.tuples(st.text(), st.text()), max_size=4))
def test_form_bodies_are_encoded_exactly_as_urlencode_does(fields):
    assert form_body(fields) == urlencode(fields).encode("ascii")


async def test_an_accepted_send_with_an_unreadable_answer_is_sent_once(hub, peer):
    """Twilio took the message (201) but what came back is not its JSON (a proxy
    in between): the message is sent, not tried again, and its status callbacks
    still find it."""
    _, token = await add_agent(hub, "lan@shop.vn")
    await text_in(peer, "Alo", sid="SM" + "4" * 30 + "56")
    [inbound] = await everything(hub)
    peer.garbled = 1
    message_id = await reply(hub, token, inbound.conversation_id, "Dạ vâng")
    sent = await settled(hub, message_id, "sent", "failed")
    assert sent.status == "sent" and sent.attempts == 1 and sent.external_id is None
    [request] = peer.sent
    assert (await peer.status_callback(request, "delivered"))[0] == 204
    assert (await hub.runtime.store.get_message(message_id)).status == "delivered"


async def test_undelivered_callback_fails_the_message_with_twilios_error_code(hub, peer):
    _, token = await add_agent(hub, "lan@shop.vn")
    await text_in(peer, "Alo", sid="SM" + "5" * 32)
    [inbound] = await everything(hub)
    message_id = await reply(hub, token, inbound.conversation_id, "Dạ vâng")
    await settled(hub, message_id, "sent")
    status, _ = await peer.status_callback(peer.sent[0], "undelivered", error_code=30003)
    assert status == 204
    stored = await hub.runtime.store.get_message(message_id)
    assert stored.status == "failed"
    assert stored.error == "undelivered: Twilio error 30003: unreachable destination handset"
    assert stored.meta["error_code"] == 30003


async def test_status_callbacks_are_signed_and_name_a_real_message(hub, peer):
    _, token = await add_agent(hub, "lan@shop.vn")
    await text_in(peer, "Alo", sid="SM" + "6" * 32)
    [inbound] = await everything(hub)
    message_id = await reply(hub, token, inbound.conversation_id, "Dạ vâng")
    await settled(hub, message_id, "sent")
    callback = peer.sent[0].get("StatusCallback")
    params = recorded("sms_status", sid=peer.sent[0].sid, status="delivered", to="+84901234567")
    forged = TwilioPeer(auth_token="not-the-token-000000000").signature(callback, params)
    assert (await peer.post(callback, params, signature=forged))[0] == 403
    assert (await hub.runtime.store.get_message(message_id)).status == "sent"
    unknown = callback.replace(message_id, "0" * 24)
    status, body = await peer.post(unknown, params)
    assert status == 404 and "is not one this hub sent" in body


async def test_an_invalid_number_fails_at_once_with_the_reason(hub, peer):
    _, token = await add_agent(hub, "lan@shop.vn")
    await text_in(peer, "Alo", sid="SM" + "7" * 32)
    [inbound] = await everything(hub)
    peer.invalid.add("+84901234567")
    message_id = await reply(hub, token, inbound.conversation_id, "Dạ vâng")
    failed = await settled(hub, message_id, "failed")
    assert failed.attempts == 1
    assert "Twilio error 21211: the 'To' number is not a valid phone number" in failed.error


async def test_unsubscribed_recipient_fails_at_once(hub, peer):
    _, token = await add_agent(hub, "lan@shop.vn")
    await text_in(peer, "Alo", sid="SM" + "8" * 32)
    [inbound] = await everything(hub)
    peer.unsubscribed.add("+84901234567")
    message_id = await reply(hub, token, inbound.conversation_id, "Dạ vâng")
    failed = await settled(hub, message_id, "failed")
    assert failed.attempts == 1 and "21610" in failed.error


async def test_throttling_and_outages_are_retried_with_backoff(hub, peer):
    _, token = await add_agent(hub, "lan@shop.vn")
    await text_in(peer, "Alo", sid="SM" + "9" * 32)
    [inbound] = await everything(hub)
    peer.answers = [429, 503]
    message_id = await reply(hub, token, inbound.conversation_id, "Dạ vâng")
    sent = await settled(hub, message_id, "sent", "failed")
    assert sent.status == "sent" and sent.attempts == 3
    assert len(peer.sent) == 1
    peer.answers = [500, 500, 500]
    again = await reply(hub, token, inbound.conversation_id, "Dạ, em nhắn lại")
    failed = await settled(hub, again, "failed")
    assert failed.attempts == 3 and "HTTP 500" in failed.error


async def test_messaging_service_is_used_when_configured(
    make_settings, start_hub, peer, monkeypatch
):
    service = "MG" + "a" * 32
    hub = await start_twilio_hub(
        make_settings, start_hub, peer, monkeypatch, from_number=None, messaging_service_sid=service
    )
    _, token = await add_agent(hub, "lan@shop.vn")
    params = {**recorded("inbound_sms"), "MessagingServiceSid": service}
    assert (await peer.post(peer.webhook_url("hotline", "sms"), params))[0] == 200
    [inbound] = await everything(hub)
    await settled(hub, await reply(hub, token, inbound.conversation_id, "Dạ"), "sent")
    assert peer.sent[0].get("MessagingServiceSid") == service
    assert peer.sent[0].get("From") is None


async def test_diacritics_free_option_sends_gsm7_text(make_settings, start_hub, peer, monkeypatch):
    hub = await start_twilio_hub(make_settings, start_hub, peer, monkeypatch, strip_diacritics=True)
    _, token = await add_agent(hub, "lan@shop.vn")
    await text_in(peer, "Alo", sid="SM" + "a" * 32)
    [inbound] = await everything(hub)
    text = "Cảm ơn quý khách, đơn hàng ĐH-1024 đã được giao thành công."
    message_id = await reply(hub, token, inbound.conversation_id, text)
    sent = await settled(hub, message_id, "sent")
    assert peer.sent[0].get("Body") == "Cam on quy khach, don hang DH-1024 da duoc giao thanh cong."
    assert sent.text == text  # the timeline keeps what the agent wrote
    assert sent.meta["sms"]["encoding"] == "GSM-7" and sent.meta["sms"]["segments"] == 1
    assert sent.meta["sms"]["diacritics_stripped"] is True


# -- consent -----------------------------------------------------------------


async def test_stop_opts_out_every_later_send_is_refused_and_start_opts_back_in(
    make_settings, start_hub, peer, monkeypatch
):
    clock = FrozenClock()
    hub = await start_twilio_hub(make_settings, start_hub, peer, monkeypatch, clock=clock)
    agent, token = await add_agent(hub, "lan@shop.vn")
    await text_in(peer, "Alo shop", sid="SM" + "b" * 32)
    clock.advance(timedelta(minutes=5))
    await text_in(peer, "  stop. ", sid="SM" + "c" * 32)
    messages = await everything(hub)
    stop = messages[-1]
    contact = await hub.runtime.store.get_contact(stop.sender.id)
    consent = contact.consent["sms"]
    assert consent.status == "opted_out" and consent.at == clock.now()
    assert consent.how == f"message:{stop.id}"
    # An agent's reply and a system send (as care messages and campaigns make)
    # both pass the same delivery path, and both are refused.
    refused = await reply(hub, token, stop.conversation_id, "Dạ, em chào anh")
    system, _ = await hub.runtime.inbox.reply(stop.conversation_id, None, "Chúc mừng sinh nhật!")
    for message_id in (refused, system.id):
        failed = await settled(hub, message_id, "failed")
        assert "opted out of sms" in failed.error and f"message:{stop.id}" in failed.error
    assert peer.sent == []
    # A second opt-out keeps the first as the record.
    await text_in(peer, "HỦY", sid="SM" + "d" * 32)
    contact = await hub.runtime.store.get_contact(stop.sender.id)
    assert contact.consent["sms"].how == f"message:{stop.id}"
    clock.advance(timedelta(minutes=5))
    await text_in(peer, "Start", sid="SM" + "e" * 32)
    contact = await hub.runtime.store.get_contact(stop.sender.id)
    assert contact.consent["sms"].status == "opted_in" and contact.consent["sms"].at == clock.now()
    await settled(hub, await reply(hub, token, stop.conversation_id, "Dạ vâng"), "sent")
    assert len(peer.sent) == 1 and agent


@pytest.mark.parametrize("keyword", ["Từ chối", "tu choi", "HUY", "hủy.", "Unsubscribe", "QUIT"])
async def test_vietnamese_and_english_opt_out_keywords_through_the_webhook(hub, peer, keyword):
    await text_in(peer, keyword, sid="SM" + "f" * 32)
    [stored] = await everything(hub)
    contact = await hub.runtime.store.get_contact(stored.sender.id)
    assert contact.consent["sms"].status == "opted_out"


async def test_a_sentence_containing_stop_is_just_a_message(hub, peer):
    await text_in(peer, "Stop by the shop tomorrow?", sid="SM" + "0" * 32)
    [stored] = await everything(hub)
    contact = await hub.runtime.store.get_contact(stored.sender.id)
    assert contact.consent == {}


async def test_a_reply_with_attachments_goes_out_as_mms(hub, peer):
    _, token = await add_agent(hub, "lan@shop.vn")
    await text_in(peer, "Alo", sid="SM" + "5" * 31 + "6")
    [inbound] = await everything(hub)
    response = await hub.api(
        "POST",
        f"/api/v1/conversations/{inbound.conversation_id}/messages",
        token,
        json={
            "text": "Hoá đơn của anh ạ",
            "attachments": [
                {"url": "https://shop.example.vn/hd-1024.png", "content_type": "image/png"}
            ],
        },
    )
    message_id = (await response.json())["id"]
    await settled(hub, message_id, "sent")
    assert peer.sent[0].form["MediaUrl"] == ["https://shop.example.vn/hd-1024.png"]
