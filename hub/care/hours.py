"""When care may speak: the company's business hours (away replies, the
`business_hours` condition) and the contact's daytime (quiet hours for care
messages that do not answer the customer).

Business hours are read through `BusinessHours.is_open(account_id, at)`, the one
seam to `hub.routing.hours`: when routing grows per-team hours and holidays,
this is where care starts asking it instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.routing.hours import WEEKDAYS, Schedule, is_open, parse_range

# Far enough to cross any holiday season; a schedule with no opening at all
# has no "next opening" and the closed period is then one per day.
LOOKAHEAD_DAYS = 60


class BusinessHours:
    """The company's opening hours, per account (else the default schedule)."""

    def __init__(self, default: Schedule, per_account: Mapping[str, Schedule]) -> None:
        self.default = default
        self.per_account = dict(per_account)

    def schedule(self, account_id: str | None) -> Schedule:
        return self.per_account.get(account_id or "", self.default)

    def is_open(self, account_id: str | None, at: datetime) -> bool:
        return is_open(at, self.schedule(account_id))

    def closed_period(self, account_id: str | None, at: datetime) -> str:
        """A name for the closed period `at` falls in: the moment it ends (the
        next opening), so every message in one night shares it."""
        schedule = self.schedule(account_id)
        opening = next_opening(at, schedule)
        if opening is None:
            return at.astimezone(schedule.zone).date().isoformat()
        return opening.isoformat()


def next_opening(at: datetime, schedule: Schedule) -> datetime | None:
    """The first moment after `at` when the schedule opens (UTC), or None if it
    never opens within LOOKAHEAD_DAYS."""
    zone = schedule.zone
    local = at.astimezone(zone)
    for offset in range(LOOKAHEAD_DAYS + 1):
        day = local.date() + timedelta(days=offset)
        if day in schedule.holidays:
            continue
        for start, _ in sorted(schedule.ranges(WEEKDAYS[day.weekday()])):
            moment = datetime.combine(day, time(start // 60, start % 60), zone)
            if moment > local and not is_open(moment - timedelta(minutes=1), schedule):
                return moment.astimezone(ZoneInfo("UTC"))
    return None


def contact_zone(timezone: str | None, default: str) -> ZoneInfo:
    """The contact's timezone, else the default (an unknown name counts as none)."""
    if timezone:
        try:
            return ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(default)


def next_daytime(at: datetime, zone: ZoneInfo, window: str) -> datetime:
    """`at` if it is inside the daytime window on the contact's wall clock, else
    the start of the next window (the same evening's window is over: tomorrow)."""
    start, end = parse_range(window)
    local = at.astimezone(zone)
    minute = local.hour * 60 + local.minute
    if start <= minute < end:
        return at
    day = local.date() if minute < start else local.date() + timedelta(days=1)
    return datetime.combine(day, time(start // 60, start % 60), zone).astimezone(ZoneInfo("UTC"))
