"""Business time: how long something took counting only a schedule's open hours,
across lunch breaks, nights, weekends and holidays, on the schedule's wall clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.routing.business_time import BusinessClock, business_duration
from hub.routing.hours import WEEKDAYS, Schedule, is_open

WEEK = Schedule(
    mon=["08:00-12:00", "13:30-17:30"],
    tue=["08:00-17:30"],
    wed=["08:00-17:30"],
    thu=["08:00-17:30"],
    fri=["08:00-17:30"],
    sat=["08:00-12:00"],
    holidays=[date(2026, 1, 1)],
)
ALWAYS = Schedule(**{day: ["00:00-24:00"] for day in WEEKDAYS})


def hcm(day: int, hour: int, minute: int = 0, month: int = 1) -> datetime:
    """A moment in 2026, Ho Chi Minh City time (UTC+7); 5 January is a Monday."""
    return datetime(2026, month, day, hour, minute, tzinfo=UTC) - timedelta(hours=7)


@pytest.mark.parametrize(
    ("start", "end", "minutes"),
    [
        (hcm(5, 9, 0), hcm(5, 9, 45), 45),  # inside the morning
        (hcm(5, 11, 50), hcm(5, 13, 40), 20),  # over lunch: 10 + 10
        (hcm(5, 6, 0), hcm(5, 8, 5), 5),  # written before opening
        (hcm(5, 17, 20), hcm(6, 8, 10), 20),  # overnight: 10 + 10
        (hcm(5, 18, 0), hcm(5, 23, 0), 0),  # all of it after closing
        # Saturday 11:00 → Monday 8:30: one hour on Saturday, Sunday closed, 30 min.
        (hcm(10, 11, 0), hcm(12, 8, 30), 90),
        # Wednesday 31 Dec 17:00 → Friday 2 Jan 8:15 across New Year's Day (a
        # Thursday holiday): 30 min on Wednesday, nothing Thursday, 15 on Friday.
        (datetime(2025, 12, 31, 10, 0, tzinfo=UTC), hcm(2, 8, 15), 45),
        # A whole week, Monday 0:00 → next Monday 0:00: 8 + 4 * 9.5 + 4 hours.
        (hcm(5, 0, 0), hcm(12, 0, 0), (8 + 4 * 9.5 + 4) * 60),
        (hcm(5, 10, 0), hcm(5, 9, 0), 0),  # the end before the start counts nothing
    ],
)
def test_business_duration_counts_only_open_hours(
    start: datetime, end: datetime, minutes: float
) -> None:
    assert business_duration(start, end, WEEK) == timedelta(minutes=minutes)


def test_without_a_schedule_the_duration_is_wall_time() -> None:
    assert business_duration(hcm(10, 11, 0), hcm(12, 8, 30), None) == timedelta(hours=45.5)


def test_a_schedule_that_never_opens_counts_nothing() -> None:
    assert business_duration(hcm(5, 0, 0), hcm(28, 0, 0), Schedule()) == timedelta(0)


def test_a_clock_answers_before_and_after_the_days_it_has_seen() -> None:
    clock = BusinessClock(WEEK)
    assert clock.between(hcm(20, 9, 0), hcm(20, 10, 0)) == timedelta(hours=1)
    # Earlier days than any seen so far, then later ones.
    assert clock.between(hcm(5, 9, 0), hcm(6, 9, 0)) == timedelta(hours=8)
    assert clock.between(hcm(27, 9, 0), hcm(2, 9, 0, month=2)) == timedelta(
        hours=8.5 + 3 * 9.5 + 4 + 1
    )


def test_a_zone_with_daylight_saving_counts_wall_hours_on_the_day_it_changes() -> None:
    # Europe/Berlin moves from 02:00 to 03:00 on Sunday 29 March 2026; open 00:00-06:00
    # that day is 5 real hours.
    sunday = Schedule(timezone="Europe/Berlin", sun=["00:00-06:00"])
    start = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)  # Sunday 00:00 in Berlin (UTC+1)
    end = datetime(2026, 3, 29, 6, 0, tzinfo=UTC)
    assert business_duration(start, end, sunday) == timedelta(hours=5)


# -- properties -------------------------------------------------------------

MOMENTS = st.datetimes(
    min_value=datetime(2025, 12, 1), max_value=datetime(2026, 4, 30), timezones=st.just(UTC)
).map(lambda moment: moment.replace(second=0, microsecond=0))
SCHEDULES = st.sampled_from(
    [
        WEEK,
        ALWAYS,
        Schedule(),
        Schedule(timezone="Europe/Berlin", mon=["09:00-17:00"], sun=["01:30-03:30"]),
        Schedule(timezone="Asia/Kolkata", tue=["09:30-13:00", "14:00-18:15"]),
    ]
)


@given(MOMENTS, MOMENTS, MOMENTS, SCHEDULES)
def test_durations_add_up(a: datetime, b: datetime, c: datetime, schedule: Schedule) -> None:
    a, b, c = sorted((a, b, c))
    clock = BusinessClock(schedule)
    assert clock.between(a, c) == clock.between(a, b) + clock.between(b, c)


@given(MOMENTS, MOMENTS, SCHEDULES)
def test_a_duration_is_never_negative_nor_longer_than_wall_time(
    a: datetime, b: datetime, schedule: Schedule
) -> None:
    duration = business_duration(a, b, schedule)
    assert timedelta(0) <= duration <= max(b - a, timedelta(0))


@given(MOMENTS, MOMENTS)
def test_always_open_is_wall_time(a: datetime, b: datetime) -> None:
    assert business_duration(a, b, ALWAYS) == max(b - a, timedelta(0))


@settings(max_examples=40)
@given(MOMENTS, st.integers(min_value=0, max_value=3 * 24 * 60), SCHEDULES)
def test_a_duration_is_the_minutes_is_open_says_are_open(
    start: datetime, minutes: int, schedule: Schedule
) -> None:
    """Two independent readings of the schedule agree, minute by minute."""
    expected = sum(
        1 for minute in range(minutes) if is_open(start + timedelta(minutes=minute), schedule)
    )
    assert business_duration(start, start + timedelta(minutes=minutes), schedule) == timedelta(
        minutes=expected
    )
