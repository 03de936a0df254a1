"""When a `schedule` rule runs: the latest occurrence of its timing at a moment.

    [[care.rules]]
    name = "nudge-idle"
    event = "schedule"
    schedule = { every_minutes = 60 }
    when = { status = ["pending"], idle_hours = 48 }
    actions = [{ type = "reply", template = "still_there", once = "activity" }]

    [[care.rules]]
    name = "monday-review"
    event = "schedule"
    schedule = { at = "08:30", days = ["mon"] }
    when = { unassigned = true }
    actions = [{ type = "assign", team = "support" }]

An occurrence is a moment, the same for every process that asks (sweeps are
aligned to the clock: every 60 minutes runs on the hour), so it names the run
in the run's state and in the keys of what the run sends.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from hub.care.rules import Timing
from hub.routing.hours import WEEKDAYS

# Where the runs' state lives in the store (`channel_state`, by rule name).
STATE_ACCOUNT = "care"


def latest_occurrence(timing: Timing, now: datetime, zone: ZoneInfo) -> datetime | None:
    """The last moment at or before `now` when the rule was due to run, on one
    of its days (in `zone`); None when none falls in the past week."""
    if timing.every_minutes is not None:
        step = timing.every_minutes * 60
        local = now.astimezone(zone)
        # Aligned to local midnight, so "every 60 minutes" runs on the hour and
        # "every 1440 minutes" at midnight wherever the company is.
        midnight = datetime.combine(local.date(), time(), tzinfo=zone)
        since = int((local - midnight).total_seconds()) // step * step
        moment = midnight + timedelta(seconds=since)
        if WEEKDAYS[moment.weekday()] not in timing.days:
            return None
        return moment
    assert timing.at is not None
    hour, minute = (int(part) for part in timing.at.split(":"))
    local = now.astimezone(zone)
    for back in range(8):
        day = local.date() - timedelta(days=back)
        if WEEKDAYS[day.weekday()] not in timing.days:
            continue
        moment = datetime.combine(day, time(hour, minute), tzinfo=zone)
        if moment <= local:
            return moment
    return None
