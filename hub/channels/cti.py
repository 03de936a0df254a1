"""The generic CTI webhook: any PBX (or call-centre system) that can call a URL
puts its calls on the customers' timelines.

    POST /webhooks/cti/<account>
    Authorization: Bearer <token>            (or X-Hub-Token: <token>)
    {"event": "newCall" | "answer" | "hangup",
     "call_id": "pbx-call-1234",             the PBX's id of the call, the same in every event
     "direction": "inbound" | "outbound",    default inbound
     "from": "0901234567", "to": "02873001234",
     "extension": "101",                     answer: who took it (mapped to the agent)
     "timestamp": "2026-01-05T09:00:08+07:00",   optional; default: when it arrived
     "duration": 92,                         hangup: talk time in seconds, optional
     "reason": "no-answer",                  hangup of an unanswered call, optional
     "recording_url": "https://..."}         optional: a voicemail or call recording

The token is compared in constant time. The customer is `from` on inbound
calls and `to` on outbound ones. Events may come in any order and any number
of times: they build the same one call record as Twilio and Asterisk calls.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError

from hub.channels.base import Channel, OutboundMessage, Receipt
from hub.errors import InvalidRequest, ProviderRejected, SignatureInvalid, describe_validation
from hub.inbox.addresses import phone_identity
from hub.inbox.calls import AgentRef, CallUpdate, EndReason
from hub.inbox.inbound import InboundMessage, InboundSender
from hub.inbox.model import Identity
from hub.routing.hours import DEFAULT_TIMEZONE

CHANNEL = "cti"

REASONS: dict[str, EndReason] = {
    "completed": "completed",
    "no-answer": "no-answer",
    "noanswer": "no-answer",
    "busy": "busy",
    "failed": "failed",
    "canceled": "canceled",
    "cancelled": "canceled",
}


class CtiOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=16, description="from `token_env`")
    timezone: str = Field(DEFAULT_TIMEZONE, description="for timestamps without an offset")


class CtiEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    event: Literal["newCall", "answer", "hangup"]
    call_id: str = Field(min_length=1, max_length=128)
    direction: Literal["inbound", "outbound"] = "inbound"
    caller: str = Field("", alias="from", max_length=64)
    callee: str = Field("", alias="to", max_length=64)
    extension: str | None = Field(None, max_length=32)
    timestamp: datetime | None = None
    duration: int | None = Field(None, ge=0, le=7 * 24 * 3600)
    reason: str | None = Field(None, max_length=32)
    recording_url: HttpUrl | None = None


def normalise(
    event: CtiEvent, *, account_id: str, default_region: str, now: datetime, zone: ZoneInfo
) -> InboundMessage:
    """A CTI event as a call update for the inbox. Pure; raises InvalidRequest
    when the customer's number is missing or is not a phone number."""
    customer = event.caller if event.direction == "inbound" else event.callee
    field = "from" if event.direction == "inbound" else "to"
    if not customer.strip():
        raise InvalidRequest(f"{field}: the customer's number is missing")
    try:
        identity: Identity = phone_identity(customer, default_region)
    except InvalidRequest as exc:
        raise InvalidRequest(f"{field}: {exc.message}") from exc
    at = event.timestamp or now
    if at.tzinfo is None:
        at = at.replace(tzinfo=zone)
    line = event.callee if event.direction == "inbound" else (event.extension or "")
    update = CallUpdate(call_id=event.call_id, direction=event.direction, at=at, line=line)
    if event.event == "answer":
        if not event.extension:
            raise InvalidRequest("extension: an answer must say which extension took the call")
        update = update.model_copy(update={"answered_by": AgentRef(extension=event.extension)})
    elif event.event == "hangup":
        reason = REASONS.get((event.reason or "completed").lower(), "completed")
        facts: dict[str, object] = {
            "ended": True,
            "end_reason": reason,
            "duration_seconds": event.duration,
        }
        if reason != "completed":
            facts["missed"] = True
            facts["miss_reason"] = reason.replace("-", " ")
        if event.recording_url is not None:
            facts["recording_url"] = str(event.recording_url)
        update = update.model_copy(update=facts)
    return InboundMessage(
        account_id=account_id,
        channel=CHANNEL,
        external_id=event.call_id,
        sender=InboundSender(identities=[identity]),
        direction="event",
        call=update,
    )


class CtiChannel(Channel):
    name = CHANNEL
    Options = CtiOptions
    options: CtiOptions

    def routes(self) -> list[web.RouteDef]:
        return [web.post(f"/webhooks/cti/{self.account.id}", self.receive)]

    def check_token(self, request: web.Request) -> None:
        scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
        given = bearer.strip() if scheme.lower() == "bearer" else ""
        given = given or request.headers.get("X-Hub-Token", "").strip()
        if not given:
            raise SignatureInvalid("send the account's token as 'Authorization: Bearer <token>'")
        if not hmac.compare_digest(given.encode(), self.options.token.encode()):
            raise SignatureInvalid("the token is not this account's")

    async def receive(self, request: web.Request) -> web.Response:
        """Check the token, then record the event; acknowledge once stored."""
        self.check_token(request)
        body = await request.read()
        try:
            event = CtiEvent.model_validate_json(body)
        except ValidationError as exc:
            if any(e["type"] == "json_invalid" for e in exc.errors()):
                raise InvalidRequest("body is not valid JSON") from exc
            raise InvalidRequest(describe_validation(exc)) from exc
        inbound = normalise(
            event,
            account_id=self.account.id,
            default_region=self.context.default_region,
            now=self.context.clock.now(),
            zone=ZoneInfo(self.options.timezone),
        )
        outcome = await self.context.ingest(inbound)
        return web.json_response(
            {
                "status": "unchanged" if outcome.duplicate else "recorded",
                "message_id": outcome.message_id,
                "conversation_id": outcome.conversation_id,
                "contact_id": outcome.contact_id,
            }
        )

    async def send(self, message: OutboundMessage) -> Receipt:
        raise ProviderRejected(
            f"account {self.account.id!r} is a PBX webhook: it carries calls, not text",
            retryable=False,
        )
