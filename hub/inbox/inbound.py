"""What channels hand the inbox: an inbound message in hub's terms, and what became of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hub.inbox.calls import CallUpdate
from hub.inbox.model import Attachment, ConsentStatus, DeliveryStatus, Identity, ThreadKeys


class InboundSender(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = ""
    identities: list[Identity] = Field(
        min_length=1,
        description="the first is how this channel knows the sender; replies go to it",
    )
    claimed: list[Identity] = Field(
        default_factory=list,
        description="addresses the sender typed but the channel cannot vouch for (a web-chat"
        " form): given to their contact when nobody has them, never used to find a contact",
    )


Threading = Literal["contact", "reply_keys"]


class ConsentChange(BaseModel):
    """The message itself changes the sender's consent (an SMS "STOP" or "START")."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(description="the consent it changes: 'sms', 'email', ...")
    status: ConsentStatus
    keyword: str = ""


class InboundMessage(BaseModel):
    """A message (or event, such as a call) from a customer, in hub's terms.

    `threading` says how it finds its conversation: "contact" (the default) joins
    the contact's open conversation on the account (or one resolved within the
    reopen window); "reply_keys" threads the way mail clients do — the
    conversation of a stored message named by `thread.in_reply_to` /
    `thread.references`, else one of the contact's conversations on the account
    whose subject matches once reply prefixes are stripped and which was active
    within the subject window, else a new conversation.
    """

    account_id: str
    channel: str
    external_id: str = Field(min_length=1, description="the provider's id: the dedupe key")
    sender: InboundSender
    direction: Literal["inbound", "event"] = "inbound"
    text: str = ""
    html: str | None = None
    subject: str = ""
    attachments: list[Attachment] = Field(default_factory=list)
    thread: ThreadKeys = Field(default_factory=ThreadKeys)
    sent_at: datetime | None = Field(None, description="when the provider says it was sent")
    meta: dict[str, Any] = Field(default_factory=dict)
    threading: Threading = "contact"
    consent: ConsentChange | None = None
    call: CallUpdate | None = Field(
        None,
        description="a call event: merged into the call's one timeline message"
        " (external_id is the call's id) instead of stored as a new message",
    )


class IngestOutcome(BaseModel):
    """What the inbox did with an inbound message; a channel acknowledges with it."""

    message_id: str
    conversation_id: str
    contact_id: str
    duplicate: bool


class DeliveryReport(BaseModel):
    """A provider's word on messages we sent (a delivery or read receipt, a late
    failure), in hub's terms. It names the messages by the provider's ids, or —
    for providers that report "everything up to this moment was read" — by the
    customer and a watermark time."""

    account_id: str
    channel: str
    status: DeliveryStatus
    external_ids: list[str] = Field(default_factory=list)
    identity: Identity | None = Field(None, description="the customer, for a watermark")
    up_to: datetime | None = Field(None, description="watermark: sent at or before this")
    error: str | None = None


@dataclass(frozen=True)
class ReplyWindow:
    """How long after the customer's last message a channel lets the business
    reply freely, and the rule's name as an agent should read it. Some providers
    let a person answer for longer than automated messages (Messenger's
    HUMAN_AGENT tag): `agent_length`, when set, is the window for replies an
    agent wrote. Some allow a reply but charge for it after a while (Zalo):
    `paid_after`, when set, is how long replies stay free, `paid_rule` says so."""

    length: timedelta
    rule: str
    agent_length: timedelta | None = None
    paid_after: timedelta | None = None
    paid_rule: str = ""


class DeliveryFailure(BaseModel):
    """A provider's word, after sending, that a message did not arrive (an e-mail
    bounce). The inbox applies it with `hub.inbox.bounces.record_failure`."""

    account_id: str
    message_keys: list[str] = Field(description="thread keys of the failed message (Message-ID)")
    address: str | None = Field(None, description="the recipient that failed")
    permanent: bool = True
    status: str = Field("", description="e.g. the RFC 3463 status code, 5.1.1")
    diagnostic: str = ""
    report_key: str | None = Field(None, description="attachment-store key of the raw report")
