"""The embedded store: one SQLite file in WAL mode.

Statements run synchronously on the event loop thread. A small indexed query
takes a few microseconds there, while handing each statement to a thread and
back (what aiosqlite does) costs about ten times the statement itself; the
few operations that can wait — taking the write lock while another process
holds it, WAL checkpoints — go to a thread instead, so the loop never blocks.

Two connections: a writer, used by one transaction at a time (an asyncio lock
in this process, `BEGIN IMMEDIATE` across processes), and a reader, which WAL
lets run beside the writer. Reads made inside a transaction go through the
writer so they see the transaction's own writes.

Times are stored as integer milliseconds since the epoch (exact and fast to
compare); lists and nested records as JSON text.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar, get_args

from pydantic import BaseModel
from pydantic_core import from_json, to_json

from hub.errors import (
    Conflict,
    DuplicateMessage,
    IdentityTaken,
    InvalidRequest,
    NotFound,
    StoreUnavailable,
)
from hub.inbox.model import (
    OPEN_STATUSES,
    Agent,
    ApiToken,
    AuditEntry,
    CannedResponse,
    CareTask,
    Consent,
    Contact,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Identity,
    Message,
    Presence,
    from_ms,
    to_ms,
)
from hub.inbox.search import fold, prepare_fold
from hub.inbox.search_index import CONTACTS as CONTACT_WORDS
from hub.inbox.search_index import CONTACTS_MIGRATION as CONTACT_INDEX_MIGRATION
from hub.inbox.search_index import (
    CONTACTS_WITH_TEXT,
    CONVERSATION_HAS_TEXT,
    FORGET_CONTACT,
    SearchIndexer,
    glob_anywhere,
    reindex_sql,
)
from hub.inbox.search_index import CONVERSATIONS as CONVERSATION_WORDS
from hub.inbox.search_index import MERGE_MIGRATION as SEARCH_MERGE_MIGRATION
from hub.inbox.search_index import MESSAGES as MESSAGE_WORDS
from hub.inbox.search_index import MIGRATION as SEARCH_INDEX_MIGRATION
from hub.inbox.search_index import Source as SearchSource
from hub.inbox.store import (
    ConversationFilter,
    Expectation,
    KnownSender,
    Page,
    PageCursor,
    Store,
    StoreCounts,
    check_fields,
    merged_fields,
)

SCHEMA_VERSION = 1

log = logging.getLogger(__name__)

# Each entry upgrades the schema by one version; never edit a shipped entry. A
# string is split at ";"; a list holds statements that contain ";" (triggers).
MIGRATIONS: list[str | list[str]] = [
    """
    CREATE TABLE contacts (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        language TEXT,
        timezone TEXT,
        birthday TEXT,
        tags TEXT NOT NULL,
        attributes TEXT NOT NULL,
        owner_id TEXT,
        consent TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE identities (
        channel TEXT NOT NULL,
        address TEXT NOT NULL,
        contact_id TEXT NOT NULL REFERENCES contacts(id),
        position INTEGER NOT NULL,
        PRIMARY KEY (channel, address)
    ) WITHOUT ROWID;
    CREATE INDEX identities_by_contact ON identities (contact_id, position);

    CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        contact_id TEXT NOT NULL REFERENCES contacts(id),
        account_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        contact_address TEXT NOT NULL,
        subject TEXT NOT NULL,
        status TEXT NOT NULL,
        assignee_id TEXT,
        team_id TEXT,
        labels TEXT NOT NULL,
        priority TEXT NOT NULL,
        first_response_due_at INTEGER,
        resolution_due_at INTEGER,
        first_response_at INTEGER,
        resolved_at INTEGER,
        snoozed_until INTEGER,
        last_activity_at INTEGER NOT NULL,
        unread_count INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX conversations_by_contact
        ON conversations (contact_id, account_id, last_activity_at DESC);
    CREATE INDEX conversations_by_activity ON conversations (last_activity_at DESC, id DESC);
    CREATE INDEX conversations_by_status
        ON conversations (status, last_activity_at DESC, id DESC);
    CREATE INDEX conversations_by_assignee
        ON conversations (assignee_id, status, last_activity_at DESC, id DESC);
    CREATE INDEX conversations_by_channel
        ON conversations (channel, status, last_activity_at DESC, id DESC);
    CREATE INDEX conversations_by_account
        ON conversations (account_id, status, last_activity_at DESC, id DESC);

    CREATE TABLE messages (
        id TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES conversations(id),
        account_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        direction TEXT NOT NULL,
        sender TEXT NOT NULL,
        text TEXT NOT NULL,
        html TEXT,
        attachments TEXT NOT NULL,
        external_id TEXT,
        thread TEXT NOT NULL,
        status TEXT,
        error TEXT,
        attempts INTEGER NOT NULL,
        idempotency_key TEXT,
        meta TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX messages_by_external_id
        ON messages (channel, account_id, external_id) WHERE external_id IS NOT NULL;
    CREATE UNIQUE INDEX messages_by_idempotency_key
        ON messages (conversation_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
    CREATE INDEX messages_by_conversation ON messages (conversation_id, created_at, id);
    CREATE INDEX messages_queued ON messages (created_at) WHERE status = 'queued';

    CREATE TABLE agents (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        email TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        team_ids TEXT NOT NULL,
        skills TEXT NOT NULL,
        languages TEXT NOT NULL,
        capacity INTEGER NOT NULL,
        presence TEXT NOT NULL,
        password_hash TEXT,
        active INTEGER NOT NULL,
        last_assigned_at INTEGER,
        created_at INTEGER NOT NULL
    );

    CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL REFERENCES agents(id),
        name TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        last_used_at INTEGER
    );
    """,
    """
    CREATE TABLE channel_state (
        account_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (account_id, key)
    ) WITHOUT ROWID;
    """,
    """
    ALTER TABLE agents ADD COLUMN phone TEXT;
    ALTER TABLE agents ADD COLUMN extension TEXT;
    CREATE UNIQUE INDEX agents_by_extension ON agents (extension) WHERE extension IS NOT NULL;
    """,
    # `message_by_thread_key` must repeat this expression word for word to use it.
    """
    CREATE INDEX messages_by_thread_key
        ON messages (account_id, json_extract(thread, '$.message_id'), created_at)
        WHERE json_extract(thread, '$.message_id') IS NOT NULL;
    """,
    # Every inbound message moves its conversation's last_activity_at, which each
    # conversation index carries: fewer of them is a cheaper write. Views by
    # channel or account filter within the status (or assignee) index instead.
    """
    DROP INDEX conversations_by_activity;
    DROP INDEX conversations_by_channel;
    DROP INDEX conversations_by_account;
    """,
    # The agent workspace: its audit trail and canned responses.
    """
    CREATE TABLE audit_log (
        id TEXT PRIMARY KEY,
        at INTEGER NOT NULL,
        actor_id TEXT,
        action TEXT NOT NULL,
        target TEXT,
        detail TEXT NOT NULL
    );
    CREATE TABLE canned_responses (
        id TEXT PRIMARY KEY,
        shortcut TEXT NOT NULL UNIQUE,
        text TEXT NOT NULL,
        created_by TEXT,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX api_tokens_by_agent ON api_tokens (agent_id, created_at);
    """,
    # Care: a survey answer on the conversation, and the care messages decided
    # on (unique key = sent once), with what waits for a later moment.
    """
    ALTER TABLE conversations ADD COLUMN satisfaction INTEGER;
    ALTER TABLE conversations ADD COLUMN satisfaction_at INTEGER;
    CREATE TABLE care_tasks (
        key TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        contact_id TEXT NOT NULL,
        conversation_id TEXT,
        due_at INTEGER,
        state TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX care_tasks_due ON care_tasks (due_at) WHERE state = 'pending';
    CREATE INDEX care_tasks_by_contact ON care_tasks (contact_id, kind) WHERE state = 'pending';
    CREATE INDEX contacts_by_birthday ON contacts (substr(birthday, 6)) WHERE birthday IS NOT NULL;
    """,
    # An agent's load (conversations assigned and not resolved) as a column, so
    # the router's capacity check and its compare-and-set are one statement.
    # Triggers keep it right on every write, whoever makes it.
    [
        "ALTER TABLE agents ADD COLUMN open_count INTEGER NOT NULL DEFAULT 0",
        """UPDATE agents SET open_count = (
            SELECT COUNT(*) FROM conversations
            WHERE assignee_id = agents.id AND status != 'resolved')""",
        """CREATE TRIGGER conversation_load_insert AFTER INSERT ON conversations
        WHEN NEW.assignee_id IS NOT NULL AND NEW.status != 'resolved'
        BEGIN
            UPDATE agents SET open_count = open_count + 1 WHERE id = NEW.assignee_id;
        END""",
        """CREATE TRIGGER conversation_load_update AFTER UPDATE OF assignee_id, status
        ON conversations
        WHEN OLD.assignee_id IS NOT NEW.assignee_id
            OR (OLD.status = 'resolved') != (NEW.status = 'resolved')
        BEGIN
            UPDATE agents SET open_count = open_count - 1
            WHERE id = OLD.assignee_id AND OLD.status != 'resolved';
            UPDATE agents SET open_count = open_count + 1
            WHERE id = NEW.assignee_id AND NEW.status != 'resolved';
        END""",
        """CREATE INDEX conversations_waiting ON conversations (created_at, id)
        WHERE assignee_id IS NULL AND status != 'resolved'""",
    ],
    # Agents' text searches read an index (hub.inbox.search_index), filled behind
    # the writers from the first row on.
    SEARCH_INDEX_MIGRATION,
    # The contact finder reads one too.
    CONTACT_INDEX_MIGRATION,
    # A message sent as several provider messages (a long text, files): the parts
    # accepted so far on the message, and each part's provider id in a table of
    # its own, so that a receipt naming any part finds the message.
    """
    ALTER TABLE messages ADD COLUMN sent_parts TEXT NOT NULL DEFAULT '[]';
    CREATE TABLE message_parts (
        channel TEXT NOT NULL,
        account_id TEXT NOT NULL,
        external_id TEXT NOT NULL,
        message_id TEXT NOT NULL REFERENCES messages(id),
        PRIMARY KEY (channel, account_id, external_id)
    ) WITHOUT ROWID;
    """,
    # The search indexes' segments are merged by the indexer, a little at a time.
    SEARCH_MERGE_MIGRATION,
    # A contact's conversations in the order the inbox asks for them, the id
    # breaking ties: without it, a lookup of one status (the resolved
    # conversation to reopen, asked for every new sender) walked
    # conversations_by_status instead, through every conversation in that
    # status, and the others sorted what they found.
    """
    DROP INDEX conversations_by_contact;
    CREATE INDEX conversations_by_contact
        ON conversations (contact_id, account_id, last_activity_at DESC, id DESC);
    """,
    # Outbound messages by delivery status, for /metrics' counts (inbound ones
    # have none); and every label in use with how many conversations carry it,
    # kept by triggers, for the workspace's label views.
    [
        "CREATE INDEX messages_by_status ON messages (status) WHERE status IS NOT NULL",
        "CREATE TABLE conversation_labels ("
        " label TEXT PRIMARY KEY, conversations INTEGER NOT NULL) WITHOUT ROWID",
        "INSERT INTO conversation_labels (label, conversations)"
        " SELECT label.value, COUNT(DISTINCT conversations.id)"
        " FROM conversations, json_each(conversations.labels) AS label GROUP BY label.value",
        """CREATE TRIGGER conversation_labels_insert AFTER INSERT ON conversations
        WHEN NEW.labels != '[]'
        BEGIN
            INSERT INTO conversation_labels (label, conversations)
            SELECT DISTINCT value, 1 FROM json_each(NEW.labels) WHERE true
            ON CONFLICT (label) DO UPDATE SET conversations = conversations + 1;
        END""",
        """CREATE TRIGGER conversation_labels_update AFTER UPDATE OF labels ON conversations
        WHEN OLD.labels IS NOT NEW.labels
        BEGIN
            UPDATE conversation_labels SET conversations = conversations - 1
            WHERE label IN (SELECT value FROM json_each(OLD.labels));
            INSERT INTO conversation_labels (label, conversations)
            SELECT DISTINCT value, 1 FROM json_each(NEW.labels) WHERE true
            ON CONFLICT (label) DO UPDATE SET conversations = conversations + 1;
        END""",
        """CREATE TRIGGER conversation_labels_delete AFTER DELETE ON conversations
        WHEN OLD.labels != '[]'
        BEGIN
            UPDATE conversation_labels SET conversations = conversations - 1
            WHERE label IN (SELECT value FROM json_each(OLD.labels));
        END""",
    ],
]


def construct_complete(model: type[BaseModel], fields: dict[str, Any]) -> Any:
    """`model.model_construct(**fields)` for a dict that holds every field of the
    model and nothing else (a decoded row): the same record, without pydantic's
    walk over the fields looking for aliases and defaults, which was most of the
    cost of reading a campaign's recipients and contacts. Only for models with
    no private attributes and no `model_post_init` (`_Table` checks)."""
    record = model.__new__(model)
    object.__setattr__(record, "__dict__", fields)
    object.__setattr__(record, "__pydantic_fields_set__", set(fields))
    object.__setattr__(record, "__pydantic_extra__", None)
    object.__setattr__(record, "__pydantic_private__", None)
    return record


_STORED_AS_IS: frozenset[Any] = frozenset({str, int, str | None, int | None})


def _write_json(value: Any) -> str:
    if type(value) is list and not value:
        return "[]"
    if type(value) is dict and not value:
        return "{}"
    return to_json(value).decode()


def _write_plain(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


class _Table:
    """How one model maps onto one table: which columns hold JSON, times, booleans."""

    def __init__(
        self,
        name: str,
        model: type[BaseModel],
        *,
        json: Sequence[str] = (),
        times: Sequence[str] = (),
        flags: Sequence[str] = (),
        skip: Sequence[str] = (),
        flat: bool = False,
        convert: Mapping[str, Callable[[Any], Any]] | None = None,
        key: str = "id",
    ) -> None:
        self.name = name
        self.key = key
        self.model = model
        self.json = frozenset(json)
        self.times = frozenset(times)
        self.flags = frozenset(flags)
        # Flat models (no nested records in their JSON columns) are rebuilt from
        # rows without validation: the rows are ours, written from valid models,
        # and validating them again was the largest cost of a read.
        self.flat = flat
        # Columns a flat model needs turned into their type (a date, nested records).
        self.convert = dict(convert or {})
        # Each column that is not kept as stored, with how it is read (one look-up
        # per value instead of four).
        self.readers = {
            column: read
            for column in {*self.json, *self.times, *self.flags, *self.convert}
            if (read := self._reader(column)) is not None
        }
        self.columns = [f for f in model.model_fields if f not in skip]
        # Each column's writer, looked up once here rather than per value.
        self.writers = {column: self._writer(column) for column in model.model_fields}
        self.column_writers = [self.writers[c] for c in self.columns]
        # Rows holding every field are built directly (`construct_complete`).
        plain = not model.__private_attributes__ and model.__pydantic_post_init__ is None
        self.field_count = len(model.model_fields) if plain else -1
        self.insert_sql = (
            f"INSERT INTO {name} ({', '.join(self.columns)}) "
            f"VALUES ({', '.join('?' for _ in self.columns)})"
        )

    def encode(self, column: str, value: Any) -> Any:
        if value is None:
            return None
        writer = self.writers.get(column, _write_plain)
        return value if writer is None else writer(value)

    def row_values(self, record: BaseModel) -> list[Any]:
        values = record.__dict__
        return [
            value if writer is None or value is None else writer(value)
            for value, writer in zip(
                [values[c] for c in self.columns], self.column_writers, strict=True
            )
        ]

    def _writer(self, column: str) -> Callable[[Any], Any] | None:
        """How a column's value (not None) is stored; None: as it is."""
        if column in self.json:
            return _write_json
        if column in self.times:
            return to_ms
        if self.model.model_fields[column].annotation in _STORED_AS_IS:
            return None
        return _write_plain

    def _reader(self, column: str) -> Callable[[Any], Any] | None:
        """How a column's stored value (not null) becomes the model's; None: as is."""
        read: Callable[[Any], Any] | None = None
        if column in self.json:
            read = from_json
        elif column in self.times:
            read = from_ms
        elif column in self.flags:
            read = bool
        convert = self.convert.get(column)
        if convert is None or read is None:
            return convert or read
        stored = read
        return lambda value: convert(stored(value))

    def decode(self, row: sqlite3.Row, **extra: Any) -> Any:
        readers = self.readers
        fields: dict[str, Any] = {}
        for column, value in zip(row.keys(), row, strict=True):
            if value is not None:
                read = readers.get(column)
                if read is not None:
                    value = read(value)
            fields[column] = value
        fields.update(extra)
        if self.flat:
            if len(fields) == self.field_count:
                return construct_complete(self.model, fields)
            return self.model.model_construct(**fields)
        return self.model.model_validate(fields)


CONTACTS = _Table(
    "contacts",
    Contact,
    json=("tags", "attributes", "consent", "identities"),
    times=("created_at", "updated_at"),
    skip=("identities",),
    flat=True,
    convert={
        "birthday": date.fromisoformat,
        "consent": lambda c: {key: Consent.model_validate(value) for key, value in c.items()},
        "identities": lambda pairs: [
            construct_complete(Identity, {"channel": c, "address": a}) for c, a in pairs
        ],
    },
)
# A contact and its identities (in the order they were linked) in one statement.
CONTACTS_WITH_IDENTITIES = """
    SELECT contacts.*, (
        SELECT json_group_array(json_array(channel, address)) FROM (
            SELECT channel, address FROM identities
            WHERE contact_id = contacts.id ORDER BY position
        )
    ) AS identities
    FROM contacts
"""
CONTACT_WITH_IDENTITIES = CONTACTS_WITH_IDENTITIES + " WHERE id = ?"

# For `known_sender`: each of the given identities that is known, with its
# contact's name and the contact's newest conversation on the account among the
# open statuses (what `latest_conversation` finds). `{identities}`: one
# IDENTITY_OWNER per identity, joined by UNION ALL; parameters: their channel and
# address pairs, then the account id. Neither an OR over the identities nor
# `status IN (...)`: each made SQLite open an ephemeral table on every run (an OR
# over a WITHOUT ROWID table's key deduplicates what it finds in one), a third of
# this statement's time in the ingest benchmark (py-spy --native).
NOT_CLOSED = " AND ".join(
    f"status != '{s}'" for s in get_args(ConversationStatus) if s not in OPEN_STATUSES
)
KNOWN_SENDER = (
    "SELECT i.contact_id, c.name, v.id, v.status"
    " FROM ({identities}) i JOIN contacts c ON c.id = i.contact_id"
    " LEFT JOIN conversations v ON v.id = ("
    "SELECT id FROM conversations WHERE contact_id = i.contact_id AND account_id = ?"
    f" AND {NOT_CLOSED} ORDER BY last_activity_at DESC, id DESC LIMIT 1)"
)
IDENTITY_OWNER = "SELECT contact_id FROM identities WHERE channel = ? AND address = ?"

CONVERSATIONS = _Table(
    "conversations",
    Conversation,
    json=("labels",),
    times=(
        "first_response_due_at",
        "resolution_due_at",
        "first_response_at",
        "resolved_at",
        "snoozed_until",
        "satisfaction_at",
        "last_activity_at",
        "created_at",
        "updated_at",
    ),
    flat=True,
)
MESSAGES = _Table(
    "messages",
    Message,
    json=("sender", "attachments", "thread", "meta", "sent_parts"),
    times=("created_at", "updated_at"),
)
AGENTS = _Table(
    "agents",
    Agent,
    json=("team_ids", "skills", "languages"),
    times=("last_assigned_at", "created_at"),
    flags=("active",),
    flat=True,
)
CARE_TASKS = _Table(
    "care_tasks",
    CareTask,
    json=("payload",),
    times=("due_at", "created_at", "updated_at"),
    key="key",
)
# Contacts with their identities, by birthday (any year), in id order.
CONTACTS_BORN_ON = (
    CONTACTS_WITH_IDENTITIES
    + " WHERE birthday IS NOT NULL AND substr(birthday, 6) = ? AND id > ? ORDER BY id LIMIT ?"
)
TOKENS = _Table("api_tokens", ApiToken, times=("created_at", "last_used_at"), flat=True)
AUDIT = _Table("audit_log", AuditEntry, json=("detail",), times=("at",), flat=True)
CANNED = _Table("canned_responses", CannedResponse, times=("created_at",), flat=True)


# A checkpoint is a burst of page copying and an fsync (25-100 ms on its
# thread; the loop itself never blocked on it in strace) that competes for
# the CPUs with the loop: under steady ingest at 1,000 messages/s, a checkpoint
# every 5 s put webhook p99 at 25-30 ms, every second at 14-22 ms (none at
# all: ~13 ms). Smaller and more often, then.
CHECKPOINT_EVERY_SECONDS = 1.0
# SQLite starts the WAL over only when a write transaction begins with every
# frame in it copied back, and a checkpoint on its thread never catches up with
# writers that keep adding frames: under sustained ingest the WAL only grew
# (measured: 640-800 MB in a 30-second benchmark, over a 14 MB database), and
# its file stays as large as it ever was. Past this many frames (256 MB of 4 KB
# pages) the checkpointer copies back the last frames with the write lock held,
# and starts the WAL over with a write of its own. Writes wait meanwhile (measured
# under the ingest benchmark: 6-30 ms, once 64 ms, once 110 ms while the
# hypervisor took most of a core), so not too often: every
# 6-8 s at 700 webhooks a second. The file is not cut back after (no
# journal_size_limit): that is SQLite truncating it inside the next commit, on
# the event loop, and cutting 270 MB took 55 ms here.
WAL_RESTART_FRAMES = 65536
# Before it takes the write lock to start the WAL over, the checkpointer
# catches up without it: each pass copies back what was written during the
# one before, until no more than RESTART_LOCKED_FRAMES remain (or
# RESTART_PASSES have run), so that writes wait for those few frames and the
# fsyncs only. Copying under the lock every frame written since the round's
# checkpoint held writes 6-27 ms at 1,640 webhooks a second (~1,000 frames),
# and the open loop's p99 rose with each hold.
RESTART_LOCKED_FRAMES = 256
RESTART_PASSES = 4
# Group commits under load (see `SqliteStore._commit_soon`). Measured with
# bench/ingest.py on a 2-core machine: a commit on the loop at the end of each
# turn took 1.1 units at 64 concurrent webhooks (each paid a whole commit), so
# hub's throughput fell as concurrency rose (2,070 msgs/s at 4, 1,770 at 64);
# committed on a thread it took ~11 units and the loop went on meanwhile
# (2,470 at 16, 3,030 at 64), but a lone webhook waited for the hop (1,280
# against 1,380 at 1 and the same at 4). So: on the loop while commits are
# spaced out; on the thread once PIPELINE_AFTER have come back to back (each
# within COMMIT_GAP_SECONDS of the one before), for as long as the groups it
# commits hold at least PIPELINE_GROUP units.
COMMIT_GAP_SECONDS = 0.001
PIPELINE_AFTER = 8
PIPELINE_GROUP = 4


def _any_identity(identities: Sequence[Identity]) -> tuple[str, list[str]]:
    """A WHERE clause matching any of `identities` in the identities table, and
    its parameters."""
    clause = " OR ".join("(channel = ? AND address = ?)" for _ in identities)
    return clause, _identity_pairs(identities)


def _identity_pairs(identities: Sequence[Identity]) -> list[str]:
    """Each identity's channel and address, in order: the parameters of a
    statement that names each identity by its key."""
    return [part for i in identities for part in (i.channel, i.address)]


def _like_escape(text: str) -> str:
    """`text` matched literally by LIKE ... ESCAPE '\\' (LIKE is case-insensitive for ASCII)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _fetch_all_rows(db: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[sqlite3.Row]:
    rows: list[sqlite3.Row] = db.execute(sql, params).fetchall()
    return rows


T = TypeVar("T")


async def _on_thread(db: sqlite3.Connection, call: Callable[..., T], *args: Any) -> T:
    """`call(*args)`, which uses `db`, on a thread. If the caller is cancelled
    meanwhile (a request given up, the store closing), the statement is
    interrupted and the caller waits until the thread has let go of `db`:
    closing a connection, or running another statement on it, while a thread
    is still inside it crashes the process."""
    running = asyncio.ensure_future(asyncio.to_thread(call, *args))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        db.interrupt()
        await asyncio.wait({running})
        if not running.cancelled():
            running.exception()  # "interrupted", or whatever it ended with: dealt with
        raise


def _checkpoint(db: sqlite3.Connection) -> tuple[int, int, int]:
    """A passive checkpoint (runs on a thread): (busy, frames in the WAL, frames
    copied back)."""
    row = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return row[0], row[1], row[2]


def _checkpoint_and_start_over(db: sqlite3.Connection) -> tuple[int, int, int]:
    """A passive checkpoint and, if it copied every frame back, a write that
    starts the WAL over, both on the calling thread (the checkpointer's).

    The write that starts a WAL over syncs the new WAL's header, even with
    synchronous=NORMAL: left to the next commit, that fsync ran on the event
    loop and held every request (measured: 0.5-1.5 ms on this machine's disk,
    each time; more on a network disk). The write rewrites the schema's
    version number as it stands, which changes nothing; a reader still on an
    older snapshot keeps the WAL from starting over, and the write then only
    adds a frame."""
    busy, frames, copied = _checkpoint(db)
    if frames and frames == copied:
        db.execute("BEGIN IMMEDIATE")
        try:
            (version,) = db.execute("PRAGMA user_version").fetchone()
            db.execute(f"PRAGMA user_version={int(version)}")
            db.execute("COMMIT")
        finally:
            if db.in_transaction:
                db.execute("ROLLBACK")
    return busy, frames, copied


def _begin_waiting(writer: sqlite3.Connection, busy_timeout_ms: int) -> None:
    """BEGIN IMMEDIATE, waiting up to the busy timeout for another process's lock
    (runs on a thread; the asyncio write lock keeps the loop off this connection)."""
    writer.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    try:
        writer.execute("BEGIN IMMEDIATE")
    finally:
        writer.execute("PRAGMA busy_timeout=0")


def _is_unavailable(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in text or "busy" in text or "disk" in text or "unable to open" in text
    )


def _integrity_error(exc: sqlite3.IntegrityError) -> Exception:
    """The hub error for a broken key; methods refine it where they know more.
    Anything else (a CHECK, a trigger) stays the database's own error."""
    text = str(exc)
    if "FOREIGN KEY" in text:
        return NotFound("a record it refers to does not exist")
    if "UNIQUE" in text or "PRIMARY KEY" in text:
        return Conflict(f"already exists ({text.split(':', 1)[-1].strip()})")
    return exc


class _Unit:
    """One unit of work, committed together with the other units of its group
    (group commit); nested in another, a savepoint.

    A commit writes every page the units touched to the WAL, and the units of a
    group share that cost. At a moderate pace a group is what one turn of the
    loop ran; under sustained load the commit runs on a thread and the group is
    every unit that ran while the previous commit was written (see
    `SqliteStore._commit_soon`): a dozen at 64 concurrent webhooks, where a
    turn held one. Each unit after a group's
    first is a savepoint, so one that fails leaves nothing while the others
    carry on; the caller returns only once its unit is committed (or raises
    StoreUnavailable if the commit failed, in which case none of the group was
    written). The group's first unit needs no savepoint: if it fails, the whole
    transaction (it alone) is rolled back at once rather than holding the write
    lock until the next turn of the loop.

    A class rather than stacked `asynccontextmanager`s, and savepoints under a
    fixed name (so SQLite's statement cache keeps them prepared): every
    webhook passes through here, and those cost a tenth of its store time.
    """

    __slots__ = ("commit_now", "first", "nested", "store", "token")

    def __init__(self, store: SqliteStore, commit_now: bool) -> None:
        self.store = store
        self.commit_now = commit_now

    async def __aenter__(self) -> None:
        store = self.store
        if store._in_transaction.get():
            self.nested = True
            store._w.execute("SAVEPOINT nested")
            return
        self.nested = False
        await store._write_lock.acquire()
        self.token = store._in_transaction.set(True)
        try:
            self.first = store._group is None
            if self.first:
                await store._begin()
                store._group = []
                asyncio.get_running_loop().call_soon(store._commit_soon)
            else:
                store._w.execute("SAVEPOINT unit")
        except BaseException:
            store._in_transaction.reset(self.token)
            store._write_lock.release()
            raise

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: Any
    ) -> None:
        store = self.store
        if self.nested:
            if kind is not None:
                store._w.execute("ROLLBACK TO nested")
            store._w.execute("RELEASE nested")
            return
        try:
            if kind is not None:
                if self.first:
                    store._rollback()
                    store._group = None
                else:
                    store._w.execute("ROLLBACK TO unit")
                    store._w.execute("RELEASE unit")
                return
            if not self.first:
                store._w.execute("RELEASE unit")
            # The caller's own future, not the group's: a caller cancelled while
            # it waits must not cancel the commit the others wait for.
            committed = asyncio.get_running_loop().create_future()
            assert store._group is not None
            store._group.append(committed)
        finally:
            store._in_transaction.reset(self.token)
            store._write_lock.release()
        if self.commit_now:
            store._commit_group()  # resolves `committed`: the await below does not suspend
        await committed


class SqliteStore(Store):
    def __init__(self, path: Path | str, *, busy_timeout_ms: int = 5000) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        # Long reads (text search, reports) run on a thread with this connection.
        self._long_reader: sqlite3.Connection | None = None
        self._long_lock = asyncio.Lock()
        self._write_lock = asyncio.Lock()
        self._in_transaction: ContextVar[bool] = ContextVar(
            f"sqlite-transaction-{id(self)}", default=False
        )
        self._commits = 0
        # The open group commit: a future for each unit in it that succeeded.
        self._group: list[asyncio.Future[None]] | None = None
        # Commits under load (see `_commit_soon`): the one under way on the
        # committer's thread, if any; when the last commit on the loop was
        # scheduled, and how many came back to back; whether the next goes to
        # the thread; how many have.
        self._committing: asyncio.Task[None] | None = None
        self._committer: ThreadPoolExecutor | None = None
        self._last_commit = 0.0
        self._back_to_back = 0
        self._pipelined = False
        self._commits_on_thread = 0
        self._checkpointer: asyncio.Task[None] | None = None
        self.indexer = SearchIndexer(self)
        self._indexing: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------
    async def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = self._connect(busy_timeout_ms=0)
            self._writer.execute("PRAGMA journal_mode=WAL")
            # Checkpoints run on a thread (below), never inside a commit on the loop.
            self._writer.execute("PRAGMA wal_autocheckpoint=0")
            await self._migrate()
            self._reader = self._connect(busy_timeout_ms=min(self.busy_timeout_ms, 250))
        except (OSError, sqlite3.Error) as exc:
            self._close_connections()
            raise StoreUnavailable(f"cannot open SQLite store at {self.path}: {exc}") from exc
        prepare_fold()  # the connections' hub_fold, before any statement calls it
        self._checkpointer = asyncio.create_task(self._checkpoint_forever(), name="sqlite-wal")
        self._indexing = asyncio.create_task(self.indexer.run_forever(), name="sqlite-search")

    def _connect(self, *, busy_timeout_ms: int) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.create_function("hub_fold", 1, fold, deterministic=True)  # searches (hub.inbox.search)
        # NORMAL in WAL mode survives a crash of the process (not of the machine)
        # without an fsync per commit, which is what keeps ingest fast.
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        db.execute("PRAGMA foreign_keys=ON")
        # Savepoints (every unit of a group commit is one) keep the pages they
        # change in a sub-journal: in memory, not a temp file created and
        # unlinked per transaction (measured: 5 syscalls and ~5 page writes saved
        # per ingested message).
        db.execute("PRAGMA temp_store=MEMORY")
        return db

    async def _migrate(self) -> None:
        async with self.transaction():
            row = self._w.execute("PRAGMA user_version").fetchone()
            version = row[0] if row else 0
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                statements = script.split(";") if isinstance(script, str) else script
                for statement in statements:
                    if statement.strip():
                        self._w.execute(statement)
                self._w.execute(f"PRAGMA user_version={number}")

    async def migrate_part(self, part: str, migrations: Sequence[str]) -> None:
        """Bring the tables of another part of the hub (campaigns, reports) up to
        date: its scripts are numbered apart from the inbox's `user_version`, in
        `schema_parts`, so that the parts evolve without renumbering each other.
        Never edit a shipped script; add one."""
        async with self.transaction():
            await self._write(
                "CREATE TABLE IF NOT EXISTS schema_parts"
                " (part TEXT PRIMARY KEY, version INTEGER NOT NULL)",
                (),
            )
            row = await self._fetch_one("SELECT version FROM schema_parts WHERE part = ?", (part,))
            version = row["version"] if row else 0
            for number, script in enumerate(migrations[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        await self._write(statement, ())
                await self._write(
                    "INSERT INTO schema_parts (part, version) VALUES (?, ?)"
                    " ON CONFLICT (part) DO UPDATE SET version = excluded.version",
                    (part, number),
                )

    async def _checkpoint_forever(self) -> None:
        """Fold the WAL back into the database on a thread now and then, so no
        commit on the event loop ever pays for a checkpoint.

        Every second rather than after every commit: a page written many times
        in between (a busy conversation index) is copied back only once; and
        not every few seconds: a bigger checkpoint's burst slowed webhooks
        more (see CHECKPOINT_EVERY_SECONDS).

        The WAL starts over here too, not in a commit (see
        `_checkpoint_and_start_over`): in the first round with nothing written
        since the last checkpoint (writes paused: the end of a burst) and when
        the WAL has grown past WAL_RESTART_FRAMES (writes never paused). Not
        after every checkpoint that happened to copy every frame back: under
        steady writes that was every round, and each start-over holds writes.
        """
        checkpointer = self._connect(busy_timeout_ms=0)
        frames = 0  # in the WAL at the last checkpoint; 0 once it has started over
        try:
            while True:
                await asyncio.sleep(CHECKPOINT_EVERY_SECONDS)
                try:
                    if self._commits:
                        self._commits = 0
                        _, frames, _ = await _on_thread(checkpointer, _checkpoint, checkpointer)
                        if frames > WAL_RESTART_FRAMES and await self._restart_wal(
                            checkpointer, frames
                        ):
                            frames = 0
                    elif frames and await self._restart_wal(checkpointer, frames):
                        frames = 0
                except sqlite3.Error:
                    pass  # busy: the next round catches up
        finally:
            checkpointer.close()

    async def _restart_wal(self, checkpointer: sqlite3.Connection, frames: int) -> bool:
        """Start the WAL over (see WAL_RESTART_FRAMES): catch up without the
        write lock (see RESTART_LOCKED_FRAMES), then copy back, with no write
        in between, the frames written during the last pass, and make the write
        that starts the WAL over. Writers wait meanwhile: those few frames and
        three fsyncs, on the checkpointer's thread. A reader still on an older
        snapshot (a long search, another process) can keep the WAL from
        starting over; the next round tries again. Whether it started over."""
        for _ in range(RESTART_PASSES):
            _, now, _ = await _on_thread(checkpointer, _checkpoint, checkpointer)
            behind, frames = now - frames, now
            if behind <= RESTART_LOCKED_FRAMES:
                break
        started = time.perf_counter()
        async with self._write_lock:
            if self._group is not None:
                self._commit(self._group)
            locked = time.perf_counter()
            _, now, copied = await _on_thread(
                checkpointer, _checkpoint_and_start_over, checkpointer
            )
        log.debug(
            "WAL copied back for a restart",
            extra={
                "event": "sqlite.wal_restart",
                "frames": now,
                "frames_with_writes_held": now - frames,
                "complete": now == copied,
                "lock_wait_ms": round((locked - started) * 1000, 1),
                "writes_held_ms": round((time.perf_counter() - locked) * 1000, 1),
            },
        )
        return now == copied

    async def close(self) -> None:
        for task in (self._checkpointer, self._indexing):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self._checkpointer = self._indexing = None
        if self._committing is not None:
            await asyncio.wait({self._committing})
        self._commit_group()
        if self._committer is not None:
            self._committer.shutdown()
            self._committer = None
        if self._writer is not None:
            try:
                self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass  # another process is reading; it or a later start checkpoints
        self._close_connections()

    def _close_connections(self) -> None:
        for db in (self._reader, self._writer, self._long_reader):
            if db is not None:
                db.close()
        self._reader = self._writer = self._long_reader = None

    async def ping(self) -> None:
        await self._fetch_one("SELECT 1", ())

    @property
    def _w(self) -> sqlite3.Connection:
        if self._writer is None:
            raise StoreUnavailable("the SQLite store is closed")
        return self._writer

    @property
    def _r(self) -> sqlite3.Connection:
        if self._in_transaction.get():
            return self._w
        if self._reader is None:
            raise StoreUnavailable("the SQLite store is closed")
        return self._reader

    def transaction(self, *, commit_now: bool = False) -> _Unit:
        """All or nothing. `commit_now`: commit as soon as the block is done
        rather than with the rest of this turn's group (ignored when nested).

        Nested, it is a savepoint: a method that raises inside a caller's
        transaction leaves nothing behind while the caller carries on.
        Outermost, it is one unit of work of a group commit (see `_Unit`)."""
        return _Unit(self, commit_now)

    def _commit_group(self) -> None:
        """Commit the open group, unless a unit is still running (then try again
        on the next turn of the loop)."""
        group = self._group
        if group is None:
            return
        if self._write_lock.locked():
            asyncio.get_running_loop().call_soon(self._commit_group)
            return
        self._commit(group)

    def _commit_soon(self) -> None:
        """Commit the group a unit opened, at the end of that turn of the loop.

        At a moderate pace, right here on the loop. Under sustained load
        (commits back to back), on the committer's thread, with the write lock
        held meanwhile: SQLite writes the WAL frames without the GIL while the
        loop goes on with the next webhooks (HTTP, signature, validation),
        whose units then wait for the lock and make the next group (see
        COMMIT_GAP_SECONDS)."""
        if self._group is None or self._committing is not None:
            return
        if not self._pipelined:
            now = time.perf_counter()
            if now - self._last_commit < COMMIT_GAP_SECONDS:
                self._back_to_back += 1
            else:
                self._back_to_back = 0
            self._last_commit = now
            if self._back_to_back < PIPELINE_AFTER:
                self._commit_group()
                return
            self._back_to_back = 0
        self._committing = asyncio.ensure_future(self._commit_on_thread())

    async def _commit_on_thread(self) -> None:
        try:
            async with self._write_lock:
                group = self._group
                if group is None:
                    return  # committed meanwhile (write_committed, a WAL restart)
                self._group = None
                self._pipelined = len(group) >= PIPELINE_GROUP
                if self._committer is None:
                    self._committer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-commit")
                done = asyncio.get_running_loop().run_in_executor(
                    self._committer, self._w.execute, "COMMIT"
                )
                cancelled = False
                while not done.done():
                    try:
                        await asyncio.wait({done})
                    except asyncio.CancelledError:
                        # The thread must let go of the connection before anyone
                        # else uses it (or closes it); the group's fate is still
                        # decided below.
                        cancelled = True
                error = done.exception()
                if error is None:
                    self._commits_on_thread += 1
                    self._committed(group)
                else:
                    self._rollback()
                    self._fail(group, StoreUnavailable(f"SQLite commit failed: {error}"))
                if cancelled:
                    raise asyncio.CancelledError
        finally:
            self._committing = None

    def _committed(self, group: list[asyncio.Future[None]]) -> None:
        self._commits += 1
        for committed in group:
            if not committed.done():  # not cancelled
                committed.set_result(None)

    @staticmethod
    def _fail(group: list[asyncio.Future[None]], error: StoreUnavailable) -> None:
        for committed in group:
            if not committed.done():  # not cancelled
                committed.set_exception(error)
                committed.exception()  # retrieved: its waiter raises it from `await`

    def _commit(self, group: list[asyncio.Future[None]]) -> None:
        """Commit `group`'s transaction and tell its units (no unit may be running)."""
        self._group = None
        try:
            self._w.execute("COMMIT")
        except (sqlite3.Error, StoreUnavailable) as exc:
            self._rollback()
            self._fail(group, StoreUnavailable(f"SQLite commit failed: {exc}"))
            return
        self._committed(group)

    async def _begin(self) -> None:
        """Take the database's write lock. Statements run on the event loop thread
        (a few microseconds each, far less than a hop to a thread and back); only
        when another process holds the lock is the wait moved to a thread, so the
        loop never blocks on it."""
        try:
            self._w.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not _is_unavailable(exc):
                raise StoreUnavailable(f"SQLite store is not writable: {exc}") from exc
        writer = self._w
        try:
            await _on_thread(writer, _begin_waiting, writer, self.busy_timeout_ms)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite store is not writable: {exc}") from exc
        except asyncio.CancelledError:
            self._rollback()  # the lock came just before the interrupt: give it back
            raise

    def _rollback(self) -> None:
        if self._writer is not None and self._writer.in_transaction:
            self._writer.execute("ROLLBACK")

    # -- statement helpers -----------------------------------------------
    async def write_committed(self, sql: str, params: Sequence[Any]) -> int:
        """Run one write statement and commit it (with the rest of the open group)
        before returning, with no turn of the event loop between the commit and
        the caller's next step: for a fact that must be on disk right before an
        irreversible act (SMTP's final "."), so that a crash between the two is
        all but impossible rather than as likely as a loop turn is long."""
        if self._in_transaction.get():
            raise RuntimeError("write_committed cannot run inside a transaction")
        async with _Unit(self, commit_now=True):
            return await self._write(sql, params)

    async def _write(self, sql: str, params: Sequence[Any]) -> int:
        """Run one write statement (inside the current transaction, or its own)."""
        return await self._write_many(sql, params, many=False)

    async def _write_many(self, sql: str, params: Sequence[Any], *, many: bool = True) -> int:
        """Run one write statement once per parameter row (`executemany`), in one
        transaction; returns the rows changed in all."""
        if not self._in_transaction.get():
            async with _Unit(self, commit_now=False):
                return await self._write_many(sql, params, many=many)
        try:
            if many:
                cursor = self._w.executemany(sql, params)
            else:
                cursor = self._w.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            error = _integrity_error(exc)
            if error is exc:
                raise
            raise error from exc
        except sqlite3.Error as exc:
            if _is_unavailable(exc):
                raise StoreUnavailable(f"SQLite store unavailable: {exc}") from exc
            raise
        return cursor.rowcount

    async def _fetch_all(self, sql: str, params: Sequence[Any]) -> list[sqlite3.Row]:
        try:
            return self._r.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            if _is_unavailable(exc):
                raise StoreUnavailable(f"SQLite store unavailable: {exc}") from exc
            raise

    async def _fetch_all_long(self, sql: str, params: Sequence[Any]) -> list[sqlite3.Row]:
        """A read that may take long (a text search over every message, a report):
        on a thread, with a connection of its own, so the event loop — and every
        webhook it serves — carries on meanwhile. One at a time per process.
        Inside a transaction it runs as any read: it must see that transaction."""
        if self._in_transaction.get():
            return await self._fetch_all(sql, params)
        async with self._long_lock:
            if self._writer is None:
                raise StoreUnavailable("the SQLite store is closed")
            if self._long_reader is None:
                self._long_reader = self._connect(busy_timeout_ms=self.busy_timeout_ms)
                # Room for a report's GROUP BY over a hundred thousand rows to
                # sort in memory (measured: a 90-day report 20-40% faster than
                # with the default 2 MB); pages are taken only as a read needs them.
                self._long_reader.execute("PRAGMA cache_size=-32768")
            reader = self._long_reader
            try:
                return await _on_thread(reader, _fetch_all_rows, reader, sql, params)
            except sqlite3.Error as exc:
                if _is_unavailable(exc):
                    raise StoreUnavailable(f"SQLite store unavailable: {exc}") from exc
                raise

    async def _fetch_one(self, sql: str, params: Sequence[Any]) -> sqlite3.Row | None:
        try:
            row: sqlite3.Row | None = self._r.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            if _is_unavailable(exc):
                raise StoreUnavailable(f"SQLite store unavailable: {exc}") from exc
            raise
        return row

    async def _update(
        self,
        table: _Table,
        record_id: str,
        expect: Expectation | None,
        changes: Mapping[str, Any],
    ) -> bool:
        check_fields(table.model, changes, expect)
        if not changes:
            return False
        sets = ", ".join(f"{column} = ?" for column in changes)
        params: list[Any] = [table.encode(c, v) for c, v in changes.items()]
        where = [f"{table.key} = ?"]
        params.append(record_id)
        for column, wanted in (expect or {}).items():
            if isinstance(wanted, tuple):
                options = [table.encode(column, w) for w in wanted]
                clause = " OR ".join(
                    f"{column} IS NULL" if o is None else f"{column} = ?" for o in options
                )
                where.append(f"({clause})")
                params.extend(o for o in options if o is not None)
            else:
                where.append(f"{column} IS ?")
                params.append(table.encode(column, wanted))
        sql = f"UPDATE {table.name} SET {sets} WHERE {' AND '.join(where)}"
        return await self._write(sql, params) == 1

    async def _update_indexed(
        self,
        table: _Table,
        source: SearchSource,
        record_id: str,
        expect: Expectation | None,
        changes: Mapping[str, Any],
    ) -> bool:
        """`_update` of a row the search index holds: re-indexed in the same
        transaction when a change touches what is indexed (only then)."""
        if source.fields.isdisjoint(changes):
            return await self._update(table, record_id, expect, changes)
        async with self.transaction():
            changed = await self._update(table, record_id, expect, changes)
            if changed:
                await self._write(reindex_sql(source), (record_id,))
            return changed

    # -- contacts --------------------------------------------------------
    async def add_contact(self, contact: Contact) -> None:
        async with self.transaction():
            await self._write(CONTACTS.insert_sql, CONTACTS.row_values(contact))
            for position, identity in enumerate(contact.identities):
                await self._insert_identity(contact.id, identity, position)

    async def _insert_identity(self, contact_id: str, identity: Identity, position: int) -> None:
        try:
            await self._write(
                "INSERT INTO identities (channel, address, contact_id, position) VALUES (?,?,?,?)",
                (identity.channel, identity.address, contact_id, position),
            )
        except Conflict as exc:
            raise IdentityTaken(
                f"{identity.channel} {identity.address} belongs to a contact"
            ) from exc

    async def get_contact(self, contact_id: str) -> Contact | None:
        row = await self._fetch_one(CONTACT_WITH_IDENTITIES, (contact_id,))
        return None if row is None else CONTACTS.decode(row)

    async def contacts_by_identity(self, identities: Sequence[Identity]) -> dict[Identity, str]:
        if not identities:
            return {}
        clause, params = _any_identity(identities)
        rows = await self._fetch_all(
            f"SELECT channel, address, contact_id FROM identities WHERE {clause}", params
        )
        return {Identity(channel=r["channel"], address=r["address"]): r["contact_id"] for r in rows}

    async def contacts_owning(self, identities: Sequence[Identity]) -> list[Contact]:
        if not identities:
            return []
        clause, params = _any_identity(identities)
        rows = await self._fetch_all(
            f"{CONTACTS_WITH_IDENTITIES} WHERE id IN"
            f" (SELECT contact_id FROM identities WHERE {clause})",
            params,
        )
        return [CONTACTS.decode(row) for row in rows]

    async def known_sender(
        self, identities: Sequence[Identity], account_id: str
    ) -> KnownSender | None:
        # One statement for what the general path reads in two or three (the
        # contacts whole, then their conversations), decoding no record.
        if not identities:
            return None
        distinct = list(dict.fromkeys(identities))
        owners = " UNION ALL ".join([IDENTITY_OWNER] * len(distinct))
        params = [*_identity_pairs(distinct), account_id]
        rows = await self._fetch_all(KNOWN_SENDER.format(identities=owners), params)
        if len(rows) != len(distinct) or len({r[0] for r in rows}) != 1:
            return None
        contact_id, name, conversation_id, status = rows[0]
        if status != "open":
            return None
        return KnownSender(contact_id, name, conversation_id)

    async def link_identity(self, contact_id: str, identity: Identity) -> None:
        async with self.transaction():
            owner = await self._fetch_one(
                "SELECT contact_id FROM identities WHERE channel = ? AND address = ?",
                (identity.channel, identity.address),
            )
            if owner is not None:
                if owner["contact_id"] == contact_id:
                    return
                raise IdentityTaken(f"{identity.channel} {identity.address} belongs to a contact")
            last = await self._fetch_one(
                "SELECT COALESCE(MAX(position), -1) AS p FROM identities WHERE contact_id = ?",
                (contact_id,),
            )
            await self._insert_identity(contact_id, identity, (last["p"] if last else -1) + 1)
            await self._write(reindex_sql(CONTACT_WORDS), (contact_id,))

    async def update_contact(
        self, contact_id: str, *, expect: Expectation | None = None, **changes: Any
    ) -> bool:
        return await self._update_indexed(CONTACTS, CONTACT_WORDS, contact_id, expect, changes)

    # -- conversations ---------------------------------------------------
    async def add_conversation(self, conversation: Conversation) -> None:
        await self._write(CONVERSATIONS.insert_sql, CONVERSATIONS.row_values(conversation))

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        row = await self._fetch_one("SELECT * FROM conversations WHERE id = ?", (conversation_id,))
        return None if row is None else CONVERSATIONS.decode(row)

    async def latest_conversation(
        self, contact_id: str, account_id: str, *, statuses: Sequence[ConversationStatus] | None
    ) -> Conversation | None:
        sql = "SELECT * FROM conversations WHERE contact_id = ? AND account_id = ?"
        params: list[Any] = [contact_id, account_id]
        if statuses is not None:
            sql += f" AND status IN ({', '.join('?' for _ in statuses)})"
            params.extend(statuses)
        sql += " ORDER BY last_activity_at DESC, id DESC LIMIT 1"
        row = await self._fetch_one(sql, params)
        return None if row is None else CONVERSATIONS.decode(row)

    async def list_conversations(
        self, view: ConversationFilter, *, limit: int, cursor: str | None = None
    ) -> Page[Conversation]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if view.label is not None and not await self._label_in_use(view.label):
            return Page([])  # a label nobody carries: nothing to walk every conversation for
        where: list[str] = []
        params: list[Any] = []
        if view.unassigned:
            where.append("assignee_id IS NULL")
        elif view.assignee_id is not None:
            where.append("assignee_id = ?")
            params.append(view.assignee_id)
        for column in ("channel", "account_id", "contact_id"):
            value = getattr(view, column)
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if view.team_ids is not None:
            where.append(f"team_id IN ({', '.join('?' for _ in view.team_ids)})")
            params.extend(view.team_ids)
        if view.visible_to is not None:
            teams = view.visible_to.team_ids
            where.append(
                "(assignee_id = ? OR team_id IS NULL"
                + (f" OR team_id IN ({', '.join('?' for _ in teams)}))" if teams else ")")
            )
            params.extend([view.visible_to.agent_id, *teams])
        if view.label is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(conversations.labels) WHERE value = ?)")
            params.append(view.label)
        if view.updated_since is not None:
            where.append("updated_at >= ?")
            params.append(to_ms(view.updated_since))
        if view.inactive_since is not None:
            where.append("last_activity_at <= ?")
            params.append(to_ms(view.inactive_since))
        if view.text:
            folded = fold(view.text)
            glob, like = glob_anywhere(folded), "%" + _like_escape(folded) + "%"
            where.append(CONVERSATION_HAS_TEXT)
            params.extend([glob, like, glob, like])
        if cursor:
            after = PageCursor.decode(cursor)
            where.append("(last_activity_at, id) < (?, ?)")
            params.extend([after.ms, after.id])
        # Newest activity first, one status at a time: each status's part of
        # conversations_by_status (or _by_assignee) is already in that order, so
        # each walk stops at the page's end, and the few rows they give are then
        # merged. Over several statuses at once (any status: a label's view, the
        # API without a filter) SQLite read every conversation and sorted them:
        # 60-130 ms at 150,000 conversations, on the event loop.
        statuses = list(dict.fromkeys(view.statuses or get_args(ConversationStatus)))
        order = " ORDER BY last_activity_at DESC, id DESC LIMIT ?"
        one = f"SELECT * FROM conversations WHERE {' AND '.join(['status = ?', *where])}{order}"
        all_params: list[Any] = []
        for status in statuses:
            all_params.extend([status, *params, limit + 1])
        if len(statuses) == 1:
            sql = one
        else:
            sql = " UNION ALL ".join([f"SELECT * FROM ({one})"] * len(statuses)) + order
            all_params.append(limit + 1)
        # A text search reads every message: off the event loop.
        fetch = self._fetch_all_long if view.text else self._fetch_all
        rows = await fetch(sql, all_params)
        items = [CONVERSATIONS.decode(r) for r in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = items[-1]
            next_cursor = PageCursor(to_ms(last.last_activity_at), last.id).encode()
        return Page(items, next_cursor)

    async def _label_in_use(self, label: str) -> bool:
        row = await self._fetch_one(
            "SELECT 1 FROM conversation_labels WHERE label = ? AND conversations > 0", (label,)
        )
        return row is not None

    async def update_conversation(
        self, conversation_id: str, *, expect: Expectation | None = None, **changes: Any
    ) -> bool:
        return await self._update_indexed(
            CONVERSATIONS, CONVERSATION_WORDS, conversation_id, expect, changes
        )

    async def record_inbound_activity(self, conversation_id: str, at: datetime) -> None:
        await self._write(
            "UPDATE conversations SET unread_count = unread_count + 1,"
            " last_activity_at = MAX(last_activity_at, ?), updated_at = ? WHERE id = ?",
            (to_ms(at), to_ms(at), conversation_id),
        )

    # -- messages --------------------------------------------------------
    async def add_message(self, message: Message) -> None:
        try:
            await self._write(MESSAGES.insert_sql, MESSAGES.row_values(message))
        except Conflict as exc:
            raise DuplicateMessage(
                f"message {message.external_id or message.idempotency_key} is already stored"
            ) from exc

    async def get_message(self, message_id: str) -> Message | None:
        row = await self._fetch_one("SELECT * FROM messages WHERE id = ?", (message_id,))
        return None if row is None else MESSAGES.decode(row)

    async def message_by_external_id(
        self, channel: str, account_id: str, external_id: str
    ) -> Message | None:
        row = await self._fetch_one(
            "SELECT * FROM messages WHERE channel = ? AND account_id = ? AND external_id = ?",
            (channel, account_id, external_id),
        )
        return None if row is None else MESSAGES.decode(row)

    async def message_by_idempotency_key(
        self, conversation_id: str, idempotency_key: str
    ) -> Message | None:
        row = await self._fetch_one(
            "SELECT * FROM messages WHERE conversation_id = ? AND idempotency_key = ?",
            (conversation_id, idempotency_key),
        )
        return None if row is None else MESSAGES.decode(row)

    async def message_by_thread_key(self, account_id: str, keys: Sequence[str]) -> Message | None:
        if not keys:
            return None
        row = await self._fetch_one(
            "SELECT * FROM messages WHERE account_id = ?"
            " AND json_extract(thread, '$.message_id') IS NOT NULL"
            f" AND json_extract(thread, '$.message_id') IN ({', '.join('?' for _ in keys)})"
            " ORDER BY created_at DESC, id DESC LIMIT 1",
            (account_id, *keys),
        )
        return None if row is None else MESSAGES.decode(row)

    async def list_messages(self, conversation_id: str) -> list[Message]:
        rows = await self._fetch_all(
            "SELECT * FROM messages WHERE conversation_id = ? ORDER BY created_at, id",
            (conversation_id,),
        )
        return [MESSAGES.decode(r) for r in rows]

    async def find_messages(
        self,
        conversation_id: str,
        *,
        directions: Sequence[Direction] | None = None,
        statuses: Sequence[DeliveryStatus] | None = None,
        until: datetime | None = None,
        threaded: bool = False,
        newest_first: bool = False,
        limit: int | None = None,
        before: PageCursor | None = None,
    ) -> list[Message]:
        # messages_by_conversation in timeline order, filtering as it walks.
        where = ["conversation_id = ?"]
        params: list[Any] = [conversation_id]
        for column, values in (("direction", directions), ("status", statuses)):
            if values is not None:
                where.append(f"{column} IN ({', '.join('?' for _ in values)})")
                params.extend(values)
        if until is not None:
            where.append("created_at <= ?")
            params.append(to_ms(until))
        if threaded:
            where.append("COALESCE(json_extract(thread, '$.message_id'), '') != ''")
        if before is not None:
            where.append("(created_at, id) < (?, ?)")
            params.extend([before.ms, before.id])
        order = "DESC" if newest_first else "ASC"
        sql = f"SELECT * FROM messages WHERE {' AND '.join(where)}"
        sql += f" ORDER BY created_at {order}, id {order}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [MESSAGES.decode(r) for r in await self._fetch_all(sql, params)]

    async def last_message(self, conversation_id: str, direction: Direction) -> Message | None:
        row = await self._fetch_one(
            "SELECT * FROM messages WHERE conversation_id = ? AND direction = ?"
            " ORDER BY created_at DESC, id DESC LIMIT 1",
            (conversation_id, direction),
        )
        return None if row is None else MESSAGES.decode(row)

    async def update_message(
        self, message_id: str, *, expect: Expectation | None = None, **changes: Any
    ) -> bool:
        try:
            return await self._update_indexed(MESSAGES, MESSAGE_WORDS, message_id, expect, changes)
        except Conflict as exc:
            raise DuplicateMessage(f"another message already has that key ({exc.message})") from exc

    async def record_sent_part(
        self, message_id: str, index: int, external_id: str | None, *, attempt: int
    ) -> bool:
        async with self.transaction():
            # '$[#]' is one past the end: the id is appended.
            appended = await self._write(
                "UPDATE messages SET sent_parts = json_insert(sent_parts, '$[#]', ?)"
                " WHERE id = ? AND status = 'queued' AND attempts = ?"
                " AND json_array_length(sent_parts) = ?",
                (external_id, message_id, attempt, index),
            )
            if appended and external_id is not None:
                # A provider that reused an id keeps it on the part that had it first.
                await self._write(
                    "INSERT OR IGNORE INTO message_parts"
                    " (channel, account_id, external_id, message_id)"
                    " SELECT channel, account_id, ?, id FROM messages WHERE id = ?",
                    (external_id, message_id),
                )
        return appended == 1

    async def message_by_sent_part(
        self, channel: str, account_id: str, external_id: str
    ) -> Message | None:
        row = await self._fetch_one(
            "SELECT messages.* FROM message_parts JOIN messages ON messages.id = message_id"
            " WHERE message_parts.channel = ? AND message_parts.account_id = ?"
            " AND message_parts.external_id = ?",
            (channel, account_id, external_id),
        )
        return None if row is None else MESSAGES.decode(row)

    async def messages_awaiting_delivery(
        self, created_before: datetime, limit: int
    ) -> list[Message]:
        rows = await self._fetch_all(
            "SELECT * FROM messages WHERE status = 'queued' AND created_at < ?"
            " ORDER BY created_at, id LIMIT ?",
            (to_ms(created_before), limit),
        )
        return [MESSAGES.decode(r) for r in rows]

    async def counts(self) -> StoreCounts:
        # Every /metrics scrape: through messages_by_status (the outbound messages
        # only), on the long-read thread (it was a scan of every message on the
        # event loop: 250-750 ms at 300,000 messages).
        rows = await self._fetch_all_long(
            "SELECT status, COUNT(*) AS n FROM messages INDEXED BY messages_by_status"
            " WHERE status IS NOT NULL GROUP BY status",
            (),
        )
        return StoreCounts(messages_by_status={r["status"]: r["n"] for r in rows})

    # -- channel state ---------------------------------------------------
    async def channel_state(self, account_id: str, key: str) -> dict[str, Any] | None:
        row = await self._fetch_one(
            "SELECT value FROM channel_state WHERE account_id = ? AND key = ?", (account_id, key)
        )
        return None if row is None else dict(from_json(row["value"]))

    async def save_channel_state(self, account_id: str, key: str, value: dict[str, Any]) -> None:
        await self._write(
            "INSERT INTO channel_state (account_id, key, value) VALUES (?, ?, ?)"
            " ON CONFLICT (account_id, key) DO UPDATE SET value = excluded.value",
            (account_id, key, to_json(value).decode()),
        )

    # -- care tasks ------------------------------------------------------
    async def add_care_task(self, task: CareTask) -> bool:
        values = CARE_TASKS.row_values(task)
        sql = CARE_TASKS.insert_sql.replace("INSERT INTO", "INSERT OR IGNORE INTO", 1)
        return await self._write(sql, values) == 1

    async def get_care_task(self, key: str) -> CareTask | None:
        row = await self._fetch_one("SELECT * FROM care_tasks WHERE key = ?", (key,))
        return None if row is None else CARE_TASKS.decode(row)

    async def update_care_task(
        self, key: str, *, expect: Expectation | None = None, **changes: Any
    ) -> bool:
        return await self._update(CARE_TASKS, key, expect, changes)

    async def due_care_tasks(self, before: datetime, limit: int) -> list[CareTask]:
        rows = await self._fetch_all(
            "SELECT * FROM care_tasks WHERE state = 'pending' AND due_at <= ?"
            " ORDER BY due_at, key LIMIT ?",
            (to_ms(before), limit),
        )
        return [CARE_TASKS.decode(r) for r in rows]

    async def cancel_care_tasks(self, contact_id: str, kind: str, at: datetime) -> int:
        # Asked on every inbound message, and almost always there is nothing to
        # cancel: a read on the reader connection spares the write lock.
        if not self._in_transaction.get() and not await self._fetch_one(
            "SELECT 1 FROM care_tasks WHERE contact_id = ? AND kind = ? AND state = 'pending'",
            (contact_id, kind),
        ):
            return 0
        return await self._write(
            "UPDATE care_tasks SET state = 'cancelled', updated_at = ?"
            " WHERE contact_id = ? AND kind = ? AND state = 'pending'",
            (to_ms(at), contact_id, kind),
        )

    async def contacts_born_on(
        self, month: int, day: int, *, limit: int, after_id: str | None = None
    ) -> list[Contact]:
        rows = await self._fetch_all(
            CONTACTS_BORN_ON, (f"{month:02d}-{day:02d}", after_id or "", limit)
        )
        return [CONTACTS.decode(r) for r in rows]

    # -- agents and tokens -----------------------------------------------
    async def add_agent(self, agent: Agent) -> None:
        try:
            await self._write(AGENTS.insert_sql, AGENTS.row_values(agent))
        except Conflict as exc:
            if "agents.extension" in exc.message:
                raise Conflict(f"an agent with extension {agent.extension} exists") from exc
            if "agents.email" not in exc.message:
                raise
            raise Conflict(f"an agent with e-mail {agent.email} exists") from exc

    async def get_agent(self, agent_id: str) -> Agent | None:
        row = await self._fetch_one("SELECT * FROM agents WHERE id = ?", (agent_id,))
        return None if row is None else AGENTS.decode(row)

    async def agent_by_email(self, email: str) -> Agent | None:
        row = await self._fetch_one("SELECT * FROM agents WHERE email = ?", (email,))
        return None if row is None else AGENTS.decode(row)

    async def agent_by_extension(self, extension: str) -> Agent | None:
        row = await self._fetch_one("SELECT * FROM agents WHERE extension = ?", (extension,))
        return None if row is None else AGENTS.decode(row)

    async def list_agents(self, *, presence: Presence | None = None) -> list[Agent]:
        sql = "SELECT * FROM agents WHERE active = 1"
        params: list[Any] = []
        if presence is not None:
            sql += " AND presence = ?"
            params.append(presence)
        rows = await self._fetch_all(sql + " ORDER BY id", params)
        return [AGENTS.decode(r) for r in rows]

    async def update_agent(self, agent_id: str, **changes: Any) -> bool:
        return await self._update(AGENTS, agent_id, None, changes)

    # -- routing ---------------------------------------------------------
    async def assign_within_capacity(
        self, conversation_id: str, agent_id: str, at: datetime
    ) -> bool:
        # One statement checks both the conversation and the agent's load; the
        # trigger counts the assignment. Writes are serialised across processes
        # (BEGIN IMMEDIATE), so nothing can slip in between the check and the set.
        async with self.transaction():
            assigned = await self._write(
                "UPDATE conversations SET assignee_id = ?, updated_at = ?"
                " WHERE id = ? AND assignee_id IS NULL AND status != 'resolved'"
                " AND EXISTS (SELECT 1 FROM agents"
                " WHERE id = ? AND active = 1 AND open_count < capacity)",
                (agent_id, to_ms(at), conversation_id, agent_id),
            )
            if assigned != 1:
                return False
            await self._write(
                "UPDATE agents SET last_assigned_at = ? WHERE id = ?", (to_ms(at), agent_id)
            )
        return True

    async def recount_open_conversations(self, agent_id: str) -> int:
        async with self.transaction():
            await self._write(
                "UPDATE agents SET open_count = (SELECT COUNT(*) FROM conversations"
                " WHERE assignee_id = agents.id AND status != 'resolved') WHERE id = ?",
                (agent_id,),
            )
            row = await self._fetch_one("SELECT open_count FROM agents WHERE id = ?", (agent_id,))
        return int(row["open_count"]) if row else 0

    async def waiting_conversations(self, limit: int) -> list[Conversation]:
        # INDEXED BY: SQLite (no ANALYZE statistics) walked conversations_by_assignee
        # from assignee NULL instead, through every unassigned resolved
        # conversation ever, then sorted (10-50 ms a router drain at 150,000).
        rows = await self._fetch_all(
            "SELECT * FROM conversations INDEXED BY conversations_waiting"
            " WHERE assignee_id IS NULL AND status != 'resolved' ORDER BY created_at, id LIMIT ?",
            (limit,),
        )
        return [CONVERSATIONS.decode(r) for r in rows]

    async def add_token(self, token: ApiToken) -> None:
        await self._write(TOKENS.insert_sql, TOKENS.row_values(token))

    async def token_by_hash(self, token_hash: str) -> ApiToken | None:
        row = await self._fetch_one("SELECT * FROM api_tokens WHERE token_hash = ?", (token_hash,))
        return None if row is None else TOKENS.decode(row)

    async def list_tokens(self, agent_id: str) -> list[ApiToken]:
        rows = await self._fetch_all(
            "SELECT * FROM api_tokens WHERE agent_id = ? ORDER BY created_at, id", (agent_id,)
        )
        return [TOKENS.decode(r) for r in rows]

    async def delete_token(self, token_id: str) -> bool:
        return await self._write("DELETE FROM api_tokens WHERE id = ?", (token_id,)) == 1

    # -- workspace -------------------------------------------------------
    async def add_audit(self, entry: AuditEntry) -> None:
        await self._write(AUDIT.insert_sql, AUDIT.row_values(entry))

    async def list_audit(self, *, limit: int, before: str | None = None) -> list[AuditEntry]:
        sql, params = "SELECT * FROM audit_log", []
        if before is not None:
            sql += " WHERE id < ?"
            params.append(before)
        rows = await self._fetch_all(sql + " ORDER BY id DESC LIMIT ?", [*params, limit])
        return [AUDIT.decode(r) for r in rows]

    async def add_canned(self, canned: CannedResponse) -> None:
        try:
            await self._write(CANNED.insert_sql, CANNED.row_values(canned))
        except Conflict as exc:
            raise Conflict(f"the shortcut /{canned.shortcut} is taken") from exc

    async def list_canned(self) -> list[CannedResponse]:
        rows = await self._fetch_all("SELECT * FROM canned_responses ORDER BY shortcut", ())
        return [CANNED.decode(r) for r in rows]

    async def delete_canned(self, canned_id: str) -> bool:
        return await self._write("DELETE FROM canned_responses WHERE id = ?", (canned_id,)) == 1

    async def label_counts(self) -> dict[str, int]:
        # The open conversations through conversations_by_status ("!= 'resolved'"
        # read them all); every label in use from conversation_labels, which
        # triggers keep (it was every conversation's labels, each time).
        rows = await self._fetch_all(
            "SELECT label.value AS label, COUNT(*) AS n"
            " FROM conversations, json_each(conversations.labels) AS label"
            f" WHERE status IN ({', '.join(repr(s) for s in OPEN_STATUSES)})"
            " GROUP BY label.value",
            (),
        )
        counts = {r["label"]: r["n"] for r in rows}
        for r in await self._fetch_all(
            "SELECT label FROM conversation_labels WHERE conversations > 0", ()
        ):
            counts.setdefault(r["label"], 0)
        return dict(sorted(counts.items()))

    async def search_contacts(self, text: str, *, limit: int) -> list[Contact]:
        folded = fold(text)
        rows = await self._fetch_all_long(
            CONTACTS_WITH_TEXT, (glob_anywhere(folded), f"%{_like_escape(folded)}%", limit)
        )
        found = [await self.get_contact(r[0]) for r in rows]
        return [c for c in found if c is not None]

    async def merge_contacts(self, keep_id: str, merged_id: str) -> None:
        if keep_id == merged_id:
            raise InvalidRequest("a contact cannot be merged into itself")
        async with self.transaction():
            keep = await self.get_contact(keep_id)
            merged = await self.get_contact(merged_id)
            if keep is None or merged is None:
                raise NotFound(f"contact {keep_id if keep is None else merged_id} does not exist")
            offset = len(keep.identities)
            await self._write(
                "UPDATE identities SET contact_id = ?, position = position + ?"
                " WHERE contact_id = ?",
                (keep_id, offset, merged_id),
            )
            await self._write(
                "UPDATE conversations SET contact_id = ? WHERE contact_id = ?",
                (keep_id, merged_id),
            )
            await self._update(
                CONTACTS,
                keep_id,
                None,
                merged_fields(keep, merged),
            )
            for sql in FORGET_CONTACT:
                await self._write(sql, (merged_id,))
            await self._write("DELETE FROM contacts WHERE id = ?", (merged_id,))
            await self._write(reindex_sql(CONTACT_WORDS), (keep_id,))
