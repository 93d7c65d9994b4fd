"""Daily partitions in Asia/Shanghai: the community is a column, so one run handles a whole district-day."""

from __future__ import annotations

import dagster as dg

from pipelines.settings import load_settings

_settings = load_settings()

daily = dg.DailyPartitionsDefinition(start_date=_settings.partitions_start, timezone=_settings.timezone)
