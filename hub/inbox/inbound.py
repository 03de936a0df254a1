"""What channels hand the inbox: an inbound message in hub's terms, and what became of it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hub.inbox.calls import CallUpdate
from hub.inbox.model import Attachment, ConsentStatus, Identity, ThreadKeys


class InboundSender(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = ""
    identities: list[Identity] = Field(
        min_length=1,
        description="the first is how this channel knows the sender; replies go to it",
    )


class ConsentChange(BaseModel):
    """The message itself changes the sender's consent (an SMS "STOP" or "START")."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(description="the consent it changes: 'sms', 'email', ...")
    status: ConsentStatus
    keyword: str = ""


class InboundMessage(BaseModel):
    """A message (or event, such as a call) from a customer, in hub's terms."""

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
