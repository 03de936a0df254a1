"""The store interface, in the inbox's own words.

Two backends implement it — `hub.inbox.sqlite` (embedded default) and
`hub.inbox.mongo` (production) — and one contract suite
(`tests/inbox/test_store_contract.py`) holds both to the same behaviour.

Every method is atomic: one that raises has written nothing. Writes made
inside `async with store.transaction():` commit together or not at all.
"""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from hub.errors import InvalidRequest
from hub.inbox.model import (
    OPEN_STATUSES,
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
    to_ms,
)

T = TypeVar("T")

# `expect` values in the update methods: a plain value must equal the stored
# one; a tuple means "any of these" (compare-and-set on a set of states).
Expectation = Mapping[str, Any]


@dataclass(frozen=True)
class KnownSender:
    """A sender the inbox knows, writing into a conversation that is open: all
    an inbound message needs to be stored (`Store.known_sender`)."""

    contact_id: str
    contact_name: str
    conversation_id: str


@dataclass(frozen=True)
class Visibility:
    """What an agent may see: conversations assigned to them, those of their
    teams, and those that belong to no team (a hub without teams is one team)."""

    agent_id: str
    team_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConversationFilter:
    """Which conversations a list view shows. `None` means "any"."""

    statuses: Sequence[ConversationStatus] | None = None
    assignee_id: str | None = None
    unassigned: bool = False
    channel: str | None = None
    account_id: str | None = None
    contact_id: str | None = None
    team_ids: Sequence[str] | None = None  # in any of these teams
    label: str | None = None
    text: str | None = None  # in the subject, the address or any message's text
    updated_since: datetime | None = None
    inactive_since: datetime | None = None  # no activity (a message either way) after this
    visible_to: Visibility | None = None


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None = None


@dataclass(frozen=True)
class PageCursor:
    """Where a page ended, for the next page: its last item's sort time (ms) and
    id. Conversations page by last activity, a timeline (newest first) by the
    messages' creation."""

    ms: int
    id: str

    def encode(self) -> str:
        raw = f"{self.ms}:{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> PageCursor:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            ms, _, conversation_id = raw.partition(":")
            return cls(int(ms), conversation_id)
        except ValueError as exc:
            raise InvalidRequest("cursor is not one this server gave out") from exc


@dataclass
class StoreCounts:
    """Figures for /metrics, read from the store so every process agrees."""

    messages_by_status: dict[str, int] = field(default_factory=dict)


class Store(ABC):
    """Persistence for contacts, conversations, messages, agents and tokens.

    Every method may raise `hub.errors.StoreUnavailable` when the database
    cannot be reached or stays locked; callers turn that into "retry later".
    """

    # -- lifecycle -------------------------------------------------------
    @abstractmethod
    async def open(self) -> None:
        """Connect and create the schema and indexes if missing (idempotent)."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""

    @property
    def supports_transactions(self) -> bool:
        """Whether `transaction()` is all-or-nothing on this backend."""
        return True

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[None]:
        """Group writes: all commit or none do. A nested transaction that raises
        undoes only its own writes (SQLite savepoint; Mongo methods are atomic)."""

    # -- contacts --------------------------------------------------------
    @abstractmethod
    async def add_contact(self, contact: Contact) -> None:
        """Insert a contact and its identities. Raises IdentityTaken if any identity
        already belongs to someone (and then writes nothing)."""

    @abstractmethod
    async def get_contact(self, contact_id: str) -> Contact | None: ...

    @abstractmethod
    async def contacts_by_identity(self, identities: Sequence[Identity]) -> dict[Identity, str]:
        """Which of these identities are known, and to which contact id."""

    async def contacts_owning(self, identities: Sequence[Identity]) -> list[Contact]:
        """The whole contacts that own any of these identities (one read where the
        backend can; the ingest path resolves its sender with it)."""
        owners = dict.fromkeys((await self.contacts_by_identity(identities)).values())
        contacts = [await self.get_contact(contact_id) for contact_id in owners]
        return [c for c in contacts if c is not None]

    async def known_sender(
        self, identities: Sequence[Identity], account_id: str
    ) -> KnownSender | None:
        """The common case of an inbound message, recognised in one read where the
        backend can: every one of `identities` belongs to one contact, whose newest
        conversation on the account among the open statuses is `open`. None in
        every other case (a new sender or identity, a conversation to reopen or
        wake): the caller then takes the general path."""
        # By default the general path's own first reads (one contact read where
        # the backend can), so that a backend without a single read for it
        # reads no more for the common case than the general path does.
        owners = await self.contacts_owning(identities)
        if len(owners) != 1 or not set(identities) <= set(owners[0].identities):
            return None
        contact = owners[0]
        conversation = await self.latest_conversation(
            contact.id, account_id, statuses=OPEN_STATUSES
        )
        if conversation is None or conversation.status != "open":
            return None
        return KnownSender(contact.id, contact.name, conversation.id)

    @abstractmethod
    async def link_identity(self, contact_id: str, identity: Identity) -> None:
        """Give the contact one more identity. Raises IdentityTaken if another contact
        has it; linking an identity the contact already has is a no-op."""

    @abstractmethod
    async def update_contact(
        self, contact_id: str, *, expect: Expectation | None = None, **changes: Any
    ) -> bool:
        """Compare-and-set on a contact's own fields (identities change only through
        `link_identity`). Returns False, changing nothing, when missing or different."""

    # -- conversations ---------------------------------------------------
    @abstractmethod
    async def add_conversation(self, conversation: Conversation) -> None: ...

    @abstractmethod
    async def get_conversation(self, conversation_id: str) -> Conversation | None: ...

    @abstractmethod
    async def latest_conversation(
        self, contact_id: str, account_id: str, *, statuses: Sequence[ConversationStatus] | None
    ) -> Conversation | None:
        """The contact's conversation on that account with the newest activity,
        among the given statuses (None: any status)."""

    @abstractmethod
    async def list_conversations(
        self, view: ConversationFilter, *, limit: int, cursor: str | None = None
    ) -> Page[Conversation]:
        """Newest activity first, `limit` at a time; pass `next_cursor` back for more."""

    @abstractmethod
    async def update_conversation(
        self, conversation_id: str, *, expect: Expectation | None = None, **changes: Any
    ) -> bool:
        """Set fields if the stored ones match `expect` (atomic compare-and-set).
        Returns False, changing nothing, when the conversation is missing or differs."""

    @abstractmethod
    async def record_inbound_activity(self, conversation_id: str, at: datetime) -> None:
        """A customer wrote: one more unread, newest activity `at`."""

    # -- messages --------------------------------------------------------
    @abstractmethod
    async def add_message(self, message: Message) -> None:
        """Insert a message. Raises DuplicateMessage if its (channel, account,
        external id) or (conversation, idempotency key) is already stored."""

    @abstractmethod
    async def get_message(self, message_id: str) -> Message | None: ...

    @abstractmethod
    async def message_by_external_id(
        self, channel: str, account_id: str, external_id: str
    ) -> Message | None: ...

    @abstractmethod
    async def message_by_idempotency_key(
        self, conversation_id: str, idempotency_key: str
    ) -> Message | None: ...

    @abstractmethod
    async def message_by_thread_key(self, account_id: str, keys: Sequence[str]) -> Message | None:
        """The newest message of that account whose own thread key
        (`thread.message_id`, an e-mail Message-ID) is one of `keys`, inbound or
        outbound; None when there is none (or `keys` is empty)."""

    @abstractmethod
    async def list_messages(self, conversation_id: str) -> list[Message]:
        """The conversation's timeline, oldest first."""

    @abstractmethod
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
        """Some of the conversation's timeline, without decoding the rest: in one
        of `directions`, in one of `statuses`, created at or before `until`, with
        an e-mail thread key of its own (`threaded`), strictly before the
        position `before` in timeline order (creation, then id), oldest first
        unless `newest_first`, at most `limit`."""

    async def timeline_page(
        self, conversation_ids: Sequence[str], *, limit: int, cursor: str | None = None
    ) -> Page[Message]:
        """The newest `limit` messages (before `cursor`, a page's `next_cursor`)
        of these conversations together — one conversation, or a contact's
        history across channels — oldest first, as an agent scrolls back
        through a long timeline; `next_cursor` is None once the first message
        is in the page. Each conversation's part is a walk of its own timeline
        from the cursor: at most `limit + 1` messages each."""
        before = PageCursor.decode(cursor) if cursor else None
        found: list[Message] = []
        for conversation_id in dict.fromkeys(conversation_ids):
            found += await self.find_messages(
                conversation_id, newest_first=True, limit=limit + 1, before=before
            )
        if len(conversation_ids) > 1:
            found.sort(key=lambda m: (m.created_at, m.id), reverse=True)
        items = found[:limit][::-1]
        next_cursor = None
        if len(found) > limit:
            next_cursor = PageCursor(to_ms(items[0].created_at), items[0].id).encode()
        return Page(items, next_cursor)

    @abstractmethod
    async def last_message(self, conversation_id: str, direction: Direction) -> Message | None:
        """The conversation's newest message in that direction (the timeline's
        last), or None: when the customer last wrote, without reading the rest."""

    @abstractmethod
    async def update_message(
        self, message_id: str, *, expect: Expectation | None = None, **changes: Any
    ) -> bool:
        """Compare-and-set on a message, as `update_conversation`."""

    @abstractmethod
    async def record_sent_part(
        self, message_id: str, index: int, external_id: str | None, *, attempt: int
    ) -> bool:
        """The provider accepted part `index` (0-based) of an outbound message sent as
        several provider messages: append `external_id` to its `sent_parts`, and make
        `message_by_sent_part` find it by that id. Only while the message is still
        `queued` at attempt `attempt` with exactly `index` parts recorded (one atomic
        compare-and-set): False, changing nothing, tells a delivery that it no longer
        owns the message (a newer attempt claimed it, or a receipt failed it)."""

    @abstractmethod
    async def message_by_sent_part(
        self, channel: str, account_id: str, external_id: str
    ) -> Message | None:
        """The outbound message one of whose parts the provider knows by
        `external_id` (see `record_sent_part`), so that a receipt naming any part
        finds its message; None when no recorded part has that id."""

    @abstractmethod
    async def messages_awaiting_delivery(
        self, created_before: datetime, limit: int
    ) -> list[Message]:
        """Outbound messages still `queued` that were created before the given time,
        oldest first: what the sweeper re-enqueues when their job vanished."""

    @abstractmethod
    async def counts(self) -> StoreCounts: ...

    # -- channel state ---------------------------------------------------
    @abstractmethod
    async def channel_state(self, account_id: str, key: str) -> dict[str, Any] | None:
        """What a channel remembered under `key` (an IMAP mailbox's UIDVALIDITY and
        last UID, a bot's update offset), or None."""

    @abstractmethod
    async def save_channel_state(self, account_id: str, key: str, value: dict[str, Any]) -> None:
        """Remember `value` under `key`, replacing what was there (JSON-able values)."""

    # -- care tasks ------------------------------------------------------
    @abstractmethod
    async def add_care_task(self, task: CareTask) -> bool:
        """Insert the task unless one with its key exists. Returns whether it was
        inserted: True for exactly one of any number of concurrent callers."""

    @abstractmethod
    async def get_care_task(self, key: str) -> CareTask | None: ...

    @abstractmethod
    async def update_care_task(
        self, key: str, *, expect: Expectation | None = None, **changes: Any
    ) -> bool:
        """Compare-and-set on a care task, as `update_conversation`."""

    @abstractmethod
    async def due_care_tasks(self, before: datetime, limit: int) -> list[CareTask]:
        """Pending tasks due at or before `before`, soonest first."""

    @abstractmethod
    async def cancel_care_tasks(self, contact_id: str, kind: str, at: datetime) -> int:
        """Cancel the contact's pending tasks of that kind; returns how many."""

    @abstractmethod
    async def contacts_born_on(
        self, month: int, day: int, *, limit: int, after_id: str | None = None
    ) -> list[Contact]:
        """Contacts whose birthday falls on that month and day (any year), by id,
        `limit` at a time after `after_id`."""

    # -- agents and tokens -----------------------------------------------
    @abstractmethod
    async def add_agent(self, agent: Agent) -> None:
        """Raises Conflict if an agent with that e-mail or extension exists."""

    @abstractmethod
    async def get_agent(self, agent_id: str) -> Agent | None: ...

    @abstractmethod
    async def agent_by_email(self, email: str) -> Agent | None: ...

    @abstractmethod
    async def agent_by_extension(self, extension: str) -> Agent | None:
        """The agent (active or not) whose PBX extension this is."""

    @abstractmethod
    async def list_agents(self, *, presence: Presence | None = None) -> list[Agent]:
        """Active agents (optionally only those with that presence), by id."""

    @abstractmethod
    async def update_agent(self, agent_id: str, **changes: Any) -> bool: ...

    # -- routing ---------------------------------------------------------
    @abstractmethod
    async def assign_within_capacity(
        self, conversation_id: str, agent_id: str, at: datetime
    ) -> bool:
        """Give a conversation to an agent only if it is still unassigned and not
        resolved, and the agent is active with fewer open conversations than their
        capacity — one atomic step, so routers racing in several processes never
        assign a conversation twice nor push an agent past capacity. The agent's
        `last_assigned_at` becomes `at` (their turn in the rotation). Returns False,
        changing nothing, when any condition fails.

        Every conversation write keeps `Agent.open_count` (the agent's load) right:
        assigning, unassigning, resolving and reopening move it, on both backends."""

    @abstractmethod
    async def recount_open_conversations(self, agent_id: str) -> int:
        """Set the agent's `open_count` to what the conversations say and return it:
        the repair for a count left wrong by a process that died between two writes
        of a backend without transactions."""

    @abstractmethod
    async def waiting_conversations(self, limit: int) -> list[Conversation]:
        """Unassigned conversations that are not resolved, oldest first: the queue
        the router drains when an agent becomes available."""

    @abstractmethod
    async def add_token(self, token: ApiToken) -> None: ...

    @abstractmethod
    async def token_by_hash(self, token_hash: str) -> ApiToken | None: ...

    @abstractmethod
    async def list_tokens(self, agent_id: str) -> list[ApiToken]:
        """The agent's tokens (hashes only: a token is shown once), oldest first."""

    @abstractmethod
    async def delete_token(self, token_id: str) -> bool:
        """Revoke a token; False if there was none with that id."""

    # -- workspace -------------------------------------------------------
    @abstractmethod
    async def add_audit(self, entry: AuditEntry) -> None: ...

    @abstractmethod
    async def list_audit(self, *, limit: int, before: str | None = None) -> list[AuditEntry]:
        """Newest first; `before` an entry id to page back from."""

    @abstractmethod
    async def add_canned(self, canned: CannedResponse) -> None:
        """Raises Conflict if that shortcut is taken."""

    @abstractmethod
    async def list_canned(self) -> list[CannedResponse]:
        """By shortcut."""

    @abstractmethod
    async def delete_canned(self, canned_id: str) -> bool: ...

    @abstractmethod
    async def label_counts(self) -> dict[str, int]:
        """Every label in use, with how many unresolved conversations carry it."""

    @abstractmethod
    async def search_contacts(self, text: str, *, limit: int) -> list[Contact]:
        """Contacts whose name or one of whose addresses contains `text` (case and
        diacritics ignored, see hub.inbox.search), by id, at most `limit`."""

    @abstractmethod
    async def merge_contacts(self, keep_id: str, merged_id: str) -> None:
        """Move the merged contact's identities and conversations to `keep_id` and
        delete it, all or nothing. Raises NotFound if either is missing."""


# Fields that say what a record is; changing them would make it another record.
FIXED_FIELDS: dict[type[Any], tuple[str, ...]] = {
    Contact: ("id", "identities", "created_at"),
    Conversation: ("id", "contact_id", "account_id", "channel", "created_at"),
    Message: ("id", "conversation_id", "account_id", "channel", "direction", "created_at"),
    Agent: ("id", "created_at", "open_count"),
    CareTask: ("key", "kind", "contact_id", "created_at"),
}


def check_fields(
    model: type[Any], changes: Mapping[str, Any], expect: Mapping[str, Any] | None
) -> None:
    """Refuse updates to unknown or fixed fields; a programming error, not user input."""
    known = model.model_fields
    fixed = FIXED_FIELDS.get(model, ("id",))
    for name in (*changes, *(expect or {})):
        if name not in known:
            raise ValueError(f"{model.__name__} has no field {name}")
    for name in changes:
        if name in fixed:
            raise ValueError(f"cannot update {model.__name__}.{name}")


def merged_fields(keep: Contact, merged: Contact) -> dict[str, Any]:
    """The kept contact's own fields after a merge: what it knows wins, what only
    the merged contact knew is added, and consent keeps the newer decision."""
    consent = dict(merged.consent)
    for channel, decision in keep.consent.items():
        if channel not in consent or consent[channel].at <= decision.at:
            consent[channel] = decision
    return {
        "name": keep.name or merged.name,
        "language": keep.language or merged.language,
        "timezone": keep.timezone or merged.timezone,
        "birthday": keep.birthday or merged.birthday,
        "owner_id": keep.owner_id or merged.owner_id,
        "tags": [*keep.tags, *(t for t in merged.tags if t not in keep.tags)],
        "attributes": {**merged.attributes, **keep.attributes},
        "consent": consent,
        "updated_at": max(keep.updated_at, merged.updated_at),
    }
