"""Campaign storage in MongoDB, beside the inbox's collections and through the
inbox store's client (its sessions, its codec options).

A recipient's `_id` is "<campaign>:<contact>", so the (campaign, contact) key
is unique by construction. The launch snapshot reads the audience's contacts
with a projection and writes recipients with unordered `insert_many` in large
batches: a repeated snapshot's duplicates are refused by `_id` and ignored.
Audience filters on conversations (`has_conversation`, activity) first group
the conversations by contact (one aggregation), then filter contacts by id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, UpdateOne
from pymongo.errors import BulkWriteError

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
from hub.inbox.model import Contact
from hub.inbox.mongo import (
    CONTACTS,
    CONVERSATIONS,
    Document,
    MongoStore,
    _from_bson,
    _reachable,
    _record,
)
from hub.inbox.store import Expectation, Page

AUDIENCES = "audiences"
CAMPAIGNS = "campaigns"
RECIPIENTS = "campaign_recipients"
SNAPSHOT_BATCH = 5_000
DUPLICATE_KEY = 11000

INDEXES: dict[str, list[IndexModel]] = {
    CAMPAIGNS: [IndexModel([("status", ASCENDING), ("created_at", DESCENDING)], name="by_status")],
    RECIPIENTS: [
        IndexModel(
            [("campaign_id", ASCENDING), ("status", ASCENDING), ("contact_id", ASCENDING)],
            name="by_status",
        ),
        IndexModel(
            [("contact_id", ASCENDING), ("sent_at", DESCENDING)],
            name="by_contact",
            partialFilterExpression={"sent_at": {"$type": "date"}},
        ),
    ],
}


def _recipient_id(campaign_id: str, contact_id: str) -> str:
    return f"{campaign_id}:{contact_id}"


def _recipient(document: Document) -> Recipient:
    return Recipient.model_validate({k: _from_bson(v) for k, v in document.items() if k != "_id"})


class MongoCampaignStore(CampaignStore):
    def __init__(self, store: MongoStore) -> None:
        self.db = store

    async def open(self) -> None:
        with _reachable():
            for collection, indexes in INDEXES.items():
                await self.db._db[collection].create_indexes(indexes)

    async def _audience_query(self, audience: AudienceFilter, channel: CampaignChannel) -> Document:
        conditions: list[Document] = [{"identities.channel": ADDRESS_SPACE[channel]}]
        if audience.tags_all:
            conditions.append({"tags": {"$all": list(audience.tags_all)}})
        if audience.tags_any:
            conditions.append({"tags": {"$in": list(audience.tags_any)}})
        if audience.tags_none:
            conditions.append({"tags": {"$nin": list(audience.tags_none)}})
        for name, value in audience.attributes.items():
            conditions.append({f"attributes.{name}": {"$eq": value}})
        key = f"consent.{CONSENT_KEY[channel]}.status"
        if audience.consent == "not_opted_out":
            conditions.append({key: {"$ne": "opted_out"}})
        elif audience.consent == "opted_in":
            conditions.append({key: "opted_in"})
        if (
            audience.has_conversation is not None
            or audience.active_after is not None
            or audience.active_before is not None
        ):
            conditions.append(await self._by_activity(audience))
        return {"$and": conditions}

    async def _by_activity(self, audience: AudienceFilter) -> Document:
        with _reachable():
            cursor = await self.db._db[CONVERSATIONS].aggregate(
                [{"$group": {"_id": "$contact_id", "last": {"$max": "$last_activity_at"}}}]
            )
            groups = await cursor.to_list()
        last = {g["_id"]: _aware(g["last"]) for g in groups}
        if audience.has_conversation is False:
            return {"_id": {"$nin": list(last)}}
        chosen = [
            contact_id
            for contact_id, moment in last.items()
            if (audience.active_after is None or moment >= audience.active_after)
            and (audience.active_before is None or moment < audience.active_before)
        ]
        return {"_id": {"$in": chosen}}

    # -- audiences -------------------------------------------------------
    async def add_audience(self, audience: Audience) -> None:
        await self.db._insert(AUDIENCES, audience)

    async def get_audience(self, audience_id: str) -> Audience | None:
        document = await self.db._find_one(AUDIENCES, {"_id": audience_id})
        return None if document is None else _record(Audience, document)

    async def list_audiences(self) -> list[Audience]:
        documents = await self.db._find(AUDIENCES, {}, sort=[("_id", DESCENDING)])
        return [_record(Audience, d) for d in documents]

    async def count_audience(self, audience: AudienceFilter, channel: CampaignChannel) -> int:
        query = await self._audience_query(audience, channel)
        with _reachable():
            return int(await self.db._db[CONTACTS].count_documents(query))

    async def sample_contact(
        self, audience: AudienceFilter, channel: CampaignChannel
    ) -> Contact | None:
        query = await self._audience_query(audience, channel)
        found = await self.db._find(CONTACTS, query, limit=1)
        return _record(Contact, found[0]) if found else None

    # -- campaigns -------------------------------------------------------
    async def add_campaign(self, campaign: Campaign) -> None:
        await self.db._insert(CAMPAIGNS, campaign)

    async def get_campaign(self, campaign_id: str) -> Campaign | None:
        document = await self.db._find_one(CAMPAIGNS, {"_id": campaign_id})
        return None if document is None else _record(Campaign, document)

    async def list_campaigns(
        self, *, statuses: Sequence[CampaignStatus] | None = None
    ) -> list[Campaign]:
        query: Document = {"status": {"$in": list(statuses)}} if statuses else {}
        documents = await self.db._find(
            CAMPAIGNS, query, sort=[("created_at", DESCENDING), ("_id", DESCENDING)]
        )
        return [_record(Campaign, d) for d in documents]

    async def update_campaign(
        self, campaign_id: str, *, expect: Expectation | None = None, **changes: Any
    ) -> bool:
        return await self.db._update(CAMPAIGNS, Campaign, campaign_id, expect, changes)

    # -- recipients ------------------------------------------------------
    async def snapshot(self, campaign: Campaign, audience: AudienceFilter, now: datetime) -> int:
        space = ADDRESS_SPACE[campaign.channel]
        query = await self._audience_query(audience, campaign.channel)
        batch: list[Document] = []
        with _reachable():
            cursor = self.db._db[CONTACTS].find(query, {"identities": 1})
            async for contact in cursor:
                address = next(
                    (i["address"] for i in contact.get("identities", []) if i["channel"] == space),
                    None,
                )
                if address is None:
                    continue
                batch.append(
                    {
                        "_id": _recipient_id(campaign.id, contact["_id"]),
                        "campaign_id": campaign.id,
                        "contact_id": contact["_id"],
                        "address": address,
                        "status": "pending",
                        "reason": None,
                        "not_before": None,
                        "attempts": 0,
                        "external_id": None,
                        "sending_at": None,
                        "sent_at": None,
                        "updated_at": now,
                    }
                )
                if len(batch) >= SNAPSHOT_BATCH:
                    await self._insert_new(batch)
                    batch = []
            if batch:
                await self._insert_new(batch)
            return int(await self.db._db[RECIPIENTS].count_documents({"campaign_id": campaign.id}))

    async def _insert_new(self, documents: list[Document]) -> None:
        try:
            await self.db._db[RECIPIENTS].insert_many(documents, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise

    async def due_recipients(
        self, campaign_id: str, now: datetime, limit: int, *, after: str | None = None
    ) -> list[Recipient]:
        query: dict[str, Any] = {
            "campaign_id": campaign_id,
            "status": "pending",
            "$or": [{"not_before": None}, {"not_before": {"$lte": now}}],
        }
        if after is not None:
            query["contact_id"] = {"$gt": after}
        documents = await self.db._find(
            RECIPIENTS,
            query,
            sort=[("contact_id", ASCENDING)],
            limit=limit,
        )
        return [_recipient(d) for d in documents]

    async def due_sends(
        self,
        campaign_id: str,
        channel: CampaignChannel,
        now: datetime,
        limit: int,
        *,
        after: str | None = None,
    ) -> list[DueSend]:
        due = await self.due_recipients(campaign_id, now, limit, after=after)
        contacts = await self.contacts([r.contact_id for r in due])
        sends = []
        for recipient in due:
            contact = contacts.get(recipient.contact_id)
            sends.append(
                DueSend(
                    campaign_id,
                    recipient.contact_id,
                    recipient.address,
                    recipient.attempts,
                    None if contact is None else Addressee.of(contact, channel),
                )
            )
        return sends

    async def next_waiting(self, campaign_id: str) -> datetime | None:
        documents = await self.db._find(
            RECIPIENTS,
            {"campaign_id": campaign_id, "status": "pending", "not_before": {"$ne": None}},
            sort=[("not_before", ASCENDING)],
            limit=1,
        )
        return _aware(documents[0]["not_before"]) if documents else None

    async def claim(self, campaign_id: str, contact_ids: Sequence[str], now: datetime) -> list[str]:
        claimed = []
        for contact_id in contact_ids:
            if await self.db._update_one(
                RECIPIENTS,
                {"_id": _recipient_id(campaign_id, contact_id), "status": "pending"},
                {
                    "$set": {"status": "sending", "sending_at": now, "updated_at": now},
                    "$inc": {"attempts": 1},
                },
            ):
                claimed.append(contact_id)
        return claimed

    async def finish_many(self, campaign_id: str, outcomes: Sequence[Outcome]) -> int:
        if not outcomes:
            return 0
        updates = []
        for outcome in outcomes:
            changes: Document = {
                "status": outcome.status,
                "reason": outcome.reason,
                "not_before": outcome.not_before,
                "updated_at": outcome.at,
            }
            if outcome.status == "pending":
                changes["external_id"] = None
            elif outcome.external_id is not None:
                changes["external_id"] = outcome.external_id
            if outcome.status == "sent":
                changes["sent_at"] = outcome.at
            updates.append(
                UpdateOne(
                    {"_id": _recipient_id(campaign_id, outcome.contact_id), "status": "sending"},
                    {"$set": changes},
                )
            )
        with _reachable():
            result = await self.db._db[RECIPIENTS].bulk_write(
                updates, ordered=False, session=self.db._session.get()
            )
        return int(result.matched_count)

    async def release(self, campaign_id: str, contact_ids: Sequence[str], now: datetime) -> int:
        if not contact_ids:
            return 0
        with _reachable():
            result = await self.db._db[RECIPIENTS].update_many(
                {
                    "_id": {"$in": [_recipient_id(campaign_id, c) for c in contact_ids]},
                    "status": "sending",
                },
                {
                    "$set": {"status": "pending", "sending_at": None, "updated_at": now},
                    "$inc": {"attempts": -1},
                },
            )
        return int(result.modified_count)

    async def hand_over(self, campaign_id: str, contact_id: str, external_id: str) -> None:
        await self.db._update_one(
            RECIPIENTS,
            {"_id": _recipient_id(campaign_id, contact_id), "status": "sending"},
            {"$set": {"external_id": external_id}},
        )

    async def hold(
        self, campaign_id: str, contact_ids: Sequence[str], not_before: datetime, now: datetime
    ) -> None:
        if not contact_ids:
            return
        with _reachable():
            await self.db._db[RECIPIENTS].update_many(
                {
                    "_id": {"$in": [_recipient_id(campaign_id, c) for c in contact_ids]},
                    "status": "pending",
                },
                {"$set": {"not_before": not_before, "updated_at": now}},
            )

    async def skip(
        self, campaign_id: str, contact_ids: Sequence[str], reason: str, now: datetime
    ) -> int:
        if not contact_ids:
            return 0
        with _reachable():
            result = await self.db._db[RECIPIENTS].update_many(
                {
                    "_id": {"$in": [_recipient_id(campaign_id, c) for c in contact_ids]},
                    "status": "pending",
                },
                {"$set": {"status": "skipped", "reason": reason, "updated_at": now}},
            )
        return int(result.modified_count)

    async def skip_all_pending(self, campaign_id: str, reason: str, now: datetime) -> int:
        with _reachable():
            result = await self.db._db[RECIPIENTS].update_many(
                {"campaign_id": campaign_id, "status": "pending"},
                {"$set": {"status": "skipped", "reason": reason, "updated_at": now}},
            )
        return int(result.modified_count)

    async def stuck_sending(
        self, campaign_id: str, before: datetime, limit: int
    ) -> list[Recipient]:
        documents = await self.db._find(
            RECIPIENTS,
            {"campaign_id": campaign_id, "status": "sending", "sending_at": {"$lt": before}},
            sort=[("contact_id", ASCENDING)],
            limit=limit,
        )
        return [_recipient(d) for d in documents]

    async def record_delivery(
        self, campaign_id: str, contact_id: str, status: RecipientStatus, reason: str | None
    ) -> bool:
        if status not in ("delivered", "failed"):
            return False
        changes: Document = {"status": status}
        if reason is not None:
            changes["reason"] = reason
        return await self.db._update_one(
            RECIPIENTS,
            {"_id": _recipient_id(campaign_id, contact_id), "status": "sent"},
            {"$set": changes},
        )

    async def any_sent_since(self, since: datetime) -> bool:
        found = await self.db._find(
            CAMPAIGNS,
            {
                "launched_at": {"$ne": None},
                "$or": [{"finished_at": None}, {"finished_at": {"$gte": since}}],
            },
            limit=1,
            projection={"_id": 1},
        )
        return bool(found)

    async def recent_sends(self, contact_id: str, since: datetime) -> list[Recipient]:
        documents = await self.db._find(
            RECIPIENTS,
            {
                "contact_id": contact_id,
                "sent_at": {"$gte": since},
                "status": {"$in": ["sent", "delivered"]},
            },
            sort=[("sent_at", DESCENDING)],
            limit=20,
        )
        return [_recipient(d) for d in documents]

    async def mark_replied(
        self, campaign_id: str, contact_id: str, at: datetime, conversation_id: str
    ) -> bool:
        return await self.db._update_one(
            RECIPIENTS,
            {"_id": _recipient_id(campaign_id, contact_id), "replied_at": None},
            {"$set": {"replied_at": at, "reply_conversation_id": conversation_id}},
        )

    async def get_recipient(self, campaign_id: str, contact_id: str) -> Recipient | None:
        document = await self.db._find_one(
            RECIPIENTS, {"_id": _recipient_id(campaign_id, contact_id)}
        )
        return None if document is None else _recipient(document)

    async def list_recipients(
        self,
        campaign_id: str,
        *,
        status: RecipientStatus | None,
        limit: int,
        cursor: str | None = None,
    ) -> Page[Recipient]:
        query: Document = {"campaign_id": campaign_id}
        if status is not None:
            query["status"] = status
        if cursor:
            query["contact_id"] = {"$gt": cursor}
        documents = await self.db._find(
            RECIPIENTS, query, sort=[("contact_id", ASCENDING)], limit=limit + 1
        )
        items = [_recipient(d) for d in documents[:limit]]
        return Page(items, items[-1].contact_id if len(documents) > limit else None)

    async def progress(self, campaign_id: str, now: datetime) -> Progress:
        with _reachable():
            cursor = await self.db._db[RECIPIENTS].aggregate(
                [
                    {"$match": {"campaign_id": campaign_id}},
                    {
                        "$group": {
                            "_id": {"status": "$status", "reason": "$reason"},
                            "n": {"$sum": 1},
                        }
                    },
                ]
            )
            groups = await cursor.to_list()
            waiting = await self.db._db[RECIPIENTS].count_documents(
                {"campaign_id": campaign_id, "status": "pending", "not_before": {"$gt": now}}
            )
            replied = await self.db._db[RECIPIENTS].count_documents(
                {"campaign_id": campaign_id, "replied_at": {"$ne": None}}
            )
        figures: dict[str, int] = {"waiting": int(waiting), "replied": int(replied)}
        for group in groups:
            count_rows(figures, group["_id"]["status"], group["_id"].get("reason"), group["n"])
        return Progress(**figures)

    async def contacts(self, contact_ids: Sequence[str]) -> dict[str, Contact]:
        if not contact_ids:
            return {}
        documents = await self.db._find(CONTACTS, {"_id": {"$in": list(contact_ids)}})
        return {d["_id"]: _record(Contact, d) for d in documents}


def _aware(moment: datetime) -> datetime:
    value: datetime = _from_bson(moment)
    return value
