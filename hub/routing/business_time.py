"""Business time: how long something took counting only a schedule's open hours
(lunch breaks, nights, weekends and holidays left out), on the schedule's wall
clock. Reports use it for first-response and resolution times.

A `BusinessClock` turns every moment into "open milliseconds since a fixed
day", from a per-day table of opening intervals and their running total; a
duration is then the difference of two such readings, so measuring tens of
thousands of conversations costs a lookup each, not a walk over their days.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, datetime, time, timedelta

from hub.inbox.model import from_ms, to_ms
from hub.routing.hours import WEEKDAYS, Schedule

DAY = timedelta(days=1)


class BusinessClock:
    """Open time on one schedule. Not thread-safe; cheap to keep per report."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self._zone = schedule.zone
        self._holidays = frozenset(schedule.holidays)
        self._ranges = {day: sorted(schedule.ranges(day)) for day in WEEKDAYS}
        # The table, one entry per local day from `_first`: when the day starts
        # (epoch ms), the open milliseconds before it, and its opening intervals.
        self._first: date | None = None
        self._starts: list[int] = []
        self._before: list[int] = []
        self._intervals: list[list[tuple[int, int]]] = []
        self._end = 0  # when the table's last day ends

    def between(self, start: datetime, end: datetime) -> timedelta:
        """The open time from `start` to `end` (nothing if `end` is not after `start`)."""
        return timedelta(milliseconds=self.between_ms(to_ms(start), to_ms(end)))

    def between_ms(self, start: int, end: int) -> int:
        """`between` on epoch milliseconds."""
        if end <= start:
            return 0
        if not self._starts or start < self._starts[0] or end >= self._end:
            self._cover(start, end)
        return self._reading(end) - self._reading(start)

    def _reading(self, ms: int) -> int:
        """Open milliseconds from the table's first day to `ms`."""
        index = bisect_right(self._starts, ms) - 1
        total: int = self._before[index]
        for start, end in self._intervals[index]:
            if ms <= start:
                break
            total += min(ms, end) - start
        return total

    def _cover(self, start: int, end: int) -> None:
        """Make the table hold the days of both moments."""
        if self._first is None or start < self._starts[0]:
            # Start again a little before the earliest day asked for.
            day = from_ms(start).astimezone(self._zone).date() - timedelta(days=7)
            self._first, self._starts, self._before, self._intervals = day, [], [], []
            self._end = self._midnight(day)
            self._append(day)
        while end >= self._end:
            assert self._first is not None
            self._append(self._first + timedelta(days=len(self._starts)))

    def _append(self, day: date) -> None:
        before = (
            self._before[-1] + sum(e - s for s, e in self._intervals[-1]) if self._starts else 0
        )
        self._starts.append(self._end)
        self._before.append(before)
        self._intervals.append(self._day(day))
        self._end = self._midnight(day + DAY)

    def _day(self, day: date) -> list[tuple[int, int]]:
        """The day's opening intervals, as epoch milliseconds, in order."""
        if day in self._holidays:
            return []
        return [
            (self._at(day, start), self._at(day, end))
            for start, end in self._ranges[WEEKDAYS[day.weekday()]]
        ]

    def _midnight(self, day: date) -> int:
        return to_ms(datetime.combine(day, time(0), self._zone))

    def _at(self, day: date, minute: int) -> int:
        if minute >= 24 * 60:
            return self._midnight(day + DAY)
        return to_ms(datetime.combine(day, time(minute // 60, minute % 60), self._zone))


def business_duration(start: datetime, end: datetime, schedule: Schedule | None) -> timedelta:
    """The time from `start` to `end` counting only `schedule`'s open hours
    (wall time when there is no schedule); nothing if `end` is not after `start`."""
    if schedule is None:
        return max(end - start, timedelta(0))
    return BusinessClock(schedule).between(start, end)
