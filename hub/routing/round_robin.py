"""First router: round-robin among agents who are online.

"Round-robin" is kept in the store, not in memory: the next agent is the
online one who was assigned least recently, so several hub processes share
one rotation and a restart does not reset it. Assignment is a
compare-and-set on "still unassigned", so two routers racing for one
conversation cannot both win.
"""

from __future__ import annotations

import logging
from datetime import datetime

from hub.clock import Clock
from hub.events import Event, EventBus
from hub.inbox.model import EPOCH, Agent
from hub.inbox.service import InboxService
from hub.inbox.store import Store

log = logging.getLogger(__name__)

ROUTABLE_ROLES = ("admin", "agent")


class RoundRobinRouter:
    def __init__(self, store: Store, inbox: InboxService, clock: Clock) -> None:
        self.store = store
        self.inbox = inbox
        self.clock = clock

    def attach(self, bus: EventBus) -> None:
        bus.subscribe("conversation.created", self.on_conversation_created)
        # A missed call asks for a call-back: someone must own it, even if nobody
        # was online when the conversation began.
        bus.subscribe("conversation.callback_requested", self.on_conversation_created)

    async def on_conversation_created(self, event: Event) -> None:
        conversation = event.data["conversation"]
        if conversation.get("assignee_id") is None:
            await self.assign(conversation["id"])

    async def assign(self, conversation_id: str) -> str | None:
        """Assign to the next online agent; returns who got it, or None if nobody
        is available (the conversation waits unassigned) or it was taken already."""
        candidates = self.rotation(await self.store.list_agents(presence="online"))
        if not candidates:
            return None
        agent = candidates[0]
        if not await self.inbox.assign(conversation_id, agent.id, only_if_unassigned=True):
            return None  # someone else assigned it first
        await self.store.update_agent(agent.id, last_assigned_at=self.clock.now())
        log.info(
            "conversation assigned",
            extra={
                "event": "routing.assigned",
                "conversation_id": conversation_id,
                "agent_id": agent.id,
            },
        )
        return agent.id

    @staticmethod
    def rotation(agents: list[Agent]) -> list[Agent]:
        def turn(agent: Agent) -> tuple[datetime, str]:
            return (agent.last_assigned_at or EPOCH, agent.id)

        return sorted((a for a in agents if a.role in ROUTABLE_ROLES), key=turn)
