"""Automation rules, as configured in `[[care.rules]]`: an event, conditions on
it, and actions.

    [[care.rules]]
    name = "away"
    event = "message.created"
    when = { business_hours = "closed" }
    actions = [{ type = "reply", template = "away", once = "closed_period" }]

Rules are parsed and checked when the hub starts (`parse_rules`): an unknown
event, key, action or template stops the start-up with an error naming the
rule and the key, never a rule that silently does nothing at 2 a.m.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.errors import ConfigError
from hub.inbox.model import ConversationStatus, Priority
from hub.routing.hours import WEEKDAYS, Weekday, known_zone

EventName = Literal[
    "conversation.created",
    "message.created",
    "conversation.resolved",
    "contact.created",
    "contact.tagged",
    "schedule.birthday",
    "schedule",
]
# Which events carry a conversation (and its messages): the others are about a
# contact only, so conditions and actions on a conversation make no sense there.
CONVERSATION_EVENTS = frozenset(
    {"conversation.created", "message.created", "conversation.resolved", "schedule"}
)
# The statuses a schedule rule sweeps when its `when.status` does not say.
SCHEDULE_STATUSES: tuple[ConversationStatus, ...] = ("open", "pending")

# What each care message may use in its template, beside contact/company/now.
TEMPLATE_VARIABLES: dict[str, tuple[str, ...]] = {
    "reply": ("conversation",),
    "survey": ("conversation", "survey_url"),
    "follow_up": (),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Conditions(_Strict):
    """All given conditions must hold (lists: any of the values)."""

    channel: list[str] | None = None
    account: list[str] | None = None
    text_contains: list[str] | None = Field(
        None, description="case-insensitive; any of them in the message text"
    )
    text_regex: str | None = None
    contact_tags: list[str] | None = Field(None, description="the contact has any of these")
    contact_attributes: dict[str, str | int | float | bool] | None = None
    business_hours: Literal["open", "closed"] | None = None
    language: list[str] | None = None
    first_message: bool | None = Field(None, description="the contact's very first message")
    tag: list[str] | None = Field(None, description="contact.tagged: the tag just added")
    inbound: bool | None = Field(
        None, description="message.created: the customer wrote it (default for replies)"
    )
    status: list[ConversationStatus] | None = None
    priority: list[Priority] | None = None
    conversation_labels: list[str] | None = Field(None, description="has any of these labels")
    unassigned: bool | None = None
    idle_hours: float | None = Field(
        None, gt=0, description="schedule: no message either way for at least this long"
    )

    @field_validator("text_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value


class Assign(_Strict):
    type: Literal["assign"]
    team: str | None = None
    agent: str | None = Field(None, description="the agent's e-mail")


class AddLabel(_Strict):
    type: Literal["label"]
    label: str = Field(min_length=1)


class SetPriority(_Strict):
    type: Literal["priority"]
    priority: Priority


class Reply(_Strict):
    """Send a template. `once` makes it a care message sent at most once per
    contact, conversation, closed period (away replies) or year (birthdays)."""

    type: Literal["reply"]
    template: str
    once: Literal["contact", "conversation", "closed_period", "year", "activity", "never"] = (
        "conversation"
    )


class Survey(_Strict):
    """Ask how it went, `after_minutes` after the conversation is resolved: an
    agent's undo, or the customer writing again meanwhile, reopens it, and a
    survey about a conversation that is no longer done is not sent."""

    type: Literal["survey"]
    template: str = "survey"
    after_minutes: float = Field(
        10, ge=0, le=7 * 24 * 60, description="how long after the resolve it is sent"
    )


class Snooze(_Strict):
    type: Literal["snooze"]
    hours: float = Field(gt=0)


class Resolve(_Strict):
    type: Literal["resolve"]


class Webhook(_Strict):
    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    secret_env: str = Field(description="environment variable holding the HMAC secret")


class FollowUp(_Strict):
    type: Literal["follow_up"]
    template: str
    after_days: float = Field(gt=0)
    step: str = Field("1", description="names this message of the sequence")


Action = Annotated[
    Assign | AddLabel | SetPriority | Reply | Survey | Snooze | Resolve | Webhook | FollowUp,
    Field(discriminator="type"),
]
CONVERSATION_ACTIONS = (Assign, AddLabel, SetPriority, Reply, Survey, Snooze, Resolve)


class Timing(_Strict):
    """When a `schedule` rule runs: every N minutes (a sweep), or at a time of
    day on some weekdays, in `timezone` (the company's when not given)."""

    every_minutes: int | None = Field(None, ge=1, le=7 * 24 * 60)
    at: str | None = Field(None, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS))
    timezone: str | None = None
    catch_up_minutes: int = Field(
        360,
        ge=0,
        description="an `at` run missed while no worker ran still happens this long after",
    )

    @field_validator("timezone")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        return None if value is None else known_zone(value)


class Rule(_Strict):
    name: str = Field(pattern=r"^[a-z0-9_-]+$")
    event: EventName
    schedule: Timing | None = Field(None, description="event schedule: when it runs")
    when: Conditions = Conditions()
    actions: list[Action] = Field(min_length=1)
    enabled: bool = True

    @property
    def swept_statuses(self) -> list[ConversationStatus]:
        """The conversation statuses a schedule rule sweeps: open and pending
        ones unless `when.status` says."""
        return self.when.status if self.when.status is not None else list(SCHEDULE_STATUSES)


def _location(error: Any) -> str:
    return ".".join(str(part) for part in error["loc"]) or "(rule)"


def parse_rules(
    raw: list[dict[str, Any]],
    *,
    templates: Any = None,
    teams: set[str] | None = None,
    accounts: set[str] | None = None,
) -> list[Rule]:
    """The configured rules, checked: raises ConfigError naming the rule (by name,
    else position) and the key. With `templates` (a `Templates`), every template
    a rule sends must exist and use only what its action offers."""
    rules: list[Rule] = []
    names: set[str] = set()
    for position, entry in enumerate(raw, start=1):
        label = (
            f"care rule {entry.get('name')!r}" if entry.get("name") else f"care rule #{position}"
        )
        try:
            rule = Rule.model_validate(entry)
        except ValidationError as exc:
            problems = "; ".join(f"{_location(e)}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"{label}: {problems}") from exc
        if rule.name in names:
            raise ConfigError(f"{label}: name: another rule has this name")
        names.add(rule.name)
        _check(rule, label, templates=templates, teams=teams, accounts=accounts)
        rules.append(rule)
    return rules


def _check(
    rule: Rule,
    label: str,
    *,
    templates: Any,
    teams: set[str] | None,
    accounts: set[str] | None,
) -> None:
    on_conversation = rule.event in CONVERSATION_EVENTS
    for index, action in enumerate(rule.actions):
        where = f"{label}: actions.{index}"
        if isinstance(action, CONVERSATION_ACTIONS) and not on_conversation:
            if not (isinstance(action, Reply) and rule.event == "schedule.birthday"):
                raise ConfigError(
                    f"{where}.type: {action.type!r} needs a conversation, and {rule.event} has none"
                )
        if isinstance(action, FollowUp) and rule.event != "contact.tagged":
            raise ConfigError(f"{where}.type: follow_up starts from event contact.tagged")
        if isinstance(action, Assign):
            if (action.team is None) == (action.agent is None):
                raise ConfigError(f"{where}: give exactly one of team or agent")
            if action.team is not None and teams is not None and action.team not in teams:
                raise ConfigError(f"{where}.team: no team {action.team!r} is configured")
        if isinstance(action, Reply) and action.once == "closed_period":
            if rule.when.business_hours != "closed":
                raise ConfigError(
                    f'{where}.once: closed_period needs when.business_hours = "closed"'
                )
        if templates is not None and isinstance(action, Reply | Survey | FollowUp):
            offered = TEMPLATE_VARIABLES[action.type]
            if rule.event == "schedule.birthday" or rule.event == "contact.tagged":
                offered = ()
            try:
                templates.require(action.template, offered=offered)
            except ValueError as exc:
                raise ConfigError(f"{where}.template: {exc}") from exc
    if accounts is not None:
        for account in rule.when.account or ():
            if account not in accounts:
                raise ConfigError(f"{label}: when.account: no account {account!r} is configured")
    if rule.when.tag is not None and rule.event != "contact.tagged":
        raise ConfigError(f"{label}: when.tag: only event contact.tagged has a tag")
    if rule.event == "schedule":
        timing = rule.schedule
        if timing is None:
            raise ConfigError(
                f'{label}: schedule: event schedule needs it, e.g. {{ at = "09:00" }}'
            )
        if (timing.every_minutes is None) == (timing.at is None):
            raise ConfigError(f"{label}: schedule: give exactly one of every_minutes or at")
        if not timing.days:
            raise ConfigError(f"{label}: schedule.days: name at least one day")
    elif rule.schedule is not None:
        raise ConfigError(f"{label}: schedule: only for event schedule")
    if rule.when.idle_hours is not None and rule.event != "schedule":
        raise ConfigError(f"{label}: when.idle_hours: only for event schedule")
    if rule.when.first_message is not None and rule.event != "message.created":
        raise ConfigError(f"{label}: when.first_message: only for event message.created")
