"""Report queries on MongoDB: `$match` on indexed conversation times, `$group`
for every count. Runs on a real server and on mongomock (the tests' shim): the
pipelines use only `$match`, `$project`, `$group`, `$sum`, `$min`,
`$subtract` and `$mod`, which both implement the same way. A moment's bucket
is `(date - epoch) - (date - epoch) mod size`, since date minus date is
milliseconds on both (mongomock has no `$toLong` on dates).

Messages narrowed by conversation slices (team, agent, label, an agent's
scope) are matched by the ids of those conversations, found first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel

from hub.inbox.model import to_ms
from hub.inbox.mongo import CONVERSATIONS, MESSAGES, Document, MongoStore, _from_bson, _reachable
from hub.reports.model import (
    BREACHED_LABEL,
    ConversationTimes,
    MessageCount,
    ReportFilter,
    SatisfactionCount,
    Waiting,
)
from hub.reports.store import ReportStore

# Naive, which BSON reads as UTC: mongomock keeps dates naive and cannot
# subtract an aware one from them.
EPOCH = datetime(1970, 1, 1)
INDEXES: dict[str, list[IndexModel]] = {
    CONVERSATIONS: [
        IndexModel([("created_at", ASCENDING)], name="by_created"),
        IndexModel(
            [("resolved_at", ASCENDING)],
            name="by_resolved",
            partialFilterExpression={"resolved_at": {"$type": "date"}},
        ),
        IndexModel(
            [("satisfaction_at", ASCENDING)],
            name="by_satisfaction",
            partialFilterExpression={"satisfaction_at": {"$type": "date"}},
        ),
    ]
}
TIMES = ("created_at", "first_response_at", "resolved_at")


def conversation_query(report: ReportFilter) -> Document:
    """The filter's slices as a query on conversations."""
    conditions: list[Document] = []
    for field, values in (
        ("account_id", report.accounts),
        ("channel", report.channels),
        ("team_id", report.teams),
        ("assignee_id", report.agents),
        ("labels", report.labels),
    ):
        if values:
            conditions.append({field: {"$in": list(values)}})
    if report.scope is not None:
        conditions.append(
            {
                "$or": [
                    {"assignee_id": report.scope.agent_id},
                    {"team_id": None},
                    {"team_id": {"$in": list(report.scope.team_ids)}},
                ]
            }
        )
    return {"$and": conditions} if conditions else {}


def _in(period: ReportFilter) -> Document:
    return {"$gte": period.since, "$lt": period.until}


def _and(*queries: Document) -> Document:
    parts = [query for query in queries if query]
    return {"$and": parts} if len(parts) > 1 else (parts[0] if parts else {})


def _ms(value: Any) -> int | None:
    return None if value is None else to_ms(_from_bson(value))


class MongoReportStore(ReportStore):
    def __init__(self, store: MongoStore) -> None:
        self.db = store

    async def open(self) -> None:
        with _reachable():
            for collection, indexes in INDEXES.items():
                await self.db._db[collection].create_indexes(indexes)

    async def _aggregate(self, collection: str, pipeline: list[Document]) -> list[Document]:
        with _reachable():
            cursor = await self.db._db[collection].aggregate(
                pipeline, session=self.db._session.get()
            )
            return list(await cursor.to_list(None))

    async def _message_query(self, report: ReportFilter) -> Document:
        query: Document = {"created_at": _in(report)}
        if report.accounts:
            query["account_id"] = {"$in": list(report.accounts)}
        if report.channels:
            query["channel"] = {"$in": list(report.channels)}
        if report.by_conversation:
            ids = await self._aggregate(
                CONVERSATIONS,
                [{"$match": conversation_query(report)}, {"$project": {"_id": 1}}],
            )
            query["conversation_id"] = {"$in": [document["_id"] for document in ids]}
        return query

    async def conversation_times(self, report: ReportFilter) -> list[ConversationTimes]:
        # One match finds each conversation once: opened or resolved in the period.
        when = {"$or": [{"created_at": _in(report)}, {"resolved_at": _in(report)}]}
        groups = await self._aggregate(
            CONVERSATIONS,
            [
                {"$match": _and(when, conversation_query(report))},
                {
                    "$group": {
                        "_id": {
                            "account": "$account_id",
                            "team": "$team_id",
                            "assignee": "$assignee_id",
                            "channel": "$channel",
                        },
                        "created": {"$push": "$created_at"},
                        "first": {"$push": {"$ifNull": ["$first_response_at", None]}},
                        "resolved": {"$push": {"$ifNull": ["$resolved_at", None]}},
                        "breached": {
                            "$push": {"$in": [BREACHED_LABEL, {"$ifNull": ["$labels", []]}]}
                        },
                    }
                },
            ],
        )
        return [
            ConversationTimes(
                account_id=group["_id"]["account"],
                team_id=group["_id"].get("team"),
                assignee_id=group["_id"].get("assignee"),
                channel=group["_id"]["channel"],
                created_at=[to_ms(_from_bson(moment)) for moment in group["created"]],
                first_response_at=[_ms(moment) for moment in group["first"]],
                resolved_at=[_ms(moment) for moment in group["resolved"]],
                breached=[int(bool(flag)) for flag in group["breached"]],
            )
            for group in groups
        ]

    async def message_counts(self, report: ReportFilter, bucket_ms: int) -> list[MessageCount]:
        query = await self._message_query(report)
        query["direction"] = {"$in": ["inbound", "outbound"]}
        since_epoch = {"$subtract": ["$created_at", EPOCH]}
        groups = await self._aggregate(
            MESSAGES,
            [
                {"$match": query},
                {
                    "$group": {
                        "_id": {
                            "bucket": {
                                "$subtract": [since_epoch, {"$mod": [since_epoch, bucket_ms]}]
                            },
                            "channel": "$channel",
                            "direction": "$direction",
                        },
                        "count": {"$sum": 1},
                    }
                },
            ],
        )
        return [
            MessageCount(
                int(group["_id"]["bucket"]),
                group["_id"]["channel"],
                group["_id"]["direction"],
                int(group["count"]),
            )
            for group in groups
        ]

    async def message_totals(self, report: ReportFilter) -> tuple[int, int]:
        query = await self._message_query(report)
        query["direction"] = {"$in": ["inbound", "outbound"]}
        groups = await self._aggregate(
            MESSAGES, [{"$match": query}, {"$group": {"_id": "$direction", "count": {"$sum": 1}}}]
        )
        counts = {g["_id"]: int(g["count"]) for g in groups}
        return counts.get("inbound", 0), counts.get("outbound", 0)

    async def agent_messages(self, report: ReportFilter) -> dict[str, int]:
        query = await self._message_query(report)
        query["direction"] = "outbound"
        query["sender.kind"] = "agent"
        groups = await self._aggregate(
            MESSAGES,
            [{"$match": query}, {"$group": {"_id": "$sender.id", "count": {"$sum": 1}}}],
        )
        return {g["_id"]: int(g["count"]) for g in groups if g["_id"] is not None}

    async def satisfaction(self, report: ReportFilter) -> list[SatisfactionCount]:
        groups = await self._aggregate(
            CONVERSATIONS,
            [
                {
                    "$match": _and(
                        {"satisfaction_at": _in(report), "satisfaction": {"$ne": None}},
                        conversation_query(report),
                    )
                },
                {
                    "$group": {
                        "_id": {"assignee": "$assignee_id", "score": "$satisfaction"},
                        "count": {"$sum": 1},
                    }
                },
            ],
        )
        return [
            SatisfactionCount(g["_id"].get("assignee"), int(g["_id"]["score"]), int(g["count"]))
            for g in groups
        ]

    async def waiting(self, report: ReportFilter) -> Waiting:
        groups = await self._aggregate(
            CONVERSATIONS,
            [
                {
                    "$match": _and(
                        {"assignee_id": None, "status": {"$ne": "resolved"}},
                        conversation_query(report),
                    )
                },
                {"$group": {"_id": None, "count": {"$sum": 1}, "oldest": {"$min": "$created_at"}}},
            ],
        )
        if not groups or not groups[0]["count"]:
            return Waiting(0, None)
        return Waiting(int(groups[0]["count"]), _from_bson(groups[0]["oldest"]))
