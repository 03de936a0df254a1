"""Provider status callbacks for campaign sends. A campaign message carries its
recipient key (`cr-<campaign>-<contact>`) where other messages carry the hub
message id, so a callback naming one moves the recipient row forward instead
of an inbox message."""

from __future__ import annotations

from typing import Any

from hub.campaigns.model import parse_recipient_key
from hub.campaigns.store import CampaignStore
from hub.channels.base import DeliveryReports
from hub.inbox.model import DeliveryStatus

AS_DELIVERY: dict[str, DeliveryStatus] = {
    "pending": "queued",
    "sending": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "failed": "failed",
    "skipped": "failed",
}


class CampaignReports:
    def __init__(self, inbox: DeliveryReports, campaigns: CampaignStore | None) -> None:
        self.inbox = inbox
        self.campaigns = campaigns

    async def record_delivery(
        self,
        message_id: str,
        status: DeliveryStatus,
        *,
        error: str | None = None,
        external_id: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> bool:
        key = parse_recipient_key(message_id)
        if key is None or self.campaigns is None:
            return await self.inbox.record_delivery(
                message_id, status, error=error, external_id=external_id, meta=meta
            )
        if status not in ("delivered", "failed"):
            return False
        return await self.campaigns.record_delivery(*key, status, error)

    async def delivery_status(self, message_id: str) -> DeliveryStatus | None:
        key = parse_recipient_key(message_id)
        if key is None or self.campaigns is None:
            return await self.inbox.delivery_status(message_id)
        recipient = await self.campaigns.get_recipient(*key)
        return None if recipient is None else AS_DELIVERY[recipient.status]
