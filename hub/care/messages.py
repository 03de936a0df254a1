"""Care messages: a template sent by the hub itself, exactly once.

A care message is first written down as a `CareTask` under a key that names
it and its period ("greeting:<contact>", "away:<conversation>:<next opening>",
"birthday:<contact>:2026"). The store lets one writer add a key, so two events
or two processes deciding the same message make one task. The task is then
*completed*: the message is recorded through `InboxService.reply` — the path
an agent's reply takes, shown as sent by the system — with an idempotency key
made from the task key, so completing a task twice (a retry after a crash, the
runner racing the event handler) records one message.

Every care message respects the contact's consent on the channel, and one
that does not answer the customer (a survey, birthday wishes, a follow-up)
waits for the contact's daytime.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hub.care.hours import contact_zone, next_daytime
from hub.care.templates import TemplateError, Templates, contact_context
from hub.clock import Clock
from hub.errors import InvalidRequest, NotFound, ReplyWindowClosed
from hub.inbox.model import CareTask, Contact, Conversation, to_ms
from hub.inbox.service import InboxService
from hub.inbox.store import ConversationFilter, Store

log = logging.getLogger(__name__)

IDEMPOTENCY_PREFIX = "care:"
# A task that failed for a passing reason (the store was busy) is tried again after this.
RETRY_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class CarePolicy:
    default_language: str
    default_timezone: str
    daytime: str
    company_name: str = ""


def conversation_context(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "subject": conversation.subject,
        "channel": conversation.channel,
        "account": conversation.account_id,
    }


class CareMessages:
    def __init__(
        self,
        store: Store,
        inbox: InboxService,
        clock: Clock,
        templates: Templates,
        policy: CarePolicy,
        consent_key: Callable[[str], str | None],
    ) -> None:
        self.store = store
        self.inbox = inbox
        self.clock = clock
        self.templates = templates
        self.policy = policy
        self.consent_key = consent_key

    async def decide(
        self,
        key: str,
        *,
        kind: str,
        contact: Contact,
        conversation: Conversation | None,
        template: str,
        answer: bool,
        due_at: datetime | None = None,
        variables: Mapping[str, Any] | None = None,
        resolution: datetime | None = None,
    ) -> CareTask | None:
        """Write the care message down once under `key` and, unless it is due later,
        complete it now. Returns the new task, or None if the key was taken.

        `resolution`: the message is about the conversation's resolve at that
        moment (a survey), and is not sent if by then it was reopened."""
        now = self.clock.now()
        payload: dict[str, Any] = {
            "template": template,
            "answer": answer,
            "variables": dict(variables or {}),
        }
        if resolution is not None:
            payload["resolution"] = to_ms(resolution)
        task = CareTask(
            key=key,
            kind=kind,
            contact_id=contact.id,
            conversation_id=conversation.id if conversation else None,
            due_at=due_at or now,
            payload=payload,
            created_at=now,
            updated_at=now,
        )
        if not await self.store.add_care_task(task):
            return None
        if task.due_at is not None and task.due_at <= now:
            await self.complete(task)
        return task

    async def complete(self, task: CareTask) -> str:
        """Send a pending task's message (or let it wait for daytime, or cancel it
        when it must not be sent). Safe to run twice. Returns what happened."""
        if task.state != "pending":
            return task.state
        contact = await self.store.get_contact(task.contact_id)
        if contact is None:
            return await self._cancel(task, "the contact no longer exists")
        conversation = await self._conversation(task)
        if conversation is None:
            return await self._cancel(task, "the contact has no conversation to write in")
        resolution = task.payload.get("resolution")
        if resolution is not None and (
            conversation.status != "resolved"
            or conversation.resolved_at is None
            or to_ms(conversation.resolved_at) != resolution
        ):
            return await self._cancel(task, "the conversation was reopened since it was resolved")
        key = self.consent_key(conversation.account_id)
        consent = contact.consent.get(key) if key else None
        if consent is not None and consent.status == "opted_out":
            return await self._cancel(task, f"the contact opted out of {key}")
        now = self.clock.now()
        if not task.payload.get("answer"):
            zone = contact_zone(contact.timezone, self.policy.default_timezone)
            when = next_daytime(now, zone, self.policy.daytime)
            if when > now:
                await self.store.update_care_task(
                    task.key, expect={"state": "pending"}, due_at=when, updated_at=now
                )
                return "waiting"
        try:
            rendered = self.templates.render(
                task.payload["template"],
                self._context(contact, conversation, task.payload.get("variables") or {}),
                language=contact.language,
                variants=(conversation.channel, key or ""),
            )
            await self.inbox.reply(
                conversation.id,
                None,
                rendered.text,
                idempotency_key=IDEMPOTENCY_PREFIX + task.key,
            )
        except (TemplateError, ReplyWindowClosed, InvalidRequest, NotFound) as exc:
            return await self._cancel(task, str(exc))
        if not await self.store.update_care_task(
            task.key, expect={"state": "pending"}, state="done", updated_at=self.clock.now()
        ):
            return "already done"  # a racer recorded the same message (one, by its key)
        log.info(
            "care message sent",
            extra={
                "event": "care.sent",
                "care_key": task.key,
                "kind": task.kind,
                "conversation_id": conversation.id,
            },
        )
        return "done"

    async def _conversation(self, task: CareTask) -> Conversation | None:
        """The task's conversation; for one decided about a contact (birthday,
        follow-up), their latest conversation, written into the task first so
        a second attempt writes in the same one."""
        if task.conversation_id is not None:
            return await self.store.get_conversation(task.conversation_id)
        view = ConversationFilter(contact_id=task.contact_id)
        page = await self.store.list_conversations(view, limit=1)
        if not page.items:
            return None
        conversation = page.items[0]
        if not await self.store.update_care_task(
            task.key, expect={"conversation_id": None}, conversation_id=conversation.id
        ):
            fresh = await self.store.get_care_task(task.key)
            if fresh is None or fresh.conversation_id is None:
                return None
            return await self.store.get_conversation(fresh.conversation_id)
        return conversation

    def _context(
        self, contact: Contact, conversation: Conversation, variables: Mapping[str, Any]
    ) -> dict[str, Any]:
        zone = contact_zone(contact.timezone, self.policy.default_timezone)
        return {
            **variables,
            "contact": contact_context(contact, default_language=self.policy.default_language),
            "company": {"name": self.policy.company_name},
            "now": self.clock.now().astimezone(zone).date(),
            "conversation": conversation_context(conversation),
        }

    async def _cancel(self, task: CareTask, reason: str) -> str:
        await self.store.update_care_task(
            task.key,
            expect={"state": "pending"},
            state="cancelled",
            payload={**task.payload, "reason": reason},
            updated_at=self.clock.now(),
        )
        log.info(
            "care message not sent",
            extra={"event": "care.cancelled", "care_key": task.key, "reason": reason},
        )
        return "cancelled"

    async def run_due(self, *, limit: int = 100) -> int:
        """Complete every pending task that is due (follow-ups, messages waiting
        for daytime, and any left pending by a crash). Returns how many were sent."""
        sent = 0
        while True:
            now = self.clock.now()
            due = await self.store.due_care_tasks(now, limit)
            for task in due:
                try:
                    sent += await self.complete(task) == "done"
                except Exception:
                    log.exception(
                        "care task failed; trying again later",
                        extra={"event": "care.failed", "care_key": task.key},
                    )
                    await self.store.update_care_task(
                        task.key, expect={"state": "pending"}, due_at=now + RETRY_AFTER
                    )
            if len(due) < limit:
                return sent
