"""The daily job runs with the executor production uses: one process per step, forked from a server that has
imported Neuron and great-expectations once (pipelines/preload.py). The benchmark bench/district_day.py measures
what that buys; these tests keep it working."""

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
from dagster._config import process_config
from dagster._core.definitions.reconstruct import ReconstructableRepository

from kernel.settings import child_environment

ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-03-02"


def test_the_preload_starts_no_thread_and_leaves_a_forked_step_nothing_to_import_or_build():
    """A fork copies only the forking thread: a thread started by an import would be missing in every step process.
    What a step process does before Neuron's code (reconstruct the job from its pointer, open the instance's
    storages) must find everything imported and the job built by the preload: it cost about 0.9 s a step before."""
    code = """if True:
        import sys, tempfile, os, threading
        import pipelines.preload
        assert threading.active_count() == 1, threading.enumerate()
        assert "great_expectations" in sys.modules and "pipelines.definitions" in sys.modules
        import dagster as dg
        from dagster._core.definitions.reconstruct import ReconstructableRepository
        from dagster._core.instance.ref import InstanceRef
        before = set(sys.modules)
        repo = ReconstructableRepository.for_module("pipelines.definitions", "defs", os.getcwd())
        job = repo.get_reconstructable_job("daily_job")
        # the daily job is already in the repository's cache of built jobs (a Dagster internal, read only here)
        assert "daily_job" in job.get_repository_definition()._repository_data._jobs._definition_cache
        job.get_definition()
        with dg.DagsterInstance.from_ref(InstanceRef.from_dir(tempfile.mkdtemp())) as instance:
            instance.get_runs(limit=1)
        new = sorted(m for m in set(sys.modules) - before if not m.startswith(("encodings", "_")))
        assert not new, new
        print("ok")
    """
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env=child_environment(PYTHONPATH=str(ROOT)), timeout=120)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


def test_the_daily_job_runs_its_steps_in_forked_processes(data_root: Path):
    from pipelines.definitions import defs
    from simulator.district import simulate_day

    job_def = defs.resolve_job_def("daily_job")
    # a scheduled, sensor-started or UI-launched run of a day gets the job's run config for that day
    day_config = job_def.partitioned_config.get_run_config_for_partition_key(DAY)

    simulate_day(data_root / "landing", date.fromisoformat(DAY), n_communities=1, seed=3)
    selection = [dg.AssetKey(["landing", "device_registry"]), dg.AssetKey(["bronze", "device_registry"])]
    job = ReconstructableRepository.for_module("pipelines.definitions", "defs", str(ROOT)
                                               ).get_reconstructable_job("daily_job")
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(job, instance, tags={"dagster/partition": DAY}, asset_selection=selection,
                                run_config=day_config)
        assert result.success
        start = instance.get_run_by_id(result.run_id).run_config["execution"]["config"]["multiprocess"]
        assert start["start_method"] == {"forkserver": {"preload_modules": ["pipelines.preload"]}}
        stats = instance.get_run_step_stats(result.run_id)
        logs = instance.all_logs(result.run_id)
    steps = {s.step_key for s in stats}
    assert {"landing_pull", "bronze_device_registry"} <= steps, steps
    # every step ran in a process of its own, not in the run's process
    pids = {r.dagster_event.step_key: r.dagster_event.event_specific_data.metadata["pid"].value
            for r in logs if r.dagster_event and r.dagster_event.event_type_value == "STEP_WORKER_STARTED"}
    assert set(pids) == steps and len(set(pids.values())) == len(steps)
    assert str(os.getpid()) not in pids.values()
    mats = [m for r in logs if r.dagster_event and r.dagster_event.event_type_value == "ASSET_MATERIALIZATION"
            for m in [r.dagster_event.event_specific_data.materialization]
            if m.asset_key == dg.AssetKey(["bronze", "device_registry"])]
    assert mats and mats[0].metadata["dagster/row_count"].value > 0


def test_the_daily_job_can_still_run_in_process():
    """An operator's launch config (or a re-execution) may ask for the in-process executor."""
    from pipelines.definitions import defs

    job_def = defs.resolve_job_def("daily_job")
    assert job_def.executor_def.name == "multi_or_in_process_executor"
    config = {"execution": {"config": {"in_process": {}}}}
    assert process_config(job_def.run_config_schema.config_type, config).success
