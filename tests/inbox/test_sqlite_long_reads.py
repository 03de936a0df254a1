"""Long reads on the embedded store — a text search over every message — run on
a thread of their own, so the event loop keeps serving webhooks meanwhile; a
search nobody waits for any more is stopped."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from hub.inbox.model import Conversation, Message, Sender
from hub.inbox.sqlite import SqliteStore
from hub.inbox.store import ConversationFilter
from tests.inbox.test_store_contract import saved_contact

T0 = datetime(2026, 1, 5, tzinfo=UTC)


@pytest.fixture
async def store(tmp_path):
    store = SqliteStore(tmp_path / "hub.db")
    await store.open()
    contact = await saved_contact(store)
    async with store.transaction():
        for n in range(300):
            at = T0 + timedelta(minutes=n)
            conversation = Conversation(
                contact_id=contact.id,
                account_id="shop",
                channel="api",
                contact_address="c",
                last_activity_at=at,
                created_at=at,
                updated_at=at,
            )
            await store.add_conversation(conversation)
            for m in range(10):
                text = f"Đơn hàng số {n}-{m}: hoàn tiền" if n == 150 else f"Tin nhắn {n}-{m}"
                await store.add_message(
                    Message(
                        conversation_id=conversation.id,
                        account_id="shop",
                        channel="api",
                        direction="inbound",
                        sender=Sender(kind="contact"),
                        text=text,
                        created_at=at,
                        updated_at=at,
                    )
                )
    yield store
    await store.close()


async def test_a_text_search_leaves_the_event_loop_free_while_it_reads(store):
    turns = 0
    searching = True

    async def loop_turns() -> None:
        nonlocal turns
        while searching:
            turns += 1
            await asyncio.sleep(0)

    counter = asyncio.create_task(loop_turns())
    try:
        page = await store.list_conversations(ConversationFilter(text="HOAN TIEN"), limit=5)
    finally:
        searching = False
        await counter
    assert len(page.items) == 1
    # Read on the loop's own thread, the search could not have let it turn once.
    assert turns > 0
    # A search in a transaction reads what that transaction wrote, as any read.
    async with store.transaction():
        inside = await store.list_conversations(ConversationFilter(text="hoàn tiền"), limit=5)
    assert inside.items == page.items


async def test_a_search_cancelled_midway_frees_its_connection_for_the_next(store):
    search = asyncio.create_task(store.list_conversations(ConversationFilter(text="x"), limit=5))
    await asyncio.sleep(0)
    search.cancel()
    with pytest.raises(asyncio.CancelledError):
        await search
    page = await store.list_conversations(ConversationFilter(text="đơn hàng"), limit=5)
    assert len(page.items) == 1
