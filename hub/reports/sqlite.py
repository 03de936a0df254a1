"""Report queries on the embedded SQLite store.

Conversations are found by indexes on their own times (created, resolved,
survey answered); messages by a scan of the period's rows grouped in SQL, or,
when the filter names slices only a conversation has (team, agent, label, an
agent's scope), through the conversations of those slices and the messages'
existing (conversation_id, created_at) index.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from typing import Any

from hub.errors import StoreUnavailable
from hub.inbox.model import from_ms, to_ms
from hub.inbox.sqlite import SqliteStore
from hub.reports.model import (
    BREACHED_LABEL,
    ConversationTimes,
    MessageCount,
    ReportFilter,
    SatisfactionCount,
    Waiting,
)
from hub.reports.store import ReportStore

PART = "reports"
# Versioned in `schema_parts` beside the campaigns' part; never edit a shipped
# entry. Only conversations are indexed: their times never change after the
# fact (created) or change once (resolved, answered), so no index here is
# touched by the inbound messages that move `last_activity_at`.
MIGRATIONS: list[str] = [
    """
    CREATE INDEX IF NOT EXISTS conversations_by_created ON conversations (created_at);
    CREATE INDEX IF NOT EXISTS conversations_by_resolved
        ON conversations (resolved_at) WHERE resolved_at IS NOT NULL;
    CREATE INDEX IF NOT EXISTS conversations_by_satisfaction
        ON conversations (satisfaction_at) WHERE satisfaction IS NOT NULL;
    """,
]
# The JSON text of the labels holds the label quoted: a substring test needs
# no JSON parsing of every row.
BREACHED = f"instr(c.labels, '\"{BREACHED_LABEL}\"') > 0"


def _marks(values: tuple[str, ...]) -> str:
    return ", ".join("?" for _ in values)


def conversation_where(report: ReportFilter) -> tuple[list[str], list[Any]]:
    """The filter's slices as conditions on `c` (conversations); values as
    parameters, never text."""
    where: list[str] = []
    params: list[Any] = []
    for column, values in (
        ("c.account_id", report.accounts),
        ("c.channel", report.channels),
        ("c.team_id", report.teams),
        ("c.assignee_id", report.agents),
    ):
        if values:
            where.append(f"{column} IN ({_marks(values)})")
            params.extend(values)
    if report.labels:
        where.append(
            f"EXISTS (SELECT 1 FROM json_each(c.labels) WHERE value IN ({_marks(report.labels)}))"
        )
        params.extend(report.labels)
    if report.scope is not None:
        teams = report.scope.team_ids
        in_teams = f" OR c.team_id IN ({_marks(teams)})" if teams else ""
        where.append(f"(c.assignee_id = ? OR c.team_id IS NULL{in_teams})")
        params.extend([report.scope.agent_id, *teams])
    return where, params


def message_where(report: ReportFilter) -> tuple[str, list[Any]]:
    """The period and slices as conditions on `m` (messages)."""
    where = ["m.created_at >= ?", "m.created_at < ?"]
    params: list[Any] = [to_ms(report.since), to_ms(report.until)]
    for column, values in (("m.account_id", report.accounts), ("m.channel", report.channels)):
        if values:
            where.append(f"{column} IN ({_marks(values)})")
            params.extend(values)
    if report.by_conversation:
        conditions, slices = conversation_where(report)
        where.append(
            "m.conversation_id IN (SELECT c.id FROM conversations c"
            f" WHERE {' AND '.join(conditions)})"
        )
        params.extend(slices)
    return " AND ".join(where), params


def _read(path: str, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """One read on a connection of its own (run on a thread)."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"cannot read the SQLite store for a report: {exc}") from exc
    try:
        connection.execute("PRAGMA busy_timeout=5000")
        connection.execute("PRAGMA temp_store=MEMORY")
        # Room for GROUP BY's sorter: a million rows sort in memory, not in runs.
        connection.execute("PRAGMA cache_size=-65536")
        return connection.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        raise StoreUnavailable(f"the SQLite store cannot answer a report now: {exc}") from exc
    finally:
        connection.close()


class SqliteReportStore(ReportStore):
    """Reads run on threads, each on a connection of its own (WAL lets them run
    beside the writer): a report may scan a million messages, and the event
    loop keeps taking webhooks meanwhile. Two reads of one report run at once
    (SQLite leaves the GIL while it works)."""

    def __init__(self, store: SqliteStore) -> None:
        self.db = store

    async def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(_read, str(self.db.path), sql, params)

    async def open(self) -> None:
        async with self.db.transaction():
            await self.db._write(
                "CREATE TABLE IF NOT EXISTS schema_parts"
                " (part TEXT PRIMARY KEY, version INTEGER NOT NULL)",
                (),
            )
            row = await self.db._fetch_one(
                "SELECT version FROM schema_parts WHERE part = ?", (PART,)
            )
            version = row["version"] if row else 0
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        await self.db._write(statement, ())
                await self.db._write(
                    "INSERT INTO schema_parts (part, version) VALUES (?, ?)"
                    " ON CONFLICT (part) DO UPDATE SET version = excluded.version",
                    (PART, number),
                )

    async def conversation_times(self, report: ReportFilter) -> list[ConversationTimes]:
        where, params = conversation_where(report)
        slices = "".join(f" AND {condition}" for condition in where)
        since, until = to_ms(report.since), to_ms(report.until)
        columns = (
            "SELECT c.id, c.channel, c.account_id, c.team_id, c.assignee_id, c.created_at,"
            f" c.first_response_at, c.resolved_at, {BREACHED} AS breached FROM conversations c"
        )
        # Two index ranges; the second leaves out what the first already has.
        sql = (
            f"{columns} WHERE c.created_at >= ? AND c.created_at < ?{slices}"
            f" UNION ALL {columns} WHERE c.resolved_at >= ? AND c.resolved_at < ?"
            f" AND NOT (c.created_at >= ? AND c.created_at < ?){slices}"
        )
        rows = await self._rows(sql, [since, until, *params, since, until, since, until, *params])
        return [ConversationTimes._make(row) for row in rows]

    async def message_counts(self, report: ReportFilter, bucket_ms: int) -> list[MessageCount]:
        where, params = message_where(report)
        rows = await self._rows(
            "SELECT m.created_at / ? AS bucket, m.channel, m.direction, COUNT(*)"
            f" FROM messages m WHERE {where} AND m.direction IN ('inbound', 'outbound')"
            " GROUP BY bucket, m.channel, m.direction",
            [bucket_ms, *params],
        )
        return [MessageCount(row[0] * bucket_ms, row[1], row[2], row[3]) for row in rows]

    async def message_totals(self, report: ReportFilter) -> tuple[int, int]:
        where, params = message_where(report)
        # No GROUP BY: one pass, where grouping would sort every row.
        rows = await self._rows(
            "SELECT COALESCE(SUM(m.direction = 'inbound'), 0),"
            f" COALESCE(SUM(m.direction = 'outbound'), 0) FROM messages m WHERE {where}",
            params,
        )
        return rows[0][0], rows[0][1]

    async def agent_messages(self, report: ReportFilter) -> dict[str, int]:
        where, params = message_where(report)
        rows = await self._rows(
            "SELECT json_extract(m.sender, '$.id') AS agent, COUNT(*) FROM messages m"
            f" WHERE {where} AND m.direction = 'outbound'"
            " AND json_extract(m.sender, '$.kind') = 'agent' GROUP BY agent",
            params,
        )
        return {row[0]: row[1] for row in rows if row[0] is not None}

    async def satisfaction(self, report: ReportFilter) -> list[SatisfactionCount]:
        where, params = conversation_where(report)
        slices = "".join(f" AND {condition}" for condition in where)
        rows = await self._rows(
            "SELECT c.assignee_id, c.satisfaction, COUNT(*) FROM conversations c"
            " WHERE c.satisfaction IS NOT NULL AND c.satisfaction_at >= ?"
            f" AND c.satisfaction_at < ?{slices} GROUP BY c.assignee_id, c.satisfaction",
            [to_ms(report.since), to_ms(report.until), *params],
        )
        return [SatisfactionCount(row[0], row[1], row[2]) for row in rows]

    async def waiting(self, report: ReportFilter) -> Waiting:
        where, params = conversation_where(report)
        slices = "".join(f" AND {condition}" for condition in where)
        # The router's waiting-queue index (unassigned, not resolved).
        row = await self.db._fetch_one(
            "SELECT COUNT(*), MIN(c.created_at) FROM conversations c"
            f" WHERE c.assignee_id IS NULL AND c.status != 'resolved'{slices}",
            params,
        )
        if row is None or not row[0]:
            return Waiting(0, None)
        return Waiting(row[0], from_ms(row[1]))
