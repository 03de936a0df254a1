"""A webhook delivery that carries several events, and how it is stored.

Meta batches many messages and receipts into one POST; a Telegram poll returns
many updates. Each event is stored in order and the delivery is acknowledged
only after all of them are; when one fails (the store is down) the whole
delivery is refused, the provider sends it again, and the events already
stored are recognised as duplicates — so nothing is lost and nothing doubled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from hub.channels.base import ChannelContext
from hub.inbox.inbound import DeliveryReport, InboundMessage

log = logging.getLogger(__name__)


@dataclass
class Batch:
    """What one provider delivery means in hub's terms; `skipped` says, for the
    log, which events hub deliberately ignores (echoes, other accounts, ...)."""

    messages: list[InboundMessage] = field(default_factory=list)
    reports: list[DeliveryReport] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def extend(self, other: Batch) -> None:
        self.messages += other.messages
        self.reports += other.reports
        self.skipped += other.skipped


@dataclass
class Stored:
    accepted: int = 0
    duplicates: int = 0
    statuses_moved: int = 0


async def store_batch(context: ChannelContext, batch: Batch, *, account_id: str) -> Stored:
    """Ingest every message, then apply every receipt, in order. Raises on the first
    failure (the caller refuses the delivery so the provider retries it whole)."""
    stored = Stored()
    for message in batch.messages:
        outcome = await context.ingest(message)
        if outcome.duplicate:
            stored.duplicates += 1
        else:
            stored.accepted += 1
    if batch.reports:
        if context.receipts is None:
            log.warning(
                "delivery receipts dropped: no receipt sink in this hub",
                extra={"event": "receipts.dropped", "account_id": account_id},
            )
        else:
            for report in batch.reports:
                stored.statuses_moved += await context.receipts.record_provider_status(report)
    for reason in batch.skipped:
        log.info(
            "webhook event ignored",
            extra={"event": "webhook.skipped", "account_id": account_id, "reason": reason},
        )
    return stored
