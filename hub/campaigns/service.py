"""What a marketer does with campaigns: audiences with a live count, campaigns
written, previewed, test-sent, scheduled or launched, then paused, resumed or
cancelled. The API and the CLI both call this; the worker sends (`dispatch`).

Status moves are compare-and-set, so two marketers clicking at once never
launch twice: draft | scheduled → running → paused ⇄ running → completed,
and anything not finished → cancelled.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError

from hub.campaigns.dispatch import Dispatcher
from hub.campaigns.messages import CampaignMessages
from hub.campaigns.model import (
    ADDRESS_SPACE,
    Audience,
    AudienceFilter,
    Campaign,
    CampaignChannel,
    Progress,
    Recipient,
)
from hub.campaigns.store import CampaignStore
from hub.campaigns.unsubscribe import UnsubscribeLinks
from hub.care.templates import TemplateError, language_of
from hub.channels.base import Channel
from hub.clock import Clock
from hub.errors import Conflict, InvalidRequest, NotFound, ProviderRejected, QueueUnavailable
from hub.inbox.addresses import email_identity, phone_identity
from hub.inbox.model import Consent, Contact, new_id
from hub.inbox.store import Store

log = logging.getLogger(__name__)

# Which channel families can carry which campaigns.
FAMILIES: dict[CampaignChannel, frozenset[str]] = {
    "sms": frozenset({"twilio"}),
    "email": frozenset({"email"}),
}
CAMPAIGN_SEND = "campaign_send"


class CampaignService:
    def __init__(
        self,
        store: CampaignStore,
        dispatcher: Dispatcher,
        channels: dict[str, Channel],
        clock: Clock,
        enqueue: Any,
        *,
        default_region: str,
        links: UnsubscribeLinks,
        inbox_store: Store,
    ) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.channels = channels
        self.clock = clock
        self._enqueue = enqueue  # async (campaign_id) -> None: queue a worker's turn
        self.default_region = default_region
        self.links = links
        self.inbox_store = inbox_store  # contacts' consent is the inbox's

    # -- audiences -------------------------------------------------------
    async def create_audience(
        self, name: str, audience: AudienceFilter, *, created_by: str | None = None
    ) -> Audience:
        now = self.clock.now()
        record = Audience(
            name=name, filter=audience, created_by=created_by, created_at=now, updated_at=now
        )
        await self.store.add_audience(record)
        return record

    async def audience(self, audience_id: str) -> Audience:
        found = await self.store.get_audience(audience_id)
        if found is None:
            raise NotFound(f"audience {audience_id} does not exist")
        return found

    async def count(self, audience: AudienceFilter, channel: CampaignChannel) -> int:
        return await self.store.count_audience(audience, channel)

    # -- campaigns -------------------------------------------------------
    async def campaign(self, campaign_id: str) -> Campaign:
        found = await self.store.get_campaign(campaign_id)
        if found is None:
            raise NotFound(f"campaign {campaign_id} does not exist")
        return found

    async def create_campaign(
        self,
        *,
        name: str,
        channel: CampaignChannel,
        account_id: str,
        audience_id: str,
        text: str,
        subject: str = "",
        created_by: str | None = None,
    ) -> Campaign:
        """A draft. Raises InvalidRequest naming what is wrong (an account that
        cannot carry the channel, a template that does not render)."""
        now = self.clock.now()
        campaign = await self.draft(
            name=name,
            channel=channel,
            account_id=account_id,
            audience_id=audience_id,
            text=text,
            subject=subject,
            created_by=created_by,
            created_at=now,
            updated_at=now,
        )
        await self.store.add_campaign(campaign)
        return campaign

    async def draft(self, **fields: Any) -> Campaign:
        """A campaign built and checked, not stored: the account can carry its
        channel, its audience exists, its templates render. Raises InvalidRequest."""
        account_id, channel = fields["account_id"], fields["channel"]
        account = self.channels.get(account_id)
        if account is None:
            raise InvalidRequest(f"account_id: no account {account_id!r} is configured")
        if account.name not in FAMILIES[channel]:
            raise InvalidRequest(
                f"account_id: account {account_id!r} is a {account.name} account;"
                f" {channel} campaigns go through {', '.join(sorted(FAMILIES[channel]))} accounts"
            )
        await self.audience(fields["audience_id"])
        try:
            campaign = Campaign(**fields)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from exc
        self._messages(campaign)
        return campaign

    async def update_draft(self, campaign_id: str, **changes: Any) -> Campaign:
        """Change a draft (name, channel, account, audience, text, subject), checked
        as a new one. Raises Conflict once it is scheduled or launched."""
        current = await self.campaign(campaign_id)
        if current.status != "draft":
            raise Conflict(f"campaign {campaign_id} is {current.status}; only a draft can change")
        fields = {**current.model_dump(), **changes, "updated_at": self.clock.now()}
        if fields["channel"] == "sms":
            fields["subject"] = ""
        campaign = await self.draft(**fields)
        editable = ("name", "channel", "account_id", "audience_id", "text", "subject")
        if not await self.store.update_campaign(
            campaign_id,
            expect={"status": ("draft",)},
            updated_at=campaign.updated_at,
            **{name: getattr(campaign, name) for name in editable},
        ):
            latest = await self.campaign(campaign_id)
            raise Conflict(f"campaign {campaign_id} is {latest.status}; only a draft can change")
        return await self.campaign(campaign_id)

    def _messages(self, campaign: Campaign) -> CampaignMessages:
        try:
            messages = self.dispatcher.messages(campaign)
            messages.check()
        except TemplateError as exc:
            raise InvalidRequest(f"text: {exc}") from exc
        return messages

    async def preview(self, campaign_id: str, contact_id: str | None = None) -> dict[str, Any]:
        """The message as one contact would get it (a given one, else a sample of
        the audience)."""
        return await self.preview_of(await self.campaign(campaign_id), contact_id)

    async def preview_of(self, campaign: Campaign, contact_id: str | None = None) -> dict[str, Any]:
        """The message of `campaign` (stored or a draft being written) exactly as
        one contact would get it: the text with the SMS opt-out line or the
        e-mail's unsubscribe footer, the subject, the address, and for SMS the
        size the account sends it at (`{"encoding", "segments", ...}`)."""
        audience = await self.audience(campaign.audience_id)
        if contact_id:
            contact = (await self.store.contacts([contact_id])).get(contact_id)
            if contact is None:
                raise NotFound(f"contact {contact_id} does not exist")
        else:
            contact = await self.store.sample_contact(audience.filter, campaign.channel)
            if contact is None:
                raise InvalidRequest("the audience is empty: there is nobody to preview for")
        space = ADDRESS_SPACE[campaign.channel]
        address = next((i.address for i in contact.identities if i.channel == space), "")
        now = campaign.launched_at or self.clock.now()
        recipient = Recipient(
            campaign_id=campaign.id, contact_id=contact.id, address=address, updated_at=now
        )
        try:
            outbound = self._messages(campaign).outbound(recipient, contact, now)
        except TemplateError as exc:
            raise InvalidRequest(f"text: {exc}") from exc
        channel = self.channels.get(campaign.account_id)
        meta = channel.outbound_meta(outbound) if channel is not None else {}
        return {
            "contact_id": contact.id,
            "contact_name": contact.name,
            "to": address,
            "text": outbound.text,
            "subject": outbound.subject,
            "sms": meta.get("sms"),
        }

    async def test_send(self, campaign_id: str, to: str, *, name: str = "") -> str:
        """Send the campaign's message once to `to` (the marketer's own phone or
        mailbox), personalised for a sample contact; nothing is recorded on the
        campaign. Returns the provider's id. Raises ProviderRejected if refused."""
        campaign = await self.campaign(campaign_id)
        try:
            identity = (
                phone_identity(to, self.default_region)
                if ADDRESS_SPACE[campaign.channel] == "phone"
                else email_identity(to)
            )
        except InvalidRequest as exc:
            raise InvalidRequest(f"to: {exc.message}") from exc
        now = self.clock.now()
        contact = Contact(name=name, identities=[identity], created_at=now, updated_at=now)
        messages = self._messages(campaign)
        recipient = Recipient(
            campaign_id=f"test{new_id()}",
            contact_id=contact.id,
            address=identity.address,
            updated_at=now,
        )
        outbound = messages.outbound(recipient, contact, now)
        outbound = outbound.model_copy(update={"subject": f"[TEST] {outbound.subject}".strip()})
        channel = self.channels[campaign.account_id]
        try:
            receipt = await channel.send(outbound)
        except ProviderRejected:
            raise
        return receipt.external_id or ""

    async def schedule(self, campaign_id: str, at: datetime) -> Campaign:
        if at <= self.clock.now():
            raise InvalidRequest("scheduled_at: must be in the future (or launch it now)")
        await self._move(campaign_id, ("draft", "scheduled"), "scheduled", scheduled_at=at)
        return await self.campaign(campaign_id)

    async def launch(self, campaign_id: str) -> Campaign:
        """Snapshot the audience into recipient rows and start sending. Safe to
        repeat: the snapshot keeps rows already written, and only one call
        moves the campaign to running."""
        campaign = await self.campaign(campaign_id)
        if campaign.status not in ("draft", "scheduled"):
            raise Conflict(
                f"campaign {campaign_id} is {campaign.status}; only a draft or a"
                " scheduled campaign can be launched"
            )
        audience = await self.audience(campaign.audience_id)
        self._messages(campaign)
        now = self.clock.now()
        count = await self.store.snapshot(campaign, audience.filter, now)
        await self._move(
            campaign_id,
            ("draft", "scheduled"),
            "running",
            launched_at=now,
            recipient_count=count,
        )
        log.info(
            "campaign launched",
            extra={"event": "campaign.launched", "campaign_id": campaign_id, "recipients": count},
        )
        await self.kick(campaign_id)
        return await self.campaign(campaign_id)

    async def pause(self, campaign_id: str) -> Campaign:
        await self._move(campaign_id, ("running",), "paused")
        await self.dispatcher.announce(campaign_id, force=True)
        return await self.campaign(campaign_id)

    async def resume(self, campaign_id: str) -> Campaign:
        await self._move(campaign_id, ("paused",), "running")
        await self.kick(campaign_id)
        return await self.campaign(campaign_id)

    async def cancel(self, campaign_id: str) -> Campaign:
        await self._move(
            campaign_id,
            ("draft", "scheduled", "running", "paused"),
            "cancelled",
            finished_at=self.clock.now(),
        )
        await self.store.skip_all_pending(campaign_id, "cancelled", self.clock.now())
        await self.dispatcher.announce(campaign_id, force=True)
        return await self.campaign(campaign_id)

    async def link_language(self, token: str) -> str:
        """The language to answer an unsubscribe link in: its contact's, as the
        campaign's footer was written in, else the hub's default (also for a
        link that is not valid: it names nobody to ask)."""
        default = self.dispatcher.templates.default_language
        request = self.links.verify(token)
        if request is None:
            return default
        contact = (await self.store.contacts([request.contact_id])).get(request.contact_id)
        return (language_of(contact.language) if contact else None) or default

    async def unsubscribe(self, token: str, *, how: str) -> bool:
        """Withdraw the consent a signed unsubscribe link names. Returns False if
        the link is not one this hub signed; repeating it changes nothing."""
        request = self.links.verify(token)
        if request is None:
            return False
        for _ in range(5):
            contact = (await self.store.contacts([request.contact_id])).get(request.contact_id)
            if contact is None:
                return True  # nobody left to write to
            current = contact.consent.get(request.consent_key)
            if current is not None and current.status == "opted_out":
                return True
            now = self.clock.now()
            consent = {
                **contact.consent,
                request.consent_key: Consent(
                    status="opted_out", at=now, how=f"{how} (campaign {request.campaign_id})"
                ),
            }
            if await self.inbox_store.update_contact(
                contact.id, expect={"consent": contact.consent}, consent=consent, updated_at=now
            ):
                log.info(
                    "unsubscribed by link",
                    extra={
                        "event": "contact.consent",
                        "contact_id": contact.id,
                        "consent": request.consent_key,
                        "campaign_id": request.campaign_id,
                    },
                )
                return True
        raise Conflict(f"contact {request.contact_id} kept changing; try again")

    async def progress(self, campaign_id: str) -> Progress:
        await self.campaign(campaign_id)
        return await self.store.progress(campaign_id, self.clock.now())

    async def _move(
        self, campaign_id: str, from_: tuple[str, ...], to: str, **changes: Any
    ) -> None:
        campaign = await self.campaign(campaign_id)
        if not await self.store.update_campaign(
            campaign_id,
            expect={"status": from_},
            status=to,
            updated_at=self.clock.now(),
            **changes,
        ):
            current = await self.campaign(campaign_id)
            raise Conflict(
                f"campaign {campaign_id} is {current.status}; it cannot become {to}"
                f" (only from {' or '.join(from_)})"
                if current.status != to or campaign.status == to
                else f"campaign {campaign_id} is already {to}"
            )

    async def kick(self, campaign_id: str) -> None:
        """Ask a worker to take the campaign now (the pump would, a moment later)."""
        try:
            await self._enqueue(campaign_id)
        except (QueueUnavailable, RedisError, OSError):
            log.warning(
                "could not enqueue campaign; a worker's pump will pick it up",
                extra={"event": "campaign.enqueue_failed", "campaign_id": campaign_id},
            )

    async def pump(self) -> None:
        """Launch scheduled campaigns that are due; give each running campaign no
        worker holds a turn (after a crash, or when held recipients' window opens)."""
        now = self.clock.now()
        for campaign in await self.store.list_campaigns(statuses=("scheduled", "running")):
            if campaign.status == "scheduled":
                if campaign.scheduled_at is not None and campaign.scheduled_at <= now:
                    try:
                        await self.launch(campaign.id)
                    except Conflict:
                        pass  # launched by another process meanwhile
                continue
            if not await self.dispatcher.redis.exists(self.dispatcher.lock_name(campaign.id)):
                await self.kick(campaign.id)
