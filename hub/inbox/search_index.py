"""The embedded store's search index: agents' text searches read it instead of
folding every message and conversation ever stored.

Searching by scanning called `fold()` (Python) once per message and twice per
conversation: over a second per search for a hundred thousand messages, with
the process's GIL taken by the search for all that time (its webhooks ran
only in the interpreter's switch intervals). The index is two FTS5 tables with the trigram
tokenizer over folded text (`fold`: lower case, no diacritics), one for
messages' text, one for conversations' subject and address, and one for
contacts' names and addresses (what the contact finder matches): they answer
the same question — "this text appears anywhere", case and marks aside —
from the index, in milliseconds, with no Python per row.

Rows are indexed behind the writers, not in the ingest path: `SearchIndexer`
adds new rows (by rowid, past a mark kept per table in the database) every
few seconds, in small transactions that hold the write lock a few
milliseconds each. A search reads the index up to the mark and scans only the
rows past it, so it always sees everything, the newest included. A row whose
indexed text changes (a call's summary, a conversation's subject, a contact's
name or addresses) is re-indexed in the transaction that changes it; a contact
merged away takes its entry with it.

Only the first `INDEXED_CHARS` characters of a message are indexed (a
mailing-list digest should not cost megabytes of index); detail=none keeps
the index about the size of the text itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from hub.errors import StoreUnavailable

if TYPE_CHECKING:
    from hub.inbox.sqlite import SqliteStore

log = logging.getLogger(__name__)

INDEXED_CHARS = 20_000
# Often and a little at a time, with a pause between chunks: under steady
# ingest, indexing every 2 s in back-to-back chunks took the loop in bursts
# and showed in webhooks' p99.
INDEX_EVERY_SECONDS = 0.5
PAUSE_SECONDS = 0.002
# And between chunks, at least PAUSE_FACTOR times as long as the chunk took:
# the indexer takes at most a sixth of the loop while it catches up. With a
# fixed 2 ms pause it took half of it for ~80 ms every round at 1,640 webhooks
# a second (16 chunks of 2-4 ms), on top of a loop already 85% busy: each round
# queued webhooks for up to ~20 ms (seen in the ingest benchmark's open loop).
# Under steady ingest it needs ~4% of the loop, so it still keeps up.
PAUSE_FACTOR = 5
# What one chunk indexes at most: rows, and characters of their text (the
# trigram index costs ~0.2 µs a character). A chunk runs on the event loop (see
# `SearchIndexer`), so this bounds how long a webhook can wait behind it: ~5 ms.
CHUNK = 100
CHUNK_CHARS = 25_000
# FTS5 keeps an index as segments that it merges as they pile up. Its own
# merging ("automerge") works in bursts: each time 64 leaf pages have been
# written, 64 pages per level of the index at once — 30-90 ms on the event
# loop, in whichever chunk crossed the line (measured: 3,000 chunks of 100
# messages, p99 48 ms and max 93 ms a chunk). The indexer switches it off
# (MERGE_MIGRATION) and merges a little after every chunk instead, about as
# much as the chunk wrote: p99 6 ms, max 8 ms, the same total work, the index
# as compact. A page of the trigram index holds ~750 indexed characters.
MERGE_PAGES_MIN = 8
CHARS_PER_MERGE_PAGE = 750


class Chunk(NamedTuple):
    """What one chunk did: rows indexed, and whether rows past them remained."""

    indexed: int
    more: bool


@dataclass(frozen=True)
class Source:
    """One indexed table: its index table, and what of a row is indexed (SQL
    over the row, folded with `hub_fold`)."""

    table: str
    index: str
    words: str
    size: str  # how many characters `words` folds
    fields: frozenset[str]  # the model's fields `words` reads: a change re-indexes

    @property
    def mark(self) -> str:
        return f"(SELECT last_rowid FROM search_marks WHERE name = '{self.table}')"


MESSAGES = Source(
    "messages",
    "message_words",
    f"hub_fold(substr(text, 1, {INDEXED_CHARS}))",
    f"MIN(length(text), {INDEXED_CHARS})",
    frozenset({"text"}),
)
CONVERSATIONS = Source(
    "conversations",
    "conversation_words",
    "hub_fold(COALESCE(subject, '')) || char(10) || hub_fold(contact_address)",
    "length(COALESCE(subject, '')) + length(contact_address)",
    frozenset({"subject", "contact_address"}),
)
# A contact's name, then each of its addresses, one per line (so no match
# spans two of them).
CONTACTS = Source(
    "contacts",
    "contact_words",
    "hub_fold(name) || COALESCE((SELECT char(10) || group_concat(hub_fold(address), char(10))"
    " FROM identities WHERE contact_id = contacts.id), '')",
    "length(name) + 40",
    frozenset({"name"}),
)
SOURCES = (MESSAGES, CONVERSATIONS, CONTACTS)


def _index_table(source: Source) -> str:
    # case_sensitive 1: the text is folded before it is indexed, and GLOB (exact
    # on folded text) is what such a table answers from its index.
    return (
        f"CREATE VIRTUAL TABLE {source.index} USING fts5("
        "words, tokenize = 'trigram case_sensitive 1', detail = 'none')"
    )


MIGRATION = [
    _index_table(MESSAGES),
    _index_table(CONVERSATIONS),
    "CREATE TABLE search_marks (name TEXT PRIMARY KEY, last_rowid INTEGER NOT NULL)",
    "INSERT INTO search_marks (name, last_rowid) VALUES ('messages', 0), ('conversations', 0)",
]
# The contact finder's index, added later: filled behind the writers like the rest.
CONTACTS_MIGRATION = [
    _index_table(CONTACTS),
    "INSERT INTO search_marks (name, last_rowid) VALUES ('contacts', 0)",
]
# Later still: the indexer merges each index's segments itself (see
# MERGE_PAGES_MIN). A setting of the FTS5 table, kept in the database.
MERGE_MIGRATION = [
    f"INSERT INTO {source.index} ({source.index}, rank) VALUES ('automerge', 0)"
    for source in SOURCES
]


def merge_pages(chars: int) -> int:
    """How many pages of merging follow a chunk of `chars` indexed characters."""
    return max(MERGE_PAGES_MIN, chars // CHARS_PER_MERGE_PAGE)


# Conversations (as the `conversations` row being filtered) whose subject or
# address, or one of whose messages, holds the text. Parameters: the GLOB
# pattern, the LIKE pattern, the GLOB pattern, the LIKE pattern.
CONVERSATION_HAS_TEXT = (
    f"(conversations.rowid IN (SELECT rowid FROM {CONVERSATIONS.index} WHERE words GLOB ?)"
    f" OR (conversations.rowid > {CONVERSATIONS.mark} AND {CONVERSATIONS.words} LIKE ? ESCAPE '\\')"
    " OR id IN (SELECT conversation_id FROM messages WHERE rowid IN"
    f" (SELECT rowid FROM {MESSAGES.index} WHERE words GLOB ?))"
    " OR id IN (SELECT conversation_id FROM messages"
    f" WHERE rowid > {MESSAGES.mark} AND {MESSAGES.words} LIKE ? ESCAPE '\\'))"
)


# Contacts whose name or an address holds the text, by id. Parameters: the
# GLOB pattern, the LIKE pattern, the limit.
CONTACTS_WITH_TEXT = (
    "SELECT id FROM contacts"
    f" WHERE rowid IN (SELECT rowid FROM {CONTACTS.index} WHERE words GLOB ?)"
    f" OR (rowid > {CONTACTS.mark} AND {CONTACTS.words} LIKE ? ESCAPE '\\')"
    " ORDER BY id LIMIT ?"
)
# Before a contact row is deleted: its entry goes, and should its rowid be
# given again (SQLite gives a new row the largest rowid + 1, so the last row's
# can be), the mark steps back below it, so that the row which takes it is
# indexed as new. Parameter: the contact's id.
FORGET_CONTACT = [
    f"DELETE FROM {CONTACTS.index} WHERE rowid = (SELECT rowid FROM contacts WHERE id = ?1)",
    "UPDATE search_marks SET last_rowid = MIN(last_rowid, (SELECT rowid - 1 FROM contacts"
    " WHERE id = ?1)) WHERE name = 'contacts'"
    " AND (SELECT rowid FROM contacts WHERE id = ?1) = (SELECT MAX(rowid) FROM contacts)",
]


def reindex_sql(source: Source) -> str:
    """Re-index one row by id (a no-op until the indexer has reached it)."""
    return (
        f"UPDATE {source.index} SET words = (SELECT {source.words} FROM {source.table}"
        f" WHERE id = ?1) WHERE rowid = (SELECT rowid FROM {source.table} WHERE id = ?1)"
    )


def glob_anywhere(folded_query: str) -> str:
    """A GLOB pattern matching `folded_query` literally anywhere."""
    escaped = "".join(f"[{c}]" if c in "*?[" else c for c in folded_query)
    return f"*{escaped}*"


class SearchIndexer:
    """Adds stored rows to the index, behind the writers, a chunk at a time.

    Each chunk is one unit of the store's group commit (the mark moves with the
    rows it covers, or neither does) and runs on the event loop, bounded by
    `CHUNK` rows and `CHUNK_CHARS` characters. Not on a thread: folding calls
    Python for every row, and a thread doing so while the loop is busy gets the
    GIL only between the loop's system calls, holding the write lock all the
    while (measured on 100,000 messages alone: 26,600 rows/s on a thread,
    46,900/s on the loop). Several processes on one database take turns: the
    mark is read under the lock. A table with nothing past its mark costs one
    read, no write transaction.
    """

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    async def catch_up(self) -> int:
        """Index every row that stood past the marks when it started; returns how
        many.

        It stops at the first chunk that reaches the newest row rather than
        chasing the rows stored since: under steady ingest that chase ran a
        chunk of a few rows every few milliseconds, each paying a chunk's
        fixed cost (a commit, the marks, a merge of at least MERGE_PAGES_MIN
        pages) for a handful of rows — 25 rows a chunk on average at the
        ingest benchmark's peak. The next round, INDEX_EVERY_SECONDS later,
        takes them in full chunks."""
        done = 0
        for source in SOURCES:
            if not await self._behind(source):
                continue
            while True:
                started = time.perf_counter()
                chunk = await self._chunk(source)
                done += chunk.indexed
                if not chunk.more:
                    break
                took = time.perf_counter() - started
                await asyncio.sleep(max(PAUSE_SECONDS, took * PAUSE_FACTOR))  # webhooks go first
        return done

    async def _behind(self, source: Source) -> bool:
        """Whether rows stand past the mark (read without the write lock)."""
        row = await self.store._fetch_one(
            f"SELECT EXISTS (SELECT 1 FROM {source.table} WHERE rowid > {source.mark}) AS behind",
            (),
        )
        return bool(row and row["behind"])

    async def _chunk(self, source: Source) -> Chunk:
        """Index the rows past the mark, up to CHUNK rows and CHUNK_CHARS
        characters, in one transaction."""
        store = self.store
        # Committed at once, not left open for the webhooks of this turn of the
        # loop to join: once an FTS5 table is written in a transaction, every
        # later savepoint in it (each webhook's unit) calls into FTS5 too.
        async with store.transaction(commit_now=True):
            row = await store._fetch_one(f"SELECT {source.mark} AS mark", ())
            assert row is not None
            mark = row["mark"]
            sizes = await store._fetch_all(
                f"SELECT rowid, {source.size} AS size FROM {source.table}"
                " WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (mark, CHUNK),
            )
            taken = total = chars = 0
            for size in sizes:
                total += size["size"] or 0
                if taken and total > CHUNK_CHARS:
                    break  # the first row is always taken, however long
                taken += 1
                chars = total
            if not taken:
                return Chunk(0, more=False)
            end = sizes[taken - 1]["rowid"]
            # OR REPLACE: a rowid used again (were rows ever deleted) takes its
            # new text rather than stopping the indexer on a conflict.
            await store._write(
                f"INSERT OR REPLACE INTO {source.index} (rowid, words)"
                f" SELECT rowid, {source.words} FROM {source.table} WHERE rowid > ? AND rowid <= ?",
                (mark, end),
            )
            await store._write(
                "UPDATE search_marks SET last_rowid = ? WHERE name = ?", (end, source.table)
            )
            # Merges only where a level holds enough segments ("usermerge", 4).
            await store._write(
                f"INSERT INTO {source.index} ({source.index}, rank) VALUES ('merge', ?)",
                (merge_pages(chars),),
            )
        # More stood past the mark if this chunk was cut short by the character
        # budget, or read as many rows as it could (the next may be there).
        return Chunk(taken, more=taken < len(sizes) or len(sizes) == CHUNK)

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(INDEX_EVERY_SECONDS)
            try:
                await self.catch_up()
            except StoreUnavailable as exc:
                log.warning(
                    "search index not updated; trying again",
                    extra={"event": "search.index_failed", "reason": exc.message},
                )
