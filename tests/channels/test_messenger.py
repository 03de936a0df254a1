"""Facebook Messenger: Meta's verification handshake and signatures, page webhooks
(batched) into the inbox, replies through a local Send API, receipts, and the
24-hour window."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.channels.messenger import MessengerWebhook, normalise
from hub.channels.meta import graph_rejection
from hub.clock import FrozenClock
from hub.errors import ReplyWindowClosed
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
from tests.peers.server import FileServer
from tests.web.browser import chromium, open_unassigned, shot, signed_in_page
from tests.web.conftest import add_person

__all__ = ["chromium"]  # the fixture, used by name

PAGE = "104455667788990"
PSID = "6712345678901234"
APP_SECRET = "meta-app-secret-0123"
VERIFY = "verify-token-0123"
TOKEN = "EAAG-page-access-token"
PATH = "/webhooks/messenger/fanpage"
# The recorded text.json was sent at 2026-01-01 00:00 UTC; the tests start just after.
CUSTOMER_WROTE = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
START = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)


@pytest.fixture
async def graph(clock):
    peer = GraphPeer(TOKEN)
    # Meta knows when the customer of text.json last wrote, and holds sends to it.
    peer.clock = clock
    peer.customer_wrote[PSID] = CUSTOMER_WROTE
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


def account_options(graph, **options):
    return {
        "id": "fanpage",
        "channel": "messenger",
        "page_id": PAGE,
        "app_secret_env": "HUB_TEST_META_SECRET",
        "verify_token_env": "HUB_TEST_META_VERIFY",
        "access_token_env": "HUB_TEST_META_TOKEN",
        "graph_url": graph.url,
        **options,
    }


@pytest.fixture
def meta_env(monkeypatch):
    monkeypatch.setenv("HUB_TEST_META_SECRET", APP_SECRET)
    monkeypatch.setenv("HUB_TEST_META_VERIFY", VERIFY)
    monkeypatch.setenv("HUB_TEST_META_TOKEN", TOKEN)


@pytest.fixture
async def hub(make_settings, start_hub, graph, clock, meta_env):
    return await start_hub(make_settings(accounts=[account_options(graph)]), clock=clock)


@pytest.fixture
async def tagging_hub(make_settings, start_hub, graph, clock, meta_env):
    account = account_options(graph, human_agent_tag=True)
    return await start_hub(make_settings(accounts=[account]), clock=clock)


async def deliver(hub, body: bytes, secret: str | None = APP_SECRET):
    return await post_webhook(hub.client, PATH, body, secret)


# -- pure parts ------------------------------------------------------------------


def test_normalise_a_batch_of_entries_skips_echoes():
    webhook = MessengerWebhook.model_validate_json(recorded("messenger", "batch.json"))
    batch = normalise(webhook, account_id="fanpage", page_id=PAGE)
    assert [m.external_id for m in batch.messages] == [
        "m_image_0001",
        "m_sticker_0002",
        "m_file_0003",
    ]
    image, sticker, file = batch.messages
    assert image.sender.identities == [Identity(channel=f"messenger:{PAGE}", address=PSID)]
    assert image.attachments[0].content_type == "image/*"
    assert image.attachments[0].url.startswith("https://scontent")
    assert sticker.meta["sticker_id"] == 369239263222822
    assert sticker.attachments[0].name == "sticker"
    assert file.sender.identities[0].address == "6798765432109876"
    assert file.attachments[0].content_type == "application/octet-stream"
    assert batch.skipped == ["echo of a message the page sent"]


def test_entries_for_another_page_are_skipped():
    raw = json.loads(recorded("messenger", "text.json"))
    raw["entry"][0]["id"] = "999"
    batch = normalise(MessengerWebhook.model_validate(raw), account_id="fanpage", page_id=PAGE)
    assert batch.messages == [] and "not this account's page" in batch.skipped[0]


_ids = st.text(alphabet="0123456789", min_size=1, max_size=20)
_attachment = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["image", "video", "audio", "file", "location", "fallback", "x"]),
        "payload": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {
                    "url": st.one_of(st.none(), st.text(max_size=30)),
                    "sticker_id": st.one_of(st.none(), st.integers(0, 10**15)),
                    "coordinates": st.one_of(
                        st.none(),
                        st.fixed_dictionaries(
                            {"lat": st.floats(-90, 90), "long": st.floats(-180, 180)}
                        ),
                    ),
                }
            ),
        ),
    }
)
_event = st.fixed_dictionaries(
    {
        "sender": st.fixed_dictionaries({"id": _ids}),
        "recipient": st.just({"id": PAGE}),
        "timestamp": st.one_of(st.none(), st.integers(0, 2**62)),
    },
    optional={
        "message": st.fixed_dictionaries(
            {"mid": st.text(min_size=1, max_size=30)},
            optional={
                "text": st.text(max_size=50),
                "is_echo": st.booleans(),
                "attachments": st.lists(_attachment, max_size=3),
            },
        ),
        "delivery": st.fixed_dictionaries(
            {"mids": st.lists(st.text(min_size=1, max_size=10), max_size=3)},
            optional={"watermark": st.integers(0, 2**62)},
        ),
        "read": st.fixed_dictionaries({"watermark": st.integers(0, 2**62)}),
        "postback": st.fixed_dictionaries({"title": st.text(max_size=20)}),
    },
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(_event, max_size=4))
def test_normalise_accepts_any_well_formed_event_and_keeps_its_ids(events):
    webhook = MessengerWebhook.model_validate(
        {"object": "page", "entry": [{"id": PAGE, "messaging": events}]}
    )
    batch = normalise(webhook, account_id="fanpage", page_id=PAGE)
    expected = [
        e["message"]["mid"]
        for e in events
        if "message" in e and not e["message"].get("is_echo") and e["sender"]["id"] != PAGE
    ]
    assert [m.external_id for m in batch.messages if m.meta.get("postback") is None] == expected
    for message in batch.messages:
        assert message.text or message.attachments
        assert message.sender.identities[0].channel == f"messenger:{PAGE}"


def test_graph_errors_say_whether_to_retry():
    window = graph_rejection(
        "Messenger",
        400,
        json.dumps(
            graph_error(
                10, "(#10) This message is sent outside of allowed window.", subcode=2018278
            )
        ),
    )
    assert not window.retryable and "24-hour customer-service window" in window.reason
    assert graph_rejection("Messenger", 400, json.dumps(graph_error(613, "rate"))).retryable
    assert graph_rejection("Messenger", 503, "<html>down</html>").retryable
    token = graph_rejection("Messenger", 401, json.dumps(graph_error(190, "Invalid OAuth")))
    assert not token.retryable and "access token expired or was revoked" in token.reason


# -- the webhook -------------------------------------------------------------------


async def test_verification_handshake_answers_only_our_token(hub):
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"}
    ok = await hub.client.get(PATH, params=query)
    assert ok.status == 200 and await ok.text() == "1158201444"
    wrong = await hub.client.get(PATH, params={**query, "hub.verify_token": "nope-nope"})
    assert wrong.status == 403
    assert (await wrong.json())["error"]["code"] == "signature_invalid"


async def test_signed_message_lands_in_the_customers_conversation(hub):
    response = await deliver(hub, recorded("messenger", "text.json"))
    assert response.status == 200 and await response.text() == "EVENT_RECEIVED"
    conversation = await only_conversation(hub)
    assert conversation.channel == "messenger" and conversation.contact_address == PSID
    [message] = await hub.runtime.store.list_messages(conversation.id)
    assert message.text == "Chào shop, áo này còn size M không?"
    assert message.external_id.startswith("m_AbCd")
    contact = await hub.runtime.store.get_contact(conversation.contact_id)
    assert Identity(channel=f"messenger:{PAGE}", address=PSID) in contact.identities


async def test_tampered_or_unsigned_webhooks_are_refused_and_nothing_stored(hub):
    body = recorded("messenger", "text.json")
    tampered = body.replace(b"size M", b"size X")
    from hub.channels.meta import SIGNATURE_HEADER, sign

    response = await hub.client.post(
        PATH, data=tampered, headers={SIGNATURE_HEADER: sign(APP_SECRET, body)}
    )
    assert response.status == 403
    unsigned = await deliver(hub, body, secret=None)
    assert unsigned.status == 403
    assert "missing X-Hub-Signature-256" in (await unsigned.json())["error"]["message"]
    wrong_key = await deliver(hub, body, secret="another-app-secret")
    assert wrong_key.status == 403
    assert await stored_counts(hub) == (0, 0, 0)


async def test_the_same_event_delivered_twice_is_stored_once(hub):
    for _ in range(2):
        assert (await deliver(hub, recorded("messenger", "text.json"))).status == 200
    assert await stored_counts(hub) == (1, 1, 1)


async def test_every_event_of_a_batch_is_stored_and_a_redelivery_after_a_partial_store_is_safe(hub):
    # The first message of the batch was stored by an earlier, interrupted delivery.
    first_only = json.loads(recorded("messenger", "batch.json"))
    first_only["entry"] = [
        {**first_only["entry"][0], "messaging": first_only["entry"][0]["messaging"][:1]}
    ]
    assert (await deliver(hub, json.dumps(first_only).encode())).status == 200
    assert (await deliver(hub, recorded("messenger", "batch.json"))).status == 200
    conversations, messages, contacts = await stored_counts(hub)
    assert (conversations, messages, contacts) == (2, 3, 2)


async def test_malformed_body_is_422_and_nothing_stored(hub):
    response = await deliver(hub, b'{"object": "page", "entry": [{"messaging": 5}]}')
    assert response.status == 422
    assert await stored_counts(hub) == (0, 0, 0)


# -- replies -------------------------------------------------------------------------


async def conversation_id(hub) -> str:
    await deliver(hub, recorded("messenger", "text.json"))
    return (await only_conversation(hub)).id


async def test_agent_reply_reaches_the_send_api_with_the_exact_body(hub, graph):
    agent, _ = await add_agent(hub)
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), agent, "Dạ còn ạ")
    sent = await wait_status(hub, reply.id, "sent")
    [request] = graph.requests
    assert request.path == f"/v23.0/{PAGE}/messages"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.body == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Dạ còn ạ"},
    }
    assert sent.external_id == "m_sent0001"


async def test_reply_with_a_file_sends_the_attachment_then_the_text(hub, graph):
    attachment = Attachment(
        name="bang-gia.pdf",
        content_type="application/pdf",
        url="https://files.shop.vn/bang-gia.pdf",
    )
    reply, _ = await hub.runtime.inbox.reply(
        await conversation_id(hub), None, "Bảng giá đây ạ", attachments=[attachment]
    )
    await wait_status(hub, reply.id, "sent")
    assert [r.body["message"] for r in graph.requests] == [
        {
            "attachment": {
                "type": "file",
                "payload": {"url": "https://files.shop.vn/bang-gia.pdf", "is_reusable": False},
            }
        },
        {"text": "Bảng giá đây ạ"},
    ]


async def test_provider_refusal_fails_the_reply_with_its_reason(hub, graph):
    graph.answers = [
        (400, graph_error(551, "This person isn't available right now.", subcode=1545041))
    ]
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), None, "hello")
    failed = await wait_status(hub, reply.id, "failed")
    assert failed.error == "Messenger refused the message: This person isn't available right now."
    assert failed.attempts == 1 and len(graph.requests) == 1


async def test_rate_limits_and_server_errors_are_retried(hub, graph):
    graph.answers = [
        (500, {"error": {"message": "An unexpected error has occurred.", "code": 2}}),
        (400, graph_error(613, "(#613) Calls to this api have exceeded the rate limit.")),
    ]
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), None, "hello")
    sent = await wait_status(hub, reply.id, "sent")
    assert sent.attempts == 3 and len(graph.requests) == 3


async def test_reply_after_24_hours_is_refused_up_front_naming_the_rule(hub, graph, clock):
    conversation = await conversation_id(hub)
    _, token = await add_agent(hub)
    clock.advance(timedelta(hours=25))
    response = await hub.api(
        "POST", f"/api/v1/conversations/{conversation}/messages", token, json={"text": "còn ạ"}
    )
    assert response.status == 409
    error = (await response.json())["error"]
    assert error["code"] == "reply_window_closed"
    assert "Messenger (Meta's 24-hour standard messaging window)" in error["message"]
    assert "last wrote 25 hours ago" in error["message"]
    assert len(await hub.runtime.store.list_messages(conversation)) == 1  # nothing stored
    assert graph.requests == []


async def test_the_providers_own_window_error_fails_the_reply_with_its_reason(hub, graph):
    graph.answers = [
        (
            400,
            graph_error(
                10, "(#10) This message is sent outside of allowed window.", subcode=2018278
            ),
        )
    ]
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), None, "hello")
    failed = await wait_status(hub, reply.id, "failed")
    assert "outside Meta's 24-hour customer-service window" in failed.error
    assert "(#10) This message is sent outside of allowed window." in failed.error


async def test_delivery_and_read_receipts_move_the_reply_forward_only(hub, graph, clock):
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), None, "hello")
    sent = await wait_status(hub, reply.id, "sent")
    assert (
        await deliver(hub, with_ids("messenger", "delivery.json", sent.external_id))
    ).status == 200
    assert (await hub.runtime.store.get_message(reply.id)).status == "delivered"
    assert (await deliver(hub, recorded("messenger", "read.json"))).status == 200  # watermark
    assert (await hub.runtime.store.get_message(reply.id)).status == "read"
    # A late delivery receipt does not move it back.
    await deliver(hub, with_ids("messenger", "delivery.json", sent.external_id))
    assert (await hub.runtime.store.get_message(reply.id)).status == "read"


async def test_store_outage_refuses_the_whole_batch_and_the_redelivery_stores_it_once(
    make_settings, start_hub, graph, clock, monkeypatch
):
    import sqlite3

    monkeypatch.setenv("HUB_TEST_META_SECRET", APP_SECRET)
    monkeypatch.setenv("HUB_TEST_META_VERIFY", VERIFY)
    monkeypatch.setenv("HUB_TEST_META_TOKEN", TOKEN)
    account = {
        "id": "fanpage",
        "channel": "messenger",
        "page_id": PAGE,
        "app_secret_env": "HUB_TEST_META_SECRET",
        "verify_token_env": "HUB_TEST_META_VERIFY",
        "access_token_env": "HUB_TEST_META_TOKEN",
        "graph_url": graph.url,
    }
    settings_ = make_settings(accounts=[account], store={"sqlite_busy_timeout_ms": 100})
    hub = await start_hub(settings_, clock=clock)
    blocker = sqlite3.connect(settings_.data_dir / "hub.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        refused = await deliver(hub, recorded("messenger", "batch.json"))
        assert refused.status == 503  # Meta keeps the batch and delivers it again
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert (await deliver(hub, recorded("messenger", "batch.json"))).status == 200
    assert await stored_counts(hub) == (2, 3, 2)


async def test_a_reply_over_2000_characters_goes_as_several_texts_in_order(hub, graph):
    agent, _ = await add_agent(hub)
    first = "Dạ, shop gửi anh thông tin chi tiết. " * 50  # 1850 characters
    second = "Chính sách đổi trả trong 7 ngày. " * 40  # 1320 characters
    text = first.strip() + "\n\n" + second.strip()
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), agent, text)
    sent = await wait_status(hub, reply.id, "sent")
    texts = [r.body["message"]["text"] for r in graph.requests]
    assert texts == [first.strip(), second.strip()]
    assert all(r.body["messaging_type"] == "RESPONSE" for r in graph.requests)
    assert sent.external_id == "m_sent0001"


async def test_a_long_reply_whose_second_text_fails_once_sends_each_text_once(hub, graph):
    graph.answers_at[2] = (
        500,
        {"error": {"message": "An unexpected error has occurred.", "code": 2}},
    )
    first = "Dạ, shop gửi anh thông tin chi tiết. " * 50
    second = "Chính sách đổi trả trong 7 ngày. " * 40
    text = first.strip() + "\n\n" + second.strip()
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub), None, text)
    sent = await wait_status(hub, reply.id, "sent")
    # The retry starts at the text Meta refused: the customer gets each once, in order.
    texts = [r.body["message"]["text"] for r in graph.requests]
    assert texts == [first.strip(), second.strip(), second.strip()]
    assert sent.attempts == 2
    assert sent.sent_parts == ["m_sent0001", "m_sent0003"]
    assert sent.external_id == "m_sent0001"  # the message is known by its first part
    # A delivery receipt naming the second part finds the message too.
    assert (await deliver(hub, with_ids("messenger", "delivery.json", "m_sent0003"))).status == 200
    assert (await hub.runtime.store.get_message(reply.id)).status == "delivered"


async def test_a_reply_whose_text_fails_after_its_file_went_does_not_send_the_file_again(
    hub, graph
):
    graph.answers_at[2] = (
        400,
        graph_error(613, "(#613) Calls to this api have exceeded the rate limit."),
    )
    attachment = Attachment(
        name="bang-gia.pdf",
        content_type="application/pdf",
        url="https://files.shop.vn/bang-gia.pdf",
    )
    reply, _ = await hub.runtime.inbox.reply(
        await conversation_id(hub), None, "Bảng giá đây ạ", attachments=[attachment]
    )
    sent = await wait_status(hub, reply.id, "sent")
    file = {
        "attachment": {
            "type": "file",
            "payload": {"url": "https://files.shop.vn/bang-gia.pdf", "is_reusable": False},
        }
    }
    text = {"text": "Bảng giá đây ạ"}
    assert [r.body["message"] for r in graph.requests] == [file, text, text]
    assert sent.attempts == 2 and sent.sent_parts == ["m_sent0001", "m_sent0003"]


async def test_an_agent_reply_after_24_hours_goes_with_the_human_agent_tag(
    tagging_hub, graph, clock
):
    """A customer who wrote on Friday evening is answered on Monday morning."""
    hub = tagging_hub
    conversation = await conversation_id(hub)
    _, token = await add_agent(hub)
    clock.advance(timedelta(days=2, hours=14))
    response = await hub.api(
        "POST", f"/api/v1/conversations/{conversation}/messages", token, json={"text": "Dạ còn ạ"}
    )
    assert response.status in (200, 201, 202), await response.text()
    reply_id = (await response.json())["id"]
    sent = await wait_status(hub, reply_id, "sent")
    assert [(r.body["messaging_type"], r.body.get("tag")) for r in graph.requests] == [
        ("RESPONSE", None),  # refused by Meta: past the 24 hours
        ("MESSAGE_TAG", "HUMAN_AGENT"),
    ]
    assert sent.meta.get("tag") == "HUMAN_AGENT"


async def test_within_24_hours_an_agent_reply_carries_no_tag(tagging_hub, graph):
    agent, _ = await add_agent(tagging_hub)
    reply, _ = await tagging_hub.runtime.inbox.reply(
        await conversation_id(tagging_hub), agent, "Dạ còn ạ"
    )
    await wait_status(tagging_hub, reply.id, "sent")
    assert [(r.body["messaging_type"], r.body.get("tag")) for r in graph.requests] == [
        ("RESPONSE", None)
    ]


async def test_automated_messages_never_get_the_human_agent_window(tagging_hub, graph, clock):
    conversation = await conversation_id(tagging_hub)
    clock.advance(timedelta(hours=30))
    with pytest.raises(ReplyWindowClosed, match="24 hours"):
        await tagging_hub.runtime.inbox.reply(conversation, None, "Cảm ơn anh đã quan tâm")
    assert graph.requests == []


async def test_an_automated_message_meta_refuses_as_late_is_not_sent_tagged(
    tagging_hub, graph, clock
):
    conversation = await conversation_id(tagging_hub)
    # Meta counts from an earlier time than hub saw (hub accepts the reply; Meta does not).
    graph.customer_wrote[PSID] = CUSTOMER_WROTE - timedelta(days=1)
    reply, _ = await tagging_hub.runtime.inbox.reply(conversation, None, "Cảm ơn anh")
    failed = await wait_status(tagging_hub, reply.id, "failed")
    assert "outside Meta's 24-hour customer-service window" in failed.error
    assert [r.body.get("tag") for r in graph.requests] == [None]


async def test_an_agent_reply_after_7_days_is_refused_even_with_the_tag(tagging_hub, graph, clock):
    conversation = await conversation_id(tagging_hub)
    _, token = await add_agent(tagging_hub)
    clock.advance(timedelta(days=7, hours=1))
    response = await tagging_hub.api(
        "POST", f"/api/v1/conversations/{conversation}/messages", token, json={"text": "còn ạ"}
    )
    assert response.status == 409
    message = (await response.json())["error"]["message"]
    assert "an agent's replies are allowed only within 7 days" in message
    assert graph.requests == []


async def test_without_the_permission_the_tagged_retry_fails_clearly_and_once(
    tagging_hub, graph, clock
):
    graph.human_agent_permission = False
    agent, _ = await add_agent(tagging_hub)
    conversation = await conversation_id(tagging_hub)
    clock.advance(timedelta(days=2))
    reply, _ = await tagging_hub.runtime.inbox.reply(conversation, agent, "Dạ còn ạ")
    failed = await wait_status(tagging_hub, reply.id, "failed")
    assert "HUMAN_AGENT" in failed.error and "Human Agent permission" in failed.error
    assert failed.attempts == 1 and len(graph.requests) == 2


# -- the workspace ---------------------------------------------------------------


async def test_the_composer_says_when_the_window_closes_and_opens_again_when_the_customer_writes(
    hub, clock, chromium
):
    """An agent learns that Meta's 24-hour window is closing, or closed, before
    writing a reply that would be refused, and sees it open again, live, when
    the customer writes. The page measures on the hub's clock (frozen here, in
    January), not its own."""
    conversation = await conversation_id(hub)
    await add_person(hub, "lan@example.vn")
    clock.set(CUSTOMER_WROTE + timedelta(hours=21, minutes=30))
    page = await signed_in_page(chromium, hub, "lan@example.vn")
    await open_unassigned(page, conversation)
    note = page.locator("#window-note")
    await note.wait_for()
    assert await note.text_content() == "Khung trả lời đóng sau 2 giờ nữa."  # 2 h 30 min
    assert await note.get_attribute("class") == "window-note"
    assert "Messenger (Meta's 24-hour standard messaging window)" in await note.get_attribute(
        "title"
    )
    await page.click("input[name=mode][value=note]")  # a private note goes at any time
    await note.wait_for(state="hidden")
    await page.click("input[name=mode][value=reply]")

    clock.set(CUSTOMER_WROTE + timedelta(hours=30))
    await page.reload()
    await open_unassigned(page, conversation)
    await page.locator("#window-note.closed").wait_for()
    text = await note.text_content()
    assert text.startswith("Đã quá 24 giờ kể từ tin cuối của khách (hôm qua)"), text
    await shot(page, "reply-window-closed")

    event = json.loads(recorded("messenger", "text.json"))
    written = clock.now() - timedelta(minutes=1)
    event["entry"][0]["messaging"][0]["timestamp"] = int(written.timestamp() * 1000)
    event["entry"][0]["messaging"][0]["message"]["mid"] = "m_again"
    event["entry"][0]["messaging"][0]["message"]["text"] = "Shop ơi còn không ạ?"
    assert (await deliver(hub, json.dumps(event).encode())).status == 200
    await page.locator("#timeline", has_text="Shop ơi còn không ạ?").wait_for()
    await page.locator("#window-note:not(.closed)").wait_for()
    assert await note.text_content() == "Khung trả lời đóng sau 23 giờ nữa."  # 23 h 59 min
    await shot(page, "reply-window-open-again")
    assert page.errors == []
