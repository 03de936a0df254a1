"""Delivering one outbound message through its channel: the work behind the
`deliver` job, and the sweeper that re-enqueues deliveries whose job vanished.

Safe to run twice for one message: a delivery first claims the attempt with a
compare-and-set on the message's attempt count, so two workers never send the
same attempt, and a message that is no longer `queued` is left alone.

A message its channel sends as several provider messages (a long text, files)
is resumed, not restarted: each part the provider accepts is recorded on the
message (`Store.record_sent_part`) before the next part goes, and a retry or a
restarted worker starts at the first part not recorded (`hub.channels.parts`).

Every send passes here — agents' replies, care messages, campaigns — so this is
where consent is honoured: a contact who opted out of the channel's consent
(`Channel.consent_key`, e.g. "sms" after an SMS "STOP") gets nothing, and the
message fails saying so.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hub.channels.base import Channel, OutboundMessage, Route
from hub.clock import Clock
from hub.errors import DuplicateMessage, ProviderRejected
from hub.inbox.model import Contact, Message
from hub.inbox.service import InboxService
from hub.inbox.store import Store
from hub.jobs import JobQueue
from hub.metrics import Metrics
from hub.settings import DeliverySettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryLater:
    """The send failed in a way that may pass; try again after `delay`."""

    delay: timedelta
    reason: str


@dataclass(frozen=True)
class Done:
    outcome: str  # "sent", "failed", "skipped"


class _TakenOver(Exception):
    """Raised into a channel's multi-part send when its next part could not be
    recorded because the message is no longer this attempt's (a newer attempt
    claimed it, or a receipt failed it): the parts left are not sent."""


def backoff(attempt: int, settings: DeliverySettings) -> timedelta:
    """Exponential backoff with ±20% jitter, so a provider coming back is not
    hit by every retry at once."""
    base = settings.backoff_base_seconds * 2 ** max(attempt - 1, 0)
    seconds = min(base, settings.backoff_max_seconds) * random.uniform(0.8, 1.2)
    return timedelta(seconds=seconds)


class Deliverer:
    def __init__(
        self,
        store: Store,
        inbox: InboxService,
        channels: Mapping[str, Channel],
        clock: Clock,
        settings: DeliverySettings,
        metrics: Metrics,
    ) -> None:
        self.store = store
        self.inbox = inbox
        self.channels = channels
        self.clock = clock
        self.settings = settings
        self.metrics = metrics

    async def deliver(self, message_id: str) -> Done | RetryLater:
        message = await self.store.get_message(message_id)
        if message is None or message.direction != "outbound" or message.status != "queued":
            return Done("skipped")
        attempt = message.attempts + 1
        channel = self.channels.get(message.account_id)
        conversation = await self.inbox.conversation(message.conversation_id)
        contact = await self.store.get_contact(conversation.contact_id)
        outbound = OutboundMessage(
            message_id=message.id,
            conversation_id=conversation.id,
            account_id=message.account_id,
            to=conversation.contact_address,
            contact_name=contact.name if contact else "",
            sender_name=message.sender.name,
            text=message.text,
            html=message.html,
            subject=conversation.subject,
            attachments=message.attachments,
            thread=message.thread,
            automated=message.sender.kind == "system",
            created_at=message.created_at,
            sent_parts=message.sent_parts,
        )
        claim: dict[str, object] = {"attempts": attempt, "updated_at": self.clock.now()}
        annotations = channel.outbound_meta(outbound) if channel is not None else {}
        if annotations and any(message.meta.get(k) != v for k, v in annotations.items()):
            claim["meta"] = {**message.meta, **annotations}
        if not await self.store.update_message(
            message.id, expect={"status": "queued", "attempts": message.attempts}, **claim
        ):
            return Done("skipped")  # another worker claimed this attempt
        if channel is None:
            return await self._fail(
                message_id, message.channel, f"account {message.account_id!r} is not configured"
            )
        refusal = consent_refusal(channel, contact)
        if refusal is not None:
            return await self._fail(message.id, message.channel, refusal, attempt)
        context = {"event": "delivery", "message_id": message.id, "attempt": attempt}
        try:
            stored_meta = {**message.meta, **annotations}  # as the claim left it
            route = await self._route(message, stored_meta, channel, outbound, contact)
            if route is not None:
                target = self.channels.get(route.account_id)
                if target is None:
                    return await self._fail(
                        message.id,
                        message.channel,
                        f"route account {route.account_id!r} is not configured",
                        attempt,
                    )
                refusal = consent_refusal(target, contact)
                if refusal is not None:
                    return await self._fail(message.id, message.channel, refusal, attempt)
                channel = target
                outbound = outbound.model_copy(
                    update={
                        "account_id": route.account_id,
                        "to": route.to,
                        "subject": outbound.subject or route.subject,
                    }
                )

            async def part_accepted(index: int, external_id: str | None) -> None:
                if not await self.store.record_sent_part(
                    message.id, index, external_id, attempt=attempt
                ):
                    raise _TakenOver(message.id)

            receipt = await channel.send_in_parts(outbound, part_accepted)
        except _TakenOver:
            log.warning(
                "delivery taken over between two parts; the parts left are not sent",
                extra={**context, "event": "delivery.taken_over"},
            )
            return Done("skipped")
        except ProviderRejected as exc:
            if exc.retryable and attempt < self.settings.max_attempts:
                delay = backoff(attempt, self.settings)
                if exc.retry_after is not None:
                    delay = max(delay, timedelta(seconds=exc.retry_after))
                log.warning(
                    "delivery failed; will retry",
                    extra={**context, "reason": exc.reason, "delay_s": delay.total_seconds()},
                )
                self.metrics.delivery_retries.labels(channel=message.channel).inc()
                return RetryLater(delay, exc.reason)
            return await self._fail(message.id, message.channel, exc.reason, attempt)
        except Exception as exc:  # a bug in a channel must not lose the message
            log.exception("channel raised unexpectedly", extra=context)
            if attempt < self.settings.max_attempts:
                return RetryLater(backoff(attempt, self.settings), repr(exc))
            return await self._fail(
                message.id, message.channel, f"internal error: {exc!r}", attempt
            )
        try:
            await self.inbox.record_delivery(
                message.id,
                receipt.status,
                external_id=receipt.external_id,
                message_key=receipt.message_key,
                meta=receipt.meta or None,
            )
        except DuplicateMessage:
            log.warning("provider reused a message id; not recorded", extra=context)
            await self.inbox.record_delivery(
                message.id, receipt.status, message_key=receipt.message_key
            )
        self.metrics.delivered.labels(channel=message.channel).inc()
        log.info("delivered", extra={**context, "external_id": receipt.external_id})
        return Done("sent")

    async def _route(
        self,
        message: Message,
        meta: dict[str, Any],
        channel: Channel,
        outbound: OutboundMessage,
        contact: Contact | None,
    ) -> Route | None:
        """The message's delivery route: the one chosen at an earlier attempt, else
        what its channel says now (kept on the message, so a retry never switches
        routes and one message never goes out two ways). `meta` is the message's
        meta as this attempt stored it."""
        if meta.get("route"):
            return Route.model_validate(meta["route"])
        route = await channel.reroute(outbound, contact.identities if contact else ())
        if route is not None:
            await self.store.update_message(message.id, meta={**meta, "route": route.model_dump()})
            log.info(
                "delivery rerouted",
                extra={
                    "event": "delivery.rerouted",
                    "message_id": message.id,
                    "account_id": route.account_id,
                    "reason": route.reason,
                },
            )
        return route

    async def _fail(
        self, message_id: str, channel: str, reason: str, attempt: int | None = None
    ) -> Done:
        await self.inbox.record_delivery(message_id, "failed", error=reason)
        self.metrics.failed.labels(channel=channel).inc()
        log.warning(
            "delivery failed for good",
            extra={
                "event": "delivery.failed",
                "message_id": message_id,
                "reason": reason,
                "attempt": attempt,
            },
        )
        return Done("failed")


def consent_refusal(channel: Channel, contact: Contact | None) -> str | None:
    """Why the contact must not get a message on this channel, or None if they may."""
    if channel.consent_key is None or contact is None:
        return None
    consent = contact.consent.get(channel.consent_key)
    if consent is None or consent.status != "opted_out":
        return None
    return (
        f"the contact opted out of {channel.consent_key} on {consent.at.isoformat()}"
        f" ({consent.how}); nothing is sent until they opt in again"
    )


class Sweeper:
    """Re-enqueues `queued` messages whose delivery job vanished (Redis restarted
    without its data, or the web process died between storing and enqueueing).
    Enqueueing is idempotent per message, so a live job is never doubled."""

    def __init__(self, store: Store, jobs: JobQueue, clock: Clock, settings: DeliverySettings):
        self.store = store
        self.jobs = jobs
        self.clock = clock
        self.settings = settings

    async def sweep(self, *, grace: timedelta | None = None) -> int:
        if grace is None:
            grace = timedelta(seconds=self.settings.sweep_after_seconds)
        created_before = self.clock.now() - grace
        enqueued = 0
        while True:
            waiting = await self.store.messages_awaiting_delivery(created_before, limit=500)
            for message in waiting:
                enqueued += await self.jobs.enqueue_delivery(message.id)
            if len(waiting) < 500:
                break
            created_before = waiting[-1].created_at
        if enqueued:
            log.info("sweeper enqueued deliveries", extra={"event": "sweeper", "count": enqueued})
        return enqueued
