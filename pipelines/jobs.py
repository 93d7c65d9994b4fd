"""The daily job (every asset for one district-day), its schedule, the landing-zone sensor and the freshness job.

Built by the root from the deployment's partitions and the domains' landing sources, never at import.
"""

# No ``from __future__ import annotations``: Dagster inspects the context and resource annotations.
import json
from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from connectors.channels import channels
from kernel.landing import landing_signatures
from kernel.partitions import partition_key
from kernel.resource import NeuronResource
from kernel.runs import bury
from kernel.settings import Settings, load_settings

DAILY_JOB = "daily_job"
DAILY_SCHEDULE = "daily_job_schedule"
FRESHNESS_SCHEDULE = "landing_freshness_schedule"
AUTOMATION_SENSOR = "export_automation_sensor"


# one process per step, as many at once as there are cores, forked from a server that has imported Neuron and
# great-expectations once (pipelines/preload.py) instead of spawned to import them again for each of ~180 steps. A
# default run config of Dagster's default executor, not a fixed executor: an operator (or a re-execution) can still
# ask for `execution: {config: {in_process: {}}}`.
DAILY_RUN_CONFIG = {"execution": {"config": {"multiprocess": {
    "start_method": {"forkserver": {"preload_modules": ["pipelines.preload"]}}}}}}


def daily_run_config(settings: Settings | None) -> dict:
    """``DAILY_RUN_CONFIG`` with the steps at once set from ``NEURON_STEP_CONCURRENCY`` (Dagster's default, the host's
    core count, sizes nothing: a run pod on a large node would start a step per core, each up to
    ``NEURON_STEP_MEMORY_MB``)."""
    multiprocess = {**DAILY_RUN_CONFIG["execution"]["config"]["multiprocess"],
                    "max_concurrent": settings.step_concurrency if settings is not None else 2}
    return {"execution": {"config": {"multiprocess": multiprocess}}}


# NEURON_EXECUTOR=celery: each step is a Celery task on this queue, run by a worker (pipelines/celery_worker.py,
# deploy/celery/README.md) wherever it runs; the lake must be one every worker reaches (NEURON_LAKE_URI=s3://...)
CELERY_QUEUE = "neuron"


def celery_app_config(broker: str | dict, backend: str | dict) -> dict:
    """The Celery executor's config, the same on both sides: the run's process submits each step with it
    (``daily_job``), a worker takes them with it (``pipelines.celery_worker``).

    A worker process runs one step at a time, and a worker takes a step off the queue only when it has a free
    process (``worker_disable_prefetch``, Redis brokers; Celery's default reserves one more step per process:
    it waits behind a long step while another worker is idle, and a worker killed takes it down too). Worker
    processes are forked from the worker's main process, which imported Neuron once (``pipelines.preload``), and
    run step after step: a fresh process per step cost ~2 s each (a 1-community day took 315 s on two workers
    instead of 152 s), while a reused one grew by ~80 MB over 75 steps. One that has grown past 2 GiB (a large
    DuckDB step's memory kept by the allocator) is replaced after its step. A step is acknowledged when a worker
    starts it (Celery's default): a worker killed in a step loses it (deploy/celery/README.md)."""
    return {"broker": broker, "backend": backend,
            "config_source": {"task_default_queue": CELERY_QUEUE, "worker_prefetch_multiplier": 1,
                              "worker_disable_prefetch": True,
                              "worker_max_memory_per_child": 2 * 2**20}}  # KiB


def _celery_executor(settings: Settings) -> dg.ExecutorDefinition:
    from dagster_celery import celery_executor  # only on this path: the default one never imports Celery

    # the variables, not their values: a broker or backend URL may hold a password, and a configured executor's
    # values are shown in the UI and stored with every run; Dagster reads them where the run starts
    backend = {"env": "NEURON_CELERY_BACKEND"} if settings.celery_backend else "rpc://"
    return celery_executor.configured(celery_app_config({"env": "NEURON_CELERY_BROKER"}, backend),
                                      name="neuron_celery")


def daily_job(partitions: dg.PartitionsDefinition, settings: Settings | None = None) -> UnresolvedAssetJobDefinition:
    """The daily job; with ``settings.executor == "celery"`` its steps run on Celery workers (no run config:
    the executor is configured), otherwise in forked processes on the run's host (``DAILY_RUN_CONFIG``)."""
    celery = settings is not None and settings.executor == "celery"
    return dg.define_asset_job(
        DAILY_JOB,
        # the incident feed is unpartitioned and has its own job (exports.incidents)
        selection=dg.AssetSelection.all() - dg.AssetSelection.groups("incidents"),
        partitions_def=partitions,
        description="Everything for one district-day: landing -> bronze -> silver -> gold -> exports -> warehouse.",
        config=None if celery else daily_run_config(settings),
        executor_def=_celery_executor(settings) if celery else None,
    )


def daily_schedule(job: UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    """Day D closes at 02:00 on D+1 (the lateness window), then the whole day is built and published.

    Off until an operator turns it on (a deployment decides when it starts publishing to the district)."""
    return dg.build_schedule_from_partitioned_job(
        job, hour_of_day=2, minute_of_hour=0, name=DAILY_SCHEDULE,
        description="Builds and publishes the previous day at 02:00 (Asia/Shanghai). Off by default: turn it on "
                    "when the deployment may publish to the district.")


def landing_sensor(job: UnresolvedAssetJobDefinition, sources: tuple[str, ...],
                   partitions: dg.PartitionsDefinition) -> dg.SensorDefinition:
    @dg.sensor(name="landing_sensor", job=job, minimum_interval_seconds=30,
               default_status=dg.DefaultSensorStatus.STOPPED,
               description="Starts the daily job for a closed day when new or changed landing files appear for it; "
                           "a late file re-materialises the day and publishes a correction.")
    def _sensor(context: dg.SensorEvaluationContext, neuron: NeuronResource) -> dg.SensorResult:
        root = neuron.settings
        # the cursor: partition key -> landing signature (a district's days are keyed day|district)
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        today = datetime.now(ZoneInfo(root.timezone)).date().isoformat()
        valid = set(partitions.get_partition_keys())
        requests = []
        for settings in root.each_district():
            for day, sig in sorted(landing_signatures(settings.landing_dir, sources).items()):
                key = str(partition_key(settings, day, settings.district))
                if seen.get(key) == sig:
                    continue
                if key in valid and day < today:
                    requests.append(dg.RunRequest(run_key=f"{key}:{sig}", partition_key=key))
                else:
                    context.log.info(f"landing files for {key} are waiting: the day is not closed (or out of range)")
                    continue
                seen[key] = sig
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(seen, sort_keys=True))

    return _sensor


PUSH_SENSOR = "push_observation_sensor"


def push_sensor(sources: tuple[str, ...], partitions: dg.PartitionsDefinition) -> dg.SensorDefinition:
    """The pushed sources as observed assets: what the collector (a service beside the daemon, deploy/) has
    landed for today and yesterday, recorded as an observation of ``landing/<source>`` whenever it changed."""
    pushed = tuple(s for s in sources if "push" in channels(s))

    @dg.sensor(name=PUSH_SENSOR, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
               asset_selection=dg.AssetSelection.assets(*[dg.AssetKey(["landing", s]) for s in pushed]),
               description="Observes what the push collector landed (closed minute files and bytes per pushed "
                           "source, today and yesterday): the pushed landing assets' history between runs.")
    def _sensor(context: dg.SensorEvaluationContext, neuron: NeuronResource) -> dg.SensorResult:
        from datetime import timedelta

        root = neuron.settings
        # the cursor: "<source>/<day>" (a district's "<source>/<district>/<day>") -> [files, bytes]
        seen: dict[str, list[int]] = json.loads(context.cursor) if context.cursor else {}
        today = datetime.now(ZoneInfo(root.timezone)).date()
        valid = set(partitions.get_partition_keys())
        events = []
        for settings in root.each_district():
            district = settings.district
            for day in (today - timedelta(days=1), today):
                key = day.isoformat()
                pkey = str(partition_key(settings, key, district))
                for source in pushed:
                    files = [p for p in (settings.landing_dir / source / key).glob("*/push-*")
                             if p.is_file() and not p.name.endswith(".part")]  # .part: a minute still open
                    if not files:
                        continue
                    state = [len(files), sum(p.stat().st_size for p in files)]
                    where = f"{source}/{district}/{key}" if district else f"{source}/{key}"
                    if seen.get(where) == state:
                        continue
                    seen[where] = state
                    newest = max(p.name.split("-")[1] for p in files)
                    events.append(dg.AssetObservation(
                        asset_key=dg.AssetKey(["landing", source]), partition=pkey if pkey in valid else None,
                        metadata={"day": key, **({"district": district} if district else {}),
                                  "push_files": state[0], "push_bytes": state[1], "newest_push_minute": newest}))
        for k in [k for k in seen if k.split("/")[-1] < (today - timedelta(days=1)).isoformat()]:
            del seen[k]
        return dg.SensorResult(asset_events=events, cursor=json.dumps(seen, sort_keys=True))

    return _sensor


def freshness(checks: list[dg.AssetChecksDefinition], timezone: str) -> tuple[UnresolvedAssetJobDefinition,
                                                                               dg.ScheduleDefinition]:
    """A job evaluating every landing source's freshness check, every 15 minutes, on wherever the daemon runs:
    it only reads file times, and a feed that stopped should show before the day closes."""
    job = dg.define_asset_job("landing_freshness_job", selection=dg.AssetSelection.checks(*checks),
                              description="Evaluate every landing source's freshness check.")
    return job, dg.ScheduleDefinition(
        name=FRESHNESS_SCHEDULE, job=job, cron_schedule="*/15 * * * *", execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every 15 minutes: is each landing source's newest file younger than its cycle? (warns only)")


def automation_sensor() -> dg.AutomationConditionSensorDefinition:
    """Evaluates the export assets' automation conditions (``exports/definitions.py``: eager once every blocking
    check upstream passed), so a gold partition re-materialised by hand (a backfill, a fix from the UI) is
    re-exported as a correction without a second run. On where the daemon runs; the daily job and the landing
    sensor build exports in their own runs, so the sensor only acts on what they did not cover."""
    return dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR, target=dg.AssetSelection.key_prefixes(["export"]), default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        description="Re-exports a gold partition updated outside the daily job (exports' automation conditions: "
                    "eager, once every blocking check upstream passed)")


def dead_run_sensor() -> dg.SensorDefinition:
    """Where the daemon runs (``make ui``, production): runs whose worker died are marked failed and their pool
    slots freed within a minute, so a SIGKILLed run never blocks the pools of every later run."""

    @dg.sensor(name="dead_run_sensor", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
               description="Marks runs whose worker process died (on Celery: whose step was lost with its worker) "
                           "as failed and frees the pool slots held by runs that are no longer live (what a SIGKILL "
                           "leaves behind).")
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        lost_note = ""
        settings = load_settings()
        if settings.executor == "celery":  # a step lost with its worker: the run would wait for ever
            from pipelines.celery_health import fail_lost_runs, lost_steps

            lost = lost_steps(context.instance, settings.celery_broker)
            failed = fail_lost_runs(context.instance, lost, set(filter(None, (context.cursor or "").split(","))))
            context.update_cursor(",".join(step.key for step in lost))
            lost_note = f"; {len(lost)} step(s) lost with their Celery worker, {len(failed)} run(s) failed for it"
        burial = bury(context.instance)
        return dg.SkipReason(f"marked {len(burial.runs_failed)} dead run(s) failed, freed {burial.slots_freed} "
                             f"pool slot(s){lost_note}")

    return _sensor
