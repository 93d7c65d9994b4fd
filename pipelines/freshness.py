"""Source freshness: each landing source is an external asset whose check says whether its newest file
arrived within the source's expected delivery cycle (visible in the UI; WARN, it does not block)."""

import time

import dagster as dg

from pipelines.resources import NeuronResource

# source -> hours within which a new landing file is expected
SOURCE_CYCLES_H = {
    "telemetry": 2.0, "device_registry": 26.0,
    "access_events": 2.0, "vehicle_passages": 2.0, "parking": 2.0, "sites": 26.0,
    "property_services": 26.0, "governance": 26.0,
}
FRESHNESS_CHECK = "landing_fresh"

landing_specs = [
    dg.AssetSpec(["landing", source], group_name="landing", kinds={"file"},
                 description=f"Raw {source} deliveries under data/landing/{source}/<yyyy-mm-dd>/ "
                             f"(expected at least every {cycle:g} h).")
    for source, cycle in SOURCE_CYCLES_H.items()
]


def newest_file_age_h(root, now: float) -> tuple[float | None, str | None]:
    newest, where = None, None
    if root.exists():
        for p in root.rglob("*"):
            if p.is_file() and not p.name.endswith(".part"):
                m = p.stat().st_mtime
                if newest is None or m > newest:
                    newest, where = m, p.relative_to(root).parts[0]
    return (None, None) if newest is None else ((now - newest) / 3600, where)


def _build(source: str, cycle_h: float) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=dg.AssetKey(["landing", source]), name=FRESHNESS_CHECK, blocking=False,
                    description=f"newest {source} landing file is younger than {cycle_h:g} h")
    def _fresh(neuron: NeuronResource) -> dg.AssetCheckResult:
        age, folder = newest_file_age_h(neuron.settings.landing_dir / source, time.time())
        return dg.AssetCheckResult(
            passed=age is not None and age <= cycle_h, severity=dg.AssetCheckSeverity.WARN,
            metadata={"newest_file_age_h": round(age, 2) if age is not None else -1.0,
                      "expected_cycle_h": cycle_h, "newest_day_folder": folder or ""},
        )

    return _fresh


freshness_checks = [_build(s, c) for s, c in SOURCE_CYCLES_H.items()]
freshness_job = dg.define_asset_job(
    "landing_freshness_job",
    selection=dg.AssetSelection.checks(*freshness_checks),
    description="Evaluate every landing source's freshness check.",
)
freshness_schedule = dg.ScheduleDefinition(job=freshness_job, cron_schedule="*/15 * * * *",
                                           execution_timezone="Asia/Shanghai",
                                           default_status=dg.DefaultScheduleStatus.STOPPED)
