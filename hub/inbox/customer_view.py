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
from hub.inbox.service import InboxService
from hub.inbox.store import Store

# Roles whose presence means "someone can answer a customer" (as the router).
ANSWERING_ROLES = ("admin", "agent")


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
        """The customer-visible messages of the conversation, oldest first."""
        return [m for m in await self.store.list_messages(conversation_id) if customer_visible(m)]

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
        messages = await self.timeline(conversation_id)
        position = next((i for i, m in enumerate(messages) if m.id == up_to), None)
        if position is None:
            return []
        moved: list[str] = []
        for message in messages[: position + 1]:
            # A message still `queued` counts too: a live channel shows replies
            # as soon as they exist (its send may still be on the way), and
            # what the customer saw is the truth; the send's later "sent"
            # cannot move the status back.
            if message.direction != "outbound" or message.status in (status, "read"):
                continue
            if await self.inbox.record_delivery(message.id, status):
                moved.append(message.id)
        return moved

    async def agents_available(self) -> bool:
        """Whether anyone who can answer is online right now."""
        online = await self.store.list_agents(presence="online")
        return any(agent.role in ANSWERING_ROLES for agent in online)
