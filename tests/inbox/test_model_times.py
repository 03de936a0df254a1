"""Stored moments: UTC, whole milliseconds, the same whatever zone they came in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.inbox.model import EPOCH, from_ms, to_ms, utc_ms

zones = st.sampled_from(
    [UTC, timezone(timedelta(0)), timezone(timedelta(hours=7)), timezone(-timedelta(hours=9.5))]
)
moments = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=zones
)


@given(moments)
def test_a_moment_is_kept_in_utc_to_the_millisecond(moment: datetime) -> None:
    kept = utc_ms(moment)
    in_utc = moment.astimezone(UTC)
    assert kept == in_utc.replace(microsecond=in_utc.microsecond // 1000 * 1000)
    assert kept.tzinfo is UTC
    assert utc_ms(kept) is kept  # already kept: the same object back


@given(moments)
def test_milliseconds_since_the_epoch_are_exact_and_round_trip(moment: datetime) -> None:
    kept = utc_ms(moment)
    assert to_ms(kept) == (kept - EPOCH) // timedelta(milliseconds=1)
    assert from_ms(to_ms(kept)) == kept


def test_a_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        utc_ms(datetime(2026, 11, 29, 9, 0))
