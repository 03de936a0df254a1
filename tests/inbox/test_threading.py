"""Threading the way mail clients do ("reply_keys"): reply keys first, then the
normalised subject within a window, else a new conversation; replies record
what they answer, and sent messages the key they were sent with."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.app import open_runtime
from hub.clock import FrozenClock
from hub.inbox.inbound import InboundMessage, InboundSender
from hub.inbox.model import Identity, ThreadKeys
from hub.inbox.threading import answering, normalise_subject, reply_lookup_keys


@pytest.mark.parametrize(
    "subject",
    [
        "Đơn hàng #1042",
        "Re: Đơn hàng #1042",
        "RE: re: Đơn  hàng   #1042",
        "Fwd: Re: Đơn hàng #1042",
        "TL: Đơn hàng #1042",
        "TL: TL: Đơn hàng #1042",
        "Trả lời: Đơn hàng #1042",
        "CT: Đơn hàng #1042",
        "AW: WG: Đơn hàng #1042",
        "SV: VS: Đơn hàng #1042",
        "Re[2]: Đơn hàng #1042",
        "回复\uff1aĐơn hàng #1042",  # full-width colon
        "[EXTERNAL] Re: Đơn hàng #1042",
        "re : ĐƠN HÀNG #1042",
        "Re: \u0110o\u031bn ha\u0300ng #1042",  # decomposed, as windows-1258 mail has it
    ],
)
def test_reply_and_forward_prefixes_are_stripped(subject):
    assert normalise_subject(subject) == "đơn hàng #1042"


def test_a_subject_that_only_looks_like_a_prefix_is_kept():
    assert normalise_subject("Retail order") == "retail order"
    assert normalise_subject("Tlc hỏi") == "tlc hỏi"
    assert normalise_subject("Re:") == ""


def test_answering_a_message_chains_its_references():
    previous = ThreadKeys(message_id="<3@x>", in_reply_to="<2@x>", references=["<1@x>", "<2@x>"])
    assert answering(previous) == ThreadKeys(
        in_reply_to="<3@x>", references=["<1@x>", "<2@x>", "<3@x>"]
    )
    assert answering(None) == ThreadKeys()
    long_chain = ThreadKeys(message_id="<99@x>", references=[f"<{n}@x>" for n in range(60)])
    kept = answering(long_chain).references
    assert len(kept) == 20 and kept[0] == "<0@x>" and kept[-1] == "<99@x>"
    assert reply_lookup_keys(previous) == ["<2@x>", "<1@x>"]


@pytest.fixture
async def hub(make_settings):
    clock = FrozenClock()
    async with open_runtime(make_settings(), clock=clock) as runtime:
        runtime.clock_ = clock
        yield runtime


def mail(external_id, address="binh@example.vn", subject="Đơn hàng #1042", **thread):
    return InboundMessage(
        account_id="shop",
        channel="email",
        external_id=external_id,
        sender=InboundSender(name="Bình", identities=[Identity(channel="email", address=address)]),
        subject=subject,
        text="...",
        thread=ThreadKeys(message_id=f"<{external_id}@mail>", **thread),
        threading="reply_keys",
    )


async def test_a_reply_joins_the_conversation_of_the_message_it_answers(hub):
    first = await hub.inbox.ingest(mail("m1"))
    other = await hub.inbox.ingest(mail("m2", subject="Hỏi giá"))
    assert other.conversation_id != first.conversation_id  # new subject: new conversation
    await hub.inbox.resolve(first.conversation_id)
    hub.clock_.advance(timedelta(days=60))  # long past every window
    answer = await hub.inbox.ingest(
        mail("m3", subject="Hoàn toàn khác", in_reply_to="<m1@mail>", references=["<m1@mail>"])
    )
    assert answer.conversation_id == first.conversation_id
    conversation = await hub.store.get_conversation(first.conversation_id)
    assert conversation.status == "open"  # reopened


async def test_a_colleague_in_cc_answering_joins_the_same_thread(hub):
    first = await hub.inbox.ingest(mail("m1"))
    colleague = await hub.inbox.ingest(
        mail("m2", address="ke.toan@example.vn", subject="Re: x", references=["<m1@mail>"])
    )
    assert colleague.conversation_id == first.conversation_id
    assert colleague.contact_id != first.contact_id


async def test_without_known_keys_the_same_subject_joins_within_the_window_only(hub):
    first = await hub.inbox.ingest(mail("m1"))
    hub.clock_.advance(timedelta(days=3))
    same = await hub.inbox.ingest(
        mail("m2", subject="TL: Đơn hàng #1042", in_reply_to="<unknown@elsewhere>")
    )
    assert same.conversation_id == first.conversation_id
    hub.clock_.advance(timedelta(days=15))  # the default window is 14 days of silence
    late = await hub.inbox.ingest(mail("m3", subject="Re: Đơn hàng #1042"))
    assert late.conversation_id != first.conversation_id


async def test_same_subject_from_another_contact_is_another_conversation(hub):
    first = await hub.inbox.ingest(mail("m1"))
    other = await hub.inbox.ingest(mail("m2", address="minh@example.vn"))
    assert other.conversation_id != first.conversation_id


async def test_mail_without_subject_or_keys_starts_a_new_conversation(hub):
    first = await hub.inbox.ingest(mail("m1", subject=""))
    second = await hub.inbox.ingest(mail("m2", subject=""))
    assert second.conversation_id != first.conversation_id


async def test_reply_answers_the_latest_keyed_message_and_delivery_records_its_key(hub):
    first = await hub.inbox.ingest(mail("m1"))
    second = await hub.inbox.ingest(mail("m2", in_reply_to="<m1@mail>", references=["<m1@mail>"]))
    assert second.conversation_id == first.conversation_id
    reply, _ = await hub.inbox.reply(first.conversation_id, None, "Dạ shop kiểm tra ạ.")
    assert reply.thread == ThreadKeys(
        in_reply_to="<m2@mail>", references=["<m1@mail>", "<m2@mail>"]
    )
    assert await hub.inbox.record_delivery(
        reply.id, "sent", external_id="<r1@shop.vn>", message_key="<r1@shop.vn>"
    )
    sent = await hub.store.get_message(reply.id)
    assert sent.thread.message_id == "<r1@shop.vn>"
    assert sent.thread.in_reply_to == "<m2@mail>"
    # The customer answers our reply: found by our own Message-ID.
    answer = await hub.inbox.ingest(
        mail("m3", subject="Cảm ơn", in_reply_to="<r1@shop.vn>", references=["<r1@shop.vn>"])
    )
    assert answer.conversation_id == first.conversation_id


async def test_default_threading_is_unchanged_for_other_channels(hub):
    chat = mail("c1").model_copy(update={"threading": "contact", "channel": "api"})
    first = await hub.inbox.ingest(chat)
    other_subject = chat.model_copy(update={"external_id": "c2", "subject": "Khác hẳn"})
    assert (await hub.inbox.ingest(other_subject)).conversation_id == first.conversation_id
