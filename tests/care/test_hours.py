"""When care may speak: business hours' closed periods, the contact's daytime,
birthdays on 29 February, and what counts as a survey score."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hub.care.engine import _birthday_on
from hub.care.hours import BusinessHours, contact_zone, next_daytime, next_opening
from hub.care.survey import score_in
from hub.routing.hours import Schedule

WEEKDAY = ["08:00-12:00", "13:30-17:30"]
OFFICE = Schedule(
    mon=WEEKDAY, tue=WEEKDAY, wed=WEEKDAY, thu=WEEKDAY, fri=WEEKDAY, holidays=[date(2026, 1, 12)]
)
SAIGON = ZoneInfo("Asia/Ho_Chi_Minh")


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=SAIGON)


@pytest.mark.parametrize(
    ("at", "opens"),
    [
        (local(5, 7, 0), local(5, 8, 0)),  # Monday before opening
        (local(5, 12, 15), local(5, 13, 30)),  # lunch break
        (local(5, 18, 0), local(6, 8, 0)),  # evening
        (local(9, 18, 0), local(13, 8, 0)),  # Friday evening, Monday 12th a holiday
        (local(10, 11, 0), local(13, 8, 0)),  # Saturday
    ],
)
def test_next_opening_skips_nights_weekends_and_holidays(at: datetime, opens: datetime) -> None:
    assert next_opening(at, OFFICE) == opens


def test_a_closed_period_is_named_by_its_end_so_one_night_shares_it() -> None:
    hours = BusinessHours(OFFICE, {"night-shop": Schedule(mon=["18:00-23:00"])})
    assert hours.closed_period(None, local(5, 18)) == hours.closed_period(None, local(6, 7, 59))
    assert hours.closed_period(None, local(5, 18)) != hours.closed_period(None, local(6, 12, 30))
    assert hours.is_open("night-shop", local(5, 19)) and not hours.is_open(None, local(5, 19))
    never = BusinessHours(Schedule(), {})
    assert never.closed_period(None, local(5, 10)) == "2026-01-05"


def test_next_daytime_is_now_inside_the_window_else_the_next_start() -> None:
    window = "08:00-21:00"
    inside = local(5, 20, 59).astimezone(UTC)
    assert next_daytime(inside, SAIGON, window) == inside
    assert next_daytime(local(5, 21, 0), SAIGON, window) == local(6, 8, 0)
    assert next_daytime(local(5, 3, 0), SAIGON, window) == local(5, 8, 0)


def test_an_unknown_contact_timezone_falls_back_to_the_default() -> None:
    assert contact_zone("Mars/Olympus", "Asia/Ho_Chi_Minh") == SAIGON
    assert contact_zone(None, "Europe/Paris") == ZoneInfo("Europe/Paris")


def test_a_29_february_birthday_is_kept_on_the_28th_in_common_years() -> None:
    leapling = date(2000, 2, 29)
    assert _birthday_on(leapling, date(2027, 2, 28))
    assert not _birthday_on(leapling, date(2028, 2, 28))
    assert _birthday_on(leapling, date(2028, 2, 29))
    assert not _birthday_on(date(1990, 3, 1), date(2027, 2, 28))


@pytest.mark.parametrize(
    ("text", "score"),
    [("5", 5), (" 4 ", 4), ("3/5", 3), ("5 sao", 5), ("1*", 1), ("2.", 2)],
)
def test_a_reply_that_is_only_a_score_is_one(text: str, score: int) -> None:
    assert score_in(text) == score


@pytest.mark.parametrize("text", ["6", "0", "10", "5 cái", "mình cần 2", "", "45"])
def test_anything_else_is_not_a_score(text: str) -> None:
    assert score_in(text) is None


def test_daytime_windows_cross_no_midnight() -> None:
    assert next_daytime(local(5, 23, 30), SAIGON, "08:00-21:00") - local(5, 23, 30) == timedelta(
        hours=8, minutes=30
    )
