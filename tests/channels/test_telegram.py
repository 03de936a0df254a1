"""Telegram: python-telegram-bot against a local Bot API (through `base_url`),
the webhook registered with a secret token at start-up and checked on every
update, every kind of message, replies with files, errors, and long polling."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram import error as tg_error

from hub.channels.telegram import normalise, parse_update, rejection
from hub.channels.text_parts import split_text, utf16_length
from hub.errors import InvalidRequest
from hub.inbox.model import Attachment, Identity
from tests.channels.messaging import (
    add_agent,
    only_conversation,
    recorded_json,
    stored_counts,
    wait_status,
)
from tests.conftest import eventually
from tests.peers.server import FileServer
from tests.peers.telegram import SECRET_HEADER, TelegramPeer

TOKEN = "7000000001:AAH-test-token-abcdefghijklmnopqrstuv"
SECRET = "webhook-secret-0123456789"
USER = 5012345678
CUSTOMER = Identity(channel="telegram", address=str(USER))
PATH = "/webhooks/telegram/bot"


@pytest.fixture
async def bot_api():
    peer = TelegramPeer(TOKEN)
    await peer.start()
    yield peer
    await peer.stop()


@pytest.fixture
async def files():
    server = FileServer()
    await server.start()
    yield server
    await server.stop()


def account(bot_api, **options):
    return {
        "id": "bot",
        "channel": "telegram",
        "token_env": "HUB_TEST_TG_TOKEN",
        "webhook_secret_env": "HUB_TEST_TG_SECRET",
        "base_url": bot_api.base_url,
        "base_file_url": bot_api.base_file_url,
        **options,
    }


@pytest.fixture
def tg_settings(make_settings, bot_api, monkeypatch):
    monkeypatch.setenv("HUB_TEST_TG_TOKEN", TOKEN)
    monkeypatch.setenv("HUB_TEST_TG_SECRET", SECRET)

    def build(**options):
        return make_settings(accounts=[account(bot_api, **options)])

    return build


@pytest.fixture
async def hub(start_hub, tg_settings, bot_api):
    hub = await start_hub(tg_settings(webhook_url="http://placeholder"))
    # setWebhook runs at start-up; point Telegram's side at the hub's real port.
    await eventually(lambda: _async(bot_api.webhook_url is not None))
    bot_api.webhook_url = str(hub.client.make_url(PATH))
    return hub


async def _async(value):
    return value


def update(name: str) -> dict:
    return recorded_json("telegram", name)


# -- pure parts ------------------------------------------------------------------


def one(name):
    [message] = normalise(
        parse_update(update(name)), account_id="bot", default_region="VN"
    ).messages
    return message


def test_text_photo_document_voice_and_location():
    text = one("text.json")
    assert text.sender.identities == [CUSTOMER] and text.sender.name == "Bình Nguyễn"
    assert text.external_id == f"{USER}:101" and text.meta == {"username": "binhnguyen"}
    photo = one("photo.json")
    assert photo.text == "Mẫu này còn không ạ?"
    assert photo.attachments == [  # the largest size only
        Attachment(
            name="photo.jpg",
            content_type="image/jpeg",
            size=78311,
            storage_key="telegram:AgACAgUAAxkBAAIBZ2abc-large",
        )
    ]
    document = one("document.json").attachments[0]
    assert (document.name, document.content_type, document.size) == (
        "hoa-don-1001.pdf",
        "application/pdf",
        48213,
    )
    voice = one("voice.json").attachments[0]
    assert (voice.name, voice.content_type) == ("voice note.ogg", "audio/ogg")
    assert "10.776889, 106.700897" in one("location.json").text


def test_own_shared_contact_links_the_phone_but_a_friends_card_does_not():
    own = one("contact.json")
    assert own.sender.identities == [CUSTOMER, Identity(channel="phone", address="+84901234567")]
    assert own.text == "Shared contact: Bình Nguyễn 84901234567"
    friend = one("contact_of_friend.json")
    assert friend.sender.identities == [CUSTOMER]
    assert "Lan +84912000111" in friend.text


def test_group_messages_and_edits_are_skipped():
    for name in ("group_message.json", "edited_message.json"):
        batch = normalise(parse_update(update(name)), account_id="bot", default_region="VN")
        assert batch.messages == [] and len(batch.skipped) == 1


def test_a_body_that_is_not_an_update_is_invalid():
    with pytest.raises(InvalidRequest):
        parse_update({"message": {}})
    with pytest.raises(InvalidRequest):
        parse_update([1, 2])


_user = st.fixed_dictionaries(
    {"id": st.integers(1, 2**40), "is_bot": st.booleans(), "first_name": st.text(max_size=10)}
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    user=_user,
    chat_type=st.sampled_from(["private", "group", "supergroup"]),
    message_id=st.integers(1, 2**31),
    text=st.one_of(st.none(), st.text(max_size=40)),
    phone=st.one_of(
        st.none(), st.text(max_size=16), st.from_regex(r"\+?84[0-9]{9}", fullmatch=True)
    ),
    own_card=st.booleans(),
    location=st.one_of(st.none(), st.tuples(st.floats(-90, 90), st.floats(-180, 180))),
)
def test_normalise_never_fails_on_a_valid_update(
    user, chat_type, message_id, text, phone, own_card, location
):
    message = {
        "message_id": message_id,
        "date": 1767225600,
        "from": user,
        "chat": {"id": user["id"], "type": chat_type},
    }
    if text is not None:
        message["text"] = text
    if phone is not None:
        message["contact"] = {
            "phone_number": phone,
            "first_name": "X",
            "user_id": user["id"] if own_card else 1,
        }
    if location is not None:
        message["location"] = {"latitude": location[0], "longitude": location[1]}
    batch = normalise(
        parse_update({"update_id": 1, "message": message}), account_id="bot", default_region="VN"
    )
    for inbound in batch.messages:
        assert inbound.external_id == f"{user['id']}:{message_id}"
        assert inbound.sender.identities[0] == Identity(channel="telegram", address=str(user["id"]))
        assert inbound.text or inbound.attachments
    assert len(batch.messages) == (0 if user["is_bot"] or chat_type != "private" else 1)


# -- the webhook -------------------------------------------------------------------


async def test_webhook_is_set_at_start_up_with_the_secret_token(hub, bot_api):
    [call] = bot_api.calls_to("setWebhook")
    assert call.fields["url"] == "http://placeholder"
    assert call.fields["secret_token"] == SECRET
    assert json.loads(call.fields["allowed_updates"]) == ["message"]


async def test_default_webhook_url_is_the_hubs_public_url(
    start_hub, tg_settings, bot_api, make_settings
):
    settings_ = tg_settings()
    settings_.server.public_url = "https://hub.shop.vn"
    await start_hub(settings_)
    await eventually(lambda: _async(bot_api.webhook_url is not None))
    assert bot_api.webhook_url == "https://hub.shop.vn/webhooks/telegram/bot"


async def test_update_with_the_secret_lands_in_the_customers_conversation(hub, bot_api):
    assert await bot_api.deliver(update("text.json")) == 200
    conversation = await only_conversation(hub)
    assert conversation.channel == "telegram" and conversation.contact_address == str(USER)
    [message] = await hub.runtime.store.list_messages(conversation.id)
    assert message.text == "Xin chào, shop còn áo size M không?"
    contact = await hub.runtime.store.get_contact(conversation.contact_id)
    assert contact.identities == [CUSTOMER] and contact.name == "Bình Nguyễn"


async def test_shared_contact_links_the_phone_to_the_same_contact(hub, bot_api):
    await bot_api.deliver(update("text.json"))
    await bot_api.deliver(update("contact.json"))
    conversation = await only_conversation(hub)
    contact = await hub.runtime.store.get_contact(conversation.contact_id)
    assert contact.identities == [CUSTOMER, Identity(channel="phone", address="+84901234567")]
    assert await stored_counts(hub) == (1, 2, 1)


async def test_wrong_or_missing_secret_token_is_refused_and_nothing_stored(hub, bot_api):
    assert await bot_api.deliver(update("text.json"), secret="not-the-secret-0000") == 403
    response = await hub.client.post(PATH, json=update("text.json"))
    assert response.status == 403
    assert f"missing {SECRET_HEADER}" in (await response.json())["error"]["message"]
    assert await stored_counts(hub) == (0, 0, 0)


async def test_the_same_update_delivered_twice_is_stored_once(hub, bot_api):
    assert [await bot_api.deliver(update("photo.json")) for _ in range(2)] == [200, 200]
    assert await stored_counts(hub) == (1, 1, 1)


async def test_updates_hub_ignores_are_acknowledged_and_store_nothing(hub, bot_api):
    assert await bot_api.deliver(update("group_message.json")) == 200
    assert await bot_api.deliver(update("edited_message.json")) == 200
    assert await stored_counts(hub) == (0, 0, 0)


async def test_a_body_that_is_not_an_update_is_422(hub):
    response = await hub.client.post(PATH, data=b"{oops", headers={SECRET_HEADER: SECRET})
    assert response.status == 422
    assert await stored_counts(hub) == (0, 0, 0)


# -- replies -------------------------------------------------------------------------


async def conversation_id(hub, bot_api) -> str:
    await bot_api.deliver(update("text.json"))
    return (await only_conversation(hub)).id


async def test_agent_reply_goes_back_through_the_bot(hub, bot_api):
    agent, _ = await add_agent(hub)
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub, bot_api), agent, "Dạ còn ạ")
    sent = await wait_status(hub, reply.id, "sent")
    [call] = bot_api.calls_to("sendMessage")
    assert call.fields == {"chat_id": str(USER), "text": "Dạ còn ạ"}
    assert sent.external_id == f"{USER}:9001"


async def test_reply_with_a_photo_and_a_document_uploads_the_files(hub, bot_api, files):
    photo = Attachment(
        name="ao.jpg",
        content_type="image/jpeg",
        url=files.add("ao.jpg", b"\xff\xd8JPEG", "image/jpeg"),
    )
    pdf = Attachment(
        name="bang-gia.pdf",
        content_type="application/pdf",
        url=files.add("bg.pdf", b"%PDF-1.4", "application/pdf"),
    )
    reply, _ = await hub.runtime.inbox.reply(
        await conversation_id(hub, bot_api), None, "Mẫu và bảng giá ạ", attachments=[photo, pdf]
    )
    await wait_status(hub, reply.id, "sent")
    [sent_photo] = bot_api.calls_to("sendPhoto")
    assert sent_photo.fields["chat_id"] == str(USER)
    assert sent_photo.fields["caption"] == "Mẫu và bảng giá ạ"
    assert sent_photo.files["photo"] == ("ao.jpg", b"\xff\xd8JPEG")
    [sent_document] = bot_api.calls_to("sendDocument")
    assert sent_document.files["document"] == ("bang-gia.pdf", b"%PDF-1.4")
    assert "caption" not in sent_document.fields
    assert bot_api.calls_to("sendMessage") == []  # the text rode as the caption


async def test_provider_refusal_fails_the_reply_with_its_reason(hub, bot_api):
    bot_api.fail("sendMessage", 403, "Forbidden: bot was blocked by the user")
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub, bot_api), None, "hello")
    failed = await wait_status(hub, reply.id, "failed")
    assert failed.error == "Telegram refused the message: Forbidden: bot was blocked by the user"
    assert failed.attempts == 1


async def test_rate_limits_and_server_errors_are_retried(hub, bot_api):
    bot_api.fail("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    bot_api.fail("sendMessage", 502, "Bad Gateway")
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub, bot_api), None, "hello")
    assert (await wait_status(hub, reply.id, "sent")).attempts == 3
    assert len(bot_api.calls_to("sendMessage")) == 3


async def test_a_reply_over_4096_characters_goes_as_several_messages_in_order(hub, bot_api):
    agent, _ = await add_agent(hub)
    # Emoji count 2 toward Telegram's limit: 2100 of them are 4200 units.
    first = "Dạ 😀 " * 700
    second = "Chính sách đổi trả. " * 100
    text = first.strip() + "\n" + second.strip()
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub, bot_api), agent, text)
    sent = await wait_status(hub, reply.id, "sent")
    parts = [c.fields["text"] for c in bot_api.calls_to("sendMessage")]
    assert len(parts) == 2 and all("parse_mode" not in c.fields for c in bot_api.calls)
    assert all(len(p.encode("utf-16-le")) // 2 <= 4096 for p in parts)
    assert " ".join(parts).split() == text.split()  # every word, in order
    assert sent.external_id == f"{USER}:9001"


async def test_a_long_reply_whose_second_message_fails_once_sends_each_once(hub, bot_api):
    bot_api.fail_call("sendMessage", 2, 502, "Bad Gateway")
    text = ("Dạ 😀 " * 700).strip() + "\n" + ("Chính sách đổi trả. " * 100).strip()
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub, bot_api), None, text)
    sent = await wait_status(hub, reply.id, "sent")
    one, two = split_text(text, 4096, length=utf16_length)
    texts = [c.fields["text"] for c in bot_api.calls_to("sendMessage")]
    assert texts == [one, two, two]  # the 2nd refused once
    assert sent.attempts == 2
    assert sent.sent_parts == [f"{USER}:9001", f"{USER}:9002"]
    assert sent.external_id == f"{USER}:9001"


async def test_a_reply_whose_file_fails_after_the_photo_went_sends_the_photo_once(
    hub, bot_api, files
):
    bot_api.fail_call("sendDocument", 1, 429, "Too Many Requests: retry after 0", retry_after=0)
    photo = Attachment(
        name="ao.jpg", content_type="image/jpeg", url=files.add("ao.jpg", b"JPEG", "image/jpeg")
    )
    pdf = Attachment(
        name="bang-gia.pdf",
        content_type="application/pdf",
        url=files.add("bg.pdf", b"%PDF-1.4", "application/pdf"),
    )
    reply, _ = await hub.runtime.inbox.reply(
        await conversation_id(hub, bot_api), None, "Mẫu và bảng giá ạ", attachments=[photo, pdf]
    )
    sent = await wait_status(hub, reply.id, "sent")
    assert [c.method for c in bot_api.calls if c.method.startswith("send")] == [
        "sendPhoto",
        "sendDocument",
        "sendDocument",
    ]
    assert sent.attempts == 2 and sent.sent_parts == [f"{USER}:9001", f"{USER}:9002"]


async def test_markup_characters_go_as_plain_text(hub, bot_api):
    agent, _ = await add_agent(hub)
    text = "Mã giảm giá: SALE_50 <b>hôm nay</b> *chỉ* [1 ngày]"
    reply, _ = await hub.runtime.inbox.reply(await conversation_id(hub, bot_api), agent, text)
    await wait_status(hub, reply.id, "sent")
    [call] = bot_api.calls_to("sendMessage")
    assert call.fields == {"chat_id": str(USER), "text": text}


def test_a_rate_limit_says_when_to_try_again():
    refused = rejection(tg_error.RetryAfter(17))
    assert refused.retryable and refused.retry_after == 17


async def test_telegram_has_no_reply_window(hub, bot_api):
    assert hub.runtime.channels["bot"].reply_window is None


# -- long polling (development) --------------------------------------------------------


async def test_long_polling_stores_updates_and_moves_the_offset_after_storing(
    start_hub, tg_settings, bot_api
):
    hub = await start_hub(tg_settings(mode="polling", poll_timeout_seconds=1))
    bot_api.queue_update(update("text.json"))
    bot_api.queue_update(update("photo.json"))

    async def stored() -> bool:
        return (await stored_counts(hub))[1] == 2

    await eventually(stored)

    async def confirmed() -> bool:
        state = await hub.runtime.store.channel_state("bot", "telegram_offset")
        return state == {"offset": 873540003}

    await eventually(confirmed)
    assert bot_api.calls_to("deleteWebhook") and not bot_api.calls_to("setWebhook")
    assert hub.runtime.channels["bot"].routes() == []  # no webhook route in polling mode
    # The same update again (Telegram resends what was not confirmed): stored once.
    bot_api.queue_update(copy.deepcopy(update("text.json")) | {"update_id": 873540010})

    async def confirmed_again() -> bool:
        state = await hub.runtime.store.channel_state("bot", "telegram_offset")
        return state == {"offset": 873540011}

    await eventually(confirmed_again)
    assert await stored_counts(hub) == (1, 2, 1)


# -- files customers sent, for agents ------------------------------------------------


async def test_agent_downloads_a_photo_the_customer_sent_through_the_bot(hub, bot_api):
    bot_api.stored_files["AgACAgUAAxkBAAIBZ2abc-large"] = ("photos/file_7.jpg", b"\xff\xd8photo")
    await bot_api.deliver(update("photo.json"))
    [message] = await hub.runtime.store.list_messages((await only_conversation(hub)).id)
    _, token = await add_agent(hub)
    response = await hub.api("GET", f"/api/v1/messages/{message.id}/attachments/0", token)
    assert response.status == 200
    assert await response.read() == b"\xff\xd8photo"
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Content-Disposition"] == 'attachment; filename="photo.jpg"'
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert TOKEN not in str(message.model_dump())  # the bot token never reaches the store
    missing = await hub.api("GET", f"/api/v1/messages/{message.id}/attachments/1", token)
    assert missing.status == 404
    anonymous = await hub.client.get(f"/api/v1/messages/{message.id}/attachments/0")
    assert anonymous.status == 401
