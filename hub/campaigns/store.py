"""What campaigns keep, in their own words: audiences, campaigns, recipient rows.

Apart from the inbox's `Store` so that campaign storage grows without touching
the inbox's interface, but over the same database (the snapshot selects from
the inbox's contacts in one set-based statement). Every method is atomic.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from hub.campaigns.model import (
    Audience,
    AudienceFilter,
    Campaign,
    CampaignChannel,
    CampaignStatus,
    DueSend,
    Outcome,
    Progress,
    Recipient,
    RecipientStatus,
)
from hub.inbox.model import Contact
from hub.inbox.store import Expectation, Page


class CampaignStore(ABC):
    @abstractmethod
    async def open(self) -> None:
        """Create the campaign schema if missing (idempotent). The inbox store it
        rides on must be open."""

    # -- audiences -------------------------------------------------------
    @abstractmethod
    async def add_audience(self, audience: Audience) -> None: ...

    @abstractmethod
    async def get_audience(self, audience_id: str) -> Audience | None: ...

    @abstractmethod
    async def list_audiences(self) -> list[Audience]:
        """Every audience, newest first."""

    @abstractmethod
    async def count_audience(self, audience: AudienceFilter, channel: CampaignChannel) -> int:
        """How many contacts the filter holds that can be reached on `channel`."""

    @abstractmethod
    async def sample_contact(
        self, audience: AudienceFilter, channel: CampaignChannel
    ) -> Contact | None:
        """One contact of the audience (for previews), or None if it is empty."""

    # -- campaigns -------------------------------------------------------
    @abstractmethod
    async def add_campaign(self, campaign: Campaign) -> None: ...

    @abstractmethod
    async def get_campaign(self, campaign_id: str) -> Campaign | None: ...

    @abstractmethod
    async def list_campaigns(
        self, *, statuses: Sequence[CampaignStatus] | None = None
    ) -> list[Campaign]:
        """Campaigns (optionally only those in `statuses`), newest first."""

    @abstractmethod
    async def update_campaign(
        self, campaign_id: str, *, expect: Expectation | None = None, **changes: Any
    ) -> bool:
        """Compare-and-set, as the inbox store's updates."""

    # -- recipients ------------------------------------------------------
    @abstractmethod
    async def snapshot(self, campaign: Campaign, audience: AudienceFilter, now: datetime) -> int:
        """Write one pending row per contact of the audience reachable on the
        campaign's channel (its first address there). Set-based; safe to run
        twice (existing rows are kept). Returns the campaign's row count."""

    @abstractmethod
    async def due_recipients(
        self, campaign_id: str, now: datetime, limit: int, *, after: str | None = None
    ) -> list[Recipient]:
        """Pending rows whose window is open (`not_before` unset or passed), by
        contact id; with `after`, only those whose contact id sorts after it (the
        next page of one pass over the campaign, while the page before it is
        still pending in the sender's hands)."""

    @abstractmethod
    async def due_sends(
        self,
        campaign_id: str,
        channel: CampaignChannel,
        now: datetime,
        limit: int,
        *,
        after: str | None = None,
    ) -> list[DueSend]:
        """The rows `due_recipients` gives, each with its contact as it is now
        (consent on `channel` read fresh, for the send), in one read."""

    @abstractmethod
    async def next_waiting(self, campaign_id: str) -> datetime | None:
        """The earliest `not_before` among pending rows, or None."""

    @abstractmethod
    async def claim(self, campaign_id: str, contact_ids: Sequence[str], now: datetime) -> list[str]:
        """pending → sending for these rows (one more attempt each); returns the
        contact ids this call moved: a row another worker took is not among them."""

    async def finish(
        self,
        campaign_id: str,
        contact_id: str,
        status: RecipientStatus,
        now: datetime,
        *,
        reason: str | None = None,
        external_id: str | None = None,
        not_before: datetime | None = None,
    ) -> bool:
        """sending → `status` (sent, failed, or pending again when a send is known
        not to have happened). False if the row was not sending."""
        outcome = Outcome(contact_id, status, now, reason, external_id, not_before)
        return await self.finish_many(campaign_id, [outcome]) == 1

    @abstractmethod
    async def finish_many(self, campaign_id: str, outcomes: Sequence[Outcome]) -> int:
        """`finish` for several rows in one write; returns how many were sending.
        A retry (`pending`) forgets the id of a handover that failed."""

    @abstractmethod
    async def release(self, campaign_id: str, contact_ids: Sequence[str], now: datetime) -> int:
        """sending → pending for rows claimed but never handed to the provider (a
        turn that stops early): the attempt the claim counted is taken back."""

    @abstractmethod
    async def hand_over(self, campaign_id: str, contact_id: str, external_id: str) -> None:
        """Record, on a `sending` row, the provider's id of a send whose last step
        is under way (see `Channel.send_with_handover`)."""

    @abstractmethod
    async def hold(
        self, campaign_id: str, contact_ids: Sequence[str], not_before: datetime, now: datetime
    ) -> None:
        """Pending rows wait until `not_before` (the recipient's window)."""

    @abstractmethod
    async def skip(
        self, campaign_id: str, contact_ids: Sequence[str], reason: str, now: datetime
    ) -> int:
        """pending → skipped with `reason`; returns how many moved."""

    @abstractmethod
    async def skip_all_pending(self, campaign_id: str, reason: str, now: datetime) -> int: ...

    @abstractmethod
    async def stuck_sending(
        self, campaign_id: str, before: datetime, limit: int
    ) -> list[Recipient]:
        """Rows left `sending` since before `before`: sends a dead worker began."""

    @abstractmethod
    async def record_delivery(
        self, campaign_id: str, contact_id: str, status: RecipientStatus, reason: str | None
    ) -> bool:
        """A provider's later report: sent → delivered | failed (forward only)."""

    @abstractmethod
    async def any_sent_since(self, since: datetime) -> bool:
        """Whether any campaign may have sent at or after `since`: one is under
        way (launched, not finished) or finished since."""

    @abstractmethod
    async def recent_sends(self, contact_id: str, since: datetime) -> list[Recipient]:
        """The contact's campaign messages sent (or delivered) at or after `since`,
        newest first."""

    @abstractmethod
    async def mark_replied(
        self, campaign_id: str, contact_id: str, at: datetime, conversation_id: str
    ) -> bool:
        """Record the recipient's first reply; False if one was recorded already."""

    @abstractmethod
    async def get_recipient(self, campaign_id: str, contact_id: str) -> Recipient | None: ...

    @abstractmethod
    async def list_recipients(
        self,
        campaign_id: str,
        *,
        status: RecipientStatus | None,
        limit: int,
        cursor: str | None = None,
    ) -> Page[Recipient]:
        """By contact id; `next_cursor` is the last contact id of the page."""

    @abstractmethod
    async def progress(self, campaign_id: str, now: datetime) -> Progress: ...

    @abstractmethod
    async def contacts(self, contact_ids: Sequence[str]) -> dict[str, Contact]:
        """The contacts with these ids (fresh: consent is read at send time)."""
