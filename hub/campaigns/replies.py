"""What comes back from a campaign: replies and bounces.

A customer who answers a promotion writes into the shared inbox like anyone
else, and the conversation is an ordinary one. What this adds is the link back
to the campaign: the recipient row records the first reply (`replied_at` and
the conversation), which the campaign's progress and the reports' funnel
count, and the conversation gets the label `campaign-reply` so the agent sees
where it came from.

Which send a reply answers: an e-mail naming a campaign message in In-Reply-To
or References is exact; otherwise the contact's latest campaign message from
the same account within `reply_window_hours`.

A bounce (an RFC 3464 report) naming a campaign message marks its recipient
failed and flags the address as bouncing, as for an agent's e-mail
(`hub.inbox.bounces`); later campaigns skip bouncing addresses.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from hub.campaigns.model import parse_recipient_key
from hub.campaigns.store import CampaignStore
from hub.channels.email.compose import hub_message_id_of
from hub.events import Detached, Event, EventBus
from hub.inbox.bounces import flag_bouncing
from hub.inbox.inbound import DeliveryFailure
from hub.inbox.model import Conversation, Message
from hub.inbox.service import InboxService

log = logging.getLogger(__name__)

LABEL = "campaign-reply"


def campaign_send(message_id: str, key: bytes) -> tuple[str, str] | None:
    """(campaign id, contact id) named by a campaign e-mail's Message-ID, if
    hub wrote it (`message_id_key` is the tag's `key`)."""
    recipient_key = hub_message_id_of(message_id, key)
    return None if recipient_key is None else parse_recipient_key(recipient_key)


class CampaignReplies:
    # A campaign that starts sending is seen this much later at most (a reply
    # comes seconds after the message at the very least).
    RECHECK_SECONDS = 2.0

    def __init__(
        self, store: CampaignStore, inbox: InboxService, window: timedelta, message_id_key: bytes
    ) -> None:
        self.store = store
        self.message_id_key = message_id_key  # what tags hub's Message-IDs
        self.inbox = inbox
        self.window = window
        self._detached = Detached(
            "campaign-reply",
            failed=("could not link a message to a campaign", "campaign.reply_failed"),
        )
        self._recently: tuple[float, bool] | None = None  # (loop time asked, answer)

    def attach(self, bus: EventBus) -> None:
        """Look at each inbound message in the process that stored it, in a task
        of its own: the webhook that brought it is answered without waiting."""
        self._detached.subscribe(bus, "message.created", self._on_message, wanted=self._may_reply)

    def _may_reply(self, event: Event) -> bool:
        """Whether a new message may be a campaign reply, from what is at hand:
        not when it is no customer's, or when it names no earlier message and no
        campaign has sent lately (the answer `_campaigns_recently` keeps)."""
        data = event.data["message"]
        if data["direction"] != "inbound" or data["sender"]["kind"] != "contact":
            return False
        thread = data.get("thread") or {}
        if thread.get("in_reply_to") or thread.get("references"):
            return True
        return self._known_recently() is not False

    async def settled(self) -> None:
        """Wait until every message seen so far has been looked at (tests, shutdown)."""
        await self._detached.settled()

    async def _on_message(self, event: Event) -> None:
        # Only a customer's messages get here (`_may_reply`).
        message = Message.model_validate(event.data["message"])
        await self.on_reply(message, contact_id=event.data.get("contact_id"))

    async def on_reply(self, message: Message, *, contact_id: str | None = None) -> str | None:
        """Link a customer's message to the campaign send it answers, once.
        Returns the campaign's id when this message is the recipient's first reply."""
        since = message.created_at - self.window
        referenced = message.thread.in_reply_to or message.thread.references
        if not referenced:
            # The common case, every inbound message: cheap looks first.
            if not await self._campaigns_recently(since):
                return None
            if contact_id is not None and not await self.store.recent_sends(contact_id, since):
                return None
        conversation = await self.inbox.store.get_conversation(message.conversation_id)
        if conversation is None:
            return None
        send = await self._answered(message, conversation)
        if send is None:
            return None
        campaign_id, contact_id = send
        if not await self.store.mark_replied(
            campaign_id, contact_id, message.created_at, conversation.id
        ):
            return None  # not the first reply to it
        if LABEL not in conversation.labels:
            await self.inbox.update_details(conversation.id, labels=[*conversation.labels, LABEL])
        log.info(
            "a campaign recipient replied",
            extra={
                "event": "campaign.replied",
                "campaign_id": campaign_id,
                "conversation_id": conversation.id,
            },
        )
        return campaign_id

    async def _campaigns_recently(self, since: datetime) -> bool:
        """Whether any campaign may have sent since `since`, asked at most every
        few seconds: most messages arrive when no campaign is near, and then
        cost nothing here."""
        known = self._known_recently()
        if known is None:
            known = await self.store.any_sent_since(since)
            self._recently = (asyncio.get_running_loop().time(), known)
        return known

    def _known_recently(self) -> bool | None:
        """The last answer of `_campaigns_recently`, or None once it is stale."""
        if self._recently is None:
            return None
        asked, answer = self._recently
        if asyncio.get_running_loop().time() - asked > self.RECHECK_SECONDS:
            return None
        return answer

    async def _answered(
        self, message: Message, conversation: Conversation
    ) -> tuple[str, str] | None:
        for key in (message.thread.in_reply_to, *message.thread.references):
            named = campaign_send(key, self.message_id_key) if key else None
            if named is not None and named[1] == conversation.contact_id:
                if await self.store.get_recipient(*named) is not None:
                    return named
        since = message.created_at - self.window
        for recipient in await self.store.recent_sends(conversation.contact_id, since):
            campaign = await self.store.get_campaign(recipient.campaign_id)
            if campaign is not None and campaign.account_id == conversation.account_id:
                return recipient.campaign_id, recipient.contact_id
        return None

    async def on_bounce(self, failure: DeliveryFailure) -> bool:
        """Apply a bounce that names a campaign message; False if it names none."""
        for key in failure.message_keys:
            named = campaign_send(key, self.message_id_key)
            if named is None:
                continue
            recipient = await self.store.get_recipient(*named)
            campaign = await self.store.get_campaign(named[0])
            if recipient is None or campaign is None or campaign.account_id != failure.account_id:
                continue
            if failure.permanent:
                detail = failure.diagnostic or failure.status or "the recipient's server refused it"
                await self.store.record_delivery(*named, "failed", f"bounced: {detail}"[:500])
                await flag_bouncing(
                    self.inbox,
                    recipient.contact_id,
                    (failure.address or recipient.address),
                    failure,
                    source={"campaign_id": campaign.id},
                )
            log.info(
                "campaign e-mail bounced",
                extra={
                    "event": "campaign.bounced",
                    "campaign_id": campaign.id,
                    "permanent": failure.permanent,
                    "status": failure.status,
                },
            )
            return True
        return False
