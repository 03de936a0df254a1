"""When a campaign message may reach someone: the sending window in the
recipient's own timezone (Vietnam's rule for advertising: 07:00 to 22:00).
Pure functions of a moment and a zone."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.inbox.model import utc_ms


@lru_cache(maxsize=512)
def zone_of(name: str | None, default: str) -> ZoneInfo:
    """The contact's zone, or the default when theirs is unset or unknown."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(default)


def parse_time(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def window_opens(
    now: datetime, zone: ZoneInfo, send_from: time, send_until: time
) -> datetime | None:
    """None when `now` is inside the window [send_from, send_until) of local time
    in `zone`; otherwise the (UTC) moment the window next opens. A window whose
    end is before its start runs over midnight; equal ends mean "always open"."""
    if send_from == send_until:
        return None
    local = now.astimezone(zone)
    moment = local.time().replace(tzinfo=None)
    if send_from < send_until:
        inside = send_from <= moment < send_until
    else:
        inside = moment >= send_from or moment < send_until
    if inside:
        return None
    day = local.date() if moment < send_from else local.date() + timedelta(days=1)
    opens = datetime.combine(day, send_from, tzinfo=zone)
    return utc_ms(opens)


def local_day(now: datetime, zone: ZoneInfo) -> str:
    """The recipient's calendar day (for daily caps), as YYYY-MM-DD."""
    return now.astimezone(zone).date().isoformat()
