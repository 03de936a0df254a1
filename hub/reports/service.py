"""Reports from the store's grouped rows: periods and filters read from what
people type, business hours per team, percentiles, days and hours of day on
the report's wall clock.

Days and hours of day are read in one timezone (the request's, else
`[reports] timezone`). Messages are counted by the database in buckets of an
hour (a quarter of an hour for zones with half-hour offsets) since the epoch,
and each bucket is then placed on that zone's calendar here: right across a
daylight-saving change, which a fixed offset in SQL would not be.

What each figure counts:
- opened: conversations created in the period; resolved: resolved in it;
- first response: from creation to the first agent reply, over conversations
  opened in the period that have one; resolution: from creation to
  resolution, over conversations resolved in the period. Both count only the
  business hours of the conversation's team (its routing rule's `hours`)
  when it has them, else wall time. Median and 90th percentile are linear
  interpolations between the nearest ranks;
- SLA breaches: conversations opened in the period that carry `sla-breached`;
- waiting unassigned: open with nobody assigned, now (not a period figure);
- satisfaction: survey answers given in the period;
- campaigns: those that ran during the period (launched before its end, not
  finished before its start), with their figures today: audience (recipient
  rows), sent (accepted by the provider: sent or delivered), delivered,
  failed, opted out (skipped for it), replied (wrote back, once each).
"""

from __future__ import annotations

import asyncio
import re
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hub.campaigns.store import CampaignStore
from hub.clock import Clock
from hub.errors import InvalidRequest
from hub.inbox.model import from_ms, to_ms, utc_ms
from hub.inbox.store import Store
from hub.reports.model import (
    AgentRow,
    CampaignRow,
    ChannelRow,
    ConversationTimes,
    DayRow,
    Durations,
    HourRow,
    MessageCount,
    Period,
    ReportFilter,
    Satisfaction,
    SatisfactionCount,
    ScoreRow,
    Summary,
)
from hub.reports.store import ReportStore
from hub.routing.business_time import BusinessClock
from hub.routing.hours import Schedule, known_zone

HOUR_MS = 3_600_000
QUARTER_MS = 900_000
MAX_PERIOD = timedelta(days=400)
DEFAULT_PERIOD = timedelta(days=7)
_RELATIVE = re.compile(r"^(\d{1,4})\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

# (account id, team id) → that conversation's business hours, or None.
ScheduleFor = Callable[[str, str | None], Schedule | None]


def parse_moment(text: str, now: datetime, zone: ZoneInfo, name: str) -> datetime:
    """A moment as people write it: `7d` (`m`, `h`, `d`, `w`: that long before
    now), `2026-03-01` (midnight in the report's zone) or an ISO 8601 time with
    a timezone. InvalidRequest naming `name` otherwise."""
    text = text.strip()
    relative = _RELATIVE.match(text.lower())
    try:
        if relative:
            return now - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            moment = datetime.combine(date.fromisoformat(text), time(0), zone)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise InvalidRequest(f"{name}: give a timezone (Z or +07:00), or a plain date")
        return utc_ms(moment)
    except (ValueError, OverflowError) as exc:
        raise InvalidRequest(
            f"{name}: {text!r} is not 7d, 24h, a date (2026-03-01) or an ISO 8601 time"
            " within the calendar"
        ) from exc


def parse_zone(text: str | None, default: str) -> ZoneInfo:
    try:
        return ZoneInfo(known_zone(text or default))
    except ValueError as exc:
        raise InvalidRequest(f"tz: {exc}") from exc


def period(
    since: str | None, until: str | None, now: datetime, zone: ZoneInfo
) -> tuple[datetime, datetime]:
    """[since, until) from the two texts: until defaults to now, since to seven
    days before until; widened to whole quarters of an hour (since down, until
    up), which is what the embedded store's message counts are kept in.
    InvalidRequest if empty, reversed or over 400 days."""
    end = parse_moment(until, now, zone, "until") if until else now
    start = parse_moment(since, now, zone, "since") if since else end - DEFAULT_PERIOD
    if start >= end:
        raise InvalidRequest("since must be before until")
    if end - start > MAX_PERIOD:
        raise InvalidRequest(f"a report covers at most {MAX_PERIOD.days} days")
    first, last = to_ms(start), to_ms(end)
    return from_ms(first - first % QUARTER_MS), from_ms(-(-last // QUARTER_MS) * QUARTER_MS)


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile of sorted `values`, interpolated linearly between ranks
    (the median of an even count is the mean of the middle two)."""
    position = (len(values) - 1) * q
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def durations(seconds: Iterable[float]) -> Durations:
    ordered = sorted(seconds)
    if not ordered:
        return Durations()
    return Durations(
        count=len(ordered),
        median_seconds=round(quantile(ordered, 0.5), 3),
        p90_seconds=round(quantile(ordered, 0.9), 3),
    )


def satisfaction(counts: Iterable[SatisfactionCount]) -> Satisfaction:
    answers = total = positive = 0
    for count in counts:
        answers += count.count
        total += count.score * count.count
        positive += count.count if count.score >= 4 else 0
    if not answers:
        return Satisfaction()
    return Satisfaction(
        answers=answers,
        average=round(total / answers, 3),
        positive_share=round(positive / answers, 4),
    )


def bucket_size(zone: ZoneInfo, since: datetime, until: datetime) -> int:
    """An hour when the zone's offsets are whole hours at both ends, else a quarter."""
    for moment in (since, until):
        offset = moment.astimezone(zone).utcoffset() or timedelta(0)
        if offset % timedelta(hours=1):
            return QUARTER_MS
    return HOUR_MS


class Calendar:
    """The period's days on the report's wall clock: which day a moment is on,
    by bisection over the days' first milliseconds (no timezone arithmetic per row)."""

    def __init__(self, report: ReportFilter, zone: ZoneInfo) -> None:
        first = report.since.astimezone(zone).date()
        last = (report.until - timedelta(milliseconds=1)).astimezone(zone).date()
        self.days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        self.starts = [to_ms(datetime.combine(day, time(0), zone)) for day in self.days]

    def index(self, ms: int) -> int:
        """The day `ms` falls on (moments before the first day count on it)."""
        return max(bisect_right(self.starts, ms) - 1, 0)


@dataclass
class Group:
    """What one group of conversations (account, team, assignee, channel) adds
    to a report: when those opened, breached and resolved in the period did so,
    and their durations in milliseconds."""

    channel: str
    assignee_id: str | None
    opened: list[int] = field(default_factory=list)  # creation moments
    breached: list[int] = field(default_factory=list)  # creation moments of the breached
    resolved: list[int] = field(default_factory=list)  # resolution moments
    first_response: list[int] = field(default_factory=list)
    resolution: list[int] = field(default_factory=list)


class Times:
    """The conversations of one report, with their durations measured (business
    hours where the conversation's team has them). CPU work on up to a hundred
    thousand conversations: the service runs it on a thread."""

    def __init__(
        self, report: ReportFilter, found: list[ConversationTimes], schedule_for: ScheduleFor
    ) -> None:
        since, until = to_ms(report.since), to_ms(report.until)
        self.groups: list[Group] = []
        clocks: dict[tuple[str, str | None], BusinessClock | None] = {}
        for times in found:
            key = (times.account_id, times.team_id)
            if key not in clocks:
                schedule = schedule_for(*key)
                clocks[key] = None if schedule is None else BusinessClock(schedule)
            clock = clocks[key]
            group = Group(times.channel, times.assignee_id)
            for created, first, resolved, breached in zip(
                times.created_at,
                times.first_response_at,
                times.resolved_at,
                times.breached,
                strict=True,
            ):
                if since <= created < until:
                    group.opened.append(created)
                    if breached:
                        group.breached.append(created)
                    if first is not None:
                        group.first_response.append(measure(clock, created, first))
                if resolved is not None and since <= resolved < until:
                    group.resolved.append(resolved)
                    group.resolution.append(measure(clock, created, resolved))
            self.groups.append(group)
        self.business_hours = any(clock is not None for clock in clocks.values())

    def count(self, name: str) -> int:
        return sum(len(getattr(group, name)) for group in self.groups)

    def durations(self, name: str, agent: str | None = None) -> Durations:
        """`first_response` or `resolution` in seconds (of one agent's, if named)."""
        return durations(
            ms / 1000
            for group in self.groups
            if agent is None or group.assignee_id == agent
            for ms in getattr(group, name)
        )


def measure(clock: BusinessClock | None, start: int, end: int) -> int:
    """Milliseconds from start to end: business hours on `clock`, else wall time."""
    if clock is None:
        return max(end - start, 0)
    return clock.between_ms(start, end)


class ReportService:
    def __init__(
        self,
        store: ReportStore,
        inbox: Store,
        campaigns: CampaignStore | None,
        clock: Clock,
        *,
        schedule_for: ScheduleFor,
        timezone: str,
    ) -> None:
        self.store = store
        self.inbox = inbox
        self.campaigns = campaigns
        self.clock = clock
        self.schedule_for = schedule_for
        self.timezone = timezone

    def zone(self, text: str | None = None) -> ZoneInfo:
        return parse_zone(text, self.timezone)

    def period(self, report: ReportFilter, zone: ZoneInfo) -> Period:
        return Period(since=report.since, until=report.until, timezone=zone.key)

    async def times(self, report: ReportFilter) -> Times:
        found = await self.store.conversation_times(report)
        # On a thread: the event loop keeps its turns (Python gives them back
        # every few milliseconds) while a large period is measured.
        return await asyncio.to_thread(Times, report, found, self.schedule_for)

    async def messages(self, report: ReportFilter, zone: ZoneInfo) -> list[MessageCount]:
        return await self.store.message_counts(
            report, bucket_size(zone, report.since, report.until)
        )

    # -- the reports ---------------------------------------------------
    async def summary(self, report: ReportFilter, zone: ZoneInfo) -> Summary:
        times, (messages_in, messages_out), waiting, answers = await asyncio.gather(
            self.times(report),
            self.store.message_totals(report),
            self.store.waiting(report),
            self.store.satisfaction(report),
        )
        return Summary(
            period=self.period(report, zone),
            business_hours=times.business_hours,
            opened=times.count("opened"),
            resolved=times.count("resolved"),
            first_response=times.durations("first_response"),
            resolution=times.durations("resolution"),
            messages_in=messages_in,
            messages_out=messages_out,
            waiting_unassigned=waiting.count,
            oldest_waiting_since=waiting.oldest,
            sla_breaches=times.count("breached"),
            satisfaction=satisfaction(answers),
        )

    async def days(self, report: ReportFilter, zone: ZoneInfo) -> list[DayRow]:
        times, messages = await asyncio.gather(self.times(report), self.messages(report, zone))
        calendar = Calendar(report, zone)
        opened = [0] * len(calendar.days)
        resolved = [0] * len(calendar.days)
        breaches = [0] * len(calendar.days)
        inbound = [0] * len(calendar.days)
        outbound = [0] * len(calendar.days)
        for group in times.groups:
            for counts, moments in (
                (opened, group.opened),
                (breaches, group.breached),
                (resolved, group.resolved),
            ):
                for moment in moments:
                    counts[calendar.index(moment)] += 1
        for m in messages:
            counts = inbound if m.direction == "inbound" else outbound
            counts[calendar.index(m.bucket)] += m.messages
        return [
            DayRow(
                day=day,
                opened=opened[n],
                resolved=resolved[n],
                sla_breaches=breaches[n],
                messages_in=inbound[n],
                messages_out=outbound[n],
            )
            for n, day in enumerate(calendar.days)
        ]

    async def channels(self, report: ReportFilter, zone: ZoneInfo) -> list[ChannelRow]:
        times, messages = await asyncio.gather(self.times(report), self.messages(report, zone))
        rows: dict[str, ChannelRow] = {}

        def row(channel: str) -> ChannelRow:
            return rows.setdefault(channel, ChannelRow(channel=channel))

        for group in times.groups:
            row(group.channel).opened += len(group.opened)
            row(group.channel).resolved += len(group.resolved)
        for m in messages:
            if m.direction == "inbound":
                row(m.channel).messages_in += m.messages
            else:
                row(m.channel).messages_out += m.messages
        return sorted(rows.values(), key=lambda r: r.channel)

    async def hours(self, report: ReportFilter, zone: ZoneInfo) -> list[HourRow]:
        inbound = [0] * 24
        outbound = [0] * 24
        since = to_ms(report.since)
        hour_of: dict[int, int] = {}  # bucket → local hour
        for m in await self.messages(report, zone):
            bucket = max(m.bucket, since)
            if bucket not in hour_of:
                hour_of[bucket] = from_ms(bucket).astimezone(zone).hour
            counts = inbound if m.direction == "inbound" else outbound
            counts[hour_of[bucket]] += m.messages
        return [
            HourRow(hour=hour, messages_in=inbound[hour], messages_out=outbound[hour])
            for hour in range(24)
        ]

    async def agents(self, report: ReportFilter) -> list[AgentRow]:
        times, sent, answers, staff_list = await asyncio.gather(
            self.times(report),
            self.store.agent_messages(report),
            self.store.satisfaction(report),
            self.inbox.list_agents(),
        )
        staff = {a.id: a for a in staff_list}
        opened: Counter[str | None] = Counter()
        resolved: Counter[str | None] = Counter()
        for group in times.groups:
            opened[group.assignee_id] += len(group.opened)
            resolved[group.assignee_id] += len(group.resolved)
        ids: set[str] = {g.assignee_id for g in times.groups if g.assignee_id is not None}
        ids |= set(sent) | {a.assignee_id for a in answers if a.assignee_id is not None}
        if report.scope is None:
            # Everyone who answers customers, idle or not, so nobody is missed.
            ids |= {a.id for a in staff.values() if a.active and a.role != "marketer"}
        if report.agents:
            ids &= set(report.agents)
        rows: list[AgentRow] = []
        for agent_id in ids:
            agent = staff.get(agent_id)
            rows.append(
                AgentRow(
                    agent_id=agent_id,
                    name=agent.name if agent else "",
                    opened=opened[agent_id],
                    resolved=resolved[agent_id],
                    open_now=agent.open_count if agent else 0,
                    messages_out=sent.get(agent_id, 0),
                    first_response=times.durations("first_response", agent_id),
                    resolution=times.durations("resolution", agent_id),
                    satisfaction=satisfaction(a for a in answers if a.assignee_id == agent_id),
                )
            )
        return sorted(rows, key=lambda r: (r.name.lower(), r.agent_id))

    async def scores(self, report: ReportFilter) -> list[ScoreRow]:
        counts: dict[int, int] = defaultdict(int)
        for answer in await self.store.satisfaction(report):
            counts[answer.score] += answer.count
        return [ScoreRow(score=score, answers=counts[score]) for score in range(1, 6)]

    async def campaign_funnel(self, report: ReportFilter) -> list[CampaignRow]:
        """Campaigns that ran during the period, by account and channel slices."""
        if self.campaigns is None:
            return []
        now = self.clock.now()
        rows: list[CampaignRow] = []
        for campaign in await self.campaigns.list_campaigns():
            if campaign.launched_at is None or campaign.launched_at >= report.until:
                continue
            if campaign.finished_at is not None and campaign.finished_at < report.since:
                continue
            if report.accounts and campaign.account_id not in report.accounts:
                continue
            if report.channels and campaign.channel not in report.channels:
                continue
            progress = await self.campaigns.progress(campaign.id, now)
            rows.append(
                CampaignRow(
                    campaign_id=campaign.id,
                    name=campaign.name,
                    channel=campaign.channel,
                    account_id=campaign.account_id,
                    status=campaign.status,
                    launched_at=campaign.launched_at,
                    audience=progress.total,
                    sent=progress.sent + progress.delivered,
                    delivered=progress.delivered,
                    failed=progress.failed,
                    opted_out=progress.opted_out,
                    replied=progress.replied,
                )
            )
        return rows
