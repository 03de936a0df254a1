"""Time, injected wherever it matters so tests move it instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from hub.inbox.model import utc_ms


class Clock(Protocol):
    def now(self) -> datetime:
        """The current moment, timezone-aware UTC, millisecond precision."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return utc_ms(datetime.now(UTC))


class FrozenClock:
    """A clock that only moves when told to; for tests and benchmarks."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = utc_ms(start or datetime(2026, 1, 5, 2, 0, tzinfo=UTC))

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now = utc_ms(self._now + delta)
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = utc_ms(moment)
