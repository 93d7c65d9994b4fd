"""Landing-zone retention: raw deliveries (the only place raw personal data lives) are purged after a window.

A day folder is removed only when it is older than the window AND its day has been published, so a
backlog is never destroyed before it was processed; what stays past the window is reported, not deleted.
"""


import shutil
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg

from connectors.landing import WIRE
from kernel.resource import NeuronResource

_SIM_FOLDERS = ("_canaries", "_truth")


@dataclass
class PurgeReport:
    removed: list[str] = field(default_factory=list)
    kept_unpublished: list[str] = field(default_factory=list)
    bytes_freed: int = 0


def published_days(outbox: Path) -> set[str]:
    """Days with at least one published batch: ``<consumer>/<dataset>/<day>/v<N>/manifest.json`` (and
    ``<day>/manifest.json`` of the layout before version folders, until the day is re-exported)."""
    if not outbox.exists():
        return set()
    return ({m.parent.parent.name for m in outbox.glob("*/*/*/v*/manifest.json")}
            | {m.parent.name for m in outbox.glob("*/*/*/manifest.json")})


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def purge_landing(landing: Path, outbox: Path, today: date, days: int, dry_run: bool = False) -> PurgeReport:
    """Remove ``landing/<source>/<yyyy-mm-dd>/`` folders older than ``days`` whose day was published."""
    cutoff = (today - timedelta(days=days)).isoformat()
    published = published_days(outbox)
    report = PurgeReport()
    if not landing.exists():
        return report
    sources = [p for p in landing.iterdir() if p.is_dir() and p.name not in ("_truth", WIRE)]
    for nested in (landing / "_truth", landing / WIRE):  # _truth/<domain>/<day>, _wire/<source>/<day> (provenance)
        sources += [p for p in nested.iterdir() if p.is_dir()] if nested.exists() else []
    for source in sorted(sources):
        for day_dir in sorted(p for p in source.iterdir() if p.is_dir() or p.suffix == ".json"):
            day = day_dir.name.removesuffix(".json")
            if len(day) != 10 or day >= cutoff:
                continue
            # simulator side files (canaries, ground truth) follow their day; real feeds need publication
            if source.name not in _SIM_FOLDERS and source.parent.name != "_truth" and day not in published:
                report.kept_unpublished.append(f"{source.name}/{day}")
                continue
            report.bytes_freed += _size(day_dir) if day_dir.is_dir() else day_dir.stat().st_size
            report.removed.append(str(day_dir.relative_to(landing)))
            if not dry_run:
                shutil.rmtree(day_dir) if day_dir.is_dir() else day_dir.unlink()
    return report


@dg.op(description="Purge landing-zone day folders older than NEURON_LANDING_RETENTION_DAYS once published.")
def purge_landing_op(context: dg.OpExecutionContext, neuron: NeuronResource) -> dg.Output:
    root = neuron.settings
    today = datetime.now(ZoneInfo(root.timezone)).date()
    report = PurgeReport()
    for s in root.each_district():  # each district's landing against its own outbox
        one = purge_landing(s.landing_dir, s.outbox_dir, today, s.landing_retention_days)
        prefix = f"{s.district}/" if s.district else ""
        report.removed += [prefix + r for r in one.removed]
        report.kept_unpublished += [prefix + k for k in one.kept_unpublished]
        report.bytes_freed += one.bytes_freed
    if report.kept_unpublished:
        context.log.warning(f"{len(report.kept_unpublished)} landing folders are past retention but unpublished")
    return dg.Output(None, metadata={"removed": len(report.removed), "bytes_freed": report.bytes_freed,
                                     "kept_unpublished": dg.MetadataValue.json(report.kept_unpublished[:50])})


@dg.job(name="landing_retention_job", description=purge_landing_op.description)
def landing_retention_job() -> None:
    purge_landing_op()


def landing_retention_schedule(timezone: str) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(job=landing_retention_job, cron_schedule="30 3 * * *", execution_timezone=timezone,
                                 default_status=dg.DefaultScheduleStatus.STOPPED)
