"""An auto-reply storm cannot start: two hubs that each answer mail automatically
(through `may_auto_reply`, as care rules must) exchange one automatic answer
and stop, because what a hub sends by itself says so (Auto-Submitted) and the
other hub never answers such mail."""

from __future__ import annotations

import asyncio
import smtplib

from hub.events import Event
from hub.inbox.loops import may_auto_reply
from hub.inbox.model import Message
from tests.channels.email.mails import mail
from tests.channels.email.test_imap import inbound
from tests.conftest import eventually, free_port


def auto_responder(hub, answered: list[str]) -> None:
    """A stand-in for a care rule: answers every message it may answer."""

    async def on_message(event: Event) -> None:
        message = Message.model_validate(event.data["message"])
        if may_auto_reply(message):
            answered.append(message.id)
            await hub.runtime.inbox.reply(
                message.conversation_id, None, "Cảm ơn, chúng tôi đã nhận được thư."
            )

    hub.runtime.bus.subscribe("message.created", on_message)


async def outbound(hub, account: str) -> list[Message]:
    store = hub.runtime.store
    found = []
    for message in await inbound(hub, account):
        found.extend(
            m
            for m in await store.list_messages(message.conversation_id)
            if m.direction == "outbound"
        )
    return list({m.id: m for m in found}.values())


async def test_two_hubs_answering_automatically_exchange_one_answer_and_stop(
    make_settings, start_hub, email_account, tmp_path
):
    port_a, port_b = free_port(), free_port()

    def hub_settings(account_id, address, own_port, other_port):
        account = email_account(
            account_id,
            address,
            smtp_host="127.0.0.1",
            smtp_port=other_port,
            smtp_security="none",
        )
        return make_settings(
            data_dir=tmp_path / account_id,  # two hubs, two stores
            accounts=[account],
            smtp_listener={"enabled": True, "port": own_port},
            redis={"prefix": f"loop-{account_id}-{own_port}"},
        )

    hub_a = await start_hub(hub_settings("a", "support@shop-a.vn", port_a, port_b))
    hub_b = await start_hub(hub_settings("b", "support@shop-b.vn", port_b, port_a))
    answered_a: list[str] = []
    answered_b: list[str] = []
    auto_responder(hub_a, answered_a)
    auto_responder(hub_b, answered_b)

    # A person at shop B writes to shop A from B's support address.
    def person_writes():
        with smtplib.SMTP("127.0.0.1", port_a, timeout=30) as client:
            client.sendmail(
                "support@shop-b.vn",
                ["support@shop-a.vn"],
                mail(1, sender="support@shop-b.vn", name="Shop B", to="support@shop-a.vn"),
            )

    await asyncio.to_thread(person_writes)

    # A answers automatically (a person wrote); B receives that answer...
    async def b_received():
        return len(await inbound(hub_b, "b")) == 1

    await eventually(b_received)
    [at_b] = await inbound(hub_b, "b")
    assert at_b.meta["automated"] is True
    assert at_b.meta["automated_reason"] == "Auto-Submitted: auto-replied"
    assert not may_auto_reply(at_b)
    raw = await hub_b.runtime.attachments.read(at_b.meta["raw_key"])
    assert b"\r\nAuto-Submitted: auto-replied\r\n" in raw

    # ...and does not answer it. Give a storm every chance to start.
    await asyncio.sleep(1.5)
    assert len(answered_a) == 1 and answered_b == []
    assert len(await outbound(hub_a, "a")) == 1
    assert await outbound(hub_b, "b") == []
    assert len(await inbound(hub_a, "a")) == 1
    [at_a] = await inbound(hub_a, "a")
    assert may_auto_reply(at_a)  # the person's mail was answerable


def test_only_a_persons_inbound_message_may_be_answered_automatically():
    from datetime import UTC, datetime

    from hub.inbox.model import Sender

    now = datetime(2026, 1, 5, tzinfo=UTC)

    def message(**fields):
        base = {
            "conversation_id": "c",
            "account_id": "a",
            "channel": "email",
            "direction": "inbound",
            "sender": Sender(kind="contact", id="k"),
            "created_at": now,
            "updated_at": now,
        }
        return Message(**{**base, **fields})

    assert may_auto_reply(message())
    assert not may_auto_reply(message(meta={"automated": True}))
    assert not may_auto_reply(message(direction="outbound", sender=Sender(kind="system")))
    assert not may_auto_reply(message(direction="note", sender=Sender(kind="agent", id="x")))
    assert not may_auto_reply(message(direction="event"))
