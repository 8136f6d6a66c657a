"""Wait steps: a duration, then the next time of day in the subscriber's timezone (pure functions)."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from newsletter.services.automations import timing


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_a_duration_only():
    assert timing.wait_until(utc(2026, 1, 5, 10, 0), minutes=90) == utc(2026, 1, 5, 11, 30)


def test_a_time_of_day_later_today_in_the_subscribers_zone():
    # Berlin is UTC+1 in winter: 14:30 there is 13:30 UTC.
    assert timing.wait_until(utc(2026, 1, 5, 10, 0), at="14:30", timezone="Europe/Berlin") == utc(2026, 1, 5, 13, 30)


def test_a_time_of_day_already_past_is_tomorrow():
    assert timing.wait_until(utc(2026, 1, 5, 20, 0), at="09:00", timezone="Europe/Berlin") == utc(2026, 1, 6, 8, 0)


def test_the_zone_decides_the_day():
    # 23:30 UTC on the 5th is already 08:30 on the 6th in Tokyo: 09:00 Tokyo is half an hour later.
    assert timing.wait_until(utc(2026, 1, 5, 23, 30), at="09:00", timezone="Asia/Tokyo") == utc(2026, 1, 6, 0, 0)


def test_duration_first_then_time_of_day():
    # Two days (to 07:00 New York on the 7th), then 09:00 New York (UTC-5 in January).
    assert timing.wait_until(utc(2026, 1, 5, 12, 0), minutes=2 * 24 * 60, at="09:00",
                             timezone="America/New_York") == utc(2026, 1, 7, 14, 0)


def test_summer_time_changes_the_offset():
    # 09:00 in Berlin is 07:00 UTC in July (UTC+2).
    assert timing.wait_until(utc(2026, 7, 1, 3, 0), at="09:00", timezone="Europe/Berlin") == utc(2026, 7, 1, 7, 0)


def test_a_time_skipped_by_spring_forward_lands_after_the_jump():
    # Berlin, 29 March 2026: 02:00 jumps to 03:00. 02:30 does not exist; it resolves to 01:30 UTC (03:30 local).
    until = timing.wait_until(utc(2026, 3, 29, 0, 0), at="02:30", timezone="Europe/Berlin")
    assert until == utc(2026, 3, 29, 1, 30)


def test_an_unknown_subscriber_zone_falls_back_to_the_steps():
    assert timing.wait_until(utc(2026, 1, 5, 10, 0), at="12:00", timezone="Mars/Olympus",
                             fallback_timezone="Europe/Berlin") == utc(2026, 1, 5, 11, 0)
    assert timing.wait_until(utc(2026, 1, 5, 10, 0), at="12:00", timezone=None) == utc(2026, 1, 5, 12, 0)


@pytest.mark.parametrize("bad", ["24:00", "9:00", "12:60", "noon", ""])
def test_bad_times_of_day_are_refused(bad):
    with pytest.raises(ValueError):
        timing.parse_time_of_day(bad)
