"""The rule engine: listens to the inbox's events, checks each rule's conditions
and carries out its actions.

It runs as a *local* bus subscriber, in the process where the event happened,
so a rule acts once per event, not once per hub process. Care messages decided
here are written down before they are sent (`hub.care.messages`), which is what
makes them exactly-once; the other actions are idempotent by nature (a label
added twice is one label) or go through a job with a stable id (webhooks).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from hub.care.hours import BusinessHours, contact_zone
from hub.care.messages import IDEMPOTENCY_PREFIX, CareMessages
from hub.care.rules import (
    AddLabel,
    Assign,
    Conditions,
    FollowUp,
    Reply,
    Resolve,
    Rule,
    SetPriority,
    Snooze,
    Survey,
    Webhook,
)
from hub.care.schedule import STATE_ACCOUNT, latest_occurrence
from hub.care.survey import SurveyLinks, score_in
from hub.care.templates import language_of
from hub.clock import Clock
from hub.events import Detached, Event, EventBus
from hub.inbox.loops import may_auto_reply
from hub.inbox.model import Contact, Conversation, Message, new_id, to_ms
from hub.inbox.service import InboxService
from hub.inbox.store import ConversationFilter, Store
from hub.routing.hours import parse_range

log = logging.getLogger(__name__)

SURVEY_KEY = IDEMPOTENCY_PREFIX + "survey:"
# Messages read back from the newest for the last survey when a conversation is
# resolved again (more than this many scores in a row is not "only the answer").
SURVEY_LOOKBACK = 50


class CareJobs(Protocol):
    async def enqueue_care_webhook(
        self, rule: str, index: int, body: str, delivery_id: str
    ) -> bool:
        """Queue a signed POST of `body` for the rule's webhook action; one job per id."""

    async def enqueue_wake(self, conversation_id: str, until: datetime) -> bool:
        """Wake a snoozed conversation at `until`."""


@dataclass(frozen=True)
class Situation:
    """What a rule looks at: the event and the records it is about, read fresh."""

    event: str
    at: datetime
    contact: Contact
    conversation: Conversation | None = None
    message: Message | None = None
    tag: str | None = None
    first_message: bool = False
    event_id: str = ""


class CareRouter(Protocol):
    """What the rules' "assign" action needs of the router (`hub.routing.router`)."""

    async def assign_to_team(self, conversation_id: str, team_id: str) -> str | None: ...

    async def assign_to_agent(self, conversation_id: str, agent_id: str) -> bool: ...


class CareEngine:
    def __init__(
        self,
        rules: Sequence[Rule],
        *,
        store: Store,
        inbox: InboxService,
        clock: Clock,
        messages: CareMessages,
        hours: BusinessHours,
        survey: SurveyLinks,
        public_url: str,
        webhooks: CareJobs,
        default_language: str,
        birthday_hour: int,
        survey_lifetime: timedelta,
        router: CareRouter,
    ) -> None:
        self.rules = [rule for rule in rules if rule.enabled]
        self.router = router
        self.store = store
        self.inbox = inbox
        self.clock = clock
        self.messages = messages
        self.hours = hours
        self.survey = survey
        self.public_url = public_url
        self.webhooks = webhooks
        self.default_language = default_language
        self.birthday_hour = birthday_hour
        self.survey_lifetime = survey_lifetime
        kinds = {action.type for rule in self.rules for action in rule.actions}
        # Work done on every inbound message only when some rule needs it.
        self._follow_ups = "follow_up" in kinds
        self._surveys = "survey" in kinds
        self._detached = Detached(
            "care", failed=("care rules failed for an event", "care.event_failed")
        )

    def rule(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)

    def attach(self, bus: EventBus) -> None:
        """Listen (locally) to the events the rules need. Each event's rules run in
        a task of their own, started once the event's publication is done: the
        inbound message reaches agents' browsers and other processes before the
        greeting it causes, and the webhook that brought it is answered without
        waiting for care. `settled()` waits for those tasks."""
        handlers: dict[str, Callable[[Event], Awaitable[None]]] = {
            "message.created": self.on_message,
            "conversation.created": self.on_conversation,
            "conversation.resolved": self.on_conversation,
            "contact.created": self.on_contact,
            "contact.tagged": self.on_contact,
        }
        events = {rule.event for rule in self.rules}
        for event_type, handler in handlers.items():
            replies_matter = self._follow_ups or self._surveys  # cancelled / answered by them
            if event_type in events or (event_type == "message.created" and replies_matter):
                self._detached.subscribe(bus, event_type, handler)

    async def settled(self) -> None:
        """Wait until the rules of every event seen so far have run (tests, shutdown)."""
        await self._detached.settled()

    # -- events ----------------------------------------------------------
    async def on_message(self, event: Event) -> None:
        message = Message.model_validate(event.data["message"])
        if message.direction not in ("inbound", "outbound") or message.sender.kind == "system":
            return  # notes, call events and the hub's own messages start nothing
        conversation = await self.store.get_conversation(message.conversation_id)
        if conversation is None:
            return
        contact = await self.store.get_contact(conversation.contact_id)
        if contact is None:
            return
        if message.direction == "inbound" and self._follow_ups:
            # The contact wrote first: pending follow-ups have had their answer.
            cancelled = await self.store.cancel_care_tasks(
                contact.id, "follow_up", message.created_at
            )
            if cancelled:
                log.info(
                    "follow-ups cancelled: the contact wrote",
                    extra={"event": "care.follow_up_cancelled", "contact_id": contact.id},
                )
        if message.direction == "inbound" and self._surveys:
            if await self._survey_answer(message, conversation):
                return
        await self.run(
            Situation(
                event.type,
                self.clock.now(),
                contact,
                conversation,
                message,
                first_message=bool(event.data.get("first_from_contact")),
                event_id=event.id,
            )
        )

    async def on_conversation(self, event: Event) -> None:
        conversation = await self.store.get_conversation(event.data["conversation"]["id"])
        if conversation is None:
            return
        contact = await self.store.get_contact(conversation.contact_id)
        if contact is not None:
            await self.run(
                Situation(event.type, self.clock.now(), contact, conversation, event_id=event.id)
            )

    async def on_contact(self, event: Event) -> None:
        contact = await self.store.get_contact(event.data["contact"]["id"])
        if contact is not None:
            situation = Situation(
                event.type, self.clock.now(), contact, tag=event.data.get("tag"), event_id=event.id
            )
            await self.run(situation)

    async def run(self, situation: Situation) -> None:
        """Every enabled rule for the event, in order; one failing rule is logged
        and does not stop the others."""
        for rule in self.rules:
            if rule.event == situation.event and self.matches(rule.when, situation):
                await self._apply(rule, situation)

    async def _apply(self, rule: Rule, situation: Situation) -> None:
        for index, action in enumerate(rule.actions):
            try:
                await self.act(rule, index, action, situation)
            except Exception:
                log.exception(
                    "care rule action failed",
                    extra={"event": "care.action_failed", "rule": rule.name, "action": index},
                )

    # -- conditions ------------------------------------------------------
    def matches(self, when: Conditions, s: Situation) -> bool:
        conversation, message, contact = s.conversation, s.message, s.contact
        if s.event == "message.created" and message is not None:
            inbound = message.direction == "inbound"
            if inbound != (True if when.inbound is None else when.inbound):
                return False
        if when.channel is not None and (
            conversation is None or conversation.channel not in when.channel
        ):
            return False
        if when.account is not None and (
            conversation is None or conversation.account_id not in when.account
        ):
            return False
        text = message.text if message is not None else ""
        if when.text_contains is not None:
            folded = text.casefold()
            if not any(word.casefold() in folded for word in when.text_contains):
                return False
        if when.text_regex is not None and not re.search(when.text_regex, text):
            return False
        if when.contact_tags is not None and not set(when.contact_tags) & set(contact.tags):
            return False
        if when.contact_attributes is not None:
            for name, wanted in when.contact_attributes.items():
                if contact.attributes.get(name) != wanted:
                    return False
        if when.language is not None:
            language = language_of(contact.language) or self.default_language
            if language not in when.language:
                return False
        if when.business_hours is not None:
            account = conversation.account_id if conversation is not None else None
            open_now = self.hours.is_open(account, s.at)
            if open_now != (when.business_hours == "open"):
                return False
        if when.first_message is not None and when.first_message != s.first_message:
            return False
        if conversation is not None and not _conversation_matches(when, conversation, s.at):
            return False
        return when.tag is None or s.tag in when.tag

    # -- actions ---------------------------------------------------------
    async def act(self, rule: Rule, index: int, action: Any, s: Situation) -> None:
        conversation = s.conversation
        if isinstance(action, Webhook):
            delivery_id = f"{s.event_id or new_id()}:{rule.name}:{index}"
            await self.webhooks.enqueue_care_webhook(
                rule.name, index, _webhook_body(rule, s, delivery_id), delivery_id
            )
        elif isinstance(action, FollowUp):
            await self.messages.decide(
                f"follow_up:{rule.name}:{action.step}:{s.contact.id}:{to_ms(s.at)}",
                kind="follow_up",
                contact=s.contact,
                conversation=None,
                template=action.template,
                answer=False,
                due_at=s.at + timedelta(days=action.after_days),
            )
        elif isinstance(action, Reply):
            if s.message is not None and not may_auto_reply(s.message):
                # A machine wrote it (an out-of-office, a bounce, a list): answering
                # automatically could start a loop between two robots.
                log.info(
                    "no automatic reply to an automated message",
                    extra={"event": "care.not_to_machines", "message_id": s.message.id},
                )
                return
            key = self._once_key(rule, action, s)
            await self.messages.decide(
                key,
                kind="birthday" if s.event == "schedule.birthday" else "reply",
                contact=s.contact,
                conversation=conversation,
                template=action.template,
                # Greetings and away replies answer the customer now; others wait for daytime.
                answer=s.event in ("message.created", "conversation.created"),
            )
        elif conversation is None:
            return  # parse_rules refuses these on events without a conversation
        elif isinstance(action, Survey):
            if conversation.resolved_at is None or await self._only_survey_answered(conversation):
                return
            await self.messages.decide(
                f"survey:{rule.name}:{conversation.id}:{to_ms(conversation.resolved_at)}",
                kind="survey",
                contact=s.contact,
                conversation=conversation,
                template=action.template,
                answer=False,
                due_at=conversation.resolved_at + timedelta(minutes=action.after_minutes),
                variables={"survey_url": self.survey.url(self.public_url, conversation.id)},
                resolution=conversation.resolved_at,
            )
        elif isinstance(action, Assign):
            await self._assign(action, conversation)
        # (Already so in the snapshot just read: nothing to do, no write.)
        elif isinstance(action, AddLabel):
            if action.label not in conversation.labels:
                labels = [*conversation.labels, action.label]
                await self.inbox.update_details(conversation.id, labels=labels)
        elif isinstance(action, SetPriority):
            if action.priority != conversation.priority:
                await self.inbox.update_details(conversation.id, priority=action.priority)
        elif isinstance(action, Resolve):
            if conversation.status != "resolved":
                await self.inbox.resolve(conversation.id)
        elif isinstance(action, Snooze):
            if conversation.status != "resolved":
                until = self.clock.now() + timedelta(hours=action.hours)
                # As the API does: the wake-up first, so a snooze never lasts forever.
                await self.webhooks.enqueue_wake(conversation.id, until)
                await self.inbox.snooze(conversation.id, until)

    async def _assign(self, action: Assign, conversation: Conversation) -> None:
        """Through the router: a team's queue is routed by that team's rules and
        hours; a named agent gets it only within their capacity (else it waits)."""
        if action.team is not None:
            await self.router.assign_to_team(conversation.id, action.team)
            return
        assert action.agent is not None
        agent = await self.store.agent_by_email(action.agent)
        if agent is None or not agent.active:
            log.warning(
                "care rule names an agent who does not exist or is deactivated",
                extra={"event": "care.no_agent", "conversation_id": conversation.id},
            )
            return
        if not await self.router.assign_to_agent(conversation.id, agent.id):
            log.info(
                "care rule's agent cannot take the conversation now; it waits",
                extra={"event": "care.assign_waits", "conversation_id": conversation.id},
            )

    def _once_key(self, rule: Rule, action: Reply, s: Situation) -> str:
        conversation_id = s.conversation.id if s.conversation is not None else "-"
        match action.once:
            case "contact":
                return f"{rule.name}:{s.contact.id}"
            case "conversation":
                return f"{rule.name}:{conversation_id}"
            case "closed_period":
                account = s.conversation.account_id if s.conversation is not None else None
                return f"{rule.name}:{conversation_id}:{self.hours.closed_period(account, s.at)}"
            case "activity":
                stamp = to_ms(s.conversation.last_activity_at) if s.conversation else 0
                return f"{rule.name}:{conversation_id}:{stamp}"
            case "year":
                zone = contact_zone(s.contact.timezone, self.messages.policy.default_timezone)
                return f"{rule.name}:{s.contact.id}:{s.at.astimezone(zone).year}"
            case _:
                return f"{rule.name}:{s.event_id or new_id()}"

    # -- the satisfaction survey's answer by reply -----------------------
    async def _survey_answer(self, message: Message, conversation: Conversation) -> bool:
        """A reply that is only a score, to a survey that is the last thing the hub
        sent, is the answer: recorded on the conversation, which stays resolved."""
        score = score_in(message.text)
        if score is None:
            return False
        last = await self.store.last_message(conversation.id, "outbound")
        if last is None:
            return False
        if not (last.idempotency_key or "").startswith(SURVEY_KEY):
            return False
        if message.created_at - last.created_at > self.survey_lifetime:
            return False
        await self.inbox.record_satisfaction(conversation.id, score, how=f"message:{message.id}")
        if conversation.status != "resolved":
            # Only the survey was answered: the conversation stays done.
            await self.inbox.resolve(conversation.id)
        return True

    async def _only_survey_answered(self, conversation: Conversation) -> bool:
        """Whether nothing but a score came since the last survey: the conversation
        is resolved again after its answer, which is not a new case to survey."""
        recent = await self.store.find_messages(
            conversation.id,
            directions=["inbound", "outbound"],  # a survey is an outbound message
            newest_first=True,
            limit=SURVEY_LOOKBACK,
        )
        for message in recent:
            if (message.idempotency_key or "").startswith(SURVEY_KEY):
                return True  # and everything after it was a score
            if message.direction != "inbound" or score_in(message.text) is None:
                return False
        return False  # no survey among the last messages

    # -- schedule rules --------------------------------------------------
    async def run_schedules(self, *, max_seconds: float = 40.0) -> int:
        """Run the schedule rules whose latest occurrence has not been run: each
        sweeps the conversations it applies to, oldest activity last, writing
        its place after every page so a run cut short (a crash, `max_seconds`)
        goes on from there at the next call. Run it every minute.

        Each (rule, occurrence, conversation) acts once: replies are care
        messages keyed by it (or by `once`), webhooks carry it as their id, and
        the other actions change nothing when already done. Returns the number
        of conversations the rules acted on."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_seconds
        acted = 0
        for rule in self.rules:
            if rule.event != "schedule" or rule.schedule is None:
                continue
            now = self.clock.now()
            zone = contact_zone(rule.schedule.timezone, self.messages.policy.default_timezone)
            occurrence = latest_occurrence(rule.schedule, now, zone)
            if occurrence is None:
                continue
            key = f"schedule:{rule.name}"
            state = await self.store.channel_state(STATE_ACCOUNT, key) or {}
            if state.get("occurrence") == to_ms(occurrence):
                if state.get("done"):
                    continue
                cursor = state.get("cursor")
            else:
                late = now - occurrence
                if rule.schedule.at is not None and late > timedelta(
                    minutes=rule.schedule.catch_up_minutes
                ):
                    continue  # missed while no worker ran, and too long ago to do now
                cursor = None
            view = ConversationFilter(
                statuses=rule.swept_statuses,
                unassigned=bool(rule.when.unassigned),
                inactive_since=(
                    occurrence - timedelta(hours=rule.when.idle_hours)
                    if rule.when.idle_hours is not None
                    else None
                ),
            )
            while True:
                page = await self.store.list_conversations(view, limit=100, cursor=cursor)
                for conversation in page.items:
                    contact = await self.store.get_contact(conversation.contact_id)
                    if contact is None:
                        continue
                    situation = Situation(
                        "schedule",
                        occurrence,
                        contact,
                        conversation,
                        event_id=f"{rule.name}:{to_ms(occurrence)}:{conversation.id}",
                    )
                    if self.matches(rule.when, situation):
                        await self._apply(rule, situation)
                        acted += 1
                cursor = page.next_cursor
                done = cursor is None
                await self.store.save_channel_state(
                    STATE_ACCOUNT,
                    key,
                    {"occurrence": to_ms(occurrence), "cursor": cursor, "done": done},
                )
                if done:
                    log.info(
                        "schedule rule ran",
                        extra={
                            "event": "care.schedule_ran",
                            "rule": rule.name,
                            "occurrence": occurrence.isoformat(),
                        },
                    )
                    break
                if loop.time() > deadline:
                    return acted  # the next call goes on from the cursor
        return acted

    # -- birthdays -------------------------------------------------------
    async def run_birthdays(self, daytime: str) -> int:
        """Birthday rules for contacts whose birthday it is now, in their own
        timezone, from `birthday_hour` until the end of their daytime. Run it
        often (every quarter hour): each wish is decided once per year."""
        rules = [rule for rule in self.rules if rule.event == "schedule.birthday"]
        if not rules:
            return 0
        now = self.clock.now()
        _, end = parse_range(daytime)
        days = {(now + timedelta(days=offset)).date() for offset in (-1, 0, 1)}
        wanted = {(d.month, d.day) for d in days}
        if any(_is_feb_28_of_common_year(d) for d in days):
            wanted.add((2, 29))
        decided = 0
        for month, day in sorted(wanted):
            after: str | None = None
            while True:
                contacts = await self.store.contacts_born_on(month, day, limit=200, after_id=after)
                for contact in contacts:
                    zone = contact_zone(contact.timezone, self.messages.policy.default_timezone)
                    local = now.astimezone(zone)
                    minute = local.hour * 60 + local.minute
                    if contact.birthday is None or not _birthday_on(contact.birthday, local.date()):
                        continue
                    if local.hour < self.birthday_hour or minute >= end:
                        continue
                    await self.run(Situation("schedule.birthday", now, contact, event_id=new_id()))
                    decided += 1
                if len(contacts) < 200:
                    break
                after = contacts[-1].id
        return decided


def _conversation_matches(when: Conditions, conversation: Conversation, at: datetime) -> bool:
    if when.status is not None and conversation.status not in when.status:
        return False
    if when.priority is not None and conversation.priority not in when.priority:
        return False
    if when.conversation_labels is not None and not set(when.conversation_labels) & set(
        conversation.labels
    ):
        return False
    if when.unassigned is not None and when.unassigned != (conversation.assignee_id is None):
        return False
    if when.idle_hours is not None:
        return at - conversation.last_activity_at >= timedelta(hours=when.idle_hours)
    return True


def _is_feb_28_of_common_year(day: date) -> bool:
    return day.month == 2 and day.day == 28 and not _leap(day.year)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _birthday_on(birthday: date, day: date) -> bool:
    """Whether `day` is the birthday (29 February is kept on the 28th in common years)."""
    if (birthday.month, birthday.day) == (day.month, day.day):
        return True
    return (birthday.month, birthday.day) == (2, 29) and _is_feb_28_of_common_year(day)


def _webhook_body(rule: Rule, s: Situation, delivery_id: str) -> str:
    from pydantic_core import to_json

    body: dict[str, Any] = {
        "id": delivery_id,
        "rule": rule.name,
        "event": s.event,
        "at": s.at.isoformat(),
        "contact": s.contact.model_dump(mode="json"),
    }
    if s.conversation is not None:
        body["conversation"] = s.conversation.model_dump(mode="json")
    if s.message is not None:
        body["message"] = s.message.model_dump(mode="json")
    if s.tag is not None:
        body["tag"] = s.tag
    return to_json(body).decode()
