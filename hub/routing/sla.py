"""First-response SLA: a deadline per priority, and an escalation when it
passes with no agent reply.

When a conversation is created, its `first_response_due_at` is set from
`[routing] first_response_minutes` and an arq job is deferred to that moment.
An agent's reply deletes the job (and the reply itself records
`first_response_at`, which the job checks anyway, so a job that escaped
deletion does nothing). A job that finds the deadline passed unanswered
escalates, in the configured order:

- `reassign`: take it from its agent (who is not answering) and route it to
  someone else available; it waits in the queue if nobody is;
- `raise_priority`: one step up (low → normal → high → urgent);
- `notify_lead`: `conversation.sla_breached` names the team's lead
  (`[routing.teams.<id>] lead`), which the workspace shows them.

`conversation.sla_breached` is published in every case. The label
`sla-breached`, set by compare-and-set, makes the escalation happen once even
if the job runs twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from arq.connections import ArqRedis
from arq.constants import job_key_prefix
from redis.exceptions import RedisError

from hub.clock import Clock
from hub.errors import QueueUnavailable
from hub.events import Event, EventBus
from hub.inbox.model import Conversation, Priority, to_ms
from hub.inbox.service import conversation_event
from hub.inbox.store import Store
from hub.routing.router import Router
from hub.settings import RoutingSettings

log = logging.getLogger(__name__)

CHECK_SLA = "check_sla"
BREACHED_LABEL = "sla-breached"
RAISED: dict[Priority, Priority] = {
    "low": "normal",
    "normal": "high",
    "high": "urgent",
    "urgent": "urgent",
}


def job_id(conversation_id: str, due: datetime) -> str:
    return f"{CHECK_SLA}:{conversation_id}:{to_ms(due)}"


class SlaTimers:
    def __init__(
        self,
        store: Store,
        router: Router,
        bus: EventBus,
        clock: Clock,
        settings: RoutingSettings,
        redis: ArqRedis,
        queue_name: str,
    ) -> None:
        self.store = store
        self.router = router
        self.bus = bus
        self.clock = clock
        self.settings = settings
        self.redis = redis
        self.queue_name = queue_name

    def attach(self, bus: EventBus) -> None:
        bus.subscribe("conversation.created", self._on_created)
        bus.subscribe("message.created", self._on_message)

    async def _on_created(self, event: Event) -> None:
        await self.start(event.data["conversation"]["id"])

    async def _on_message(self, event: Event) -> None:
        message = event.data["message"]
        if message["direction"] == "outbound" and message["sender"]["kind"] == "agent":
            await self.cancel(message["conversation_id"])

    async def start(self, conversation_id: str) -> datetime | None:
        """Set the first-response deadline from the conversation's priority and
        defer its check; None when that priority has no SLA. Safe to repeat: the
        deadline is set once, and the job id is derived from it."""
        conversation = await self.store.get_conversation(conversation_id)
        if conversation is None or conversation.first_response_at is not None:
            return None
        minutes = self.settings.first_response_minutes.get(conversation.priority)
        due = conversation.first_response_due_at
        if due is None:
            if minutes is None:
                return None
            due = conversation.created_at + timedelta(minutes=minutes)
            if not await self.store.update_conversation(
                conversation_id, expect={"first_response_due_at": None}, first_response_due_at=due
            ):
                return None  # set meanwhile by another process, which deferred the check
        try:
            await self.redis.enqueue_job(
                CHECK_SLA,
                conversation_id,
                _job_id=job_id(conversation_id, due),
                _queue_name=self.queue_name,
                _defer_by=max(due - self.clock.now(), timedelta(0)),
            )
        except (RedisError, OSError) as exc:
            log.warning(
                "cannot defer the SLA check",
                extra={
                    "event": "sla.enqueue_failed",
                    "conversation_id": conversation_id,
                    "error": str(exc),
                },
            )
        return due

    async def cancel(self, conversation_id: str) -> bool:
        """An agent answered: drop the deferred check. Returns whether one was queued."""
        conversation = await self.store.get_conversation(conversation_id)
        if conversation is None or conversation.first_response_due_at is None:
            return False
        key = job_id(conversation_id, conversation.first_response_due_at)
        try:
            removed = await self.redis.zrem(self.queue_name, key)
            await self.redis.delete(job_key_prefix + key)
        except (RedisError, OSError):
            return False  # the check finds the reply and does nothing
        return bool(removed)

    async def check(self, conversation_id: str) -> str:
        """The deferred job: escalate if the deadline passed with no agent reply.
        Returns what it found ("answered", "not_due", "escalated", ...)."""
        conversation = await self.store.get_conversation(conversation_id)
        if conversation is None:
            return "gone"
        if conversation.first_response_at is not None:
            return "answered"
        if conversation.status == "resolved":
            return "resolved"
        due = conversation.first_response_due_at
        if due is None or self.clock.now() < due:
            return "not_due"
        if BREACHED_LABEL in conversation.labels:
            return "escalated_before"
        changes: dict[str, object] = {"labels": [*conversation.labels, BREACHED_LABEL]}
        if "raise_priority" in self.settings.escalation:
            changes["priority"] = RAISED[conversation.priority]
        if not await self.store.update_conversation(
            conversation.id,
            expect={"labels": conversation.labels, "first_response_at": None},
            updated_at=self.clock.now(),
            **changes,
        ):
            return "changed"  # answered or escalated meanwhile
        escalated = conversation.model_copy(update=changes)
        reassigned_to = None
        previous = conversation.assignee_id
        if "reassign" in self.settings.escalation and previous is not None:
            if await self.store.update_conversation(
                conversation.id, expect={"assignee_id": previous}, assignee_id=None
            ):
                reassigned_to = await self.router.route(conversation.id, exclude=[previous])
        lead_id = (
            await self._lead(conversation) if "notify_lead" in self.settings.escalation else None
        )
        log.info(
            "first-response SLA breached",
            extra={
                "event": "sla.breached",
                "conversation_id": conversation.id,
                "reassigned_to": reassigned_to,
                "lead_id": lead_id,
            },
        )
        try:
            await self.bus.publish(
                conversation_event(
                    "sla_breached",
                    escalated.model_copy(update={"assignee_id": reassigned_to or previous}),
                    due=due.isoformat(),
                    previous_assignee_id=previous,
                    reassigned_to=reassigned_to,
                    lead_id=lead_id,
                )
            )
        except QueueUnavailable:
            pass
        return "escalated"

    async def _lead(self, conversation: Conversation) -> str | None:
        rule = self.router.policy.rule(conversation.account_id, conversation.team_id)
        if rule.lead is None:
            return None
        lead = await self.store.agent_by_email(rule.lead)
        return lead.id if lead is not None and lead.active else None
