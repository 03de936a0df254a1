"""A web chat that continues by e-mail, through a real e-mail account: the
visitor leaves an address and goes, the agent's answer goes out over SMTP
(to a real aiosmtpd server), the customer's mail client answers it into the
hub's own SMTP listener, and the answer joins the same web-chat conversation,
where the visitor sees it when they come back to the widget."""

from __future__ import annotations

import asyncio
import email
from email.message import EmailMessage
from email.policy import SMTP, default

import pytest

from hub.channels.email.compose import first_words, reply_subject
from hub.inbox.bounces import is_bouncing
from hub.inbox.store import ConversationFilter
from tests.channels.email.test_bounces import bounce_of
from tests.channels.email.test_smtp_in import submit
from tests.channels.test_webchat import (
    conversation_of,
    hub_lets_go,
    reply,
    status_becomes,
    visitor,
    webchat_account,
)
from tests.conftest import eventually
from tests.web.test_api import add_agent


def answer_from_mai(
    received: bytes, text: str, message_id: str = "<mai-answer-1@example.vn>"
) -> bytes:
    """What Mai's mail client sends when she answers the hub's mail."""
    original = email.message_from_bytes(received, policy=default)
    answer = EmailMessage(policy=SMTP)
    answer["From"] = "Mai <mai@example.vn>"
    answer["To"] = str(original["From"])
    answer["Subject"] = f"Re: {original['Subject']}"
    answer["Message-ID"] = message_id
    answer["In-Reply-To"] = original["Message-ID"]
    answer["References"] = original["Message-ID"]
    quoted = "\n".join(
        f"> {line}" for line in original.get_body(("plain",)).get_content().splitlines()
    )
    answer.set_content(f"{text}\n\nOn Sunday, Shop chat wrote:\n{quoted}\n")
    return answer.as_bytes()


@pytest.fixture
async def chat_by_mail(make_settings, start_hub, smtp_peer, email_account):
    """A hub whose web chat continues by e-mail through the real account
    "support" (SMTP out to `smtp_peer`, the hub's SMTP listener in), and a
    visitor who gave her address and left: returns (hub, visitor, conversation)."""
    settings = make_settings(
        accounts=[
            webchat_account(offline_email_account="support", offline_email_after_seconds=0),
            email_account(smtp=smtp_peer),
        ],
        smtp_listener={"enabled": True, "port": 0},
    )
    hub = await start_hub(settings)
    hub.agent, hub.token = await add_agent(hub, "lan@shop.vn")
    client = visitor(hub)
    await client.connect()
    await client.send({"type": "identify", "client_id": "f1", "email": "Mai@Example.VN"})
    await client.next("identified")
    await client.say("Nobody is here, please email me about order 1042")
    conversation_id = await conversation_of(hub, client)
    await hub_lets_go(hub, client)
    return hub, client, conversation_id


async def test_a_visitor_who_left_an_email_gets_a_real_email_and_the_answer_joins_the_chat(
    chat_by_mail, smtp_peer
):
    hub, client, conversation_id = chat_by_mail
    sent = await reply(hub, conversation_id, "Dạ chị Mai, đơn 1042 đang được giao ạ.")
    await status_becomes(hub, sent["id"], "sent")
    [received] = smtp_peer.received
    assert received.mail_from == "support@shop.vn"
    assert received.rcpt_tos == ["mai@example.vn"]
    mail = email.message_from_bytes(received.data, policy=default)
    assert mail["To"].addresses[0].addr_spec == "mai@example.vn"
    assert mail["From"].addresses[0].addr_spec == "support@shop.vn"
    assert str(mail["Subject"]) == "Shop chat"  # the chat's title: a chat has no subject
    assert mail.get_body(("plain",)).get_content().strip() == sent["text"]
    stored = await hub.runtime.store.get_message(sent["id"])
    assert stored.thread.message_id == mail["Message-ID"]
    assert stored.meta["route"]["account_id"] == "support"
    assert stored.conversation_id == conversation_id

    # The customer's mail client answers it, into the hub's SMTP listener.
    answer = answer_from_mai(received.data, "Cảm ơn shop, tôi đợi nhé!")
    port = hub.runtime.smtp_listener.port
    await asyncio.to_thread(submit, port, "mai@example.vn", ["support@shop.vn"], answer)

    async def answered() -> bool:
        timeline = await hub.runtime.store.list_messages(conversation_id)
        return timeline[-1].direction == "inbound" and timeline[-1].channel == "email"

    await eventually(answered, timeout=15)
    conversation = await hub.runtime.store.get_conversation(conversation_id)
    page = await hub.runtime.store.list_conversations(
        ConversationFilter(contact_id=conversation.contact_id), limit=10
    )
    assert [c.id for c in page.items] == [conversation_id]  # no new e-mail conversation

    # The visitor who comes back to the widget sees the answer (without the quote).
    back = visitor(hub, token=client.token)
    welcome = await back.connect()
    assert [m["from"] for m in welcome["messages"]] == ["visitor", "agent", "visitor"]
    assert welcome["messages"][-1]["text"] == "Cảm ơn shop, tôi đợi nhé!"
    # While her chat is open, another mail of hers shows in it at once.
    more = answer_from_mai(received.data, "À, giao buổi chiều giúp mình nhé.", "<mai-2@example.vn>")
    await asyncio.to_thread(submit, port, "mai@example.vn", ["support@shop.vn"], more)
    pushed = await back.next("message", lambda f: f["message"]["from"] == "visitor")
    assert (pushed["message"]["from"], pushed["message"]["text"]) == (
        "visitor",
        "À, giao buổi chiều giúp mình nhé.",
    )
    await hub_lets_go(hub, back)

    # The next answer goes to the same mail thread: same subject, answering hers.
    again = await reply(hub, conversation_id, "Dạ, shop báo chị khi giao xong ạ.")
    await status_becomes(hub, again["id"], "sent")
    second = email.message_from_bytes(smtp_peer.received[1].data, policy=default)
    assert str(second["Subject"]) == "Re: Shop chat"
    assert second["In-Reply-To"] == "<mai-2@example.vn>"
    assert mail["Message-ID"] in second["References"]


async def test_a_bounce_of_the_mail_fails_the_chat_reply_and_flags_the_address(
    chat_by_mail, smtp_peer
):
    hub, _, conversation_id = chat_by_mail
    sent = await reply(hub, conversation_id, "Dạ chị Mai, đơn 1042 đang được giao ạ.")
    await status_becomes(hub, sent["id"], "sent")
    message_id = (await hub.runtime.store.get_message(sent["id"])).thread.message_id
    bounce = bounce_of(message_id).replace(b"khong-ton-tai@gmail.com", b"mai@example.vn")
    port = hub.runtime.smtp_listener.port
    await asyncio.to_thread(submit, port, "", ["support@shop.vn"], bounce)
    await status_becomes(hub, sent["id"], "failed")
    conversation = await hub.runtime.store.get_conversation(conversation_id)

    async def flagged() -> bool:
        contact = await hub.runtime.store.get_contact(conversation.contact_id)
        return is_bouncing(contact, "mai@example.vn")

    await eventually(flagged)


def test_a_mail_without_a_subject_is_titled_by_its_first_words():
    assert reply_subject("", False, "\n  Dạ chị Mai,   đơn đã giao ạ.\nCảm ơn chị") == (
        "Dạ chị Mai, đơn đã giao ạ."
    )
    long = "Chào chị, đơn hàng 1042 của chị đã được giao cho đơn vị vận chuyển sáng nay ạ"
    assert first_words(long) == "Chào chị, đơn hàng 1042 của chị đã được giao cho đơn vị vận…"
    assert reply_subject("", True, "") == "(no subject)"
    assert reply_subject("Shop chat", True, "x") == "Re: Shop chat"
    assert reply_subject("Re: Shop chat", True, "x") == "Re: Shop chat"
