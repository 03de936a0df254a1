"""The production store: MongoDB through PyMongo's native asyncio API.

One document per record, `_id` = the model's id. Contacts embed their
identities; a unique multikey index on (identities.channel, identities.address)
makes an identity belong to one contact across the whole collection.

Times are BSON dates (UTC, millisecond precision, as the model already keeps
them); `date` values become ISO strings, since BSON has none.

Multi-document transactions need a replica set or mongos. On a standalone
server every method is still atomic on its own (each is one single-document
write), and `transaction()` only groups calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime
from typing import Any, TypeVar, get_args

from bson.codec_options import CodecOptions
from pydantic import BaseModel
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, DuplicateKeyError, PyMongoError

from hub.errors import (
    Conflict,
    DuplicateMessage,
    IdentityTaken,
    InvalidRequest,
    NotFound,
    StoreUnavailable,
)
from hub.inbox.model import (
    Agent,
    ApiToken,
    AuditEntry,
    CannedResponse,
    CareTask,
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
from hub.inbox.search import pattern as text_pattern
from hub.inbox.store import (
    ConversationFilter,
    Expectation,
    Page,
    PageCursor,
    Store,
    StoreCounts,
    check_fields,
    merged_fields,
)

Document = dict[str, Any]
R = TypeVar("R", bound=BaseModel)

CONTACTS = "contacts"
CONVERSATIONS = "conversations"
MESSAGES = "messages"
AGENTS = "agents"
TOKENS = "api_tokens"
AUDIT = "audit_log"
CANNED = "canned_responses"
CHANNEL_STATE = "channel_state"
CARE_TASKS = "care_tasks"

# A query uses a partial index only if it implies the index's filter, so the
# lookups below repeat these filters word for word.
HAS_IDENTITIES: Document = {"identities.channel": {"$exists": True}}
HAS_EXTERNAL_ID: Document = {"external_id": {"$type": "string"}}
HAS_IDEMPOTENCY_KEY: Document = {"idempotency_key": {"$type": "string"}}
HAS_THREAD_KEY: Document = {"thread.message_id": {"$type": "string"}}
# Only messages sent in several parts (`sent_parts` not empty) are in that index.
HAS_SENT_PARTS: Document = {"sent_parts.0": {"$exists": True}}

NEWEST_FIRST = [("last_activity_at", DESCENDING), ("_id", DESCENDING)]
OLDEST_FIRST = [("created_at", ASCENDING), ("_id", ASCENDING)]


def _list_index(*prefix: str, name: str) -> IndexModel:
    """A conversation list view: its filter fields, then newest activity first."""
    return IndexModel([*((f, ASCENDING) for f in prefix), *NEWEST_FIRST], name=name)


INDEXES: dict[str, list[IndexModel]] = {
    CONTACTS: [
        # Partial, because every contact without identities would otherwise
        # index the same missing key and collide with the others.
        IndexModel(
            [("identities.channel", ASCENDING), ("identities.address", ASCENDING)],
            name="identities",
            unique=True,
            partialFilterExpression=HAS_IDENTITIES,
        ),
    ],
    CONVERSATIONS: [
        _list_index("contact_id", "account_id", name="by_contact"),
        _list_index("status", name="by_status"),
        _list_index("assignee_id", "status", name="by_assignee"),
        # The waiting queue: unassigned, oldest first.
        IndexModel([("assignee_id", ASCENDING), *OLDEST_FIRST], name="waiting"),
    ],
    MESSAGES: [
        IndexModel(
            [("channel", ASCENDING), ("account_id", ASCENDING), ("external_id", ASCENDING)],
            name="by_external_id",
            unique=True,
            partialFilterExpression=HAS_EXTERNAL_ID,
        ),
        IndexModel(
            [("conversation_id", ASCENDING), ("idempotency_key", ASCENDING)],
            name="by_idempotency_key",
            unique=True,
            partialFilterExpression=HAS_IDEMPOTENCY_KEY,
        ),
        IndexModel([("conversation_id", ASCENDING), *OLDEST_FIRST], name="timeline"),
        IndexModel(
            [
                ("account_id", ASCENDING),
                ("thread.message_id", ASCENDING),
                ("created_at", ASCENDING),
            ],
            name="by_thread_key",
            partialFilterExpression=HAS_THREAD_KEY,
        ),
        IndexModel(OLDEST_FIRST, name="queued", partialFilterExpression={"status": "queued"}),
        # Multikey: each part's provider id, for receipts naming a later part.
        IndexModel(
            [("channel", ASCENDING), ("account_id", ASCENDING), ("sent_parts", ASCENDING)],
            name="by_sent_part",
            partialFilterExpression=HAS_SENT_PARTS,
        ),
    ],
    AGENTS: [
        IndexModel([("email", ASCENDING)], name="email", unique=True),
        IndexModel(
            [("extension", ASCENDING)],
            name="extension",
            unique=True,
            partialFilterExpression={"extension": {"$type": "string"}},
        ),
    ],
    TOKENS: [
        IndexModel([("token_hash", ASCENDING)], name="token_hash", unique=True),
        IndexModel([("agent_id", ASCENDING), ("created_at", ASCENDING)], name="by_agent"),
    ],
    CANNED: [IndexModel([("shortcut", ASCENDING)], name="shortcut", unique=True)],
    # Care tasks are keyed by `_id` (their unique key).
    CARE_TASKS: [
        IndexModel(
            [("due_at", ASCENDING), ("_id", ASCENDING)],
            name="due",
            partialFilterExpression={"state": "pending"},
        ),
        IndexModel(
            [("contact_id", ASCENDING), ("kind", ASCENDING)],
            name="by_contact",
            partialFilterExpression={"state": "pending"},
        ),
    ],
}


def _to_bson(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return _to_bson(value.model_dump())
    if isinstance(value, Mapping):
        return {key: _to_bson(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_to_bson(item) for item in value]
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    return value


def _from_bson(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _from_bson(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_bson(item) for item in value]
    if isinstance(value, datetime):
        # BSON dates are UTC; a client without tz_aware hands them back naive.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def _document(record: BaseModel) -> Document:
    fields = _to_bson(record.model_dump())
    return {"_id": fields.pop("id"), **fields}


def _record(model: type[R], document: Mapping[str, Any]) -> R:
    fields = {("id" if key == "_id" else key): _from_bson(v) for key, v in document.items()}
    return model.model_validate(fields)


def _care_task(document: Mapping[str, Any]) -> CareTask:
    fields = {("key" if k == "_id" else k): _from_bson(v) for k, v in document.items()}
    return CareTask.model_validate(fields)


def _state_id(account_id: str, key: str) -> str:
    return f"{account_id}\x1f{key}"  # a separator no account id or key contains


def _field(name: str) -> str:
    return "_id" if name == "id" else name


@contextmanager
def _reachable() -> Iterator[None]:
    """Turn "the database is not there (or the transaction must be retried)" into
    StoreUnavailable; everything else, duplicate keys included, passes through."""
    try:
        yield
    except DuplicateKeyError:
        raise
    except ConnectionFailure as exc:
        raise StoreUnavailable(f"MongoDB unavailable: {exc}") from exc
    except PyMongoError as exc:
        if exc.has_error_label("TransientTransactionError") or exc.has_error_label(
            "UnknownTransactionCommitResult"
        ):
            raise StoreUnavailable(f"MongoDB transaction must be retried: {exc}") from exc
        raise


def _expect_query(record_id: str, expect: Expectation | None) -> Document:
    # `$eq`/`$in` compare literally: an expected dict is never read as operators,
    # and None matches a null or missing field.
    conditions: list[Document] = [
        {_field(name): {"$in": [_to_bson(w) for w in wanted]}}
        if isinstance(wanted, tuple)
        else {_field(name): {"$eq": _to_bson(wanted)}}
        for name, wanted in (expect or {}).items()
    ]
    query: Document = {"_id": record_id}
    if conditions:
        query["$and"] = conditions
    return query


def _identity_taken(exc: DuplicateKeyError) -> bool:
    key_pattern = (exc.details or {}).get("keyPattern") or {}
    return any(k.startswith("identities.") for k in key_pattern) or "identities" in str(exc)


class MongoStore(Store):
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        # tz_aware without a tzinfo returns every datetime in UTC.
        self._db: AsyncDatabase[Document] = database.with_options(
            codec_options=CodecOptions(tz_aware=True)
        )
        self._owned_client: AsyncMongoClient[Document] | None = None
        self._transactions = False
        self._session: ContextVar[AsyncClientSession | None] = ContextVar(
            f"mongo-session-{id(self)}", default=None
        )

    @classmethod
    def from_url(cls, url: str, database_name: str) -> MongoStore:
        """A store that owns its client and closes it in `close()`."""
        client: AsyncMongoClient[Document] = AsyncMongoClient(url, tz_aware=True)
        store = cls(client[database_name])
        store._owned_client = client
        return store

    @property
    def supports_transactions(self) -> bool:
        """Whether `transaction()` is all-or-nothing here (replica set or mongos), as
        found by `open()`."""
        return self._transactions

    # -- lifecycle -------------------------------------------------------
    async def open(self) -> None:
        with _reachable():
            hello = await self._db.command("hello")
            self._transactions = "setName" in hello or hello.get("msg") == "isdbgrid"
            for collection, indexes in INDEXES.items():
                await self._db[collection].create_indexes(indexes)

    async def close(self) -> None:
        if self._owned_client is not None:
            await self._owned_client.close()
            self._owned_client = None

    async def ping(self) -> None:
        with _reachable():
            await self._db.command("ping")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if not self._transactions or self._session.get() is not None:
            # Nested, or no transactions on this server: each method is atomic
            # on its own, so the block just runs.
            yield
            return
        with _reachable():
            async with self._db.client.start_session() as session:
                token = self._session.set(session)
                try:
                    async with await session.start_transaction():
                        yield
                finally:
                    self._session.reset(token)

    # -- operation helpers -----------------------------------------------
    async def _insert(self, collection: str, record: BaseModel) -> None:
        with _reachable():
            await self._db[collection].insert_one(_document(record), session=self._session.get())

    async def _find_one(self, collection: str, query: Document) -> Document | None:
        with _reachable():
            return await self._db[collection].find_one(query, session=self._session.get())

    async def _find(
        self,
        collection: str,
        query: Document,
        *,
        sort: Sequence[tuple[str, int]] | None = None,
        limit: int | None = None,
        projection: Document | None = None,
    ) -> list[Document]:
        if limit is not None and limit < 1:
            return []  # Mongo reads limit 0 as "no limit"
        with _reachable():
            cursor = self._db[collection].find(query, projection, session=self._session.get())
            if sort:
                cursor = cursor.sort(list(sort))
            if limit is not None:
                cursor = cursor.limit(limit)
            return await cursor.to_list()

    async def _update_one(
        self, collection: str, query: Document, update: Document, *, upsert: bool = False
    ) -> bool:
        with _reachable():
            result = await self._db[collection].update_one(
                query, update, upsert=upsert, session=self._session.get()
            )
        return result.matched_count == 1

    async def _update(
        self,
        collection: str,
        model: type[BaseModel],
        record_id: str,
        expect: Expectation | None,
        changes: Mapping[str, Any],
    ) -> bool:
        check_fields(model, changes, expect)
        if not changes:
            return False
        query = _expect_query(record_id, expect)
        update = {"$set": {_field(name): _to_bson(value) for name, value in changes.items()}}
        try:
            return await self._update_one(collection, query, update)
        except DuplicateKeyError as exc:
            raise Conflict(f"{model.__name__} {record_id}: {exc}") from exc

    # -- contacts --------------------------------------------------------
    async def add_contact(self, contact: Contact) -> None:
        # The unique index holds identities apart across contacts, not within one.
        if len(set(contact.identities)) < len(contact.identities):
            raise IdentityTaken(f"contact {contact.id} lists an identity twice")
        try:
            await self._insert(CONTACTS, contact)
        except DuplicateKeyError as exc:
            if _identity_taken(exc):
                raise IdentityTaken(f"an identity of contact {contact.id} is taken") from exc
            raise Conflict(f"contact {contact.id} exists") from exc

    async def get_contact(self, contact_id: str) -> Contact | None:
        document = await self._find_one(CONTACTS, {"_id": contact_id})
        return None if document is None else _record(Contact, document)

    @staticmethod
    def _owning_query(identities: Sequence[Identity]) -> dict[str, Any]:
        return {
            "$or": [
                {**HAS_IDENTITIES, "identities": {"$elemMatch": i.model_dump()}}
                for i in set(identities)
            ]
        }

    async def contacts_by_identity(self, identities: Sequence[Identity]) -> dict[Identity, str]:
        if not identities:
            return {}
        wanted = set(identities)
        query = self._owning_query(identities)
        found: dict[Identity, str] = {}
        for document in await self._find(CONTACTS, query, projection={"identities": 1}):
            for entry in document["identities"]:
                identity = Identity.model_validate(entry)
                if identity in wanted:
                    found[identity] = document["_id"]
        return found

    async def contacts_owning(self, identities: Sequence[Identity]) -> list[Contact]:
        if not identities:
            return []
        documents = await self._find(CONTACTS, self._owning_query(identities))
        return [_record(Contact, document) for document in documents]

    async def link_identity(self, contact_id: str, identity: Identity) -> None:
        entry = identity.model_dump()
        try:
            pushed = await self._update_one(
                CONTACTS,
                {"_id": contact_id, "identities": {"$not": {"$elemMatch": entry}}},
                {"$push": {"identities": entry}},
            )
        except DuplicateKeyError as exc:
            raise IdentityTaken(
                f"{identity.channel} {identity.address} belongs to a contact"
            ) from exc
        if not pushed and await self._find_one(CONTACTS, {"_id": contact_id}) is None:
            raise NotFound(f"contact {contact_id} does not exist")

    async def update_contact(
        self, contact_id: str, *, expect: Expectation | None = None, **changes: Any
    ) -> bool:
        return await self._update(CONTACTS, Contact, contact_id, expect, changes)

    # -- conversations ---------------------------------------------------
    async def add_conversation(self, conversation: Conversation) -> None:
        try:
            await self._insert(CONVERSATIONS, conversation)
        except DuplicateKeyError as exc:
            raise Conflict(f"conversation {conversation.id} exists") from exc
        if conversation.assignee_id is not None and conversation.status != "resolved":
            await self._add_load(conversation.assignee_id, 1)

    async def _add_load(self, agent_id: str, delta: int) -> None:
        await self._update_one(AGENTS, {"_id": agent_id}, {"$inc": {"open_count": delta}})

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        document = await self._find_one(CONVERSATIONS, {"_id": conversation_id})
        return None if document is None else _record(Conversation, document)

    async def latest_conversation(
        self, contact_id: str, account_id: str, *, statuses: Sequence[ConversationStatus] | None
    ) -> Conversation | None:
        query: Document = {"contact_id": contact_id, "account_id": account_id}
        if statuses is not None:
            query["status"] = {"$in": list(statuses)}
        documents = await self._find(CONVERSATIONS, query, sort=NEWEST_FIRST, limit=1)
        return _record(Conversation, documents[0]) if documents else None

    async def list_conversations(
        self, view: ConversationFilter, *, limit: int, cursor: str | None = None
    ) -> Page[Conversation]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        # Always a status list, every status when the view names none: the server
        # then reads each status's part of by_status / by_assignee newest first and
        # merges them (an "explode for sort"), where without it it sorted every match.
        statuses = list(view.statuses or get_args(ConversationStatus))
        query: Document = {"status": {"$in": statuses}}
        if view.unassigned:
            query["assignee_id"] = None
        elif view.assignee_id is not None:
            query["assignee_id"] = view.assignee_id
        for name in ("channel", "account_id", "contact_id"):
            value = getattr(view, name)
            if value is not None:
                query[name] = value
        conditions: list[Document] = []
        if view.team_ids is not None:
            conditions.append({"team_id": {"$in": list(view.team_ids)}})
        if view.visible_to is not None:
            conditions.append(
                {
                    "$or": [
                        {"assignee_id": view.visible_to.agent_id},
                        {"team_id": None},
                        {"team_id": {"$in": list(view.visible_to.team_ids)}},
                    ]
                }
            )
        if view.label is not None:
            query["labels"] = view.label
        if view.updated_since is not None:
            query["updated_at"] = {"$gte": view.updated_since}
        if view.inactive_since is not None:
            conditions.append({"last_activity_at": {"$lte": view.inactive_since}})
        if view.text:
            pattern = {"$regex": text_pattern(view.text), "$options": "i"}
            found = await self._find(
                MESSAGES, {"text": pattern}, projection={"conversation_id": 1}, limit=1000
            )
            conditions.append(
                {
                    "$or": [
                        {"subject": pattern},
                        {"contact_address": pattern},
                        {"_id": {"$in": list({d["conversation_id"] for d in found})}},
                    ]
                }
            )
        if cursor:
            after = PageCursor.decode(cursor)
            at = from_ms(after.ms)
            conditions.append(
                {
                    "$or": [
                        {"last_activity_at": {"$lt": at}},
                        {"last_activity_at": at, "_id": {"$lt": after.id}},
                    ]
                }
            )
        if conditions:
            query["$and"] = conditions
        documents = await self._find(CONVERSATIONS, query, sort=NEWEST_FIRST, limit=limit + 1)
        items = [_record(Conversation, d) for d in documents[:limit]]
        next_cursor = None
        if len(documents) > limit:
            last = items[-1]
            next_cursor = PageCursor(to_ms(last.last_activity_at), last.id).encode()
        return Page(items, next_cursor)

    async def update_conversation(
        self, conversation_id: str, *, expect: Expectation | None = None, **changes: Any
    ) -> bool:
        if "assignee_id" not in changes and "status" not in changes:
            return await self._update(
                CONVERSATIONS,
                Conversation,
                conversation_id,
                expect,
                changes,
            )
        # The change may move an agent's load: read the document as it was, in the
        # same atomic write, and count the difference.
        check_fields(Conversation, changes, expect)
        query = _expect_query(conversation_id, expect)
        update = {"$set": {_field(name): _to_bson(value) for name, value in changes.items()}}
        with _reachable():
            before = await self._db[CONVERSATIONS].find_one_and_update(
                query, update, return_document=ReturnDocument.BEFORE, session=self._session.get()
            )
        if before is None:
            return False
        was = (before.get("assignee_id"), before.get("status") != "resolved")
        now = (
            changes.get("assignee_id", was[0]),
            changes.get("status", before.get("status")) != "resolved",
        )
        if was != now:
            if was[0] is not None and was[1]:
                await self._add_load(was[0], -1)
            if now[0] is not None and now[1]:
                await self._add_load(now[0], 1)
        return True

    async def record_inbound_activity(self, conversation_id: str, at: datetime) -> None:
        await self._update_one(
            CONVERSATIONS,
            {"_id": conversation_id},
            {
                "$inc": {"unread_count": 1},
                "$max": {"last_activity_at": at},
                "$set": {"updated_at": at},
            },
        )

    # -- messages --------------------------------------------------------
    async def add_message(self, message: Message) -> None:
        try:
            await self._insert(MESSAGES, message)
        except DuplicateKeyError as exc:
            raise DuplicateMessage(
                f"message {message.external_id or message.idempotency_key} is already stored"
            ) from exc

    async def get_message(self, message_id: str) -> Message | None:
        document = await self._find_one(MESSAGES, {"_id": message_id})
        return None if document is None else _record(Message, document)

    async def message_by_external_id(
        self, channel: str, account_id: str, external_id: str
    ) -> Message | None:
        query = {
            "channel": channel,
            "account_id": account_id,
            "external_id": {**HAS_EXTERNAL_ID["external_id"], "$eq": external_id},
        }
        document = await self._find_one(MESSAGES, query)
        return None if document is None else _record(Message, document)

    async def message_by_idempotency_key(
        self, conversation_id: str, idempotency_key: str
    ) -> Message | None:
        query = {
            "conversation_id": conversation_id,
            "idempotency_key": {**HAS_IDEMPOTENCY_KEY["idempotency_key"], "$eq": idempotency_key},
        }
        document = await self._find_one(MESSAGES, query)
        return None if document is None else _record(Message, document)

    async def message_by_thread_key(self, account_id: str, keys: Sequence[str]) -> Message | None:
        if not keys:
            return None
        query = {
            "account_id": account_id,
            "thread.message_id": {**HAS_THREAD_KEY["thread.message_id"], "$in": list(keys)},
        }
        documents = await self._find(
            MESSAGES, query, sort=[("created_at", DESCENDING), ("_id", DESCENDING)], limit=1
        )
        return _record(Message, documents[0]) if documents else None

    async def list_messages(self, conversation_id: str) -> list[Message]:
        documents = await self._find(
            MESSAGES, {"conversation_id": conversation_id}, sort=OLDEST_FIRST
        )
        return [_record(Message, d) for d in documents]

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
        query: Document = {"conversation_id": conversation_id}
        if directions is not None:
            query["direction"] = {"$in": list(directions)}
        if statuses is not None:
            query["status"] = {"$in": list(statuses)}
        if until is not None:
            query["created_at"] = {"$lte": until}
        if threaded:
            query["thread.message_id"] = {"$nin": [None, ""]}
        if before is not None:
            at = from_ms(before.ms)
            query["$or"] = [
                {"created_at": {"$lt": at}},
                {"created_at": at, "_id": {"$lt": before.id}},
            ]
        order = DESCENDING if newest_first else ASCENDING
        documents = await self._find(
            MESSAGES, query, sort=[("created_at", order), ("_id", order)], limit=limit
        )
        return [_record(Message, d) for d in documents]

    async def last_message(self, conversation_id: str, direction: Direction) -> Message | None:
        documents = await self._find(
            MESSAGES,
            {"conversation_id": conversation_id, "direction": direction},
            sort=[("created_at", DESCENDING), ("_id", DESCENDING)],
            limit=1,
        )
        return _record(Message, documents[0]) if documents else None

    async def update_message(
        self, message_id: str, *, expect: Expectation | None = None, **changes: Any
    ) -> bool:
        try:
            return await self._update(
                MESSAGES,
                Message,
                message_id,
                expect,
                changes,
            )
        except Conflict as exc:
            raise DuplicateMessage(f"another message already has that key ({exc.message})") from exc

    async def record_sent_part(
        self, message_id: str, index: int, external_id: str | None, *, attempt: int
    ) -> bool:
        # "Exactly `index` parts": no element at `index`, one at `index - 1`
        # (a message stored before `sent_parts` existed has none at 0 either).
        query: Document = {
            "_id": message_id,
            "status": "queued",
            "attempts": attempt,
            f"sent_parts.{index}": {"$exists": False},
        }
        if index > 0:
            query[f"sent_parts.{index - 1}"] = {"$exists": True}
        return await self._update_one(MESSAGES, query, {"$push": {"sent_parts": external_id}})

    async def message_by_sent_part(
        self, channel: str, account_id: str, external_id: str
    ) -> Message | None:
        query = {
            "channel": channel,
            "account_id": account_id,
            "sent_parts": external_id,
            **HAS_SENT_PARTS,
        }
        document = await self._find_one(MESSAGES, query)
        return None if document is None else _record(Message, document)

    async def messages_awaiting_delivery(
        self, created_before: datetime, limit: int
    ) -> list[Message]:
        documents = await self._find(
            MESSAGES,
            {"status": "queued", "created_at": {"$lt": created_before}},
            sort=OLDEST_FIRST,
            limit=limit,
        )
        return [_record(Message, d) for d in documents]

    async def counts(self) -> StoreCounts:
        pipeline: list[Document] = [
            {"$match": {"status": {"$ne": None}}},
            {"$group": {"_id": "$status", "n": {"$sum": 1}}},
        ]
        with _reachable():
            cursor = await self._db[MESSAGES].aggregate(pipeline, session=self._session.get())
            groups = await cursor.to_list()
        return StoreCounts(messages_by_status={g["_id"]: g["n"] for g in groups})

    # -- channel state ---------------------------------------------------
    async def channel_state(self, account_id: str, key: str) -> dict[str, Any] | None:
        document = await self._find_one(CHANNEL_STATE, {"_id": _state_id(account_id, key)})
        return None if document is None else dict(_from_bson(document["value"]))

    async def save_channel_state(self, account_id: str, key: str, value: dict[str, Any]) -> None:
        await self._update_one(
            CHANNEL_STATE,
            {"_id": _state_id(account_id, key)},
            {"$set": {"account_id": account_id, "key": key, "value": _to_bson(value)}},
            upsert=True,
        )

    # -- care tasks ------------------------------------------------------
    async def add_care_task(self, task: CareTask) -> bool:
        fields = _to_bson(task.model_dump())
        document = {"_id": fields.pop("key"), **fields}
        try:
            with _reachable():
                await self._db[CARE_TASKS].insert_one(document, session=self._session.get())
        except DuplicateKeyError:
            return False
        return True

    async def get_care_task(self, key: str) -> CareTask | None:
        document = await self._find_one(CARE_TASKS, {"_id": key})
        return None if document is None else _care_task(document)

    async def update_care_task(
        self, key: str, *, expect: Expectation | None = None, **changes: Any
    ) -> bool:
        return await self._update(CARE_TASKS, CareTask, key, expect, changes)

    async def due_care_tasks(self, before: datetime, limit: int) -> list[CareTask]:
        documents = await self._find(
            CARE_TASKS,
            {"state": "pending", "due_at": {"$lte": before}},
            sort=[("due_at", ASCENDING), ("_id", ASCENDING)],
            limit=limit,
        )
        return [_care_task(d) for d in documents]

    async def cancel_care_tasks(self, contact_id: str, kind: str, at: datetime) -> int:
        with _reachable():
            result = await self._db[CARE_TASKS].update_many(
                {"contact_id": contact_id, "kind": kind, "state": "pending"},
                {"$set": {"state": "cancelled", "updated_at": at}},
                session=self._session.get(),
            )
        return int(result.modified_count)

    async def contacts_born_on(
        self, month: int, day: int, *, limit: int, after_id: str | None = None
    ) -> list[Contact]:
        # Birthdays are stored as ISO dates ("1990-03-01"); a scan, once an hour.
        query: Document = {"birthday": {"$regex": f"^[0-9]{{4}}-{month:02d}-{day:02d}$"}}
        if after_id:
            query["_id"] = {"$gt": after_id}
        documents = await self._find(CONTACTS, query, sort=[("_id", ASCENDING)], limit=limit)
        return [_record(Contact, d) for d in documents]

    # -- agents and tokens -----------------------------------------------
    async def add_agent(self, agent: Agent) -> None:
        try:
            await self._insert(AGENTS, agent)
        except DuplicateKeyError as exc:
            # Ask which key collided: not every server names the index in the error.
            if agent.extension and await self.agent_by_extension(agent.extension) is not None:
                raise Conflict(f"an agent with extension {agent.extension} exists") from exc
            raise Conflict(f"an agent with e-mail {agent.email} exists") from exc

    async def get_agent(self, agent_id: str) -> Agent | None:
        document = await self._find_one(AGENTS, {"_id": agent_id})
        return None if document is None else _record(Agent, document)

    async def agent_by_email(self, email: str) -> Agent | None:
        document = await self._find_one(AGENTS, {"email": email})
        return None if document is None else _record(Agent, document)

    async def agent_by_extension(self, extension: str) -> Agent | None:
        document = await self._find_one(
            AGENTS, {"extension": {"$type": "string", "$eq": extension}}
        )
        return None if document is None else _record(Agent, document)

    async def list_agents(self, *, presence: Presence | None = None) -> list[Agent]:
        query: Document = {"active": True}
        if presence is not None:
            query["presence"] = presence
        documents = await self._find(AGENTS, query, sort=[("_id", ASCENDING)])
        return [_record(Agent, d) for d in documents]

    async def update_agent(self, agent_id: str, **changes: Any) -> bool:
        try:
            return await self._update(AGENTS, Agent, agent_id, None, changes)
        except Conflict as exc:
            taken = "extension" if "extension" in str(exc) else "e-mail"
            raise Conflict(f"another agent has that {taken}") from exc

    # -- routing ---------------------------------------------------------
    async def assign_within_capacity(
        self, conversation_id: str, agent_id: str, at: datetime
    ) -> bool:
        # Two documents, so two atomic steps in an order that can only err on the
        # safe side: first take a place in the agent's capacity (a conditional
        # increment, atomic on the agent's document), then compare-and-set the
        # conversation; if that fails, give the place back. Meanwhile the agent
        # looks fuller than they are, never emptier. With a replica set both steps
        # are also one transaction; without one, a process dying in between leaves
        # the count one too high until `recount_open_conversations` repairs it.
        async with self.transaction():
            if not await self._update_one(
                AGENTS,
                {
                    "_id": agent_id,
                    "active": True,
                    "$expr": {"$lt": [{"$ifNull": ["$open_count", 0]}, "$capacity"]},
                },
                {"$inc": {"open_count": 1}, "$set": {"last_assigned_at": at}},
            ):
                return False
            if await self._update_one(
                CONVERSATIONS,
                {"_id": conversation_id, "assignee_id": None, "status": {"$ne": "resolved"}},
                {"$set": {"assignee_id": agent_id, "updated_at": at}},
            ):
                return True
            await self._add_load(agent_id, -1)
            return False

    async def recount_open_conversations(self, agent_id: str) -> int:
        with _reachable():
            count = await self._db[CONVERSATIONS].count_documents(
                {"assignee_id": agent_id, "status": {"$ne": "resolved"}},
                session=self._session.get(),
            )
        await self._update_one(AGENTS, {"_id": agent_id}, {"$set": {"open_count": count}})
        return int(count)

    async def waiting_conversations(self, limit: int) -> list[Conversation]:
        documents = await self._find(
            CONVERSATIONS,
            {"assignee_id": None, "status": {"$ne": "resolved"}},
            sort=OLDEST_FIRST,
            limit=limit,
        )
        return [_record(Conversation, d) for d in documents]

    async def add_token(self, token: ApiToken) -> None:
        try:
            await self._insert(TOKENS, token)
        except DuplicateKeyError as exc:
            raise Conflict(f"token {token.id} or its hash exists") from exc

    async def token_by_hash(self, token_hash: str) -> ApiToken | None:
        document = await self._find_one(TOKENS, {"token_hash": token_hash})
        return None if document is None else _record(ApiToken, document)

    async def list_tokens(self, agent_id: str) -> list[ApiToken]:
        documents = await self._find(
            TOKENS, {"agent_id": agent_id}, sort=[("created_at", ASCENDING), ("_id", ASCENDING)]
        )
        return [_record(ApiToken, d) for d in documents]

    async def delete_token(self, token_id: str) -> bool:
        return await self._delete(TOKENS, token_id)

    async def _delete(self, collection: str, record_id: str) -> bool:
        with _reachable():
            result = await self._db[collection].delete_one(
                {"_id": record_id}, session=self._session.get()
            )
        return result.deleted_count == 1

    # -- workspace -------------------------------------------------------
    async def add_audit(self, entry: AuditEntry) -> None:
        await self._insert(AUDIT, entry)

    async def list_audit(self, *, limit: int, before: str | None = None) -> list[AuditEntry]:
        query: Document = {} if before is None else {"_id": {"$lt": before}}
        documents = await self._find(AUDIT, query, sort=[("_id", DESCENDING)], limit=limit)
        return [_record(AuditEntry, d) for d in documents]

    async def add_canned(self, canned: CannedResponse) -> None:
        try:
            await self._insert(CANNED, canned)
        except DuplicateKeyError as exc:
            raise Conflict(f"the shortcut /{canned.shortcut} is taken") from exc

    async def list_canned(self) -> list[CannedResponse]:
        documents = await self._find(CANNED, {}, sort=[("shortcut", ASCENDING)])
        return [_record(CannedResponse, d) for d in documents]

    async def delete_canned(self, canned_id: str) -> bool:
        return await self._delete(CANNED, canned_id)

    async def label_counts(self) -> dict[str, int]:
        pipeline: list[Document] = [
            {"$match": {"labels.0": {"$exists": True}}},
            {"$unwind": "$labels"},
            {
                "$group": {
                    "_id": "$labels",
                    "open": {"$sum": {"$cond": [{"$eq": ["$status", "resolved"]}, 0, 1]}},
                }
            },
        ]
        with _reachable():
            cursor = await self._db[CONVERSATIONS].aggregate(pipeline, session=self._session.get())
            groups = await cursor.to_list()
        return {g["_id"]: g["open"] for g in sorted(groups, key=lambda g: g["_id"])}

    async def search_contacts(self, text: str, *, limit: int) -> list[Contact]:
        pattern = {"$regex": text_pattern(text), "$options": "i"}
        documents = await self._find(
            CONTACTS,
            {"$or": [{"name": pattern}, {"identities.address": pattern}]},
            sort=[("_id", ASCENDING)],
            limit=limit,
        )
        return [_record(Contact, d) for d in documents]

    async def merge_contacts(self, keep_id: str, merged_id: str) -> None:
        # All or nothing on a replica set (transaction); on a standalone server
        # the steps are ordered so that a crash between them loses nothing: the
        # conversations move first, then the identities, then the contact goes.
        if keep_id == merged_id:
            raise InvalidRequest("a contact cannot be merged into itself")
        async with self.transaction():
            keep = await self.get_contact(keep_id)
            merged = await self.get_contact(merged_id)
            if keep is None or merged is None:
                raise NotFound(f"contact {keep_id if keep is None else merged_id} does not exist")
            with _reachable():
                await self._db[CONVERSATIONS].update_many(
                    {"contact_id": merged_id},
                    {"$set": {"contact_id": keep_id}},
                    session=self._session.get(),
                )
            await self._update_one(CONTACTS, {"_id": merged_id}, {"$set": {"identities": []}})
            fields = merged_fields(keep, merged)
            fields["identities"] = [*keep.identities, *merged.identities]
            await self._update_one(
                CONTACTS, {"_id": keep_id}, {"$set": {k: _to_bson(v) for k, v in fields.items()}}
            )
            await self._delete(CONTACTS, merged_id)
