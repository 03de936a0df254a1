"""WhatsApp Cloud API: signed webhooks (messages and statuses) into the inbox, the
customer's phone as their identity, replies through a local Cloud API, late
failures reported by status webhooks, and the 24-hour window."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.channels.meta import SIGNATURE_HEADER, sign
from hub.channels.whatsapp import WhatsAppWebhook, normalise
from hub.clock import FrozenClock
from hub.inbox.model import Attachment, Identity
from tests.channels.messaging import (
    add_agent,
    only_conversation,
    recorded,
    stored_counts,
    wait_status,
    with_ids,
)
from tests.peers.meta_graph import GraphPeer, graph_error, post_webhook

NUMBER_ID = "106540352242922"
APP_SECRET = "meta-app-secret-0123"
VERIFY = "verify-token-0123"
TOKEN = "EAAG-system-user-token"
PATH = "/webhooks/whatsapp/wa"
START = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
PHONE = Identity(channel="phone", address="+84901234567")


@pytest.fixture
def clock():
    return FrozenClock(START)


@pytest.fixture
async def graph(clock):
    peer = GraphPeer(TOKEN)
    # Meta knows when the customer of text.json last wrote (2026-01-01 00:00 UTC).
    peer.clock = clock
    peer.customer_wrote["84901234567"] = datetime(2026, 1, 1, tzinfo=UTC)
    await peer.start()
    yield peer
    await peer.stop()


@pytest.fixture
async def hub(make_settings, start_hub, graph, clock, monkeypatch):
    monkeypatch.setenv("HUB_TEST_WA_SECRET", APP_SECRET)
    monkeypatch.setenv("HUB_TEST_WA_VERIFY", VERIFY)
    monkeypatch.setenv("HUB_TEST_WA_TOKEN", TOKEN)
    account = {
        "id": "wa",
        "channel": "whatsapp",
        "phone_number_id": NUMBER_ID,
        "app_secret_env": "HUB_TEST_WA_SECRET",
        "verify_token_env": "HUB_TEST_WA_VERIFY",
        "access_token_env": "HUB_TEST_WA_TOKEN",
        "graph_url": graph.url,
    }
    return await start_hub(make_settings(accounts=[account]), clock=clock)


async def deliver(hub, body: bytes, secret: str | None = APP_SECRET):
    return await post_webhook(hub.client, PATH, body, secret)


# -- pure parts ------------------------------------------------------------------


def test_normalise_media_location_and_voice_notes():
    webhook = WhatsAppWebhook.model_validate_json(recorded("whatsapp", "media_batch.json"))
    batch = normalise(webhook, account_id="wa", phone_number_id=NUMBER_ID, default_region="VN")
    image, document, voice, sticker, location = batch.messages
    assert image.sender.identities == [PHONE] and image.sender.name == "Nguyễn Văn Bình"
    assert image.text == "Hàng bị móp"
    assert image.attachments == [
        Attachment(name="image", content_type="image/jpeg", storage_key="whatsapp:1003383421387256")
    ]
    assert document.attachments[0].name == "hoa-don-1001.pdf"
    assert voice.attachments[0].name == "voice note" and voice.meta["voice"] is True
    assert sticker.attachments[0].content_type == "image/webp"
    assert "Nhà hát Thành phố" in location.text and "10.776889, 106.700897" in location.text
    assert [m.external_id for m in batch.messages] == [
        "wamid.image0001",
        "wamid.doc0002",
        "wamid.voice0003",
        "wamid.sticker0004",
        "wamid.loc0005",
    ]


def test_changes_for_another_phone_number_are_skipped():
    raw = json.loads(recorded("whatsapp", "text.json"))
    raw["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999"
    batch = normalise(
        WhatsAppWebhook.model_validate(raw),
        account_id="wa",
        phone_number_id=NUMBER_ID,
        default_region="VN",
    )
    assert batch.messages == [] and batch.skipped == ["change for another phone number"]


_message = st.fixed_dictionaries(
    {
        "from": st.text(alphabet="0123456789", min_size=1, max_size=16),
        "id": st.text(min_size=1, max_size=30),
        "type": st.sampled_from(
            ["text", "image", "audio", "location", "contacts", "weird", "interactive"]
        ),
    },
    optional={
        "timestamp": st.text(max_size=12),
        "text": st.fixed_dictionaries({"body": st.text(max_size=40)}),
        "image": st.fixed_dictionaries({"id": st.text(min_size=1, max_size=10)}),
        "audio": st.fixed_dictionaries(
            {"id": st.text(min_size=1, max_size=10), "voice": st.booleans()}
        ),
        "location": st.fixed_dictionaries(
            {"latitude": st.floats(-90, 90), "longitude": st.floats(-180, 180)}
        ),
        "contacts": st.lists(
            st.fixed_dictionaries(
                {"name": st.fixed_dictionaries({"formatted_name": st.text(max_size=10)})}
            ),
            max_size=2,
        ),
        "interactive": st.fixed_dictionaries(
            {
                "type": st.just("button_reply"),
                "button_reply": st.fixed_dictionaries(
                    {"id": st.text(max_size=5), "title": st.text(max_size=10)}
                ),
            }
        ),
    },
)
_status = st.fixed_dictionaries(
    {
        "id": st.text(min_size=1, max_size=20),
        "status": st.sampled_from(["sent", "delivered", "read", "failed", "deleted"]),
    },
    optional={
        "errors": st.lists(
            st.fixed_dictionaries({"code": st.integers(0, 200000), "title": st.text(max_size=20)}),
            max_size=2,
        )
    },
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=st.lists(_message, max_size=4), statuses=st.lists(_status, max_size=3))
def test_normalise_accepts_any_well_formed_change_and_keeps_its_ids(messages, statuses):
    webhook = WhatsAppWebhook.model_validate(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "1",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "metadata": {"phone_number_id": NUMBER_ID},
                                "messages": messages,
                                "statuses": statuses,
                            },
                        }
                    ],
                }
            ],
        }
    )
    batch = normalise(webhook, account_id="wa", phone_number_id=NUMBER_ID, default_region="VN")
    assert [m.external_id for m in batch.messages] == [m["id"] for m in messages]
    for message in batch.messages:
        assert message.sender.identities[0].channel in ("phone", "whatsapp")
    assert [r.external_ids[0] for r in batch.reports] == [
        s["id"] for s in statuses if s["status"] != "deleted"
    ]


# -- the webhook -------------------------------------------------------------------


async def test_verification_handshake_answers_only_our_token(hub):
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "42"}
    assert await (await hub.client.get(PATH, params=query)).text() == "42"
    wrong = await hub.client.get(PATH, params={**query, "hub.mode": "unsubscribe"})
    assert wrong.status == 403


async def test_signed_message_lands_in_the_conversation_of_the_contact_with_that_phone(hub):
    response = await deliver(hub, recorded("whatsapp", "text.json"))
    assert response.status == 200
    conversation = await only_conversation(hub)
    assert conversation.contact_address == "+84901234567"
    contact = await hub.runtime.store.get_contact(conversation.contact_id)
    assert contact.identities == [PHONE] and contact.name == "Nguyễn Văn Bình"
    [message] = await hub.runtime.store.list_messages(conversation.id)
    assert message.text == "Chào shop, đơn hàng 1001 của mình tới đâu rồi?"
    # The whole batch of media from the same number joins the same conversation.
    assert (await deliver(hub, recorded("whatsapp", "media_batch.json"))).status == 200
    assert await stored_counts(hub) == (1, 6, 1)


async def test_tampered_or_unsigned_webhooks_are_refused_and_nothing_stored(hub):
    body = recorded("whatsapp", "text.json")
    tampered = body.replace(b"1001", b"9999")
    response = await hub.client.post(
        PATH, data=tampered, headers={SIGNATURE_HEADER: sign(APP_SECRET, body)}
    )
    assert response.status == 403
    assert (await deliver(hub, body, secret=None)).status == 403
    assert await stored_counts(hub) == (0, 0, 0)


async def test_the_same_event_delivered_twice_is_stored_once(hub):
    for _ in range(2):
        assert (await deliver(hub, recorded("whatsapp", "media_batch.json"))).status == 200
    assert await stored_counts(hub) == (1, 5, 1)


# -- replies -------------------------------------------------------------------------


async def conversation_id(hub) -> str:
    await deliver(hub, recorded("whatsapp", "text.json"))
    return (await only_conversation(hub)).id


async def test_agent_reply_reaches_the_cloud_api_with_the_exact_body(hub, graph):
    agent, _ = await add_agent(hub)
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), agent, "Đơn đang giao ạ")
    sent = await wait_status(hub, reply.id, "sent")
    [request] = graph.requests
    assert request.path == f"/v23.0/{NUMBER_ID}/messages"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "84901234567",
        "type": "text",
        "text": {"preview_url": False, "body": "Đơn đang giao ạ"},
    }
    assert sent.external_id == "wamid.sent0001"


async def test_reply_with_an_image_carries_the_text_as_caption(hub, graph):
    image = Attachment(name="ao.jpg", content_type="image/jpeg", url="https://files.shop.vn/ao.jpg")
    reply, _ = await hub.runtime.inbox.reply(
        await conversation_id(hub), None, "Mẫu mới ạ", attachments=[image]
    )
    await wait_status(hub, reply.id, "sent")
    [request] = graph.requests
    assert request.body["type"] == "image"
    assert request.body["image"] == {"link": "https://files.shop.vn/ao.jpg", "caption": "Mẫu mới ạ"}


async def test_a_reply_over_4096_characters_goes_as_several_texts_in_order(hub, graph):
    agent, _ = await add_agent(hub)
    first = "Dạ, đơn hàng của anh gồm các sản phẩm sau. " * 90  # 3870 characters
    second = "Giao hàng trong 2 ngày. " * 50
    text = first.strip() + "\n\n" + second.strip()
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), agent, text)
    sent = await wait_status(hub, reply.id, "sent")
    assert [r.body["text"]["body"] for r in graph.requests] == [first.strip(), second.strip()]
    assert sent.external_id == "wamid.sent0001"


async def test_a_long_reply_whose_second_text_is_throttled_once_sends_each_text_once(hub, graph):
    graph.answers_at[2] = (400, graph_error(130429, "(#130429) Rate limit hit"))
    first = "Dạ, đơn hàng của anh gồm các sản phẩm sau. " * 90
    second = "Giao hàng trong 2 ngày. " * 50
    text = first.strip() + "\n\n" + second.strip()
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), None, text)
    sent = await wait_status(hub, reply.id, "sent")
    bodies = [r.body["text"]["body"] for r in graph.requests]
    assert bodies == [first.strip(), second.strip(), second.strip()]  # the 2nd refused once
    assert sent.attempts == 2
    assert sent.sent_parts == ["wamid.sent0001", "wamid.sent0003"]
    assert sent.external_id == "wamid.sent0001"


async def test_a_status_on_a_part_waits_while_later_parts_are_still_going_out(hub, graph):
    """A "delivered" for part 1 while part 2 is in flight must not end the
    delivery (part 2 would never go); a status on part 2 afterwards moves it."""
    graph.hold_at[2] = held = asyncio.Event()
    text = "Dạ, đơn hàng của anh. " * 200 + "\n\n" + "Giao hàng trong 2 ngày."
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), None, text)
    await asyncio.wait_for(graph.holding.wait(), 10)
    assert (await hub.runtime.store.get_message(reply.id)).sent_parts == ["wamid.sent0001"]
    assert (
        await deliver(hub, with_ids("whatsapp", "statuses.json", "wamid.sent0001"))
    ).status == 200
    assert (await hub.runtime.store.get_message(reply.id)).status == "queued"
    held.set()  # Meta refuses the held part (503): the retry sends part 2 alone
    sent = await wait_status(hub, reply.id, "sent")
    assert len(graph.requests) == 2 and sent.sent_parts == ["wamid.sent0001", "wamid.sent0002"]
    await deliver(hub, with_ids("whatsapp", "statuses.json", "wamid.sent0002"))
    assert (await hub.runtime.store.get_message(reply.id)).status == "delivered"


async def test_a_failure_reported_on_a_part_while_parts_are_going_out_stops_the_rest(hub, graph):
    graph.hold_at[2] = held = asyncio.Event()
    text = "Dạ, đơn hàng của anh. " * 200 + "\n\n" + "Giao hàng trong 2 ngày."
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), None, text)
    await asyncio.wait_for(graph.holding.wait(), 10)
    body = with_ids("whatsapp", "status_failed_window.json", "wamid.sent0001")
    assert (await deliver(hub, body)).status == 200
    failed = await hub.runtime.store.get_message(reply.id)
    assert failed.status == "failed" and "(error 131047)" in failed.error
    held.set()  # part 2 refused (503): the retry finds the reply failed and sends nothing
    await asyncio.sleep(1)  # the retry comes within 0.25 s (test backoff): it has run
    assert len(graph.requests) == 1 and graph.received == 2
    assert (await hub.runtime.store.get_message(reply.id)).status == "failed"


async def test_a_part_taken_after_the_reply_failed_is_the_last_one_sent(hub, graph):
    """The failure lands while part 2 is with Meta, which takes it: part 2 cannot
    be recorded on a failed reply, and the delivery stops there."""
    graph.hold_at[2] = held = asyncio.Event()
    graph.accept_held = True
    text = "\n\n".join(["Dạ, đơn hàng của anh. " * 190] * 3)
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), None, text)
    await asyncio.wait_for(graph.holding.wait(), 10)
    body = with_ids("whatsapp", "status_failed_window.json", "wamid.sent0001")
    assert (await deliver(hub, body)).status == 200
    held.set()
    await asyncio.sleep(1)  # part 3 would have followed part 2 at once
    assert len(graph.requests) == 2
    stored = await hub.runtime.store.get_message(reply.id)
    assert stored.status == "failed" and stored.sent_parts == ["wamid.sent0001"]


async def test_a_failure_reported_on_a_later_part_fails_the_reply(hub, graph):
    text = "Dạ, đơn hàng của anh. " * 200 + "\n\n" + "Giao hàng trong 2 ngày."
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), None, text)
    await wait_status(hub, reply.id, "sent")
    body = with_ids("whatsapp", "status_failed_window.json", "wamid.sent0002")
    assert (await deliver(hub, body)).status == 200
    failed = await hub.runtime.store.get_message(reply.id)
    assert failed.status == "failed" and "(error 131047)" in failed.error


async def test_provider_refusal_fails_the_reply_with_its_reason(hub, graph):
    graph.answers = [
        (
            400,
            graph_error(
                131026,
                "(#131026) Message Undeliverable",
                details="Receiver is incapable of receiving this message",
            ),
        )
    ]
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), None, "hello")
    failed = await wait_status(hub, reply.id, "failed")
    assert failed.error == (
        "WhatsApp refused the message: (#131026) Message Undeliverable"
        " (Receiver is incapable of receiving this message)"
    )
    assert len(graph.requests) == 1


async def test_throughput_and_pair_rate_limits_are_retried(hub, graph):
    graph.answers = [
        (400, graph_error(130429, "(#130429) Rate limit hit")),
        (
            429,
            graph_error(
                131056, "(#131056) (Business Account, Consumer Account) pair rate limit hit"
            ),
        ),
    ]
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), None, "hello")
    assert (await wait_status(hub, reply.id, "sent")).attempts == 3


async def test_reply_after_24_hours_is_refused_up_front_naming_the_rule(hub, graph, clock):
    conversation = await conversation_id(hub)
    _, token = await add_agent(hub)
    clock.advance(timedelta(hours=30))
    response = await hub.api(
        "POST", f"/api/v1/conversations/{conversation}/messages", token, json={"text": "hi"}
    )
    assert response.status == 409
    error = (await response.json())["error"]
    assert error["code"] == "reply_window_closed"
    assert "WhatsApp (Meta's 24-hour customer-service window)" in error["message"]
    assert graph.requests == []


async def test_window_failure_reported_later_by_a_status_webhook_fails_the_reply(hub, graph):
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), None, "hello")
    sent = await wait_status(hub, reply.id, "sent")
    body = with_ids("whatsapp", "status_failed_window.json", sent.external_id)
    assert (await deliver(hub, body)).status == 200
    failed = await hub.runtime.store.get_message(reply.id)
    assert failed.status == "failed"
    assert failed.error == (
        "WhatsApp could not deliver the message: Re-engagement message (Message failed to send"
        " because more than 24 hours have passed since the customer last replied to this"
        " number.) (error 131047)"
    )


async def test_the_providers_own_window_error_on_send_fails_the_reply(hub, graph):
    graph.answers = [
        (
            400,
            graph_error(
                131047, "(#131047) Re-engagement message", details="more than 24 hours have passed"
            ),
        )
    ]
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), None, "hello")
    failed = await wait_status(hub, reply.id, "failed")
    assert failed.error.startswith("WhatsApp: outside Meta's 24-hour customer-service window")


async def test_status_webhooks_move_the_reply_forward_only(hub, graph):
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), None, "hello")
    sent = await wait_status(hub, reply.id, "sent")
    await deliver(hub, with_ids("whatsapp", "statuses.json", sent.external_id))
    assert (await hub.runtime.store.get_message(reply.id)).status == "delivered"
    read = with_ids("whatsapp", "statuses.json", sent.external_id).replace(
        b'"delivered"', b'"read"'
    )
    await deliver(hub, read)
    await deliver(hub, with_ids("whatsapp", "statuses.json", sent.external_id))  # late, replayed
    assert (await hub.runtime.store.get_message(reply.id)).status == "read"


async def test_media_larger_than_hub_keeps_is_refused_not_read_whole(hub, graph):
    hub.runtime.attachments.max_bytes = 1_000  # as `[attachments] max_bytes` would set it
    graph.media["1003383421387257"] = (b"%PDF-1.4 " + b"x" * 5_000, "application/pdf")
    await deliver(hub, recorded("whatsapp", "media_batch.json"))
    messages = await hub.runtime.store.list_messages((await only_conversation(hub)).id)
    document = next(m for m in messages if m.external_id == "wamid.doc0002")
    _, token = await add_agent(hub)
    response = await hub.api("GET", f"/api/v1/messages/{document.id}/attachments/0", token)
    assert response.status == 502
    assert (await response.json())["error"]["message"] == (
        "WhatsApp media 1003383421387257 is larger than the 1000 bytes hub keeps an attachment to"
    )


async def test_agent_downloads_media_the_customer_sent_with_the_access_token(hub, graph):
    graph.media["1003383421387257"] = (b"%PDF-1.4 invoice", "application/pdf")
    await deliver(hub, recorded("whatsapp", "media_batch.json"))
    messages = await hub.runtime.store.list_messages((await only_conversation(hub)).id)
    document = next(m for m in messages if m.external_id == "wamid.doc0002")
    _, token = await add_agent(hub)
    response = await hub.api("GET", f"/api/v1/messages/{document.id}/attachments/0", token)
    assert response.status == 200
    assert await response.read() == b"%PDF-1.4 invoice"
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"] == 'attachment; filename="hoa-don-1001.pdf"'
    image = next(m for m in messages if m.external_id == "wamid.image0001")
    gone = await hub.api("GET", f"/api/v1/messages/{image.id}/attachments/0", token)
    assert gone.status == 502  # Meta no longer has it: the provider's answer, not a 500
    assert (await gone.json())["error"]["message"] == (
        "WhatsApp media 1003383421387256 could not be fetched: Unsupported get request."
    )
