"""What a customer may see of their own conversation, for channels that show it
to them live (the web-chat widget): their current conversation, its timeline
without anything internal, their own receipts ("delivered", "seen") and
whether anyone is there to answer.

It exists so such a channel needs neither the store nor the inbox service:
notes, internal events and failed sends never reach a customer because this
is the only door.
"""

from __future__ import annotations

from typing import Literal

from hub.inbox.model import Contact, Conversation, Identity, Message
from hub.inbox.service import InboxService, behind
from hub.inbox.store import Store

# Roles whose presence means "someone can answer a customer" (as the router).
ANSWERING_ROLES = ("admin", "agent")
# The newest messages of a conversation a widget's transcript is drawn from.
TRANSCRIPT_MESSAGES = 200


def customer_visible(message: Message) -> bool:
    """The customer's own messages and what was sent (or is being sent) to them;
    never notes, internal events, or sends that failed."""
    if message.direction == "inbound":
        return True
    return message.direction == "outbound" and message.status != "failed"


class CustomerView:
    def __init__(self, store: Store, inbox: InboxService) -> None:
        self.store = store
        self.inbox = inbox

    async def contact_for(self, identity: Identity) -> Contact | None:
        """The contact who owns this identity, if any."""
        owners = await self.store.contacts_by_identity([identity])
        contact_id = owners.get(identity)
        return await self.store.get_contact(contact_id) if contact_id else None

    async def contact(self, contact_id: str) -> Contact | None:
        return await self.store.get_contact(contact_id)

    async def message(self, message_id: str) -> Message | None:
        """One message, if the customer may see it."""
        message = await self.store.get_message(message_id)
        return message if message is not None and customer_visible(message) else None

    async def current_conversation(self, account_id: str, contact_id: str) -> Conversation | None:
        """The contact's conversation on this account with the newest activity,
        whatever its status (a resolved one is still their history)."""
        return await self.store.latest_conversation(contact_id, account_id, statuses=None)

    async def timeline(self, conversation_id: str) -> list[Message]:
        """The customer-visible messages among the conversation's newest
        TRANSCRIPT_MESSAGES, oldest first: what a widget shows when it opens (a
        customer of years does not download years at every page load)."""
        page = await self.store.timeline_page([conversation_id], limit=TRANSCRIPT_MESSAGES)
        return [m for m in page.items if customer_visible(m)]

    async def acknowledge(
        self,
        conversation_id: str,
        up_to: str,
        status: Literal["delivered", "read"],
    ) -> list[str]:
        """The customer's device showed (delivered) or the customer saw (read)
        every message sent to them up to and including `up_to`: move their
        delivery status forward. Returns the ids that moved; an `up_to` that is
        not in this conversation moves nothing."""
        last = await self.store.get_message(up_to)
        if last is None or last.conversation_id != conversation_id or not customer_visible(last):
            return []
        # A message still `queued` counts too: a live channel shows replies as
        # soon as they exist (its send may still be on the way), and what the
        # customer saw is the truth; the send's later "sent" cannot move the
        # status back. Only those still behind are read, not the timeline.
        waiting = await self.store.find_messages(
            conversation_id, directions=["outbound"], statuses=behind(status), until=last.created_at
        )
        moved: list[str] = []
        for message in waiting:
            if (message.created_at, message.id) > (last.created_at, last.id):
                continue  # created in the same millisecond, after it in the timeline
            if await self.inbox.record_delivery(message.id, status):
                moved.append(message.id)
        return moved

    async def agents_available(self) -> bool:
        """Whether anyone who can answer is online right now."""
        online = await self.store.list_agents(presence="online")
        return any(agent.role in ANSWERING_ROLES for agent in online)
