"""The Asterisk channel: a PBX's calls on the customers' timelines, and
click-to-call through it.

`run()` keeps an AMI connection (see `client`), feeds every event to the call
assembler, and hands what it learns to the inbox as call updates, in order.
After each (re)connect it asks the PBX which channels are still up
(`CoreShowChannels`), so calls that ended while the hub was away are completed
from their `Cdr` or closed as "unknown end" — never left ringing forever.

Click-to-call (`place_call`) sends `Originate`: the PBX rings the agent's
extension and, once they pick up, dials the customer from the dialplan
context `originate_context`.

A PBX cannot send text: a reply typed on a PBX conversation fails saying so
(reply by SMS from an SMS account, or call back).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any, Literal

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field

from hub.channels.asterisk.assembler import CallAssembler, Emit
from hub.channels.asterisk.client import AmiClient
from hub.channels.asterisk.protocol import AmiMessage
from hub.channels.base import Channel, OutboundMessage, Receipt
from hub.errors import (
    InvalidRequest,
    ProviderRejected,
    QueueUnavailable,
    StoreUnavailable,
)
from hub.inbox.addresses import phone_identity
from hub.inbox.calls import CallUpdate
from hub.inbox.inbound import InboundMessage, InboundSender
from hub.inbox.model import Agent, Identity
from hub.routing.hours import DEFAULT_TIMEZONE

log = logging.getLogger(__name__)

CHANNEL = "asterisk"


class AsteriskOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str
    port: int = Field(5038, ge=1, le=65535)
    username: str = Field(min_length=1)
    secret: str = Field(min_length=1, description="from `secret_env`")
    extension_pattern: str = r"^\d{2,6}$"
    timezone: str = DEFAULT_TIMEZONE
    ping_interval_seconds: float = Field(20.0, gt=0)
    ping_timeout_seconds: float = Field(10.0, gt=0)
    reconnect_min_seconds: float = Field(0.5, gt=0)
    reconnect_max_seconds: float = Field(30.0, gt=0)
    cdr_grace_seconds: float = Field(10.0, ge=0)
    voicemail_url: str | None = Field(
        None, description="link to a voicemail: '{mailbox}' and '{call_id}' are filled in"
    )
    originate_channel: str = "PJSIP/{extension}"
    originate_context: str = "from-internal"
    originate_timeout_seconds: int = Field(30, ge=5, le=300)
    dial_format: Literal["national", "e164"] = "national"


# OriginateResponse reasons (Asterisk's AST_CONTROL codes) when the agent's leg failed.
ORIGINATE_FAILURES = {
    "0": "the agent's phone could not be reached",
    "1": "the agent's phone hung up",
    "3": "the agent's phone was not answered",
    "5": "the agent's line was busy",
    "8": "the PBX was congested",
}


class AsteriskChannel(Channel):
    name = CHANNEL
    Options = AsteriskOptions
    options: AsteriskOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        o = self.options
        self.client = AmiClient(
            o.host,
            o.port,
            o.username,
            o.secret,
            name=self.account.id,
            ping_interval=o.ping_interval_seconds,
            ping_timeout=o.ping_timeout_seconds,
            backoff_min=o.reconnect_min_seconds,
            backoff_max=o.reconnect_max_seconds,
        )
        self.assembler = CallAssembler(
            extension_pattern=o.extension_pattern,
            timezone=o.timezone,
            cdr_grace=timedelta(seconds=o.cdr_grace_seconds),
            recording_url=o.voicemail_url,
        )
        # Click-to-calls waiting for their OriginateResponse: ActionID → (customer, extension).
        self._originating: dict[str, tuple[str, str]] = {}

    # -- events in -----------------------------------------------------------
    async def run(self) -> None:
        expiry = asyncio.create_task(self._expire_forever(), name=f"ami-expiry-{self.account.id}")
        try:
            await self.client.run(self.on_event, self.on_connect)
        finally:
            expiry.cancel()

    async def on_event(self, message: AmiMessage) -> None:
        if message.event == "OriginateResponse":
            await self.on_originate_response(message)
            return
        for emit in self.assembler.feed(message, self.context.clock.now()):
            await self.record(emit)

    async def on_originate_response(self, message: AmiMessage) -> None:
        """A click-to-call whose first leg failed never becomes a call the PBX
        reports; put it on the timeline so the agent sees why nothing happened."""
        placed = self._originating.pop(message.action_id or "", None)
        if placed is None or message.get("Response", "").lower() != "failure":
            return
        customer, extension = placed
        reason = ORIGINATE_FAILURES.get(message.get("Reason", ""), "the PBX could not place it")
        update = CallUpdate(
            call_id=f"originate-{message.action_id}",
            direction="outbound",
            at=self.context.clock.now(),
            line=extension,
            ended=True,
            end_reason="failed",
            missed=True,
            miss_reason=reason,
        )
        await self.record(Emit(update, customer))

    async def on_connect(self) -> None:
        """Catch up after a (re)connect: which channels survived the gap?"""
        _, channels = await self.client.action_list("CoreShowChannels", "CoreShowChannelsComplete")
        live = {c.get("Uniqueid", "") for c in channels}
        self.assembler.reconnected(live, self.context.clock.now())

    async def _expire_forever(self) -> None:
        interval = max(0.05, min(1.0, self.options.cdr_grace_seconds / 4))
        while True:
            await asyncio.sleep(interval)
            for emit in self.assembler.expire(self.context.clock.now()):
                await self.record(emit)

    def customer_identity(self, emit: Emit) -> Identity:
        try:
            return phone_identity(emit.customer, self.context.default_region)
        except InvalidRequest:
            # A withheld or odd caller id: the call is still recorded, as its own.
            return Identity(channel="anonymous", address=emit.update.call_id)

    async def record(self, emit: Emit) -> None:
        """Hand one update to the inbox; retried while the store or Redis is down,
        because the PBX will not send it again."""
        inbound = InboundMessage(
            account_id=self.account.id,
            channel=CHANNEL,
            external_id=emit.update.call_id,
            sender=InboundSender(identities=[self.customer_identity(emit)]),
            direction="event",
            call=emit.update,
        )
        delay = 0.5
        while True:
            try:
                await self.context.ingest(inbound)
                return
            except (StoreUnavailable, QueueUnavailable) as exc:
                log.warning(
                    "call update not stored yet; retrying",
                    extra={
                        "event": "ami.ingest_retry",
                        "account_id": self.account.id,
                        "call_id": emit.update.call_id,
                        "error": exc.message,
                    },
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    # -- click-to-call -----------------------------------------------------------
    def dial_string(self, customer: str) -> str:
        if self.options.dial_format == "e164":
            return customer
        number = phonenumbers.parse(customer, None)
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL).replace(
            " ", ""
        )

    async def place_call(
        self, *, agent: Agent, customer: str, conversation_id: str
    ) -> dict[str, Any]:
        if not agent.extension:
            raise InvalidRequest(
                f"agent {agent.email} has no PBX extension to ring first"
                " (set one with `hub agent set-phone`)"
            )
        response = await self.client.action(
            "Originate",
            Channel=self.options.originate_channel.format(extension=agent.extension),
            Context=self.options.originate_context,
            Exten=self.dial_string(customer),
            Priority="1",
            CallerID=f"{agent.name} <{agent.extension}>",
            Timeout=str(self.options.originate_timeout_seconds * 1000),
            Async="true",
            Variable=f"HUB_CONVERSATION={conversation_id}",
        )
        answer = {
            "action_id": response.get("ActionID"),
            "response": response.get("Response"),
            "message": response.get("Message", ""),
        }
        if response.get("Response") == "Success" and response.get("ActionID"):
            self._originating[response["ActionID"]] = (customer, agent.extension)
            if len(self._originating) > 1000:  # responses that never came
                self._originating.pop(next(iter(self._originating)))
        if response.get("Response") != "Success":
            raise ProviderRejected(
                f"the PBX refused the call: {answer['message'] or 'no reason given'}",
                retryable=False,
            )
        log.info(
            "click-to-call placed",
            extra={
                "event": "ami.originate",
                "account_id": self.account.id,
                "agent_id": agent.id,
                "conversation_id": conversation_id,
            },
        )
        return answer

    # -- text out ------------------------------------------------------------------
    async def send(self, message: OutboundMessage) -> Receipt:
        raise ProviderRejected(
            f"account {self.account.id!r} is a PBX: it carries calls, not text;"
            " call the customer back or write from an SMS account",
            retryable=False,
        )
