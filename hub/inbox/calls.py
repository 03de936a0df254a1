"""A phone call in the timeline: one `event` message per call, kept up to date.

Phone channels (Twilio voice, an Asterisk PBX, any PBX through the CTI
webhook) report what they learn about a call as `CallUpdate`s — facts, in
whatever order and as often as the provider sends them. `merge` folds them
into the one `CallRecord` stored on the call's message (`meta["call"]`):

- facts are only ever added, so a replayed or late update changes nothing and
  a call's status never goes backwards (a "ringing" that arrives after
  "completed" is news of nothing);
- the status is derived from the facts: ringing → answered → completed, or
  ringing → missed → voicemail.

This module is pure: no store, no clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hub.inbox.model import Moment, Record

CallStatus = Literal["ringing", "answered", "completed", "missed", "voicemail"]
CallDirection = Literal["inbound", "outbound"]

# Why a call ended, in hub's words; "unknown" means the hub lost sight of it
# (a PBX connection dropped) and closed it without the PBX's word.
EndReason = Literal["completed", "no-answer", "busy", "failed", "canceled", "closed", "unknown"]

CALLBACK_LABEL = "call-back"


class AgentRef(BaseModel):
    """How a provider names the person who took a call: hub's agent id (when the
    hub dialled them itself), a PBX extension, or just a number or name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent_id: str | None = None
    extension: str | None = None
    phone: str | None = None
    name: str = ""


class CallAgent(Record):
    """Who took (or was handed) a call, resolved to an agent where one matches."""

    agent_id: str | None = None
    name: str = ""
    extension: str | None = None
    phone: str | None = None
    at: Moment | None = Field(None, description="when they took it")

    @property
    def anonymous(self) -> bool:
        """Only "someone answered" is known (a provider that does not say who)."""
        return not (self.agent_id or self.name or self.extension or self.phone)

    def same_person(self, other: CallAgent) -> bool:
        if self.agent_id and other.agent_id:
            return self.agent_id == other.agent_id
        if self.extension and other.extension:
            return self.extension == other.extension
        if self.phone and other.phone:
            return self.phone == other.phone
        return self.anonymous and other.anonymous

    def label(self) -> str:
        who = self.name or self.phone or (f"ext {self.extension}" if self.extension else "")
        if self.name and self.extension:
            who += f" (ext {self.extension})"
        return who or "an agent"


class CallUpdate(BaseModel):
    """What a channel learnt about one call at one moment. Every field but the
    call id, direction and moment is a fact that may or may not be known yet."""

    model_config = ConfigDict(extra="forbid")

    call_id: str = Field(min_length=1)
    direction: CallDirection = "inbound"
    at: Moment
    line: str = Field("", description="our side: the number or extension that was called")
    answered_by: AgentRef | None = None
    transferred_to: AgentRef | None = None
    missed: bool = Field(False, description="nobody took it (no answer, busy, after hours)")
    miss_reason: str | None = None
    ended: bool = False
    end_reason: EndReason | None = None
    duration_seconds: int | None = Field(None, ge=0, description="talk time, once known")
    voicemail: bool = Field(False, description="the caller reached voicemail")
    recording_url: str | None = None
    recording_seconds: int | None = Field(None, ge=0)
    transcription: str | None = None


class CallRecord(Record):
    """Everything known about one call; stored as `meta["call"]` of its message."""

    call_id: str
    direction: CallDirection
    customer: str
    line: str = ""
    status: CallStatus
    started_at: Moment
    answered_at: Moment | None = None
    answered_by: CallAgent | None = None
    transfers: list[CallAgent] = Field(default_factory=list)
    missed: bool = False
    miss_reason: str | None = None
    ended_at: Moment | None = None
    end_reason: EndReason | None = None
    duration_seconds: int | None = None
    voicemail: bool = False
    recording_url: str | None = None
    recording_seconds: int | None = None
    transcription: str | None = None

    @property
    def needs_callback(self) -> bool:
        """A customer called and nobody spoke to them."""
        return self.direction == "inbound" and self.status in ("missed", "voicemail")

    def to_meta(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> CallRecord:
        return cls.model_validate(meta["call"])


def derive_status(record: CallRecord) -> CallStatus:
    if record.recording_url or (record.voicemail and record.answered_at is None):
        return "voicemail"
    if record.answered_at is not None:
        return "completed" if record.ended_at is not None else "answered"
    if record.missed or record.ended_at is not None:
        return "missed"
    return "ringing"


def merge(
    record: CallRecord | None,
    update: CallUpdate,
    *,
    customer: str,
    answered_by: CallAgent | None = None,
    transferred_to: CallAgent | None = None,
) -> CallRecord:
    """The record once `update` is added to it (a new record when None).

    `answered_by` / `transferred_to` are the update's agent references already
    resolved to agents. Who took the call is ordered by time, whatever order the
    news arrives in: the earliest is who answered, the others were transferred
    to. Other facts already known are kept: the first end and recording win,
    except that a real end replaces an "unknown" one (a CDR arriving after the
    hub had to close the call blind).
    """
    if record is None:
        record = CallRecord(
            call_id=update.call_id,
            direction=update.direction,
            customer=customer,
            line=update.line,
            status="ringing",
            started_at=update.at,
        )
    facts: dict[str, Any] = {}
    if update.at < record.started_at:
        facts["started_at"] = update.at
    if not record.line and update.line:
        facts["line"] = update.line
    takers = _takers(record, (answered_by, transferred_to), update.at)
    if takers is not None:
        facts["answered_by"] = takers[0]
        facts["answered_at"] = takers[0].at
        facts["transfers"] = takers[1:]
    if update.missed and not record.missed:
        facts["missed"] = True
        facts["miss_reason"] = record.miss_reason or update.miss_reason
    blind_end = record.end_reason == "unknown"
    if update.ended and (record.ended_at is None or (blind_end and update.end_reason != "unknown")):
        facts["ended_at"] = update.at
        facts["end_reason"] = update.end_reason or "completed"
        if update.duration_seconds is not None:
            facts["duration_seconds"] = update.duration_seconds
    elif update.duration_seconds is not None and (record.duration_seconds is None or blind_end):
        facts["duration_seconds"] = update.duration_seconds
    if update.voicemail and not record.voicemail:
        facts["voicemail"] = True
    if update.recording_url and not record.recording_url:
        facts["recording_url"] = update.recording_url
    if update.recording_seconds is not None and record.recording_seconds is None:
        facts["recording_seconds"] = update.recording_seconds
    if update.transcription and not record.transcription:
        facts["transcription"] = update.transcription
    merged = record.model_copy(update=facts)
    return merged.model_copy(update={"status": derive_status(merged)})


def _takers(
    record: CallRecord, agents: tuple[CallAgent | None, ...], at: datetime
) -> list[CallAgent] | None:
    """Everyone who took the call, earliest first (the first answered, the rest
    were transferred to), once these agents are added at `at` — or None when
    that changes nothing. Ordered by time, not by arrival, so an answer that
    arrives after the transfer still counts as the answer. A named agent
    replaces an anonymous "someone answered"."""
    takers = [a for a in (record.answered_by, *record.transfers) if a is not None]
    before = list(takers)
    for agent in agents:
        if agent is None or any(agent.same_person(t) for t in takers):
            continue
        if agent.anonymous and takers:
            continue
        takers = [t for t in takers if not t.anonymous]
        takers.append(agent.model_copy(update={"at": at}))
        takers.sort(key=lambda t: t.at or at)
    return None if takers == before else takers


def _duration(seconds: int) -> str:
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def describe(record: CallRecord) -> str:
    """The call as one line of the timeline (plus a transcription, if any)."""
    who = record.customer
    call = f"Call from {who}" if record.direction == "inbound" else f"Call to {who}"
    status = record.status
    if status == "ringing":
        text = f"{call} — ringing"
    elif status in ("answered", "completed"):
        agent = record.answered_by.label() if record.answered_by else "an agent"
        taker = "answered by" if record.direction == "inbound" else "made by"
        text = f"{call} {taker} {agent}"
        if record.transfers:
            text += ", transferred to " + ", ".join(a.label() for a in record.transfers)
        if status == "answered":
            text += " — in progress"
        elif record.duration_seconds is not None:
            text += f" · {_duration(record.duration_seconds)}"
        if record.end_reason == "unknown":
            text += " (end not seen: the PBX connection was lost)"
    elif status == "missed":
        if record.direction == "inbound":
            text = f"Missed call from {who}"
            if record.miss_reason:
                text += f" ({record.miss_reason})"
        else:
            text = f"Call to {who} not answered"
            if record.miss_reason and record.miss_reason != "no answer":
                text += f" ({record.miss_reason})"
        if record.end_reason == "unknown":
            text += " (end not seen: the PBX connection was lost)"
    else:
        text = f"Voicemail from {who}"
        if record.recording_seconds is not None:
            text += f" ({_duration(record.recording_seconds)})"
        if record.transcription:
            text += f"\n“{record.transcription}”"
    return text
