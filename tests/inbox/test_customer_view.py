"""What a customer sees of their own conversation (the web-chat widget's door):
the transcript, and receipts moving what was sent to them forward."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.app import open_runtime
from hub.clock import FrozenClock
from hub.inbox.customer_view import TRANSCRIPT_MESSAGES, CustomerView
from tests.inbox.test_service import inbound
from tests.inbox.test_store_contract import saved_message


@pytest.fixture
async def hub(make_settings):
    async with open_runtime(make_settings(), clock=FrozenClock()) as runtime:
        outcome = await runtime.inbox.ingest(inbound("m0", ("api:shop", "u1")))
        runtime.conversation_ = await runtime.store.get_conversation(outcome.conversation_id)
        runtime.view_ = CustomerView(runtime.store, runtime.inbox)
        yield runtime


async def test_a_receipt_moves_what_was_sent_up_to_that_message_and_nothing_after(hub):
    store, conversation, view = hub.store, hub.conversation_, hub.view_
    start = hub.clock.now()

    async def sent(minutes, status="sent", **fields):
        return await saved_message(
            store,
            conversation,
            direction=fields.pop("direction", "outbound"),
            status=status,
            created_at=start + timedelta(minutes=minutes),
            **fields,
        )

    a = await sent(1)
    note = await sent(2, status=None, direction="note")
    failed = await sent(3, status="failed")
    b = await sent(4, status="queued")
    # Two in one millisecond: the timeline orders them by id.
    ids = sorted([a.id[:-1] + "x", a.id[:-1] + "y"])
    c1 = await sent(5, id=ids[0])
    c2 = await sent(5, id=ids[1])
    d = await sent(6)

    async def statuses():
        return [(await store.get_message(m.id)).status for m in (a, failed, b, c1, c2, d)]

    assert await view.acknowledge(conversation.id, c1.id, "delivered") == [a.id, b.id, c1.id]
    assert await statuses() == ["delivered", "failed", "delivered", "delivered", "sent", "sent"]
    assert await view.acknowledge(conversation.id, c1.id, "delivered") == []
    assert await view.acknowledge(conversation.id, a.id, "read") == [a.id]
    assert await view.acknowledge(conversation.id, d.id, "read") == [b.id, c1.id, c2.id, d.id]
    assert await statuses() == ["read", "failed", "read", "read", "read", "read"]
    # Nothing moves for a message the customer was never shown, or another's.
    assert await view.acknowledge(conversation.id, note.id, "read") == []
    assert await view.acknowledge(conversation.id, failed.id, "read") == []
    assert await view.acknowledge("0" * 24, d.id, "read") == []
    assert await view.acknowledge(conversation.id, "0" * 24, "read") == []


async def test_the_transcript_is_the_newest_part_without_anything_internal(hub):
    store, conversation, view = hub.store, hub.conversation_, hub.view_
    start = hub.clock.now()
    async with store.transaction():
        for n in range(TRANSCRIPT_MESSAGES + 20):
            await saved_message(
                store,
                conversation,
                direction="note" if n % 10 == 9 else "outbound",
                status=None if n % 10 == 9 else "sent",
                text=f"tin {n}",
                created_at=start + timedelta(minutes=n + 1),
            )
    transcript = await view.timeline(conversation.id)
    texts = [m.text for m in transcript]
    newest = range(20, TRANSCRIPT_MESSAGES + 20)
    assert texts == [f"tin {n}" for n in newest if n % 10 != 9]
