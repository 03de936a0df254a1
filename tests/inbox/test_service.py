"""The inbox service: contacts found by identity, messages threaded, replies recorded."""

from __future__ import annotations

import asyncio
import unicodedata
from datetime import timedelta

import pytest

from hub.app import open_runtime
from hub.clock import FrozenClock
from hub.errors import InvalidRequest, NotFound
from hub.events import Event
from hub.inbox.inbound import InboundMessage, InboundSender
from hub.inbox.model import Identity
from hub.inbox.store import ConversationFilter


@pytest.fixture
async def hub(make_settings):
    clock = FrozenClock()
    async with open_runtime(make_settings(), clock=clock) as runtime:
        runtime.clock_ = clock
        events: list[Event] = []

        async def record(event: Event) -> None:
            events.append(event)

        runtime.bus.subscribe("*", record)
        runtime.events_ = events
        yield runtime


def inbound(external_id, *identities, account="shop", name="Bình", text="hi"):
    return InboundMessage(
        account_id=account,
        channel="api",
        external_id=external_id,
        sender=InboundSender(
            name=name, identities=[Identity(channel=c, address=a) for c, a in identities]
        ),
        text=text,
    )


PHONE = ("phone", "+84901234567")


async def test_first_message_creates_contact_conversation_and_events(hub):
    outcome = await hub.inbox.ingest(inbound("m1", ("api:shop", "u1"), PHONE))
    contact = await hub.store.get_contact(outcome.contact_id)
    assert contact.identities == [
        Identity(channel="api:shop", address="u1"),
        Identity(channel="phone", address="+84901234567"),
    ]
    conversation = await hub.store.get_conversation(outcome.conversation_id)
    assert conversation.status == "open"
    assert conversation.unread_count == 1
    assert conversation.contact_address == "u1"
    assert [e.type for e in hub.events_] == [
        "contact.created",
        "conversation.created",
        "message.created",
    ]


async def test_a_repeat_writes_nothing_even_from_a_sender_never_seen(hub):
    """The unique index catches the repeat after the contact and conversation of a
    new sender were written in the same transaction: they are undone with it."""
    first = await hub.inbox.ingest(inbound("m1", ("api:shop", "u1")))
    before = await hub.store.counts()
    hub.events_.clear()
    again = await hub.inbox.ingest(inbound("m1", ("api:shop", "someone-new"), PHONE))
    assert again.duplicate
    assert again.message_id == first.message_id
    assert await hub.store.counts() == before
    assert await hub.store.contacts_by_identity([Identity(channel="phone", address=PHONE[1])]) == {}
    assert hub.events_ == []


async def test_next_message_threads_into_the_open_conversation(hub):
    first = await hub.inbox.ingest(inbound("m1", ("api:shop", "u1")))
    hub.clock_.advance(timedelta(minutes=5))
    second = await hub.inbox.ingest(inbound("m2", ("api:shop", "u1")))
    assert second.conversation_id == first.conversation_id
    conversation = await hub.store.get_conversation(first.conversation_id)
    assert conversation.unread_count == 2
    assert conversation.last_activity_at == hub.clock_.now()
    assert [m.external_id for m in await hub.store.list_messages(first.conversation_id)] == [
        "m1",
        "m2",
    ]


async def test_a_known_phone_links_a_new_identity_to_the_existing_contact(hub):
    first = await hub.inbox.ingest(inbound("m1", ("api:shop", "u1"), PHONE))
    # Another system (another API account) knows the same customer by phone.
    other = await hub.inbox.ingest(inbound("x1", ("api:crm", "c-99"), PHONE, account="crm"))
    assert other.contact_id == first.contact_id
    assert other.conversation_id != first.conversation_id  # another inbox, another conversation
    contact = await hub.store.get_contact(first.contact_id)
    assert Identity(channel="api:crm", address="c-99") in contact.identities


async def test_identity_of_another_contact_is_not_merged(hub):
    a = await hub.inbox.ingest(inbound("m1", ("api:shop", "a"), PHONE))
    b = await hub.inbox.ingest(inbound("m2", ("api:shop", "b"), ("email", "b@example.vn")))
    # "b" now claims A's phone: B stays B, A keeps the phone.
    again = await hub.inbox.ingest(inbound("m3", ("api:shop", "b"), PHONE))
    assert again.contact_id == b.contact_id
    known = await hub.store.contacts_by_identity(
        [Identity(channel="phone", address="+84901234567")]
    )
    assert list(known.values()) == [a.contact_id]


async def test_resolved_conversation_reopens_within_the_window(hub):
    first = await hub.inbox.ingest(inbound("m1", ("api:shop", "u1")))
    await hub.inbox.resolve(first.conversation_id)
    hub.clock_.advance(timedelta(hours=71))
    again = await hub.inbox.ingest(inbound("m2", ("api:shop", "u1")))
    assert again.conversation_id == first.conversation_id
    conversation = await hub.store.get_conversation(first.conversation_id)
    assert conversation.status == "open" and conversation.resolved_at is None
    assert "conversation.reopened" in [e.type for e in hub.events_]


async def test_resolved_conversation_stays_closed_after_the_window(hub):
    first = await hub.inbox.ingest(inbound("m1", ("api:shop", "u1")))
    await hub.inbox.resolve(first.conversation_id)
    hub.clock_.advance(timedelta(hours=73))
    again = await hub.inbox.ingest(inbound("m2", ("api:shop", "u1")))
    assert again.conversation_id != first.conversation_id
    assert (await hub.store.get_conversation(first.conversation_id)).status == "resolved"


async def test_snoozed_conversation_wakes_when_the_customer_writes(hub):
    first = await hub.inbox.ingest(inbound("m1", ("api:shop", "u1")))
    await hub.store.update_conversation(
        first.conversation_id, status="snoozed", snoozed_until=hub.clock_.now() + timedelta(days=1)
    )
    again = await hub.inbox.ingest(inbound("m2", ("api:shop", "u1")))
    assert again.conversation_id == first.conversation_id
    conversation = await hub.store.get_conversation(first.conversation_id)
    assert conversation.status == "open" and conversation.snoozed_until is None


async def test_reply_with_the_same_idempotency_key_is_recorded_once(hub):
    first = await hub.inbox.ingest(inbound("m1", ("api:shop", "u1")))
    one, created = await hub.inbox.reply(first.conversation_id, None, "hello", idempotency_key="k1")
    two, created_again = await hub.inbox.reply(
        first.conversation_id, None, "hello", idempotency_key="k1"
    )
    assert (created, created_again) == (True, False)
    assert one.id == two.id
    outbound = [
        m for m in await hub.store.list_messages(first.conversation_id) if m.direction == "outbound"
    ]
    assert len(outbound) == 1 and outbound[0].status == "queued"


async def test_agent_reply_sets_first_response_and_clears_unread(hub):
    first = await hub.inbox.ingest(inbound("m1", ("api:shop", "u1")))
    from hub.inbox.model import Agent

    agent = Agent(name="An", email="an@example.vn", created_at=hub.clock_.now())
    await hub.store.add_agent(agent)
    hub.clock_.advance(timedelta(minutes=3))
    await hub.inbox.reply(first.conversation_id, agent, "hello")
    conversation = await hub.store.get_conversation(first.conversation_id)
    assert conversation.first_response_at == hub.clock_.now()
    assert conversation.unread_count == 0


async def test_an_automated_reply_leaves_the_conversation_unread(hub):
    # A greeting or an away reply answers at once, by itself: the customer's
    # message is still unread by any agent, and the inbox must keep saying so.
    first = await hub.inbox.ingest(inbound("m1", ("api:shop", "u1")))
    await hub.inbox.reply(first.conversation_id, None, "Xin chào! Shop sẽ trả lời ngay.")
    conversation = await hub.store.get_conversation(first.conversation_id)
    assert (conversation.unread_count, conversation.first_response_at) == (1, None)


async def test_empty_reply_and_unknown_conversation_are_refused(hub):
    first = await hub.inbox.ingest(inbound("m1", ("api:shop", "u1")))
    with pytest.raises(InvalidRequest):
        await hub.inbox.reply(first.conversation_id, None, "   ")
    with pytest.raises(NotFound):
        await hub.inbox.reply("0" * 24, None, "hello")


async def test_note_is_in_the_timeline_and_never_queued(hub):
    from hub.inbox.model import Agent

    first = await hub.inbox.ingest(inbound("m1", ("api:shop", "u1")))
    agent = Agent(name="An", email="an@example.vn", created_at=hub.clock_.now())
    await hub.store.add_agent(agent)
    note = await hub.inbox.add_note(first.conversation_id, agent, "VIP customer")
    assert note.direction == "note" and note.status is None
    assert (
        await hub.store.messages_awaiting_delivery(hub.clock_.now() + timedelta(days=1), 10) == []
    )


async def test_delivery_status_only_moves_forward(hub):
    first = await hub.inbox.ingest(inbound("m1", ("api:shop", "u1")))
    reply, _ = await hub.inbox.reply(first.conversation_id, None, "hello")
    assert await hub.inbox.record_delivery(reply.id, "delivered")
    assert not await hub.inbox.record_delivery(reply.id, "sent")  # late receipt
    assert not await hub.inbox.record_delivery(reply.id, "failed", error="late")
    assert await hub.inbox.record_delivery(reply.id, "read")
    assert (await hub.store.get_message(reply.id)).status == "read"


async def test_racing_receipts_end_at_the_furthest_status(hub):
    """A customer's "read" and the send's own "sent" arriving together: whichever
    is stored first, the message ends "read" (the lower one never wins a race)."""
    first = await hub.inbox.ingest(inbound("m1", ("api:shop", "u1")))
    replies = [(await hub.inbox.reply(first.conversation_id, None, f"r{n}"))[0] for n in range(10)]
    for reply in replies:
        await asyncio.gather(
            hub.inbox.record_delivery(reply.id, "sent"),
            hub.inbox.record_delivery(reply.id, "read"),
        )
    assert {(await hub.store.get_message(r.id)).status for r in replies} == {"read"}


async def test_failed_is_final(hub):
    first = await hub.inbox.ingest(inbound("m1", ("api:shop", "u1")))
    reply, _ = await hub.inbox.reply(first.conversation_id, None, "hello")
    assert await hub.inbox.record_delivery(reply.id, "failed", error="number invalid")
    assert not await hub.inbox.record_delivery(reply.id, "delivered")
    stored = await hub.store.get_message(reply.id)
    assert (stored.status, stored.error) == ("failed", "number invalid")


async def test_resolve_and_reopen_round_trip(hub):
    first = await hub.inbox.ingest(inbound("m1", ("api:shop", "u1")))
    resolved = await hub.inbox.resolve(first.conversation_id)
    assert resolved.status == "resolved" and resolved.resolved_at == hub.clock_.now()
    page = await hub.store.list_conversations(ConversationFilter(statuses=["resolved"]), limit=10)
    assert [c.id for c in page.items] == [first.conversation_id]
    reopened = await hub.inbox.reopen(first.conversation_id)
    assert reopened.status == "open"
    assert (await hub.store.get_conversation(first.conversation_id)).resolved_at is None


async def test_failed_ingest_writes_nothing(hub):
    """A database error in the middle of ingest leaves no contact or conversation behind."""
    import sqlite3

    db = sqlite3.connect(hub.settings.data_dir / "hub.db", isolation_level=None)
    db.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON messages"
        " BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
    )
    try:
        with pytest.raises(sqlite3.IntegrityError, match="disk on fire"):
            await hub.inbox.ingest(inbound("m1", ("api:shop", "u1"), PHONE))
    finally:
        db.execute("DROP TRIGGER refuse")
        db.close()
    assert (
        await hub.store.contacts_by_identity([Identity(channel="phone", address="+84901234567")])
        == {}
    )
    assert (await hub.store.list_conversations(ConversationFilter(), limit=10)).items == []
    assert hub.events_ == []


async def test_a_new_conversation_starts_in_its_accounts_team(make_settings):
    settings = make_settings(teams=[{"id": "care", "accounts": ["shop"]}])
    async with open_runtime(settings) as runtime:
        outcome = await runtime.inbox.ingest(inbound("m1", ("api:shop", "u1")))
        conversation = await runtime.store.get_conversation(outcome.conversation_id)
        assert conversation.team_id == "care"


async def test_a_name_that_arrives_decomposed_is_kept_composed(hub):
    """macOS and some files write "Nguyễn" as "Nguye" + two combining marks: the
    contact keeps one form, so searches and exact filters find it."""
    decomposed = unicodedata.normalize("NFD", "Nguyễn Thị Ánh")
    assert decomposed != "Nguyễn Thị Ánh"
    outcome = await hub.inbox.ingest(inbound("m-nfd", ("api:shop", "u-nfd"), name=decomposed))
    contact = await hub.store.get_contact(outcome.contact_id)
    assert contact.name == "Nguyễn Thị Ánh"
    assert [c.id for c in await hub.store.search_contacts("nguyễn thị", limit=5)] == [contact.id]
