"""The embedded store's lookups read what they are about, not a table: counted
in SQLite's own steps (its VM instructions), which do not depend on how busy
the machine is. Without an index that serves a query's filter and its order,
SQLite may walk another index in order and filter as it goes: the lookup then
costs in proportion to the whole table, fine in a test and seconds a minute
in a company's third year."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest

from hub.inbox.model import OPEN_STATUSES, Conversation, Identity, ThreadKeys
from hub.inbox.sqlite import SqliteStore
from hub.inbox.store import ConversationFilter
from tests.inbox.test_store_contract import (
    T0,
    make_contact,
    make_message,
    saved_conversation,
)

OTHERS = 2000  # conversations of other contacts, in each status looked for


@pytest.fixture
async def store(tmp_path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "hub.db")
    await store.open()
    async with store.transaction():
        for n in range(OTHERS // 4):
            contact = make_contact(name=f"Khách {n}")
            await store.add_contact(contact)
            for status in ("resolved", "open", "pending", "snoozed"):
                at = T0 + timedelta(minutes=n)
                await saved_conversation(store, contact, status=status, last_activity_at=at)
    yield store
    await store.close()


@contextmanager
def steps(store: SqliteStore) -> Iterator[list[int]]:
    """Count the SQLite VM instructions run on the store's connections."""
    counted = [0]

    def step() -> int:
        counted[0] += 1
        return 0

    connections = [store._reader, store._writer]
    for db in connections:
        db.set_progress_handler(step, 1)
    try:
        yield counted
    finally:
        for db in connections:
            db.set_progress_handler(None, 1)


@pytest.mark.parametrize(
    "statuses",
    [["resolved"], ["open"], list(OPEN_STATUSES), None],
    ids=["resolved", "open", "open-statuses", "any"],
)
async def test_a_contacts_newest_conversation_is_found_without_reading_the_others(store, statuses):
    # The inbox asks this for every message from a new sender (an open one to
    # thread into, then a resolved one to reopen): it walked every conversation
    # in that status, newest first, when only one status was asked for (2,514
    # steps here; 14-15 now, and 42 for the one it finds).
    contact = make_contact(name="Khách mới")
    await store.add_contact(contact)
    with steps(store) as counted:
        assert await store.latest_conversation(contact.id, "sms-main", statuses=statuses) is None
    assert counted[0] < 100, f"{counted[0]} steps with {OTHERS} other conversations"
    newest = await saved_conversation(store, contact, status="resolved")
    with steps(store) as counted:
        found = await store.latest_conversation(contact.id, "sms-main", statuses=["resolved"])
    assert found == newest
    assert counted[0] < 150, f"{counted[0]} steps with {OTHERS} other conversations"


async def test_the_waiting_queue_reads_the_waiting_conversations_only(store):
    # Every router drain (each new unassigned conversation, each resolve) asks
    # for the oldest waiting: SQLite walked every unassigned *resolved*
    # conversation (conversations_by_assignee from NULL), then sorted.
    with steps(store) as counted:
        waiting = await store.waiting_conversations(5)
    assert [c.status for c in waiting] == ["open", "pending", "snoozed", "open", "pending"]
    # 140 steps (30,757 before).
    assert counted[0] < 400, f"{counted[0]} steps with {OTHERS} unassigned conversations"


async def test_label_counts_read_the_open_conversations_and_the_labels_in_use(store):
    contact = make_contact(name="Khách nhãn")
    await store.add_contact(contact)
    vip = await saved_conversation(store, contact, labels=["vip", "gấp"])
    done = await saved_conversation(store, contact, labels=["hoàn-tiền"], status="resolved")
    assert await store.label_counts() == {"gấp": 1, "hoàn-tiền": 0, "vip": 1}
    await store.update_conversation(vip.id, labels=["vip"])
    await store.update_conversation(done.id, labels=[])
    assert await store.label_counts() == {"vip": 1}  # a label no conversation has: gone
    with steps(store) as counted:
        await store.label_counts()
    # The open conversations (1,500 here, none labelled) and the labels in use:
    # 10,599 steps; it read every conversation's labels, resolved ones included,
    # twice: 22,081.
    assert counted[0] < 14_000, f"{counted[0]} steps with {OTHERS} conversations"


@pytest.mark.parametrize(
    "view",
    [
        ConversationFilter(),
        ConversationFilter(channel="sms"),
        ConversationFilter(assignee_id="agent-1"),
        ConversationFilter(statuses=list(OPEN_STATUSES)),
        ConversationFilter(label="vip"),
    ],
    ids=["any", "channel", "assignee", "open-statuses", "label"],
)
async def test_a_list_view_over_several_statuses_reads_a_page_not_every_conversation(store, view):
    # The API without a status filter, a label's view in the workspace, an
    # agent's own conversations: SQLite read every conversation of every
    # status and sorted them (60-130 ms at 150,000 conversations, on the event
    # loop); it now walks each status's index newest first and stops at the page.
    contact = make_contact(name="Khách nhãn")
    await store.add_contact(contact)
    labelled = []
    for n in range(120):
        labelled.append(
            await saved_conversation(
                store,
                contact,
                status=("resolved", "open", "pending", "snoozed")[n % 4],
                labels=["vip"],
                assignee_id="agent-1",
                last_activity_at=T0 + timedelta(days=1, minutes=n),
            )
        )

    async def two_pages() -> tuple[list[Conversation], int]:
        with steps(store) as counted:
            first = await store.list_conversations(view, limit=25)
            second = await store.list_conversations(view, limit=25, cursor=first.next_cursor)
        return [*first.items, *second.items], counted[0]

    pages, before = await two_pages()
    expected = [c for c in labelled if view.statuses is None or c.status in view.statuses]
    assert pages == sorted(expected, key=lambda c: (c.last_activity_at, c.id), reverse=True)[:50]
    # As many older conversations again, in every status, the agent's, some labelled.
    async with store.transaction():
        for n in range(OTHERS // 4):
            for status in ("resolved", "open", "pending", "snoozed"):
                at = T0 - timedelta(days=1, minutes=n)
                await saved_conversation(
                    store,
                    contact,
                    status=status,
                    last_activity_at=at,
                    labels=["vip"][: n % 2],
                    assignee_id="agent-1",
                )
    again, after = await two_pages()
    assert again == pages
    # The same steps, whatever lies behind the pages (the "any status" view
    # took 126,025 steps here, and twice as many with twice the conversations).
    assert after <= before * 1.05, f"{before} steps, then {after} with {OTHERS} more"
    assert before < 80_000, f"{before} steps for two pages"


async def test_a_label_nobody_carries_is_answered_without_reading_conversations(store):
    with steps(store) as counted:
        page = await store.list_conversations(ConversationFilter(label="nobody"), limit=25)
    assert page.items == [] and page.next_cursor is None
    assert counted[0] < 100, f"{counted[0]} steps with {OTHERS} conversations"


async def test_a_reply_and_the_router_read_a_few_messages_of_a_long_timeline(store):
    # A reply looks for the newest message with an e-mail thread key, the router
    # for the customer's first words: both decoded the whole timeline.
    contact = make_contact(name="Khách lâu năm")
    await store.add_contact(contact)
    conversation = await saved_conversation(store, contact)

    async def lookups() -> int:
        with steps(store) as counted:
            keyed = await store.find_messages(
                conversation.id, threaded=True, newest_first=True, limit=1
            )
            first = await store.find_messages(conversation.id, directions=["inbound"], limit=20)
        assert keyed[0].thread.message_id == "<newest@shop.vn>"
        assert first[0].text == "tin 0"
        return counted[0]

    async def timeline(start: int, count: int) -> None:
        async with store.transaction():
            for n in range(start, start + count):
                await store.add_message(
                    make_message(
                        conversation,
                        text=f"tin {n}",
                        created_at=T0 + timedelta(minutes=n),
                        thread=ThreadKeys(message_id=f"<{n}@shop.vn>"),
                    )
                )

    await timeline(0, 200)
    newest = make_message(
        conversation,
        created_at=T0 + timedelta(days=30),
        thread=ThreadKeys(message_id="<newest@shop.vn>"),
    )
    await store.add_message(newest)
    before = await lookups()
    await timeline(200, 800)
    after = await lookups()
    assert after <= before * 1.05, f"{before} steps, then {after} with 800 more messages"


async def test_a_known_senders_lookup_opens_no_temporary_table(store):
    # Every webhook from a known customer runs it. `status IN (...)` and an OR
    # over the identities each made SQLite open an ephemeral table per run:
    # a third of the statement's time in the ingest benchmark.
    contact = make_contact(
        Identity(channel="sms", address="+84901234567"),
        Identity(channel="email", address="khach@shop.vn"),
        name="Khách quen",
    )
    await store.add_contact(contact)
    conversation = await saved_conversation(store, contact)
    statements: list[str] = []
    store._writer.set_trace_callback(statements.append)
    store._reader.set_trace_callback(statements.append)
    try:
        known = await store.known_sender([*contact.identities, contact.identities[0]], "sms-main")
    finally:
        store._writer.set_trace_callback(None)
        store._reader.set_trace_callback(None)
    assert known is not None and known.conversation_id == conversation.id
    [lookup] = statements
    opcodes = [row[1] for row in store._reader.execute("EXPLAIN " + lookup)]
    assert "OpenEphemeral" not in opcodes, lookup


async def test_a_page_of_a_long_timeline_reads_that_page(store):
    # The workspace opens a conversation at its newest messages and scrolls back
    # a page at a time: each page walks messages_by_conversation from its cursor.
    contact = make_contact(name="Khách nói nhiều")
    await store.add_contact(contact)
    conversation = await saved_conversation(store, contact)

    async def messages(minutes: range) -> None:
        async with store.transaction():
            for n in minutes:
                await store.add_message(
                    make_message(
                        conversation, text=f"tin {n}", created_at=T0 + timedelta(minutes=n)
                    )
                )

    await messages(range(1000, 1200))
    cursor = (await store.timeline_page([conversation.id], limit=100)).next_cursor

    async def pages(newest_text: str) -> int:
        with steps(store) as counted:
            newest = await store.timeline_page([conversation.id], limit=50)
            older = await store.timeline_page([conversation.id], limit=50, cursor=cursor)
        assert newest.items[-1].text == newest_text
        assert older.items[-1].text == "tin 1099"
        return counted[0]

    before = await pages("tin 1199")
    await messages(range(0, 1000))  # older than either page
    await messages(range(1200, 2200))  # newer than the cursor
    after = await pages("tin 2199")
    assert after <= before * 1.05, f"{before} steps, then {after} with 2000 more messages"
