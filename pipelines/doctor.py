"""`neuron doctor`: list (and with --repair, clear) what a killed or crashed run can leave behind.

- runs recorded as STARTED whose worker process is gone: marked failed;
- pool slots (``duckdb_warehouse``, ``neuron_ingest``) still held by runs that are no longer live: freed;
- temporary folders and files of interrupted writes (lake ``.tmp-date=…``/``.trash-date=…``, outbox
  ``.tmp-<day>-…``, warehouse ``.neuron.duckdb.*.tmp``, Data Docs ``.<page>.*.tmp``, landing ``.<file>.*.tmp`` of a
  pull or the collector older than 10 minutes, DuckDB spill and staging files): removed, but only while no run is
  live (a live run may be writing them; the collector, which runs beside the runs, finishes a write in
  milliseconds, hence the age).

A day lease held by a run that is no longer live needs nothing: the next run of the day takes it over.
Every step also removes the leftovers of its own partition before it writes, so a re-run repairs itself;
the doctor is for an operator who wants to see the state, or to unblock a pool before the next run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from connectors.landing import stale_temp
from exports import filedrop
from kernel.lake import open_lake, remove_paths
from kernel.runs import LIVE_STATUSES, bury, dead_runs, run_is_live
from kernel.settings import Settings
from quality.data_docs import DataDocsSite
from quality.gx_checks import data_docs_dir
from warehouse import catalog

LANDING_TEMP_AGE_S = 600


@dataclass
class Report:
    found: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    live_runs: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.found or len(self.repaired) >= len(self.found)


def _temp_leftovers(root: Settings) -> list[Path | str]:
    """What each writer calls its own leftovers (lake, warehouse, outbox), plus DuckDB spill and staging files, in
    every district's sub-root (``NEURON_DISTRICTS``). On object storage the lake's are ``s3://`` commit prefixes no
    pointer names (``ObjectLake.orphans``)."""
    cutoff = time.time() - LANDING_TEMP_AGE_S
    found: list[Path | str] = []
    for settings in root.each_district():
        landing = [p for p in stale_temp(settings.landing_dir) if p.stat().st_mtime < cutoff]
        lake = open_lake(settings)
        found += [*(lake.leftovers() if settings.lake_uri else lake.stale_temp()),
                  *catalog.leftovers(settings.warehouse_path), *landing, *filedrop.leftovers(settings.outbox_dir),
                  *DataDocsSite(data_docs_dir(settings.quality_dir)).stale_temp()]
    return found + (sorted(root.duckdb_tmp.iterdir()) if root.duckdb_tmp.exists() else [])


def diagnose(instance: dg.DagsterInstance, settings: Settings, repair: bool = False) -> Report:
    report = Report()
    dead = [r.run_id for r in dead_runs(instance)]
    report.found += [f"run {run_id} is STARTED but its worker is gone" for run_id in dead]
    storage = instance.event_log_storage
    held = [run_id for run_id in (storage.get_concurrency_run_ids()
                                  if storage.supports_global_concurrency_limits else [])
            if not run_is_live(instance, run_id)]
    report.found += [f"pool slots held by run {run_id}, which is not live" for run_id in held]
    report.live_runs = [r.run_id for r in instance.get_runs(filters=dg.RunsFilter(statuses=list(LIVE_STATUSES)))
                        if r.run_id not in dead]
    temp = _temp_leftovers(settings)
    report.found += [f"leftover of an interrupted write: {p}" for p in temp]
    if not repair:
        return report
    burial = bury(instance)
    report.repaired += [f"marked run {run_id} failed" for run_id in burial.runs_failed]
    report.repaired += [f"freed pool slots of run {run_id}" for run_id in held] if burial.slots_freed or held else []
    if not report.live_runs:  # a live run may be writing them: then they stay, and the report says why
        for p in temp:
            open_lake(settings).remove_leftovers([p]) if isinstance(p, str) else remove_paths([p])
            report.repaired.append(f"removed {p}")
    return report


def render(report: Report, repair: bool) -> str:
    lines = [f"found: {item}" for item in report.found] or ["nothing left behind by a killed run"]
    lines += [f"repaired: {item}" for item in report.repaired]
    if report.live_runs:
        lines.append(f"live runs: {', '.join(report.live_runs)} (temporary files are left to them)")
    if report.found and not repair:
        lines.append("run `neuron doctor --repair` to clear these")
    return "\n".join(lines)
