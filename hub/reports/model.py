"""What reports take and answer, in the domain's words.

A `ReportFilter` names the period and the slices (account, channel, team,
agent, label) and, for an agent, the conversations they may see. The store
answers with rows already grouped where a database can group (`MessageCount`,
`SatisfactionCount`) and with one small row per conversation where a figure
needs each one (`ConversationTimes`: percentiles and business hours are
computed in Python). The service folds them into the report shapes below,
which the API, the page, the CSV files and the CLI all show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Generic, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from hub.inbox.store import Visibility

BREACHED_LABEL = "sla-breached"  # set by hub.routing.sla on a breach


@dataclass(frozen=True)
class ReportFilter:
    """Conversations (and their messages) in `[since, until)`, narrowed by
    every slice given; empty tuples mean "any"."""

    since: datetime
    until: datetime
    accounts: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    scope: Visibility | None = None  # an agent's: what they may see (None: everything)

    @property
    def by_conversation(self) -> bool:
        """Whether messages must be narrowed through their conversation (the
        slices a message does not carry itself)."""
        return bool(self.teams or self.agents or self.labels or self.scope)


# -- what the store answers -------------------------------------------------


@dataclass(frozen=True)
class ConversationTimes:
    """The conversations of one account, team, assignee and channel that were
    opened or resolved in the period (each once): their times in epoch
    milliseconds, position by position (a report reads a hundred thousand
    conversations: plain numbers in a few lists, not an object each)."""

    account_id: str
    team_id: str | None
    assignee_id: str | None
    channel: str
    created_at: list[int]
    first_response_at: list[int | None]
    resolved_at: list[int | None]
    breached: list[int]  # 1 where it carries the SLA breach label

    def __len__(self) -> int:
        return len(self.created_at)


class MessageCount(NamedTuple):
    """Messages of one channel and direction in one time bucket (`bucket` is the
    bucket's start, epoch milliseconds)."""

    bucket: int
    channel: str
    direction: str
    messages: int


@dataclass(frozen=True)
class SatisfactionCount:
    assignee_id: str | None
    score: int
    count: int


@dataclass(frozen=True)
class Waiting:
    count: int
    oldest: datetime | None


# -- what the reports show -------------------------------------------------


class Report(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Durations(Report):
    """Seconds, over the conversations counted (None when there are none)."""

    count: int = 0
    median_seconds: float | None = None
    p90_seconds: float | None = None


class Satisfaction(Report):
    answers: int = 0
    average: float | None = Field(None, description="mean score, 1-5")
    positive_share: float | None = Field(None, description="share of 4 and 5 answers, 0-1")


class Period(Report):
    since: datetime
    until: datetime
    timezone: str = Field(description="the zone days and hours of day are read in")


class Summary(Report):
    period: Period
    business_hours: bool = Field(
        description="times count only the business hours of teams that have them"
    )
    opened: int
    resolved: int
    first_response: Durations = Field(description="conversations opened in the period")
    resolution: Durations = Field(description="conversations resolved in the period")
    messages_in: int
    messages_out: int
    waiting_unassigned: int = Field(description="open with nobody assigned, now")
    oldest_waiting_since: datetime | None = None
    sla_breaches: int = Field(description="conversations opened in the period that breached")
    satisfaction: Satisfaction


class DayRow(Report):
    day: date
    opened: int = 0
    resolved: int = 0
    sla_breaches: int = 0
    messages_in: int = 0
    messages_out: int = 0


class ChannelRow(Report):
    channel: str
    opened: int = 0
    resolved: int = 0
    messages_in: int = 0
    messages_out: int = 0


class HourRow(Report):
    hour: int = Field(ge=0, le=23)
    messages_in: int = 0
    messages_out: int = 0


class AgentRow(Report):
    agent_id: str
    name: str = ""
    opened: int = Field(0, description="conversations opened in the period, assigned to them")
    resolved: int = 0
    open_now: int = 0
    messages_out: int = 0
    first_response: Durations = Field(default_factory=Durations)
    resolution: Durations = Field(default_factory=Durations)
    satisfaction: Satisfaction = Field(default_factory=Satisfaction)


class ScoreRow(Report):
    score: int = Field(ge=1, le=5)
    answers: int = 0


class CampaignRow(Report):
    campaign_id: str
    name: str
    channel: str
    account_id: str
    status: str
    launched_at: datetime | None = None
    audience: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    opted_out: int = 0
    replied: int = Field(0, description="recipients who wrote back after it (once each)")


Row = TypeVar("Row", bound=Report)


class Table(Report, Generic[Row]):
    """A report table: its period and its rows (the CSV has one line per row)."""

    period: Period
    rows: list[Row]
