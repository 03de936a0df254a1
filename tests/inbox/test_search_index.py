"""The embedded store's search index (hub.inbox.search_index): searches answer
the same before a row is indexed (the scan past the mark) and after (the
index), changed text is re-indexed, and the store indexes by itself."""

from __future__ import annotations

import itertools
import sqlite3
import time
from pathlib import Path

import pytest

from hub.inbox import search_index
from hub.inbox.sqlite import MIGRATIONS, SqliteStore
from hub.inbox.store import ConversationFilter
from tests.conftest import eventually
from tests.inbox.test_store_contract import (
    identity,
    saved_contact,
    saved_conversation,
    saved_message,
)

TEXTS = {
    "refund": "Tôi muốn HOÀN TIỀN đơn 100%",
    "glob": "mã giảm giá *SALE?[50]* hết hạn",
    "under": "đúng_hạn giao hàng",
    "email": "gửi hoá đơn về Lan.Nguyen@Example.VN nhé",
}
QUERIES = {
    "+84900000002": ["under"],  # a conversation's address
    "hoan tien": ["refund"],
    "hoàn tiền đơn": ["refund"],
    "0%": ["refund"],
    "%": ["refund"],
    "*sale?[50]*": ["glob"],
    "[50]": ["glob"],
    "?": ["glob"],
    "_": ["under"],
    "đúng_hạn": ["under"],
    "lan.nguyen@example": ["email"],
    "hoa don": ["email"],
    "don": ["email", "refund"],
    "không có": [],
}


@pytest.fixture
async def store(tmp_path: Path):
    store = SqliteStore(tmp_path / "hub.db")
    await store.open()
    yield store
    await store.close()


async def seed(store: SqliteStore) -> dict[str, str]:
    named = {}
    for minute, (name, text) in enumerate(TEXTS.items()):
        conversation = await saved_conversation(store, contact_address=f"+8490000000{minute}")
        await saved_message(store, conversation, text=text)
        named[conversation.id] = name
    return named


async def found(store: SqliteStore, named: dict[str, str], query: str) -> list[str]:
    page = await store.list_conversations(ConversationFilter(text=query), limit=20)
    return sorted(named[c.id] for c in page.items)


def mark(path: Path, table: str = "messages") -> tuple[int, int, int]:
    """(the index's mark, the newest row's rowid, rows in the index) of a table."""
    index = {
        "messages": "message_words",
        "conversations": "conversation_words",
        "contacts": "contact_words",
    }[table]
    with sqlite3.connect(path) as db:
        last = db.execute("SELECT last_rowid FROM search_marks WHERE name = ?", (table,)).fetchone()
        top = db.execute(f"SELECT COALESCE(MAX(rowid), 0) FROM {table}").fetchone()
        rows = db.execute(f"SELECT COUNT(*) FROM {index}").fetchone()
    return last[0], top[0], rows[0]


async def test_searches_answer_the_same_before_and_after_indexing(store, tmp_path):
    named = await seed(store)
    assert mark(tmp_path / "hub.db")[0] == 0
    before = {query: await found(store, named, query) for query in QUERIES}
    assert before == QUERIES  # past the mark: the scan finds them

    # Messages, conversations and their contacts.
    assert await store.indexer.catch_up() == 3 * len(TEXTS)
    for table in ("messages", "conversations"):
        assert mark(tmp_path / "hub.db", table) == (len(TEXTS), len(TEXTS), len(TEXTS))
    after = {query: await found(store, named, query) for query in QUERIES}
    assert after == QUERIES  # nothing past the mark: the index alone finds them
    assert await store.indexer.catch_up() == 0


async def test_a_message_whose_text_changes_is_found_by_its_new_text(store):
    conversation = await saved_conversation(store)
    message = await saved_message(store, conversation, text="Cuộc gọi nhỡ")
    named = {conversation.id: "call"}
    await store.indexer.catch_up()
    assert await found(store, named, "goi nho") == ["call"]
    assert await store.update_message(message.id, text="Cuộc gọi đã trả lời (2 phút)")
    assert await found(store, named, "goi nho") == []
    assert await found(store, named, "da tra loi") == ["call"]


async def test_many_messages_are_indexed_in_chunks(store, tmp_path, monkeypatch):
    monkeypatch.setattr(search_index, "CHUNK", 7)
    conversation = await saved_conversation(store)
    async with store.transaction():
        for n in range(30):
            await saved_message(store, conversation, text=f"tin nhắn số {n:03d}")
    monkeypatch.setattr(search_index, "CHUNK_CHARS", 40)  # "tin nhắn số 000": 15 characters
    chunk = await store.indexer._chunk(search_index.MESSAGES)
    assert chunk == (2, True)  # 30, and 45 > 40 stops
    monkeypatch.setattr(search_index, "CHUNK_CHARS", 1)
    assert await store.indexer._chunk(search_index.MESSAGES) == (1, True)  # the first row always
    monkeypatch.setattr(search_index, "CHUNK_CHARS", 10_000)
    assert await store.indexer.catch_up() == 27 + 2  # the rest, the conversation, its contact
    assert mark(tmp_path / "hub.db") == (30, 30, 30)
    assert await found(store, {conversation.id: "c"}, "so 017") == ["c"]


async def twelve_messages_to_index(store, monkeypatch, *, chunk: int):
    """Twelve stored messages the indexer has not reached, in chunks of `chunk`
    rows; its own rounds stopped, for the test to run them. Their conversation."""
    assert store._indexing is not None
    store._indexing.cancel()
    monkeypatch.setattr(search_index, "CHUNK", chunk)
    conversation = await saved_conversation(store)
    for n in range(12):
        await saved_message(store, conversation, text=f"tin nhắn số {n:03d}")
    return conversation


async def test_a_round_indexes_what_stood_past_the_mark_and_leaves_newer_rows_to_the_next(
    store, tmp_path, monkeypatch
):
    """Under steady ingest new rows arrive while a round indexes. Chasing them
    ran a chunk of a few rows every few milliseconds, each paying a whole
    chunk's commit and merge; the round ends at the first chunk that reaches
    the newest row, and the next round takes the newer rows in full chunks."""
    conversation = await twelve_messages_to_index(store, monkeypatch, chunk=5)
    chunks = []
    chunk = store.indexer._chunk

    async def a_message_arrives_after_each_chunk(source):
        done = await chunk(source)
        if source is search_index.MESSAGES:
            chunks.append(done.indexed)
            await saved_message(store, conversation, text=f"tin nhắn mới {len(chunks)}")
        return done

    monkeypatch.setattr(store.indexer, "_chunk", a_message_arrives_after_each_chunk)
    assert await store.indexer.catch_up() == 5 + 5 + 4 + 2  # + the conversation, its contact
    assert chunks == [5, 5, 4]  # 12 rows, and two that came between the chunks
    assert mark(tmp_path / "hub.db") == (14, 15, 14)  # the third newcomer: the next round's
    assert await store.indexer.catch_up() == 1  # and one more arrives after it
    assert mark(tmp_path / "hub.db") == (15, 16, 15)


async def test_the_indexer_leaves_the_loop_five_times_a_chunks_time_between_chunks(
    store, monkeypatch
):
    """With a fixed 2 ms pause the indexer took half of the event loop while it
    caught up (chunks of 2-4 ms), on top of the webhooks: each round queued
    them for up to ~20 ms at 1,640 a second. It now waits PAUSE_FACTOR times
    as long as the chunk took."""
    await twelve_messages_to_index(store, monkeypatch, chunk=3)
    spans: list[tuple[float, float]] = []
    chunk = store.indexer._chunk

    async def slow_chunk(source):
        started = time.perf_counter()
        done = await chunk(source)
        if source is search_index.MESSAGES:
            time.sleep(0.004)  # noqa: ASYNC251 - a chunk holds the loop ~4 ms under load
            spans.append((started, time.perf_counter()))
        return done

    monkeypatch.setattr(store.indexer, "_chunk", slow_chunk)
    assert await store.indexer.catch_up() == 12 + 2
    assert len(spans) == 5  # 4 full chunks, and the one that finds nothing more
    for (start, end), (following, _) in itertools.pairwise(spans):
        assert following - end >= search_index.PAUSE_FACTOR * (end - start) * 0.95


async def test_the_index_is_merged_a_little_after_every_chunk_not_in_bursts(store):
    """FTS5's own merging came in bursts: every so often one chunk also merged
    a large part of the index, holding the event loop 30-90 ms while webhooks
    waited. The indexer merges a little after each chunk instead, so no chunk
    writes much more than the others (rows written stand for the work: FTS5
    writes its pages as rows of its own tables). Measured with FTS5's merging:
    the largest chunk wrote 1.8 times the median; merged by the indexer, 1.25."""
    for source in search_index.SOURCES:
        row = await store._fetch_one(
            f"SELECT v FROM {source.index}_config WHERE k = 'automerge'", ()
        )
        assert row is not None and row["v"] == 0
    assert store._indexing is not None
    store._indexing.cancel()  # this test runs the chunks itself
    conversation = await saved_conversation(store)
    texts = ["Xin chào, cho em hỏi đơn hàng của em đến đâu rồi ạ?", "ok", "Hoá đơn VAT"]
    for chunk in range(150):
        async with store.transaction():
            for n in range(search_index.CHUNK):
                text = f"{texts[n % 3]} #{chunk * search_index.CHUNK + n}"
                await saved_message(store, conversation, text=text)
    written = []
    for _ in range(150):
        before = store._w.total_changes
        chunk = await store.indexer._chunk(search_index.MESSAGES)
        assert chunk.indexed == search_index.CHUNK
        written.append(store._w.total_changes - before)
    assert max(written) < 1.6 * sorted(written)[len(written) // 2]
    # And the merging keeps up: the index stays in a few segments (15 unmerged).
    segments = await store._fetch_one(
        "SELECT count(DISTINCT segid) AS n FROM message_words_idx", ()
    )
    assert segments is not None and segments["n"] <= 8


async def test_only_the_first_indexed_characters_of_a_long_message_are_indexed(store):
    conversation = await saved_conversation(store)
    head = "đầu thư "
    filler = "x" * search_index.INDEXED_CHARS
    await saved_message(store, conversation, text=head + filler + " cuối thư")
    await store.indexer.catch_up()
    named = {conversation.id: "long"}
    assert await found(store, named, "dau thu") == ["long"]
    assert await found(store, named, "cuoi thu") == []  # past the indexed part


async def test_the_store_indexes_new_messages_by_itself(store, tmp_path):
    conversation = await saved_conversation(store)
    await saved_message(store, conversation, text="xin chào")

    async def indexed() -> bool:
        last, top, _ = mark(tmp_path / "hub.db")
        return last == top == 1

    await eventually(indexed, timeout=search_index.INDEX_EVERY_SECONDS * 4)


async def test_a_conversation_whose_subject_changes_is_found_by_its_new_subject(store):
    conversation = await saved_conversation(
        store, subject="Đơn hàng 17", contact_address="lan@x.vn"
    )
    named = {conversation.id: "c"}
    await store.indexer.catch_up()
    assert await found(store, named, "don hang 17") == ["c"]
    assert await found(store, named, "LAN@X") == ["c"]
    assert await store.update_conversation(conversation.id, subject="Đổi trả áo khoác")
    assert await found(store, named, "don hang 17") == []
    assert await found(store, named, "doi tra ao") == ["c"]
    assert await found(store, named, "lan@x.vn") == ["c"]


# -- the contact finder --------------------------------------------------------
CONTACT_QUERIES = {
    "tran thi": ["lan"],
    "LAN.TRAN@": ["lan"],
    "901234567": ["binh"],
    "binh": ["binh"],
    "100%": ["percent"],
    "%": ["percent"],
    "_": ["under"],
    "an": ["lan", "under"],
    "lan\nbinh": [],  # a name and an address never run together
    "không có": [],
}


async def seed_contacts(store: SqliteStore) -> dict[str, str]:
    people = [
        (
            "lan",
            await saved_contact(
                store, identity("email", "lan.tran@example.vn"), name="Trần Thị Lan"
            ),
        ),
        ("binh", await saved_contact(store, identity("phone", "+84901234567"), name="Bình")),
        ("percent", await saved_contact(store, name="Khách 100%")),
        ("under", await saved_contact(store, identity("zalo", "an_nguyen"), name="Ân")),
    ]
    return {contact.id: name for name, contact in people}


async def contacts_found(store: SqliteStore, named: dict[str, str], query: str) -> list[str]:
    return sorted(named[c.id] for c in await store.search_contacts(query, limit=20))


async def test_contacts_are_found_the_same_before_and_after_indexing(store, tmp_path):
    named = await seed_contacts(store)
    before = {q: await contacts_found(store, named, q) for q in CONTACT_QUERIES}
    assert before == CONTACT_QUERIES  # past the mark: the scan finds them
    await store.indexer.catch_up()
    last, top, rows = mark(tmp_path / "hub.db", "contacts")
    assert last == top and rows == len(named)
    after = {q: await contacts_found(store, named, q) for q in CONTACT_QUERIES}
    assert after == CONTACT_QUERIES  # from the index


async def test_a_contact_renamed_or_given_an_address_is_found_by_it(store):
    named = await seed_contacts(store)
    await store.indexer.catch_up()
    [binh] = [c for c, name in named.items() if name == "binh"]
    assert await store.update_contact(binh, name="Phạm Văn Bảo")
    await store.link_identity(binh, identity("email", "bao.pham@example.vn"))
    assert await contacts_found(store, named, "pham van bao") == ["binh"]
    assert await contacts_found(store, named, "bao.pham@") == ["binh"]
    assert await contacts_found(store, named, "binh") == []
    assert await contacts_found(store, named, "901234567") == ["binh"]


async def test_a_contact_merged_away_leaves_the_index_and_its_rowid_is_indexed_again(
    store, tmp_path
):
    """The merged contact is the newest row: a contact added next is given its
    rowid again, and must be found by its own name, not the one before it."""
    keep = await saved_contact(store, identity("phone", "+84901234567"), name="Lan")
    gone = await saved_contact(store, identity("email", "qt@example.vn"), name="Tuấn")
    await store.indexer.catch_up()
    await store.merge_contacts(keep.id, gone.id)
    assert [c.id for c in await store.search_contacts("qt@", limit=5)] == [keep.id]
    assert await store.search_contacts("tuấn", limit=5) == []
    assert await store.search_contacts("lan", limit=5) == [await store.get_contact(keep.id)]

    newcomer = await saved_contact(store, name="Cường")
    for indexed in (False, True):
        assert await store.search_contacts("cuong", limit=5) == [newcomer], indexed
        assert await store.search_contacts("tuấn", limit=5) == [], indexed
        await store.indexer.catch_up()
    last, top, rows = mark(tmp_path / "hub.db", "contacts")
    assert last == top and rows == 2


async def test_a_store_from_before_the_contact_index_gets_it_filled(tmp_path):
    """An upgraded hub: the contacts it already holds are indexed behind the
    writers and found all along."""
    path = tmp_path / "old.db"
    store = SqliteStore(path)
    await store.open()
    named = await seed_contacts(store)
    await store.close()
    with sqlite3.connect(path) as db:  # as the database was before this index
        db.execute("DROP TABLE contact_words")
        db.execute("DELETE FROM search_marks WHERE name = 'contacts'")
        # and before the migrations that came after it
        db.execute("DROP TABLE message_parts")
        db.execute("ALTER TABLE messages DROP COLUMN sent_parts")
        db.execute("DROP INDEX messages_by_status")
        for trigger in ("insert", "update", "delete"):
            db.execute(f"DROP TRIGGER conversation_labels_{trigger}")
        db.execute("DROP TABLE conversation_labels")
        version = MIGRATIONS.index(search_index.CONTACTS_MIGRATION)
        db.execute(f"PRAGMA user_version = {version}")
    store = SqliteStore(path)
    await store.open()
    try:
        assert await contacts_found(store, named, "tran thi") == ["lan"]
        await store.indexer.catch_up()
        assert mark(path, "contacts")[0] == mark(path, "contacts")[1]
        assert await contacts_found(store, named, "901234567") == ["binh"]
    finally:
        await store.close()


async def test_fold_is_ready_before_the_store_serves_anything(tmp_path: Path) -> None:
    """fold's table (a walk over all of Unicode) is built when the store opens,
    not by the first webhook or indexer chunk that folds non-ASCII text: that
    held the event loop, and every webhook behind it, for 80-200 ms."""
    from hub.inbox import search

    search._fold_table.cache_clear()
    store = SqliteStore(tmp_path / "hub.db")
    await store.open()
    try:
        assert search._fold_table.cache_info().currsize == 1
    finally:
        await store.close()
