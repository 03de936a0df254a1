"""Delivery status notifications: a bounce of a reply the hub sent marks that
reply failed with the diagnostic and flags the address on the contact."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hub.inbox.bounces import is_bouncing
from tests.channels.email.mails import mail
from tests.channels.email.test_imap import count_is, inbound, started
from tests.channels.email.test_send import customer_writes, reply, status_of
from tests.conftest import eventually
from tests.web.test_api import add_agent

POSTFIX_DSN = (
    Path(__file__).parents[2] / "data" / "email" / "08-dsn-postfix-bounce.eml"
).read_bytes()
CORPUS_ID = b"<0123456789abcdef01234567.hub@shop.vn>"


def bounce_of(message_id: str, *, delayed: bool = False) -> bytes:
    raw = POSTFIX_DSN.replace(CORPUS_ID, message_id.encode())
    if delayed:
        raw = raw.replace(b"Action: failed", b"Action: delayed").replace(
            b"Status: 5.1.1", b"Status: 4.4.7"
        )
    return raw


@pytest.fixture
async def email_hub_with_reply(make_settings, start_hub, smtp_peer, email_account):
    hub = await start_hub(make_settings(accounts=[email_account(smtp=smtp_peer)]))
    hub.agent, hub.token = await add_agent(hub, "lan@shop.vn")
    conversation = await customer_writes(hub, mail(1, sender="khong-ton-tai@gmail.com"))
    sent = await reply(hub, conversation, "Dạ shop còn hàng ạ.", "r1")
    await status_of(hub, sent["id"], "sent")
    return hub, sent


async def test_a_bounce_arriving_over_imap_fails_the_reply_and_flags_the_address(
    make_settings, start_hub, mailbox, smtp_peer, email_account
):
    hub = await start_hub(make_settings(accounts=[email_account(mailbox=mailbox, smtp=smtp_peer)]))
    hub.agent, hub.token = await add_agent(hub, "lan@shop.vn")
    await started(hub)
    await asyncio.to_thread(
        mailbox.append, mail(1, sender="khong-ton-tai@gmail.com", subject="Hỏi hàng")
    )
    await count_is(hub, 1)
    conversation = (await inbound(hub))[0].conversation_id
    sent = await reply(hub, conversation, "Dạ shop còn hàng ạ.", "r1")
    await status_of(hub, sent["id"], "sent")
    message_id = (await hub.runtime.store.get_message(sent["id"])).thread.message_id

    await asyncio.to_thread(mailbox.append, bounce_of(message_id))

    failed = await status_of(hub, sent["id"], "failed")

    async def bounce_noted():
        return "bounce" in (await hub.runtime.store.get_message(sent["id"])).meta

    await eventually(bounce_noted)
    failed = (await hub.runtime.store.get_message(sent["id"])).model_dump(mode="json")
    assert failed["error"].startswith(
        "bounced: 550-5.1.1 The email account that you tried to reach does not exist."
    )
    assert failed["meta"]["bounce"]["status"] == "5.1.1"
    report = await hub.runtime.attachments.read(failed["meta"]["bounce"]["report_key"])
    assert b"multipart/report" in report  # the report itself is kept
    contact_id = (await hub.runtime.store.get_conversation(conversation)).contact_id

    async def flagged():  # the reply fails first, then the contact is flagged
        contact = await hub.runtime.store.get_contact(contact_id)
        return is_bouncing(contact, "Khong-Ton-Tai@gmail.com")

    await eventually(flagged)
    contact = await hub.runtime.store.get_contact(contact_id)
    assert contact.attributes["bouncing"]["khong-ton-tai@gmail.com"]["status"] == "5.1.1"
    # The report became no conversation of its own (no "MAILER-DAEMON" customer).
    assert len(await inbound(hub)) == 1

    async def cursor_moved_past_the_report():
        state = await hub.runtime.store.channel_state("support", "imap:INBOX")
        return state["last_uid"] == 2

    await eventually(cursor_moved_past_the_report)


async def test_a_delayed_notice_is_noted_but_fails_nothing(email_hub_with_reply):
    hub, sent = email_hub_with_reply
    message_id = (await hub.runtime.store.get_message(sent["id"])).thread.message_id
    channel = hub.runtime.channels["support"]
    assert await channel.receive(bounce_of(message_id, delayed=True), source={}) is None
    message = await hub.runtime.store.get_message(sent["id"])
    assert message.status == "sent"
    assert message.meta["bounce"]["permanent"] is False
    conversation = await hub.runtime.store.get_conversation(message.conversation_id)
    contact = await hub.runtime.store.get_contact(conversation.contact_id)
    assert not is_bouncing(contact, "khong-ton-tai@gmail.com")


async def test_the_same_bounce_twice_changes_nothing_more(email_hub_with_reply):
    hub, sent = email_hub_with_reply
    message_id = (await hub.runtime.store.get_message(sent["id"])).thread.message_id
    channel = hub.runtime.channels["support"]
    await channel.receive(bounce_of(message_id), source={})
    first = await hub.runtime.store.get_message(sent["id"])
    await channel.receive(bounce_of(message_id), source={})
    again = await hub.runtime.store.get_message(sent["id"])
    assert (again.status, again.error) == (first.status, first.error) == ("failed", first.error)


async def test_a_bounce_of_mail_the_hub_never_sent_is_kept_as_an_automated_message(
    email_hub_with_reply,
):
    hub, _ = email_hub_with_reply
    channel = hub.runtime.channels["support"]
    outcome = await channel.receive(bounce_of("<sent-by-a-person@shop.vn>"), source={})
    assert outcome is not None
    stored = await hub.runtime.store.get_message(outcome.message_id)
    assert stored.meta["automated"] is True
    assert stored.sender.name == "" and "could not" in stored.text


IDN = "khach@bưuđiện.vn"
IDN_ASCII = "khach@xn--buin-1ua66gr30m.vn"


async def test_a_vietnamese_domain_is_one_customer_in_either_form_and_its_bounce_counts(
    make_settings, start_hub, smtp_peer, email_account
):
    """Mail servers and bounce reports write an internationalised domain in its
    ASCII form, people type it in Vietnamese: one contact, and a bounce naming
    the ASCII form flags the address the contact holds."""
    hub = await start_hub(make_settings(accounts=[email_account(smtp=smtp_peer)]))
    hub.agent, hub.token = await add_agent(hub, "lan@shop.vn")
    first = await customer_writes(hub, mail(1, sender=IDN_ASCII))
    again = await customer_writes(hub, mail(2, sender=IDN.upper().replace("Ư", "ư")))
    store = hub.runtime.store
    contact_id = (await store.get_conversation(first)).contact_id
    assert (await store.get_conversation(again)).contact_id == contact_id
    assert [i.address for i in (await store.get_contact(contact_id)).identities] == [IDN]

    sent = await reply(hub, first, "Dạ shop còn hàng ạ.", "r-idn")
    await status_of(hub, sent["id"], "sent")
    assert smtp_peer.received[-1].rcpt_tos == [IDN_ASCII]
    message_id = (await store.get_message(sent["id"])).thread.message_id
    report = bounce_of(message_id).replace(b"khong-ton-tai@gmail.com", IDN_ASCII.encode())
    await hub.runtime.channels["support"].receive(report, source={"test": True})
    await status_of(hub, sent["id"], "failed")

    async def flagged():
        return is_bouncing(await store.get_contact(contact_id), IDN)

    await eventually(flagged)
    assert is_bouncing(await store.get_contact(contact_id), IDN_ASCII)
