"""The router: gives each new conversation to an agent who can take it, and
keeps the unassigned ones waiting, in order, until someone can.

Decisions come from `hub.routing.policy` (strategy, skills, language, sticky
owner, team and overflow team, business hours); taking a conversation is the
store's atomic compare-and-set, which also refuses an agent at capacity. So
several hub processes and workers may route at once: the worst a race does is
make one of them try the next candidate.

The waiting queue is the store itself (unassigned, not resolved, oldest
first): nothing to lose when a process dies. It is drained when something may
have made room — an agent comes online, a conversation is resolved or handed
back, an agent is added — and periodically by the worker (business hours
opening, events missed while Redis was away).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from hub.clock import Clock
from hub.errors import InvalidRequest, NotFound, QueueUnavailable
from hub.events import Event, EventBus
from hub.inbox.model import OPEN_STATUSES, Agent, Conversation
from hub.inbox.service import InboxService, conversation_event
from hub.inbox.store import ConversationFilter, Store
from hub.routing.language import detect_language
from hub.routing.policy import Policy, Request
from hub.settings import RoutingSettings

log = logging.getLogger(__name__)

ONE_MS = timedelta(milliseconds=1)
STICKY_LOOKBACK = 20  # the contact's recent conversations searched for their last agent
FIRST_WORDS = 20  # inbound messages read for the customer's language (photos may come first)


class Router:
    def __init__(
        self, store: Store, inbox: InboxService, clock: Clock, settings: RoutingSettings
    ) -> None:
        self.store = store
        self.inbox = inbox
        self.clock = clock
        self.settings = settings
        self.policy = Policy(settings)
        self._draining = False
        self._again = False

    def attach(self, bus: EventBus) -> None:
        bus.subscribe("conversation.created", self._on_new)
        # A missed call asks for a call-back: someone must own it, even if nobody
        # was online when the conversation began.
        bus.subscribe("conversation.callback_requested", self._on_new)
        bus.subscribe("conversation.reopened", self._on_new)
        bus.subscribe("conversation.assigned", self._on_assigned)
        bus.subscribe("conversation.resolved", self._on_room)
        bus.subscribe("agent.presence", self._on_presence)
        bus.subscribe("agent.added", self._on_room)
        # The workspace's admin API (`PATCH /api/v1/agents/{id}`).
        bus.subscribe("agent.updated", self._on_agent_updated)

    async def _on_new(self, event: Event) -> None:
        if event.data["conversation"].get("assignee_id") is None:
            await self.drain()

    async def _on_assigned(self, event: Event) -> None:
        # Handed back (unassigned): it joins the queue; its agent has room.
        if event.data["conversation"].get("assignee_id") is None:
            await self.drain()
        elif event.data.get("previous_assignee_id"):
            await self.drain()

    async def _on_room(self, event: Event) -> None:
        await self.drain()

    async def _on_agent_updated(self, event: Event) -> None:
        agent = event.data.get("agent") or {}
        if "active" in event.data.get("changed", ()) and agent.get("active") is False:
            await self.deactivate_agent(agent["id"])  # their conversations go to others
        else:
            await self.drain()  # more capacity, another team, back from deactivation...

    async def _on_presence(self, event: Event) -> None:
        if event.data.get("presence") == "online":
            await self.drain()

    # -- the seam for automation rules ("assign team or agent") ------------
    async def assign_to_agent(self, conversation_id: str, agent_id: str) -> bool:
        """Give an unassigned conversation to this agent if they are active and
        below capacity (presence is not asked: a rule names the person on
        purpose). False when it is assigned already or they are full; the
        conversation then stays where it is (the queue, if unassigned)."""
        conversation = await self._conversation(conversation_id)
        agent = await self.store.get_agent(agent_id)
        if agent is None or not agent.active:
            raise InvalidRequest(f"agent {agent_id} does not exist or is deactivated")
        return await self.inbox.assign_within_capacity(conversation, agent)

    async def assign_to_team(self, conversation_id: str, team_id: str) -> str | None:
        """Move the conversation into `team_id`'s queue and route it there
        (that team's rule, members and hours). Returns the agent who got it, or
        None when it waits. A conversation already assigned only changes team."""
        conversation = await self._conversation(conversation_id)
        if conversation.team_id != team_id:
            await self.store.update_conversation(
                conversation.id, team_id=team_id, updated_at=self.clock.now()
            )
        return await self.route(conversation_id)

    # -- routing -----------------------------------------------------------
    async def route(self, conversation_id: str, *, exclude: Iterable[str] = ()) -> str | None:
        """Assign one conversation now if anyone can take it; returns the assignee
        (whoever holds it already, if it was taken), or None when it waits."""
        conversation = await self._conversation(conversation_id)
        if conversation.assignee_id is not None or conversation.status == "resolved":
            return conversation.assignee_id
        agents = await self.store.list_agents(presence="online")
        request = await self._request(conversation, frozenset(exclude))
        return await self._claim(conversation, request, agents)

    async def drain(self) -> int:
        """Assign waiting conversations, oldest first, while anyone has room.
        Returns how many were assigned. Calls made while a drain runs in this
        process make it go round once more instead of running beside it."""
        if self._draining:
            self._again = True
            return 0
        self._draining = True
        total = 0
        try:
            while True:
                self._again = False
                total += await self._drain_once()
                if not self._again:
                    return total
        finally:
            self._draining = False

    async def _drain_once(self) -> int:
        agents = await self.store.list_agents(presence="online")
        if not _room(agents):
            return 0
        assigned = 0
        for conversation in await self.store.waiting_conversations(self.settings.queue_batch):
            if not _room(agents):
                break
            request = await self._request(conversation, frozenset())
            if await self._claim(conversation, request, agents) is not None:
                assigned += 1
        return assigned

    async def _claim(
        self, conversation: Conversation, request: Request, agents: list[Agent]
    ) -> str | None:
        """Try the candidates in order; `agents` is updated in place with what
        the attempts learn (a new load, a turn taken)."""
        now = self.clock.now()
        for candidate in self.policy.candidates(agents, request, now):
            turn = _next_turn(agents, now)
            if await self.inbox.assign_within_capacity(conversation, candidate, turn):
                _replace(
                    agents,
                    candidate.model_copy(
                        update={"open_count": candidate.open_count + 1, "last_assigned_at": turn}
                    ),
                )
                log.info(
                    "conversation assigned",
                    extra={
                        "event": "routing.assigned",
                        "conversation_id": conversation.id,
                        "agent_id": candidate.id,
                    },
                )
                return candidate.id
            fresh = await self.store.get_conversation(conversation.id)
            if fresh is None or fresh.assignee_id is not None or fresh.status == "resolved":
                return None if fresh is None else fresh.assignee_id  # someone else took it
            # The agent filled up (another process assigned them meanwhile).
            latest = await self.store.get_agent(candidate.id)
            if latest is not None:
                _replace(agents, latest)
        return None

    async def _request(self, conversation: Conversation, excluded: frozenset[str]) -> Request:
        rule = self.policy.rule(conversation.account_id, conversation.team_id)
        language = None
        contact = None
        if rule.language != "ignore":
            # The customer's first words (the first messages may be only a photo).
            for message in await self.store.find_messages(
                conversation.id, directions=["inbound"], limit=FIRST_WORDS
            ):
                if message.text:
                    language = detect_language(message.text)
                    break
            if language is None:
                contact = await self.store.get_contact(conversation.contact_id)
                language = contact.language if contact else None
        preferred: list[str] = []
        if rule.sticky_days:
            contact = contact or await self.store.get_contact(conversation.contact_id)
            if contact is not None and contact.owner_id:
                preferred.append(contact.owner_id)
            since = self.clock.now() - timedelta(days=rule.sticky_days)
            page = await self.store.list_conversations(
                ConversationFilter(contact_id=conversation.contact_id), limit=STICKY_LOOKBACK
            )
            for earlier in page.items:
                if earlier.last_activity_at < since:
                    break
                if earlier.id != conversation.id and earlier.assignee_id:
                    preferred.append(earlier.assignee_id)
                    break
        return Request(conversation, language, tuple(preferred), excluded)

    async def _conversation(self, conversation_id: str) -> Conversation:
        conversation = await self.store.get_conversation(conversation_id)
        if conversation is None:
            raise NotFound(f"conversation {conversation_id} does not exist")
        return conversation

    # -- agents leaving ------------------------------------------------------
    async def deactivate_agent(self, agent_id: str) -> list[str]:
        """Deactivate the agent and hand their open conversations back to the
        queue, routed at once to whoever can take them. The conversations, their
        history and the contacts stay with the company; only the assignee
        changes. Returns the ids of the conversations handed back. Safe to run
        twice (a second run finds nothing left to hand back)."""
        agent = await self.store.get_agent(agent_id)
        if agent is None:
            raise NotFound(f"agent {agent_id} does not exist")
        await self.store.update_agent(agent_id, active=False, presence="offline")
        handed_back: list[str] = []
        events: list[Event] = [Event("agent.deactivated", {"agent_id": agent_id})]
        cursor = None
        while True:
            page = await self.store.list_conversations(
                ConversationFilter(statuses=OPEN_STATUSES, assignee_id=agent_id),
                limit=200,
                cursor=cursor,
            )
            for conversation in page.items:
                now = self.clock.now()
                if await self.store.update_conversation(
                    conversation.id,
                    expect={"assignee_id": agent_id},
                    assignee_id=None,
                    updated_at=now,
                ):
                    handed_back.append(conversation.id)
                    unassigned = conversation.model_copy(
                        update={"assignee_id": None, "updated_at": now}
                    )
                    events.append(
                        conversation_event("assigned", unassigned, previous_assignee_id=agent_id)
                    )
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        await self.store.recount_open_conversations(agent_id)
        log.info(
            "agent deactivated",
            extra={
                "event": "routing.agent_deactivated",
                "agent_id": agent_id,
                "conversations": len(handed_back),
            },
        )
        try:
            # Workspaces see each conversation leave the agent (and the router,
            # listening, routes the queue).
            await self.inbox.bus.publish(*events)
        except QueueUnavailable:
            pass  # stored; the workers' queue pass routes them
        await self.drain()
        return handed_back


def _room(agents: list[Agent]) -> bool:
    return any(a.open_count < a.capacity for a in agents)


def _next_turn(agents: list[Agent], now: datetime) -> datetime:
    """The moment recorded as an agent's turn: now, or just after the latest turn
    anyone took, so a burst within one millisecond still goes round in order."""
    latest = max((a.last_assigned_at for a in agents if a.last_assigned_at), default=None)
    if latest is not None and latest >= now:
        return latest + ONE_MS
    return now


def _replace(agents: list[Agent], agent: Agent) -> None:
    for index, existing in enumerate(agents):
        if existing.id == agent.id:
            agents[index] = agent
            return
