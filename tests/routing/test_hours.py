"""Business hours: open or closed, on the schedule's own wall clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from hub.routing.hours import Schedule, is_open

WEEK = Schedule(
    mon=["08:00-12:00", "13:30-17:30"],
    tue=["08:00-17:30"],
    sat=["08:00-12:00"],
    holidays=[date(2026, 2, 17)],
)


def hcm(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in January 2026, Ho Chi Minh City time (UTC+7); the 5th is a Monday."""
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC) - timedelta(hours=7)


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        (hcm(5, 7, 59), False),
        (hcm(5, 8, 0), True),
        (hcm(5, 11, 59), True),
        (hcm(5, 12, 0), False),  # lunch
        (hcm(5, 13, 30), True),
        (hcm(5, 17, 29), True),
        (hcm(5, 17, 30), False),
        (hcm(6, 12, 30), True),  # Tuesday has no lunch break
        (hcm(10, 9, 0), True),  # Saturday morning
        (hcm(11, 9, 0), False),  # Sunday
        (datetime(2026, 2, 17, 3, 0, tzinfo=UTC), False),  # a Tuesday, but Tết
    ],
)
def test_open_inside_the_ranges_of_the_local_weekday(moment, open_):
    assert is_open(moment, WEEK) is open_


def test_the_timezone_decides_the_weekday():
    # 2026-01-05 00:30 UTC is Monday 07:30 in Hanoi but Sunday 16:30 in Los Angeles.
    moment = datetime(2026, 1, 5, 1, 30, tzinfo=UTC)
    assert is_open(moment, Schedule(mon=["08:00-09:00"])) is True
    assert is_open(moment, Schedule(timezone="America/Los_Angeles", sun=["17:00-18:00"])) is True


def test_24_00_closes_at_midnight():
    schedule = Schedule(mon=["20:00-24:00"])
    assert is_open(hcm(5, 23, 59), schedule) and not is_open(hcm(6, 0, 0), schedule)


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"mon": ["8-17"]}, "is not a range"),
        ({"mon": ["17:00-08:00"]}, "must end after it starts"),
        ({"mon": ["08:00-25:00"]}, "not a time of day"),
        ({"timezone": "Asia/Saigon-ish"}, "unknown timezone"),
        ({"monday": ["08:00-17:00"]}, "Extra inputs"),
    ],
)
def test_bad_schedules_are_refused_naming_the_problem(fields, says):
    with pytest.raises(ValidationError, match=says):
        Schedule(**fields)


def test_naive_moments_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(datetime(2026, 1, 5, 9), WEEK)


@given(st.datetimes(timezones=st.just(UTC)))
def test_an_empty_schedule_is_always_closed_and_a_full_one_always_open(moment):
    full = Schedule(
        **{d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    )
    assert not is_open(moment, Schedule())
    assert is_open(moment, full)
