"""Business time: how long something took counting only a schedule's open hours
(lunch breaks, nights, weekends and holidays left out), on the schedule's wall
clock. Reports use it for first-response and resolution times.

A `BusinessClock` turns every moment into "open milliseconds since a fixed
day", from a per-day table of opening intervals and their running total; a
duration is then the difference of two such readings, so measuring tens of
thousands of conversations costs a lookup each, not a walk over their days.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from hub.inbox.model import to_ms
from hub.routing.hours import WEEKDAYS, Schedule

DAY = timedelta(days=1)


class BusinessClock:
    """Open time on one schedule. Not thread-safe; cheap to keep per report."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self._zone = schedule.zone
        self._holidays = frozenset(schedule.holidays)
        self._ranges = {day: schedule.ranges(day) for day in WEEKDAYS}
        self._origin: date | None = None  # the first day of the table
        # _before[i]: open milliseconds in the days from origin to origin + i (excluded).
        self._before: list[int] = [0]
        self._intervals: dict[date, list[tuple[int, int]]] = {}

    def between(self, start: datetime, end: datetime) -> timedelta:
        """The open time from `start` to `end` (nothing if `end` is not after `start`)."""
        if end <= start:
            return timedelta(0)
        # The start first: reading an earlier day than the table holds restarts
        # the table, and the end's day is never earlier than the start's.
        opened = self._reading(start)
        return timedelta(milliseconds=self._reading(end) - opened)

    def _reading(self, moment: datetime) -> int:
        """Open milliseconds from the table's first day to `moment`: increasing
        with `moment`, and only while the schedule is open."""
        ms = to_ms(moment)
        day = moment.astimezone(self._zone).date()
        total = self._open_before(day)
        for start, end in self._day(day):
            if ms <= start:
                break
            total += min(ms, end) - start
        return total

    def _open_before(self, day: date) -> int:
        if self._origin is None or day < self._origin:
            # Restart the table a little before the earliest day asked for.
            self._origin = day - timedelta(days=7)
            self._before = [0]
        index = (day - self._origin).days
        while len(self._before) <= index:
            filled = self._origin + timedelta(days=len(self._before) - 1)
            self._before.append(
                self._before[-1] + sum(end - start for start, end in self._day(filled))
            )
        return self._before[index]

    def _day(self, day: date) -> list[tuple[int, int]]:
        """The day's opening intervals, as epoch milliseconds, in order."""
        cached = self._intervals.get(day)
        if cached is not None:
            return cached
        intervals: list[tuple[int, int]] = []
        if day not in self._holidays:
            for start, end in sorted(self._ranges[WEEKDAYS[day.weekday()]]):
                intervals.append((self._at(day, start), self._at(day, end)))
        self._intervals[day] = intervals
        return intervals

    def _at(self, day: date, minute: int) -> int:
        if minute >= 24 * 60:
            day, minute = day + DAY, minute - 24 * 60
        return to_ms(datetime.combine(day, time(minute // 60, minute % 60), self._zone))


def business_duration(start: datetime, end: datetime, schedule: Schedule | None) -> timedelta:
    """The time from `start` to `end` counting only `schedule`'s open hours
    (wall time when there is no schedule); nothing if `end` is not after `start`."""
    if schedule is None:
        return max(end - start, timedelta(0))
    return BusinessClock(schedule).between(start, end)
