"""The canonical model every channel is normalised into.

Timestamps are timezone-aware UTC datetimes truncated to the millisecond, so
that both store backends (SQLite integers, BSON dates) round-trip them exactly.
Ids are 24-hex ObjectId strings: unique across processes without coordination
and roughly ordered by creation time.
"""

from __future__ import annotations

import itertools
import os
import time
import unicodedata
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

Direction = Literal["inbound", "outbound", "note", "event"]
ConversationStatus = Literal["open", "pending", "snoozed", "resolved"]
DeliveryStatus = Literal["queued", "sent", "delivered", "read", "failed"]
Priority = Literal["low", "normal", "high", "urgent"]
Role = Literal["admin", "agent", "marketer"]
Presence = Literal["online", "away", "offline"]
ConsentStatus = Literal["opted_in", "opted_out"]
CareState = Literal["pending", "done", "cancelled"]

OPEN_STATUSES: tuple[ConversationStatus, ...] = ("open", "pending", "snoozed")


class _Ids:
    """ObjectId's layout — 4 bytes of the second, 5 random bytes per process, a
    3-byte counter — as a string, made directly (bson's ObjectId takes ~4 times
    as long, and ingest makes several per message). A forked child draws its
    own random part, as bson does."""

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self.process = os.urandom(5).hex()
        self.counter = itertools.count(int.from_bytes(os.urandom(3), "big"))

    def next(self) -> str:
        second = int(time.time()) & 0xFFFFFFFF
        return f"{second:08x}{self.process}{next(self.counter) & 0xFFFFFF:06x}"


_IDS = _Ids()


def new_id() -> str:
    """A fresh id, unique across processes, sortable by creation second."""
    return _IDS.next()


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ms(moment: datetime) -> int:
    """Milliseconds since the Unix epoch, exactly (no float rounding)."""
    since = moment - EPOCH
    return since.days * 86_400_000 + since.seconds * 1000 + since.microseconds // 1000


def from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def utc_ms(moment: datetime) -> datetime:
    """`moment` in UTC, truncated to the millisecond (what both stores can keep)."""
    # Every stored moment passes here, most already in UTC and whole
    # milliseconds: those are returned as they are, with no new object.
    zone = moment.tzinfo
    if zone is not UTC:
        if zone is None:
            raise ValueError("naive datetime: every time in hub is timezone-aware")
        moment = moment.astimezone(UTC)
    extra = moment.microsecond % 1000
    return moment.replace(microsecond=moment.microsecond - extra) if extra else moment


# Every stored moment: timezone-aware, converted to UTC, millisecond precision.
Moment = Annotated[datetime, AfterValidator(utc_ms)]


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# A person's name in composed form (NFC), however it arrived (macOS and some
# files write "Nguyễn" decomposed): one string for search, dedupe and display.
PersonName = Annotated[str, AfterValidator(nfc)]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Identity(Record):
    """One address by which a contact can be reached.

    `channel` names the address space, not the provider: "phone" (E.164, shared by
    SMS, voice, Zalo and WhatsApp), "email" (lower-cased), "telegram", "web",
    or "api:<account>" for ids that only mean something to one API-channel account.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: str
    address: str


class Consent(Record):
    status: ConsentStatus
    at: Moment
    how: str = Field(description="what caused it: a keyword message id, an import, an agent")


class Contact(Record):
    id: str = Field(default_factory=new_id)
    name: PersonName = ""
    identities: list[Identity] = Field(default_factory=list)
    language: str | None = None
    timezone: str | None = None
    birthday: date | None = None
    tags: list[str] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)
    owner_id: str | None = None
    consent: dict[str, Consent] = Field(default_factory=dict)
    created_at: Moment
    updated_at: Moment


class Attachment(Record):
    """A file on a message: kept in the attachment store (`storage_key`), linked
    (`url`), or listed only (`too_large`: over the size cap, not kept)."""

    name: str = ""
    content_type: str = "application/octet-stream"
    size: int | None = None
    url: str | None = None
    storage_key: str | None = None
    too_large: bool = False
    inline: bool = Field(False, description="shown in the body (an e-mail's inline image)")
    content_id: str | None = Field(
        None, description='what the HTML body calls it: <img src="cid:...">'
    )


class Sender(Record):
    kind: Literal["contact", "agent", "system"]
    id: str | None = None
    name: str = ""


class ThreadKeys(Record):
    """Keys that tie a message to earlier ones (email Message-ID headers and the like)."""

    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)


class Conversation(Record):
    id: str = Field(default_factory=new_id)
    contact_id: str
    account_id: str
    channel: str
    contact_address: str = Field(description="where replies on this conversation go")
    subject: str = ""
    status: ConversationStatus = "open"
    assignee_id: str | None = None
    team_id: str | None = None
    labels: list[str] = Field(default_factory=list)
    priority: Priority = "normal"
    first_response_due_at: Moment | None = None
    resolution_due_at: Moment | None = None
    first_response_at: Moment | None = None
    resolved_at: Moment | None = None
    snoozed_until: Moment | None = None
    satisfaction: int | None = Field(None, ge=1, le=5, description="the survey answer, 1-5")
    satisfaction_at: Moment | None = None
    last_activity_at: Moment
    unread_count: int = 0
    created_at: Moment
    updated_at: Moment


class Message(Record):
    id: str = Field(default_factory=new_id)
    conversation_id: str
    account_id: str
    channel: str
    direction: Direction
    sender: Sender
    text: str = ""
    html: str | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    external_id: str | None = None
    thread: ThreadKeys = Field(default_factory=ThreadKeys)
    status: DeliveryStatus | None = None
    error: str | None = None
    attempts: int = 0
    idempotency_key: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    sent_parts: list[str | None] = Field(
        default_factory=list,
        description="an outbound message its channel sends as several provider messages"
        " (a long text, files): the provider's id of each part accepted so far, in order"
        " (None where it named none), so a retry never sends a part twice; `external_id`"
        " stays the first part's. Empty for a message sent in one piece",
    )
    created_at: Moment
    updated_at: Moment


class Agent(Record):
    id: str = Field(default_factory=new_id)
    name: str
    email: str
    role: Role = "agent"
    team_ids: list[str] = Field(default_factory=list)
    skills: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    capacity: int = 10
    presence: Presence = "offline"
    phone: str | None = Field(None, description="E.164 number the hub dials for calls (Twilio)")
    extension: str | None = Field(None, description="PBX extension, unique among agents")
    password_hash: str | None = None
    active: bool = True
    last_assigned_at: Moment | None = None
    open_count: int = Field(
        0,
        description="conversations assigned to the agent and not resolved; kept by the store"
        " itself (never set it), so the router can compare it with `capacity` atomically",
    )
    created_at: Moment


class ApiToken(Record):
    id: str = Field(default_factory=new_id)
    agent_id: str
    name: str = ""
    token_hash: str
    created_at: Moment
    last_used_at: Moment | None = None


class CareTask(Record):
    """One care message the hub has decided to send: the durable "exactly once".

    `key` is unique and names the message and its period ("greeting:<contact>",
    "birthday:<contact>:2026", "away:<conversation>:<next opening>"): whoever
    adds it first sends it; everyone else finds it there. A task with `due_at`
    waits for that moment (a follow-up N days after a tag); `pending` tasks are
    sent by the care runner, `cancelled` ones never are.
    """

    key: str
    kind: str
    contact_id: str
    conversation_id: str | None = None
    due_at: Moment | None = None
    state: CareState = "pending"
    payload: dict[str, Any] = Field(default_factory=dict)
    created_at: Moment
    updated_at: Moment


class AuditEntry(Record):
    """Something an administrator may later need to account for: a sign-in, a role
    change, an export, a merge, a deletion. Written once, never changed."""

    id: str = Field(default_factory=new_id)
    at: Moment
    actor_id: str | None = Field(None, description="the agent who did it (None: the system)")
    action: str = Field(description="what happened, dotted: auth.sign_in, agent.role_changed")
    target: str | None = Field(None, description="the id of what it happened to")
    detail: dict[str, Any] = Field(default_factory=dict)


class CannedResponse(Record):
    """A saved reply an agent inserts by typing `/shortcut` in the reply box."""

    id: str = Field(default_factory=new_id)
    shortcut: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    text: str = Field(min_length=1, max_length=10_000)
    created_by: str | None = None
    created_at: Moment
