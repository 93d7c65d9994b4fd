"""Daily partitions in the configured time zone: the community is a column, so one run handles a district-day.

Built from settings by the definitions loader (never at import), so the start date and time zone are the
ones the deployment configured.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from kernel.settings import Settings


@functools.cache
def _daily(start_date: str, timezone: str) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=start_date, timezone=timezone)


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    """The one daily partitions definition of a code location (the same object for equal settings)."""
    return _daily(settings.partitions_start, settings.timezone)


def day_bounds(day: str, tz: str) -> tuple[str, str]:
    """ISO strings of [start, end) of the local day, with offset."""
    d = date.fromisoformat(day)
    start = datetime.combine(d, time(0), ZoneInfo(tz))
    end = datetime.combine(d + timedelta(days=1), time(0), ZoneInfo(tz))
    return start.isoformat(), end.isoformat()
