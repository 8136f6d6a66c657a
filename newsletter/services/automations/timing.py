"""When a wait step ends: after a duration, and/or at the next time of day in the subscriber's timezone."""
from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

TIME_OF_DAY = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
TIMEZONE_ATTRIBUTE = "timezone"  # the subscriber attribute holding an IANA zone ("Europe/Lisbon")


def zone(name: str | None, fallback: str = "UTC") -> ZoneInfo:
    """The zone called `name`, else `fallback`'s, else UTC (a subscriber's typo never fails a run)."""
    for candidate in (name, fallback):
        if candidate:
            try:
                return ZoneInfo(str(candidate))
            except (ZoneInfoNotFoundError, ValueError, OSError):
                continue
    return ZoneInfo("UTC")


def parse_time_of_day(value: str) -> time:
    match = TIME_OF_DAY.match(value or "")
    if not match:
        raise ValueError(f"{value!r} is not a time of day HH:MM (00:00 to 23:59)")
    return time(int(match.group(1)), int(match.group(2)))


def next_time_of_day(after: datetime, at: time, tz: ZoneInfo) -> datetime:
    """The first instant at or after `after` when the wall clock in `tz` shows `at` (in UTC).

    A time skipped by a daylight-saving jump (02:30 on a spring-forward night) is read with the
    offset before the jump, so it lands one hour later by the new clock; a time that occurs
    twice (autumn) is its first occurrence.
    """
    local = after.astimezone(tz)
    for days in range(0, 3):
        day = local.date() + timedelta(days=days)
        candidate = datetime.combine(day, at, tzinfo=tz).astimezone(UTC)
        if candidate >= after:
            return candidate
    raise AssertionError("unreachable: a time of day recurs within two days")


def wait_until(now: datetime, minutes: int = 0, at: str | None = None, timezone: str | None = None,
               fallback_timezone: str = "UTC") -> datetime:
    """The end of a wait that starts at `now`: `minutes` later, then (when `at` is set) the next
    `at` o'clock in `timezone` (the subscriber's), else `fallback_timezone` (the step's)."""
    until = now + timedelta(minutes=minutes)
    if at:
        until = next_time_of_day(until, parse_time_of_day(at), zone(timezone, fallback_timezone))
    return until
