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

from hub.inbox.model import OPEN_STATUSES
from hub.inbox.sqlite import SqliteStore
from tests.inbox.test_store_contract import T0, make_contact, saved_conversation

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
