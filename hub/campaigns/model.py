"""Campaigns in the domain's words: audiences (saved contact filters), campaigns,
and one recipient row per (campaign, contact), snapshotted at launch.

A recipient moves `pending → sending → sent | failed | skipped`, and never
back except `sending → pending` when recovery after a crash proves nothing went
out. `sending` is written before the provider is asked and the outcome after,
so a row left in `sending` is exactly "the worker died during this send".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hub.care.templates import ContactValues
from hub.inbox.model import Contact, Moment, new_id

CampaignChannel = Literal["sms", "email"]
CampaignStatus = Literal["draft", "scheduled", "running", "paused", "cancelled", "completed"]
RecipientStatus = Literal["pending", "sending", "sent", "delivered", "failed", "skipped"]
SkipReason = Literal["opted_out", "frequency_cap", "bouncing", "no_address", "cancelled"]

# The identity address space each campaign channel sends to (see `Identity`).
ADDRESS_SPACE: dict[CampaignChannel, str] = {"sms": "phone", "email": "email"}
# The contact consent each campaign channel honours (`Contact.consent` keys).
CONSENT_KEY: dict[CampaignChannel, str] = {"sms": "sms", "email": "email"}

ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
TAG = re.compile(r"^[^\x00-\x1f]{1,100}$")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AudienceFilter(_Record):
    """Which contacts an audience holds; every condition given must hold.

    `consent`: "not_opted_out" keeps contacts who never said no on the
    campaign's channel; "opted_in" only those who said yes. Opted-out contacts
    in a snapshot are skipped (and counted) at send time either way.
    """

    tags_all: list[str] = Field(default_factory=list, max_length=20)
    tags_any: list[str] = Field(default_factory=list, max_length=20)
    tags_none: list[str] = Field(default_factory=list, max_length=20)
    attributes: dict[str, str | int | float | bool] = Field(default_factory=dict, max_length=20)
    consent: Literal["any", "not_opted_out", "opted_in"] = "any"
    active_after: Moment | None = Field(None, description="last conversation activity after")
    active_before: Moment | None = Field(None, description="last conversation activity before")
    has_conversation: bool | None = None

    @field_validator("tags_all", "tags_any", "tags_none")
    @classmethod
    def _tags(cls, values: list[str]) -> list[str]:
        for tag in values:
            if not TAG.match(tag):
                raise ValueError(f"tag {tag!r}: 1 to 100 printable characters")
        return values

    @field_validator("attributes")
    @classmethod
    def _attributes(cls, values: dict[str, Any]) -> dict[str, Any]:
        for name in values:
            if not ATTRIBUTE_NAME.match(name):
                raise ValueError(f"attribute {name!r}: letters, digits and '_' only")
        return values


class Audience(_Record):
    id: str = Field(default_factory=new_id)
    name: str = Field(min_length=1, max_length=200)
    filter: AudienceFilter = Field(default_factory=AudienceFilter)
    created_by: str | None = None
    created_at: Moment
    updated_at: Moment


class Campaign(_Record):
    id: str = Field(default_factory=new_id)
    name: str = Field(min_length=1, max_length=200)
    channel: CampaignChannel
    account_id: str
    audience_id: str
    text: str = Field(min_length=1, max_length=20_000, description="the template source")
    subject: str = Field("", max_length=300, description="e-mail only; may use variables")
    status: CampaignStatus = "draft"
    scheduled_at: Moment | None = None
    launched_at: Moment | None = None
    finished_at: Moment | None = None
    recipient_count: int = 0
    created_by: str | None = None
    created_at: Moment
    updated_at: Moment

    @model_validator(mode="after")
    def _subject_for_email(self) -> Campaign:
        if self.channel == "sms" and self.subject:
            raise ValueError("subject: an SMS campaign has no subject")
        return self


class Recipient(_Record):
    """One contact of a launched campaign. `(campaign_id, contact_id)` is unique."""

    campaign_id: str
    contact_id: str
    address: str
    status: RecipientStatus = "pending"
    reason: str | None = Field(None, description="why skipped or failed")
    not_before: Moment | None = Field(None, description="waiting for the recipient's window")
    attempts: int = 0
    external_id: str | None = None
    sending_at: Moment | None = None
    sent_at: Moment | None = None
    replied_at: Moment | None = Field(None, description="the contact's first reply after it")
    reply_conversation_id: str | None = None
    updated_at: Moment

    @property
    def key(self) -> str:
        """The send's own id: the idempotency key, the e-mail Message-ID's local part."""
        return recipient_key(self.campaign_id, self.contact_id)


@dataclass(frozen=True)
class Outcome:
    """How one `sending` row ends: `sent` (with the provider's id), `failed`
    (with the reason), or `pending` again (a retry after `not_before`, or a
    send known not to have happened)."""

    contact_id: str
    status: RecipientStatus
    at: datetime
    reason: str | None = None
    external_id: str | None = None
    not_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class Addressee(ContactValues):
    """What sending a campaign message needs of its contact, as plain values:
    the template's `contact` values (with the timezone for the window), and the
    consent on the campaign's channel (`opted_in`, `opted_out`, None: never
    said). Not a `Contact`: the dispatcher reads these with their recipients,
    a page in one statement, and building whole contact models was most of
    that read's cost."""

    consent: str | None

    @classmethod
    def of(cls, contact: Contact, channel: CampaignChannel) -> Addressee:
        consent = contact.consent.get(CONSENT_KEY[channel])
        addressee: Addressee = cls.from_contact(
            contact, consent=None if consent is None else consent.status
        )
        return addressee


@dataclass(frozen=True, slots=True)
class DueSend:
    """A due recipient (pending, its window open) and its contact read fresh
    with it; `contact` is None when the contact was deleted since the launch."""

    campaign_id: str
    contact_id: str
    address: str
    attempts: int
    contact: Addressee | None

    @property
    def key(self) -> str:
        """As `Recipient.key`."""
        return recipient_key(self.campaign_id, self.contact_id)


def recipient_key(campaign_id: str, contact_id: str) -> str:
    return f"cr-{campaign_id}-{contact_id}"


def parse_recipient_key(key: str) -> tuple[str, str] | None:
    """(campaign id, contact id) of a `recipient_key`, or None if it is not one."""
    parts = key.split("-")
    if len(parts) != 3 or parts[0] != "cr":
        return None
    return parts[1], parts[2]


# How a skip reason is counted in `Progress`; other reasons are `skipped_other`.
SKIPPED_AS = {"opted_out": "opted_out", "frequency_cap": "frequency_capped", "bouncing": "bouncing"}


def count_rows(figures: dict[str, int], status: str, reason: str | None, n: int) -> None:
    """Add `n` recipient rows of one status (and skip reason) to `figures`,
    the `Progress` fields being counted, as both stores group them."""
    figures["total"] = figures.get("total", 0) + n
    name = SKIPPED_AS.get(reason or "", "skipped_other") if status == "skipped" else status
    figures[name] = figures.get(name, 0) + n


class Progress(_Record):
    """A campaign's figures, counted from its recipient rows."""

    total: int = 0
    pending: int = 0
    waiting: int = Field(0, description="pending, held until the recipient's window opens")
    sending: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    opted_out: int = 0
    frequency_capped: int = 0
    bouncing: int = Field(0, description="skipped: e-mail to the address has bounced for good")
    skipped_other: int = 0
    replied: int = Field(0, description="recipients who wrote back (counted once each)")
