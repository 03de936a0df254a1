"""Report queries on the embedded SQLite store.

Conversations are found by indexes on their own times (created, resolved,
survey answered).

Messages are counted from a rollup, `report_message_quarters`: one row per
quarter of an hour, account, channel and direction (and `report_agent_quarters`:
an agent's outbound messages per quarter of an hour). It is
brought up to date when a report asks, from the messages added since the last
time (by rowid: messages are only ever inserted, never deleted, and their
counted columns never change), so a report reads a few thousand rows instead
of grouping a million, and ingest pays nothing (no index or trigger on
`messages`). The rollup remembers the last message it counted by rowid *and*
id: if a VACUUM ever renumbered rowids, the two disagree and it is rebuilt.

The rollup answers periods that start and end on a quarter of an hour (the
service rounds every period so) and slices a message carries itself (account,
channel). Slices only a conversation has (team, agent, label, an agent's
scope) count the messages of those conversations through the messages'
existing (conversation_id, created_at) index instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

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
    """
    CREATE TABLE report_message_quarters (
        quarter INTEGER NOT NULL,
        account_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        direction TEXT NOT NULL,
        messages INTEGER NOT NULL,
        PRIMARY KEY (quarter, account_id, channel, direction)
    ) WITHOUT ROWID;
    CREATE TABLE report_agent_quarters (
        agent_id TEXT NOT NULL,
        quarter INTEGER NOT NULL,
        messages INTEGER NOT NULL,
        PRIMARY KEY (agent_id, quarter)
    ) WITHOUT ROWID;
    CREATE TABLE report_marks (
        name TEXT PRIMARY KEY,
        last_rowid INTEGER NOT NULL,
        last_id TEXT
    ) WITHOUT ROWID;
    """,
]
QUARTER_MS = 900_000
# Messages folded into the rollup per write transaction: the write lock is
# given back between chunks, so a webhook waits a few milliseconds at most
# (50,000 a chunk held it 100+ ms: the minute job under steady ingest put the
# p99 at half load at 40-85 ms).
CATCH_UP_CHUNK = 2_000
ROLL_UP = """
    INSERT INTO report_message_quarters (quarter, account_id, channel, direction, messages)
    SELECT created_at / 900000, account_id, channel, direction, COUNT(*)
    FROM messages WHERE rowid > ? AND rowid <= ? AND direction IN ('inbound', 'outbound')
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (quarter, account_id, channel, direction)
    DO UPDATE SET messages = messages + excluded.messages
"""
ROLL_UP_AGENTS = """
    INSERT INTO report_agent_quarters (agent_id, quarter, messages)
    SELECT json_extract(sender, '$.id'), created_at / 900000, COUNT(*)
    FROM messages WHERE rowid > ? AND rowid <= ? AND direction = 'outbound'
        AND json_extract(sender, '$.kind') = 'agent' AND json_extract(sender, '$.id') IS NOT NULL
    GROUP BY 1, 2
    ON CONFLICT (agent_id, quarter) DO UPDATE SET messages = messages + excluded.messages
"""
# (The JSON text of the labels holds a label quoted: a substring test finds
# the breach label without parsing every row's JSON.)


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


def _numbers(text: str) -> list[int]:
    return list(map(int, text.split(",")))


def _optional(text: str) -> list[int | None]:
    return [None if n < 0 else n for n in map(int, text.split(","))]


class SqliteReportStore(ReportStore):
    """Reads that may be long go through the store's long-read connection, on a
    thread (`SqliteStore._fetch_all_long`): a report may read a hundred
    thousand conversations, and the event loop keeps taking webhooks meanwhile."""

    def __init__(self, store: SqliteStore) -> None:
        self.db = store

    async def _rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return await self.db._fetch_all_long(sql, params)

    async def open(self) -> None:
        await self.db.migrate_part(PART, MIGRATIONS)

    async def conversation_times(self, report: ReportFilter) -> list[ConversationTimes]:
        where, params = conversation_where(report)
        slices = "".join(f" AND {condition}" for condition in where)
        since, until = to_ms(report.since), to_ms(report.until)
        columns = (
            "SELECT c.account_id, c.team_id, c.assignee_id, c.channel, c.created_at,"
            " c.first_response_at, c.resolved_at, c.labels FROM conversations c"
        )
        # Two index ranges, the second without what the first has; then one
        # row per group with its times as text lists (the aggregates of a group
        # see its rows in the same order, so positions match): a hundred
        # thousand conversations cross into Python as a few hundred strings.
        sql = (
            "SELECT account_id, team_id, assignee_id, channel, group_concat(created_at),"
            " group_concat(COALESCE(first_response_at, -1)),"
            " group_concat(COALESCE(resolved_at, -1)),"
            f" group_concat(instr(labels, '\"{BREACHED_LABEL}\"') > 0) FROM ("
            f"{columns} WHERE c.created_at >= ? AND c.created_at < ?{slices}"
            f" UNION ALL {columns} WHERE c.resolved_at >= ? AND c.resolved_at < ?"
            f" AND NOT (c.created_at >= ? AND c.created_at < ?){slices}"
            ") GROUP BY account_id, team_id, assignee_id, channel"
        )
        rows = await self._rows(sql, [since, until, *params, since, until, since, until, *params])
        return [
            ConversationTimes(
                account_id=account,
                team_id=team,
                assignee_id=assignee,
                channel=channel,
                created_at=_numbers(created),
                first_response_at=_optional(first),
                resolved_at=_optional(resolved),
                breached=_numbers(breached),
            )
            for account, team, assignee, channel, created, first, resolved, breached in rows
        ]

    async def catch_up(self, max_seconds: float | None = None) -> int:
        """Fold the messages added since the last call into the rollup; returns
        how many messages it went through. Safe to run in several processes at once
        (each chunk is one write transaction that reads the mark inside it).
        With `max_seconds`, stops after the chunk that passes it (the worker's
        minute job: a first run over millions of messages goes on next minute)."""
        done = 0
        started = time.monotonic()
        if await self._caught_up():
            return done  # the minute job's usual case: no write lock taken
        while max_seconds is None or time.monotonic() - started < max_seconds:
            async with self.db.transaction():
                mark = await self.db._fetch_one(
                    "SELECT last_rowid, last_id FROM report_marks WHERE name = 'messages'", ()
                )
                last = mark["last_rowid"] if mark else 0
                if mark is not None and last:
                    still = await self.db._fetch_one(
                        "SELECT id FROM messages WHERE rowid = ?", (last,)
                    )
                    if still is None or still["id"] != mark["last_id"]:
                        # Rowids were renumbered (VACUUM): count everything again.
                        await self.db._write("DELETE FROM report_message_quarters", ())
                        await self.db._write("DELETE FROM report_agent_quarters", ())
                        last = 0
                # The chunk ends on a message that exists (the mark names it).
                end = await self.db._fetch_one(
                    "SELECT MAX(rowid) AS top, COUNT(*) AS n FROM (SELECT rowid FROM messages"
                    " WHERE rowid > ? ORDER BY rowid LIMIT ?)",
                    (last, CATCH_UP_CHUNK),
                )
                if end is None or not end["n"]:
                    return done
                top = end["top"]
                writer = self.db._w
                # On a thread while this process holds the write lock: the loop
                # keeps serving (the campaign snapshot does the same).
                for statement in (ROLL_UP, ROLL_UP_AGENTS):
                    await asyncio.to_thread(writer.execute, statement, (last, top))
                at_top = await self.db._fetch_one("SELECT id FROM messages WHERE rowid = ?", (top,))
                assert at_top is not None
                await self.db._write(
                    "INSERT INTO report_marks (name, last_rowid, last_id) VALUES ('messages', ?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET last_rowid = excluded.last_rowid,"
                    " last_id = excluded.last_id",
                    (top, at_top["id"]),
                )
                done += end["n"]
        return done

    async def _caught_up(self) -> bool:
        """Whether the rollup has every message (read without the write lock)."""
        row = await self.db._fetch_one(
            "SELECT m.last_rowid = (SELECT MAX(rowid) FROM messages) AND m.last_id ="
            " (SELECT id FROM messages WHERE rowid = m.last_rowid) AS done"
            " FROM report_marks m WHERE m.name = 'messages'",
            (),
        )
        return bool(row and row["done"])

    @staticmethod
    def _rolled_up(report: ReportFilter) -> tuple[str, list[Any]] | None:
        """The rollup's WHERE for the report, or None if it cannot answer it."""
        since, until = to_ms(report.since), to_ms(report.until)
        if report.by_conversation or since % QUARTER_MS or until % QUARTER_MS:
            return None
        where = ["quarter >= ?", "quarter < ?"]
        params: list[Any] = [since // QUARTER_MS, until // QUARTER_MS]
        for column, values in (("account_id", report.accounts), ("channel", report.channels)):
            if values:
                where.append(f"{column} IN ({_marks(values)})")
                params.extend(values)
        return " AND ".join(where), params

    async def message_counts(self, report: ReportFilter, bucket_ms: int) -> list[MessageCount]:
        rolled = self._rolled_up(report)
        if rolled is not None and bucket_ms % QUARTER_MS == 0:
            await self.catch_up()
            where, params = rolled
            rows = await self._rows(
                "SELECT quarter * ? / ? AS bucket, channel, direction, SUM(messages)"
                f" FROM report_message_quarters WHERE {where}"
                " GROUP BY bucket, channel, direction",
                [QUARTER_MS, bucket_ms, *params],
            )
            return [MessageCount(row[0] * bucket_ms, row[1], row[2], row[3]) for row in rows]
        where, params = message_where(report)
        rows = await self._rows(
            "SELECT m.created_at / ? AS bucket, m.channel, m.direction, COUNT(*)"
            f" FROM messages m WHERE {where} AND m.direction IN ('inbound', 'outbound')"
            " GROUP BY bucket, m.channel, m.direction",
            [bucket_ms, *params],
        )
        return [MessageCount(row[0] * bucket_ms, row[1], row[2], row[3]) for row in rows]

    async def message_totals(self, report: ReportFilter) -> tuple[int, int]:
        rolled = self._rolled_up(report)
        if rolled is not None:
            await self.catch_up()
            where, params = rolled
            rows = await self._rows(
                "SELECT COALESCE(SUM(CASE WHEN direction = 'inbound' THEN messages END), 0),"
                " COALESCE(SUM(CASE WHEN direction = 'outbound' THEN messages END), 0)"
                f" FROM report_message_quarters WHERE {where}",
                params,
            )
            return rows[0][0], rows[0][1]
        where, params = message_where(report)
        # No GROUP BY: one pass, where grouping would sort every row.
        rows = await self._rows(
            "SELECT COALESCE(SUM(m.direction = 'inbound'), 0),"
            f" COALESCE(SUM(m.direction = 'outbound'), 0) FROM messages m WHERE {where}",
            params,
        )
        return rows[0][0], rows[0][1]

    async def agent_messages(self, report: ReportFilter) -> dict[str, int]:
        rolled = self._rolled_up(report)
        # The agents' rollup has no account or channel: those slices scan.
        if rolled is not None and not (report.accounts or report.channels):
            await self.catch_up()
            where, params = rolled
            rows = await self._rows(
                "SELECT agent_id, SUM(messages) FROM report_agent_quarters"
                f" WHERE {where} GROUP BY agent_id",
                params,
            )
            return {row[0]: row[1] for row in rows}
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
            " INDEXED BY conversations_waiting"  # else SQLite walked the assignee index
            f" WHERE c.assignee_id IS NULL AND c.status != 'resolved'{slices}",
            params,
        )
        if row is None or not row[0]:
            return Waiting(0, None)
        return Waiting(row[0], from_ms(row[1]))
