"""Business hours: whether a moment falls inside a weekly schedule, in the
schedule's own timezone, holidays excluded.

Kept free of any channel so that voice (greeting or voicemail), routing and
care messages ("we are closed, we will answer at 8:00") all ask the same
question the same way. A schedule is plain configuration:

    hours = { timezone = "Asia/Ho_Chi_Minh", mon = ["08:00-12:00", "13:30-17:30"],
              sat = ["08:00-12:00"], holidays = ["2026-02-17"] }

Days without an entry are closed. A range ends before its end minute
("08:00-17:30" is open at 17:29:59, closed at 17:30); "24:00" ends at midnight.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"

_RANGE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


def _minutes(hours: str, minutes: str) -> int:
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > 24 * 60:
        raise ValueError("not a time of day")
    return value


def parse_range(text: str) -> tuple[int, int]:
    """ "08:00-17:30" as minutes since midnight, (480, 1050). ValueError if the
    range is malformed or does not end after it starts."""
    match = _RANGE.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a range like '08:00-17:30'")
    start, end = _minutes(*match.group(1, 2)), _minutes(*match.group(3, 4))
    if end <= start:
        raise ValueError(f"{text!r} must end after it starts (split a night across two days)")
    return start, end


def known_zone(value: str) -> str:
    """`value` if it names an IANA timezone, else ValueError (for validators)."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone {value!r}") from exc
    return value


class Schedule(BaseModel):
    """Opening hours for each weekday, in one timezone, with holidays."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = DEFAULT_TIMEZONE
    mon: list[str] = Field(default_factory=list)
    tue: list[str] = Field(default_factory=list)
    wed: list[str] = Field(default_factory=list)
    thu: list[str] = Field(default_factory=list)
    fri: list[str] = Field(default_factory=list)
    sat: list[str] = Field(default_factory=list)
    sun: list[str] = Field(default_factory=list)
    holidays: list[date] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)

    @field_validator("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    @classmethod
    def _ranges(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_range(text)
        return value

    def ranges(self, day: Weekday) -> list[tuple[int, int]]:
        return [parse_range(text) for text in getattr(self, day)]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def is_open(moment: datetime, schedule: Schedule) -> bool:
    """Whether `moment` (timezone-aware) is inside the schedule's opening hours,
    read on the wall clock of the schedule's timezone. Holidays are closed all day."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: business hours need a timezone-aware moment")
    local = moment.astimezone(schedule.zone)
    if local.date() in schedule.holidays:
        return False
    minute = local.hour * 60 + local.minute
    return any(start <= minute < end for start, end in schedule.ranges(WEEKDAYS[local.weekday()]))
