"""The partitions: a day in the configured time zone, and, when the deployment serves several districts
(``NEURON_DISTRICTS``), a district. The community is a column, so one run handles one district-day.

- One district (NEURON_DISTRICTS unset): daily partitions, keys ``2026-03-05``.
- Several: ``MultiPartitionsDefinition`` of ``date`` (the same daily partitions) × ``district`` (static, the
  configured list), keys ``2026-03-05|putuo`` (Dagster orders dimensions by name). Why static and not dynamic
  partitions: the districts are a short list fixed by the deployment's contract (Shanghai has 16), the list is
  part of the code location's configuration like the start date, and a static dimension gives per-district
  backfills and status in the UI with no sensor or instance state to keep in step; a new district is a
  configuration change and a redeploy (docs/scale.md).

Built from settings by the definitions loader (never at import), so the start date and time zone are the
ones the deployment configured. Code never splits a key itself: ``day_of`` and ``district_of`` do.
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
    """The daily partitions of a code location (the same object for equal settings): the time dimension."""
    return _daily(settings.partitions_start, settings.timezone)


DATE, DISTRICT = "date", "district"


@functools.cache
def _by_district(start_date: str, timezone: str, districts: tuple[str, ...]) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition({DATE: _daily(start_date, timezone),
                                         DISTRICT: dg.StaticPartitionsDefinition(list(districts))})


def partitions_def(settings: Settings) -> dg.PartitionsDefinition:
    """The partitions of every partitioned asset and job: daily, or date × district when districts are set."""
    if settings.districts:
        return _by_district(settings.partitions_start, settings.timezone, settings.districts)
    return daily_partitions(settings)


def day_of(key: str) -> str:
    """The day of a partition key (``2026-03-05`` or ``2026-03-05|putuo``)."""
    if isinstance(key, dg.MultiPartitionKey):
        return key.keys_by_dimension[DATE]
    return key.split("|", 1)[0]


def district_of(key: str | None) -> str:
    """The district of a partition key, "" for a daily key (a one-district deployment)."""
    if not key:
        return ""
    if isinstance(key, dg.MultiPartitionKey):
        return key.keys_by_dimension[DISTRICT]
    return key.split("|", 1)[1] if "|" in key else ""


def partition_key(settings: Settings, day: str, district: str = "") -> str:
    """The partition key of ``day`` (in ``district`` when the deployment has districts)."""
    if not settings.districts:
        if district:
            raise ValueError(f"district {district!r} given, but NEURON_DISTRICTS is unset")
        return day
    if district not in settings.districts:
        raise ValueError(f"district {district!r} is not one of NEURON_DISTRICTS ({', '.join(settings.districts)})")
    return dg.MultiPartitionKey({DATE: day, DISTRICT: district})


def day_bounds(day: str, tz: str) -> tuple[str, str]:
    """ISO strings of [start, end) of the local day, with offset."""
    d = date.fromisoformat(day)
    start = datetime.combine(d, time(0), ZoneInfo(tz))
    end = datetime.combine(d + timedelta(days=1), time(0), ZoneInfo(tz))
    return start.isoformat(), end.isoformat()
