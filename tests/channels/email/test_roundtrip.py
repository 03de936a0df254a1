"""The whole trip through real servers: a customer writes (Dovecot), an agent
answers (SMTP), the answer lands in the customer's mailbox (Dovecot), the
customer's mail client answers it, and that answer joins the conversation."""

from __future__ import annotations

import asyncio
import email
from email.message import EmailMessage
from email.policy import SMTP, default

from tests.channels.email.mails import mail
from tests.channels.email.test_imap import count_is, inbound, started
from tests.channels.email.test_send import reply, status_of
from tests.peers.dovecot import Mailbox
from tests.web.test_api import add_agent


def fetch_latest(mailbox: Mailbox) -> bytes:
    imap = mailbox.client()
    try:
        imap.select("INBOX")
        _, ids = imap.search(None, "ALL")
        _, data = imap.fetch(ids[0].split()[-1], "(RFC822)")
        return bytes(data[0][1])
    finally:
        imap.logout()


def answer_as_gmail_would(received: bytes, text: str) -> bytes:
    original = email.message_from_bytes(received, policy=default)
    answer = EmailMessage(policy=SMTP)
    answer["From"] = "Nguyễn Thị Bình <binh.nguyen@gmail.com>"
    answer["To"] = str(original["From"])
    answer["Subject"] = f"Re: {original['Subject']}"
    answer["Date"] = "Mon, 5 Jan 2026 15:40:02 +0700"
    answer["Message-ID"] = "<CAF7e1Q3vR+answer@mail.gmail.com>"
    answer["In-Reply-To"] = original["Message-ID"]
    answer["References"] = f"{original['References'] or ''} {original['Message-ID']}".strip()
    quoted = "\n".join(
        f"> {line}" for line in original.get_body(("plain",)).get_content().splitlines()
    )
    answer.set_content(
        f"{text}\n\nVào Th 2, 5 thg 1, 2026 vào lúc 15:00 Cửa hàng Bình An <\n"
        f"support@shop.vn> đã viết:\n\n{quoted}\n"
    )
    return answer.as_bytes()


def answer_as_outlook_without_references(received: bytes, text: str) -> bytes:
    original = email.message_from_bytes(received, policy=default)
    answer = EmailMessage(policy=SMTP)
    answer["From"] = "Binh Nguyen <Binh.Nguyen@gmail.com>"
    answer["To"] = "support@shop.vn"
    answer["Subject"] = f"TL: {original['Subject']}"
    answer["Message-ID"] = "<outlook-answer@gmail.com>"
    answer.set_content(
        f"{text}\n\n________________________________\nTừ: Cửa hàng\nĐã gửi: hôm qua\n"
    )
    return answer.as_bytes()


async def test_the_customers_answer_to_a_hub_reply_lands_in_the_same_conversation(
    make_settings, start_hub, dovecot, smtp_peer, email_account
):
    support, customer = dovecot.new_user("support"), dovecot.new_user("binh")
    hub = await start_hub(make_settings(accounts=[email_account(mailbox=support, smtp=smtp_peer)]))
    hub.agent, hub.token = await add_agent(hub, "lan@shop.vn")
    await started(hub)

    first = mail(
        1,
        sender="binh.nguyen@gmail.com",
        name="Nguyễn Thị Bình",
        subject="Đơn hàng #1042 chưa giao",
        body="Chào shop, đơn hàng #1042 của tôi chưa được giao.",
    )
    await asyncio.to_thread(support.append, first)
    await count_is(hub, 1)
    conversation = (await inbound(hub))[0].conversation_id

    sent = await reply(hub, conversation, "Dạ chị Bình, đơn đang được giao ạ.", "r1")
    await status_of(hub, sent["id"], "sent")
    # The customer's mail server puts the reply in her mailbox...
    await asyncio.to_thread(customer.append, smtp_peer.received[0].data)
    delivered = await asyncio.to_thread(fetch_latest, customer)
    # ...and her mail client answers it.
    answer = answer_as_gmail_would(delivered, "Tôi nhận được rồi, cảm ơn shop!")
    await asyncio.to_thread(support.append, answer)
    await count_is(hub, 2)

    timeline = await hub.runtime.store.list_messages(conversation)
    assert [m.direction for m in timeline] == ["inbound", "outbound", "inbound"]
    last = timeline[-1]
    assert last.thread.in_reply_to == (await hub.runtime.store.get_message(sent["id"])).external_id
    assert last.text[: last.meta["quoted_at"]].strip() == "Tôi nhận được rồi, cảm ơn shop!"
    assert "> Dạ chị Bình, đơn đang được giao ạ." in last.text  # folded, not deleted

    # An Outlook user answering the same reply without References: the subject does it.
    outlook = answer_as_outlook_without_references(delivered, "Cho tôi hỏi thêm.")
    await asyncio.to_thread(support.append, outlook)
    await count_is(hub, 3)
    assert len(await hub.runtime.store.list_messages(conversation)) == 4
