"""The one clock codebot reads "today" from.

A `Clock` is any callable returning today's date. It is created once at start-up
(`clock_from_settings`, from `CODEBOT_TODAY` when set, else the UTC calendar date) and passed
to whatever needs "today" (the service, the catalog's default as-of date, the CLI). Nothing
deep inside calls `date.today()`, so tests pin the date and a demo can run "as of" any day.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

Clock = Callable[[], date]


def utc_today() -> date:
    """Today's calendar date in UTC (claims are dated by day; UTC keeps replicas agreeing)."""
    return datetime.now(UTC).date()


def fixed_clock(day: date) -> Clock:
    """A clock that always says `day` (tests, `CODEBOT_TODAY`)."""

    def today() -> date:
        return day

    return today


def clock_from_settings(today: str) -> Clock:
    """The process clock: pinned to `today` (ISO date, from settings) when given, else UTC.

    Raises ValueError for a malformed date; `Settings` validates it first.
    """
    if today:
        return fixed_clock(date.fromisoformat(today))
    return utc_today
