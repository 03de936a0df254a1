"""Who takes a phone call: the agents a ringing line should reach, best first.

The customer's own agent comes first — the assignee of their open
conversation on that line, then the contact's owner — when they are online
and have a phone; otherwise the online agents with a phone, in the same
rotation as conversations (least recently assigned first). Agents who are
away or offline are never rung.
"""

from __future__ import annotations

from hub.inbox.model import OPEN_STATUSES, Agent, Identity
from hub.inbox.store import Store
from hub.routing.round_robin import RoundRobinRouter

MAX_TARGETS = 5  # a Twilio <Dial> rings at most ten numbers at once; five is plenty


class CallTargets:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def call_targets(self, account_id: str, caller: Identity) -> list[Agent]:
        """Agents to ring for `caller` on `account_id`: their own agent if online,
        else every online agent with a phone (rotation order), at most five."""
        online = [a for a in await self.store.list_agents(presence="online") if a.phone]
        if not online:
            return []
        by_id = {a.id: a for a in online}
        known = await self.store.contacts_by_identity([caller])
        contact_id = known.get(caller)
        if contact_id is not None:
            conversation = await self.store.latest_conversation(
                contact_id, account_id, statuses=OPEN_STATUSES
            )
            if conversation is not None and conversation.assignee_id in by_id:
                return [by_id[conversation.assignee_id]]
            contact = await self.store.get_contact(contact_id)
            if contact is not None and contact.owner_id in by_id:
                return [by_id[contact.owner_id]]
        return RoundRobinRouter.rotation(online)[:MAX_TARGETS]
