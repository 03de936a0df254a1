"""Campaign storage in the embedded SQLite store, on its connections and
transactions (so a campaign write and an inbox write can share a commit).

The launch snapshot is one `INSERT ... SELECT` from the inbox's identities and
contacts, run on a thread while this process holds the write lock: a hundred
thousand rows take a fraction of a second and never stall the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from pydantic_core import from_json

from hub.campaigns.model import (
    ADDRESS_SPACE,
    CONSENT_KEY,
    Addressee,
    Audience,
    AudienceFilter,
    Campaign,
    CampaignChannel,
    CampaignStatus,
    DueSend,
    Outcome,
    Progress,
    Recipient,
    RecipientStatus,
    count_rows,
)
from hub.campaigns.store import CampaignStore
from hub.inbox.model import Contact, from_ms, to_ms
from hub.inbox.sqlite import (
    CONTACT_WITH_IDENTITIES,
    CONTACTS,
    CONTACTS_WITH_IDENTITIES,
    SqliteStore,
    _Table,
)
from hub.inbox.store import Expectation, Page

PART = "campaigns"
# Versioned apart from the inbox's `user_version`, in `schema_parts`, so that the
# two schemas evolve without renumbering each other. Never edit a shipped entry.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE audiences (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        filter TEXT NOT NULL,
        created_by TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE campaigns (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        channel TEXT NOT NULL,
        account_id TEXT NOT NULL,
        audience_id TEXT NOT NULL REFERENCES audiences(id),
        text TEXT NOT NULL,
        subject TEXT NOT NULL,
        status TEXT NOT NULL,
        scheduled_at INTEGER,
        launched_at INTEGER,
        finished_at INTEGER,
        recipient_count INTEGER NOT NULL,
        created_by TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX campaigns_by_status ON campaigns (status, created_at);
    CREATE TABLE campaign_recipients (
        campaign_id TEXT NOT NULL,
        contact_id TEXT NOT NULL,
        address TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        not_before INTEGER,
        attempts INTEGER NOT NULL,
        external_id TEXT,
        sending_at INTEGER,
        sent_at INTEGER,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (campaign_id, contact_id)
    ) WITHOUT ROWID;
    CREATE INDEX recipients_by_status ON campaign_recipients (campaign_id, status, contact_id);
    """,
    """
    ALTER TABLE campaign_recipients ADD COLUMN replied_at INTEGER;
    ALTER TABLE campaign_recipients ADD COLUMN reply_conversation_id TEXT;
    CREATE INDEX recipients_by_contact ON campaign_recipients (contact_id, sent_at)
        WHERE sent_at IS NOT NULL;
    """,
    # For `progress` (see PROGRESS): the few rows that wait or were replied to,
    # apart, so that counting them reads no other row. The sends' own writes
    # (pending -> sending -> sent with no `not_before`) never enter either.
    """
    CREATE INDEX recipients_waiting ON campaign_recipients (campaign_id, not_before)
        WHERE status = 'pending' AND not_before IS NOT NULL;
    CREATE INDEX recipients_replied ON campaign_recipients (campaign_id)
        WHERE replied_at IS NOT NULL;
    """,
]

AUDIENCES = _Table("audiences", Audience, json=("filter",), times=("created_at", "updated_at"))
CAMPAIGNS = _Table(
    "campaigns",
    Campaign,
    times=("scheduled_at", "launched_at", "finished_at", "created_at", "updated_at"),
)
RECIPIENTS = _Table(
    "campaign_recipients",
    Recipient,
    times=("not_before", "sending_at", "sent_at", "replied_at", "updated_at"),
    flat=True,
)


# A page of due recipients with what their sends need of each contact, in one
# statement: the columns used, not whole rows; the first phone and e-mail
# address by the identities' index; the consent on one channel (parameter 1).
DUE_SENDS = """
    SELECT r.contact_id, r.address, r.attempts, c.id, c.name, c.language, c.timezone,
        c.birthday, c.tags, c.attributes, json_extract(c.consent, ?),
        (SELECT address FROM identities WHERE contact_id = c.id AND channel = 'phone'
            ORDER BY position LIMIT 1),
        (SELECT address FROM identities WHERE contact_id = c.id AND channel = 'email'
            ORDER BY position LIMIT 1)
    FROM campaign_recipients r LEFT JOIN contacts c ON c.id = r.contact_id
    WHERE r.campaign_id = ? AND r.status = 'pending' AND r.contact_id > ?
        AND (r.not_before IS NULL OR r.not_before <= ?)
    ORDER BY r.contact_id LIMIT ?
"""


# A campaign's figures from its indexes alone, but for the skipped rows' reasons:
# the rows by status (the status index covers it), the skipped by reason, the
# waiting and the replied (their partial indexes). Counting every row as it
# stands took ~60-90 ms for a hundred thousand, ~6 ms this way. The planner is
# told the indexes: without statistics it prefers the primary key's range.
PROGRESS = """
    SELECT 'status', status, COUNT(*) FROM campaign_recipients
        WHERE campaign_id = ?1 GROUP BY status
    UNION ALL
    SELECT 'skipped', reason, COUNT(*) FROM campaign_recipients
        INDEXED BY recipients_by_status
        WHERE campaign_id = ?1 AND status = 'skipped' GROUP BY reason
    UNION ALL
    SELECT 'waiting', NULL, COUNT(*) FROM campaign_recipients INDEXED BY recipients_waiting
        WHERE campaign_id = ?1 AND status = 'pending' AND not_before IS NOT NULL
        AND not_before > ?2
    UNION ALL
    SELECT 'replied', NULL, COUNT(*) FROM campaign_recipients INDEXED BY recipients_replied
        WHERE campaign_id = ?1 AND replied_at IS NOT NULL
"""


def audience_where(audience: AudienceFilter, channel: CampaignChannel) -> tuple[str, list[Any]]:
    """The filter as SQL over `c` (contacts); values as parameters, never text."""
    where: list[str] = []
    params: list[Any] = []
    for tag in audience.tags_all:
        where.append("EXISTS (SELECT 1 FROM json_each(c.tags) WHERE value = ?)")
        params.append(tag)
    if audience.tags_any:
        marks = ", ".join("?" for _ in audience.tags_any)
        where.append(f"EXISTS (SELECT 1 FROM json_each(c.tags) WHERE value IN ({marks}))")
        params.extend(audience.tags_any)
    if audience.tags_none:
        marks = ", ".join("?" for _ in audience.tags_none)
        where.append(f"NOT EXISTS (SELECT 1 FROM json_each(c.tags) WHERE value IN ({marks}))")
        params.extend(audience.tags_none)
    for name, value in audience.attributes.items():
        # Names are checked against [A-Za-z0-9_] by the model: safe in a JSON path.
        where.append(f"json_extract(c.attributes, '$.{name}') = ?")
        params.append(int(value) if isinstance(value, bool) else value)
    key = CONSENT_KEY[channel]
    if audience.consent == "not_opted_out":
        where.append(f"COALESCE(json_extract(c.consent, '$.{key}.status'), '') != 'opted_out'")
    elif audience.consent == "opted_in":
        where.append(f"json_extract(c.consent, '$.{key}.status') = 'opted_in'")
    last_activity = "(SELECT MAX(last_activity_at) FROM conversations WHERE contact_id = c.id)"
    if audience.active_after is not None:
        where.append(f"{last_activity} >= ?")
        params.append(to_ms(audience.active_after))
    if audience.active_before is not None:
        where.append(f"{last_activity} < ?")
        params.append(to_ms(audience.active_before))
    if audience.has_conversation is not None:
        exists = "EXISTS (SELECT 1 FROM conversations WHERE contact_id = c.id)"
        where.append(exists if audience.has_conversation else f"NOT {exists}")
    return (" AND ".join(where) or "1"), params


def _reachable(audience: AudienceFilter, channel: CampaignChannel) -> tuple[str, list[Any]]:
    """FROM/WHERE of "each contact of the audience with its first address on
    the channel's address space" (`i` the identity, `c` the contact)."""
    where, params = audience_where(audience, channel)
    sql = (
        " FROM identities i JOIN contacts c ON c.id = i.contact_id"
        " WHERE i.channel = ? AND NOT EXISTS (SELECT 1 FROM identities j"
        " WHERE j.contact_id = i.contact_id AND j.channel = i.channel"
        " AND j.position < i.position)"
        f" AND {where}"
    )
    return sql, [ADDRESS_SPACE[channel], *params]


class SqliteCampaignStore(CampaignStore):
    def __init__(self, store: SqliteStore) -> None:
        self.db = store

    async def open(self) -> None:
        await self.db.migrate_part(PART, MIGRATIONS)

    # -- audiences -------------------------------------------------------
    async def add_audience(self, audience: Audience) -> None:
        await self.db._write(AUDIENCES.insert_sql, AUDIENCES.row_values(audience))

    async def get_audience(self, audience_id: str) -> Audience | None:
        row = await self.db._fetch_one("SELECT * FROM audiences WHERE id = ?", (audience_id,))
        return None if row is None else AUDIENCES.decode(row)

    async def list_audiences(self) -> list[Audience]:
        rows = await self.db._fetch_all("SELECT * FROM audiences ORDER BY id DESC", ())
        return [AUDIENCES.decode(r) for r in rows]

    async def count_audience(self, audience: AudienceFilter, channel: CampaignChannel) -> int:
        sql, params = _reachable(audience, channel)
        row = await self.db._fetch_one("SELECT COUNT(*) AS n" + sql, params)
        return int(row["n"]) if row else 0

    async def sample_contact(
        self, audience: AudienceFilter, channel: CampaignChannel
    ) -> Contact | None:
        sql, params = _reachable(audience, channel)
        row = await self.db._fetch_one("SELECT c.id AS id" + sql + " LIMIT 1", params)
        return None if row is None else await self._contact(row["id"])

    async def _contact(self, contact_id: str) -> Contact | None:
        row = await self.db._fetch_one(CONTACT_WITH_IDENTITIES, (contact_id,))
        return None if row is None else CONTACTS.decode(row)

    # -- campaigns -------------------------------------------------------
    async def add_campaign(self, campaign: Campaign) -> None:
        await self.db._write(CAMPAIGNS.insert_sql, CAMPAIGNS.row_values(campaign))

    async def get_campaign(self, campaign_id: str) -> Campaign | None:
        row = await self.db._fetch_one("SELECT * FROM campaigns WHERE id = ?", (campaign_id,))
        return None if row is None else CAMPAIGNS.decode(row)

    async def list_campaigns(
        self, *, statuses: Sequence[CampaignStatus] | None = None
    ) -> list[Campaign]:
        sql, params = "SELECT * FROM campaigns", list(statuses or ())
        if statuses:
            sql += f" WHERE status IN ({', '.join('?' for _ in statuses)})"
        rows = await self.db._fetch_all(sql + " ORDER BY created_at DESC, id DESC", params)
        return [CAMPAIGNS.decode(r) for r in rows]

    async def update_campaign(
        self, campaign_id: str, *, expect: Expectation | None = None, **changes: Any
    ) -> bool:
        return await self.db._update(CAMPAIGNS, campaign_id, expect, changes)

    # -- recipients ------------------------------------------------------
    async def snapshot(self, campaign: Campaign, audience: AudienceFilter, now: datetime) -> int:
        sql, params = _reachable(audience, campaign.channel)
        insert = (
            "INSERT OR IGNORE INTO campaign_recipients"
            " (campaign_id, contact_id, address, status, attempts, updated_at)"
            " SELECT ?, i.contact_id, i.address, 'pending', 0, ?" + sql
        )
        async with self.db.transaction():
            writer = self.db._w
            await asyncio.to_thread(writer.execute, insert, [campaign.id, to_ms(now), *params])
            row = await self.db._fetch_one(
                "SELECT COUNT(*) AS n FROM campaign_recipients WHERE campaign_id = ?",
                (campaign.id,),
            )
        return int(row["n"]) if row else 0

    async def due_recipients(
        self, campaign_id: str, now: datetime, limit: int, *, after: str | None = None
    ) -> list[Recipient]:
        rows = await self.db._fetch_all(
            "SELECT * FROM campaign_recipients WHERE campaign_id = ? AND status = 'pending'"
            " AND contact_id > ? AND (not_before IS NULL OR not_before <= ?)"
            " ORDER BY contact_id LIMIT ?",
            (campaign_id, after or "", to_ms(now), limit),
        )
        return [RECIPIENTS.decode(r) for r in rows]

    async def due_sends(
        self,
        campaign_id: str,
        channel: CampaignChannel,
        now: datetime,
        limit: int,
        *,
        after: str | None = None,
    ) -> list[DueSend]:
        rows = await self.db._fetch_all(
            DUE_SENDS,
            (f"$.{CONSENT_KEY[channel]}.status", campaign_id, after or "", to_ms(now), limit),
        )
        due = []
        for (
            contact_id,
            address,
            attempts,
            found,
            name,
            language,
            timezone,
            birthday,
            tags,
            attributes,
            consent,
            phone,
            email,
        ) in rows:
            contact = None
            if found is not None:
                contact = Addressee(
                    found,
                    name,
                    language,
                    timezone,
                    None if birthday is None else date.fromisoformat(birthday),
                    from_json(tags),
                    from_json(attributes),
                    phone or "",
                    email or "",
                    consent,
                )
            due.append(DueSend(campaign_id, contact_id, address, attempts, contact))
        return due

    async def next_waiting(self, campaign_id: str) -> datetime | None:
        row = await self.db._fetch_one(
            # "not_before IS NOT NULL" (MIN skips NULLs anyway) lets SQLite read
            # recipients_waiting; it walked the whole campaign otherwise.
            "SELECT MIN(not_before) AS t FROM campaign_recipients"
            " WHERE campaign_id = ? AND status = 'pending' AND not_before IS NOT NULL",
            (campaign_id,),
        )
        if row is None or row["t"] is None:
            return None
        return from_ms(row["t"])

    async def claim(self, campaign_id: str, contact_ids: Sequence[str], now: datetime) -> list[str]:
        if not contact_ids:
            return []
        marks = ", ".join("?" for _ in contact_ids)
        async with self.db.transaction():
            rows = self.db._w.execute(
                "UPDATE campaign_recipients SET status = 'sending', attempts = attempts + 1,"
                " sending_at = ?, updated_at = ?"
                f" WHERE campaign_id = ? AND status = 'pending' AND contact_id IN ({marks})"
                " RETURNING contact_id",
                (to_ms(now), to_ms(now), campaign_id, *contact_ids),
            ).fetchall()
        return [r["contact_id"] for r in rows]

    async def finish_many(self, campaign_id: str, outcomes: Sequence[Outcome]) -> int:
        if not outcomes:
            return 0
        return await self.db._write_many(
            # A send tried again starts without the id of a handover that failed.
            "UPDATE campaign_recipients SET status = ?, reason = ?, not_before = ?,"
            " external_id = CASE WHEN ? = 'pending' THEN NULL"
            " ELSE COALESCE(?, external_id) END, sent_at = COALESCE(?, sent_at),"
            " updated_at = ? WHERE campaign_id = ? AND contact_id = ? AND status = 'sending'",
            [
                (
                    o.status,
                    o.reason,
                    to_ms(o.not_before) if o.not_before else None,
                    o.status,
                    o.external_id,
                    to_ms(o.at) if o.status == "sent" else None,
                    to_ms(o.at),
                    campaign_id,
                    o.contact_id,
                )
                for o in outcomes
            ],
        )

    async def release(self, campaign_id: str, contact_ids: Sequence[str], now: datetime) -> int:
        if not contact_ids:
            return 0
        marks = ", ".join("?" for _ in contact_ids)
        return await self.db._write(
            "UPDATE campaign_recipients SET status = 'pending', attempts = attempts - 1,"
            " sending_at = NULL, updated_at = ?"
            f" WHERE campaign_id = ? AND status = 'sending' AND contact_id IN ({marks})",
            (to_ms(now), campaign_id, *contact_ids),
        )

    async def hand_over(self, campaign_id: str, contact_id: str, external_id: str) -> None:
        # Committed with no loop turn before the caller sends the final ".": a
        # crash between the record and the send would lose the message.
        await self.db.write_committed(
            "UPDATE campaign_recipients SET external_id = ?"
            " WHERE campaign_id = ? AND contact_id = ? AND status = 'sending'",
            (external_id, campaign_id, contact_id),
        )

    async def hold(
        self, campaign_id: str, contact_ids: Sequence[str], not_before: datetime, now: datetime
    ) -> None:
        if not contact_ids:
            return
        marks = ", ".join("?" for _ in contact_ids)
        await self.db._write(
            "UPDATE campaign_recipients SET not_before = ?, updated_at = ?"
            f" WHERE campaign_id = ? AND status = 'pending' AND contact_id IN ({marks})",
            (to_ms(not_before), to_ms(now), campaign_id, *contact_ids),
        )

    async def skip(
        self, campaign_id: str, contact_ids: Sequence[str], reason: str, now: datetime
    ) -> int:
        if not contact_ids:
            return 0
        marks = ", ".join("?" for _ in contact_ids)
        return await self.db._write(
            "UPDATE campaign_recipients SET status = 'skipped', reason = ?, updated_at = ?"
            f" WHERE campaign_id = ? AND status = 'pending' AND contact_id IN ({marks})",
            (reason, to_ms(now), campaign_id, *contact_ids),
        )

    async def skip_all_pending(self, campaign_id: str, reason: str, now: datetime) -> int:
        return await self.db._write(
            "UPDATE campaign_recipients SET status = 'skipped', reason = ?, updated_at = ?"
            " WHERE campaign_id = ? AND status = 'pending'",
            (reason, to_ms(now), campaign_id),
        )

    async def stuck_sending(
        self, campaign_id: str, before: datetime, limit: int
    ) -> list[Recipient]:
        rows = await self.db._fetch_all(
            # INDEXED BY: without it SQLite walked the whole campaign in contact order.
            "SELECT * FROM campaign_recipients INDEXED BY recipients_by_status"
            " WHERE campaign_id = ? AND status = 'sending' AND sending_at < ?"
            " ORDER BY contact_id LIMIT ?",
            (campaign_id, to_ms(before), limit),
        )
        return [RECIPIENTS.decode(r) for r in rows]

    async def record_delivery(
        self, campaign_id: str, contact_id: str, status: RecipientStatus, reason: str | None
    ) -> bool:
        if status not in ("delivered", "failed"):
            return False
        changed = await self.db._write(
            "UPDATE campaign_recipients SET status = ?, reason = COALESCE(?, reason)"
            " WHERE campaign_id = ? AND contact_id = ? AND status = 'sent'",
            (status, reason, campaign_id, contact_id),
        )
        return changed == 1

    async def any_sent_since(self, since: datetime) -> bool:
        row = await self.db._fetch_one(
            "SELECT 1 FROM campaigns WHERE launched_at IS NOT NULL"
            " AND (finished_at IS NULL OR finished_at >= ?) LIMIT 1",
            (to_ms(since),),
        )
        return row is not None

    async def recent_sends(self, contact_id: str, since: datetime) -> list[Recipient]:
        rows = await self.db._fetch_all(
            "SELECT * FROM campaign_recipients WHERE contact_id = ? AND sent_at >= ?"
            " AND status IN ('sent', 'delivered') ORDER BY sent_at DESC LIMIT 20",
            (contact_id, to_ms(since)),
        )
        return [RECIPIENTS.decode(r) for r in rows]

    async def mark_replied(
        self, campaign_id: str, contact_id: str, at: datetime, conversation_id: str
    ) -> bool:
        changed = await self.db._write(
            "UPDATE campaign_recipients SET replied_at = ?, reply_conversation_id = ?"
            " WHERE campaign_id = ? AND contact_id = ? AND replied_at IS NULL",
            (to_ms(at), conversation_id, campaign_id, contact_id),
        )
        return changed == 1

    async def get_recipient(self, campaign_id: str, contact_id: str) -> Recipient | None:
        row = await self.db._fetch_one(
            "SELECT * FROM campaign_recipients WHERE campaign_id = ? AND contact_id = ?",
            (campaign_id, contact_id),
        )
        return None if row is None else RECIPIENTS.decode(row)

    async def list_recipients(
        self,
        campaign_id: str,
        *,
        status: RecipientStatus | None,
        limit: int,
        cursor: str | None = None,
    ) -> Page[Recipient]:
        # In one status: the campaign's recipients in it, not all of them filtered.
        index = " INDEXED BY recipients_by_status" if status is not None else ""
        sql = f"SELECT * FROM campaign_recipients{index} WHERE campaign_id = ?"
        params: list[Any] = [campaign_id]
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        if cursor:
            sql += " AND contact_id > ?"
            params.append(cursor)
        rows = await self.db._fetch_all(sql + " ORDER BY contact_id LIMIT ?", [*params, limit + 1])
        items = [RECIPIENTS.decode(r) for r in rows[:limit]]
        return Page(items, items[-1].contact_id if len(rows) > limit else None)

    async def progress(self, campaign_id: str, now: datetime) -> Progress:
        # Still a scan of the campaign's status index (a few milliseconds for a
        # hundred thousand), asked each second while it sends: on the long-read
        # thread, not on the loop that sends.
        rows = await self.db._fetch_all_long(PROGRESS, (campaign_id, to_ms(now)))
        figures: dict[str, int] = {}
        for kind, key, n in rows:
            if kind == "status":
                if key != "skipped":  # counted by reason below
                    count_rows(figures, key, None, n)
            elif kind == "skipped":
                count_rows(figures, "skipped", key, n)
            else:  # waiting, replied
                figures[kind] = n
        return Progress(**figures)

    async def contacts(self, contact_ids: Sequence[str]) -> dict[str, Contact]:
        if not contact_ids:
            return {}
        marks = ", ".join("?" for _ in contact_ids)
        rows = await self.db._fetch_all(
            f"{CONTACTS_WITH_IDENTITIES} WHERE id IN ({marks})", list(contact_ids)
        )
        return {row["id"]: CONTACTS.decode(row) for row in rows}
