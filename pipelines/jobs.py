"""The daily job (every asset for one district-day), its schedule and the landing-zone sensor."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg

from pipelines.freshness import SOURCE_CYCLES_H
from pipelines.partitions import daily
from pipelines.resources import NeuronResource

daily_job = dg.define_asset_job(
    "daily_job",
    selection=dg.AssetSelection.all(),
    partitions_def=daily,
    description="Everything for one district-day: landing -> bronze -> silver -> gold -> exports -> warehouse.",
)

# Day D closes at 02:00 on D+1 (the lateness window), then the whole day is built and published.
daily_schedule = dg.build_schedule_from_partitioned_job(daily_job, hour_of_day=2, minute_of_hour=0)

LANDING_SOURCES = tuple(SOURCE_CYCLES_H)


def landing_signatures(landing: Path) -> dict[str, str]:
    """Per day folder: '<files>:<newest mtime ns>' over all sources (cheap: one stat per file)."""
    sigs: dict[str, tuple[int, int]] = {}
    for source in LANDING_SOURCES:
        root = landing / source
        if not root.exists():
            continue
        for day_dir in root.iterdir():
            if not day_dir.is_dir():
                continue
            files = [p for p in day_dir.rglob("*") if p.is_file() and not p.name.endswith(".part")]
            if not files:
                continue
            n, newest = sigs.get(day_dir.name, (0, 0))
            sigs[day_dir.name] = (n + len(files), max(newest, *(p.stat().st_mtime_ns for p in files)))
    return {day: f"{n}:{m}" for day, (n, m) in sigs.items()}


@dg.sensor(job=daily_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Starts the daily job for a closed day when new or changed landing files appear for it; "
                       "a late file re-materialises the day and publishes a correction.")
def landing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    settings = NeuronResource().settings
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    current = landing_signatures(settings.landing_dir)
    today = datetime.now(ZoneInfo(settings.timezone)).date().isoformat()
    valid = set(daily.get_partition_keys())
    requests = []
    for day, sig in sorted(current.items()):
        if seen.get(day) == sig:
            continue
        if day in valid and day < today:
            requests.append(dg.RunRequest(run_key=f"{day}:{sig}", partition_key=day))
        else:
            context.log.info(f"landing files for {day} are waiting: the day is not closed (or out of range)")
            continue
        seen[day] = sig
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(seen, sort_keys=True))
