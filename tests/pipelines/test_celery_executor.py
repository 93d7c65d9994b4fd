"""NEURON_EXECUTOR=celery: the daily job's steps run on two real Celery workers (dagster-celery, the machine's Redis
as broker, a throwaway PostgreSQL database as the instance), and give the lake the multiprocess executor gives.
Then a worker is SIGKILLed inside a step: what dagster-celery does about it, and the re-run's lake.

A selection of the job (``celery_cluster.SELECTION``: the telemetry chain, landing to silver, with its checks):
the whole 1-community day took 152 s on two workers, too long for the suite.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from datetime import date

import dagster as dg
import pytest

from tests.lake_hashes import folder_hashes
from tests.pipelines import celery_cluster as cc
from tests.services import postgres_database

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("celery")]
DAY = "2026-03-05"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """Two workers (w1, w2; one step at a time each) on the day's landing files, and the same selection of the
    day run with the multiprocess executor into a lake of its own, while the workers start."""
    from simulator.district import simulate_day

    tmp = tmp_path_factory.mktemp("celery")
    redis_db = cc.claim_redis_db()
    try:
        with postgres_database() as database:
            env = cc.environment(tmp / "data", tmp / "dagster_home", database, redis_db, tmp / "gate")
            (tmp / "gate").mkdir()
            (tmp / "logs").mkdir()
            simulate_day(tmp / "data" / "landing", date.fromisoformat(DAY), n_communities=1, seed=11)
            shutil.copytree(tmp / "data" / "landing", tmp / "local" / "landing")
            workers = cc.Workers(env, tmp / "logs")
            local = cc.Drivers({**env, "NEURON_DATA_DIR": str(tmp / "local"), "NEURON_EXECUTOR": "multiprocess"},
                               tmp / "logs" / "local")
            drivers = cc.Drivers(env, tmp / "logs")
            try:
                workers.start("w1")
                workers.start("w2")
                out = cc.wait_output(local.take(DAY, last=True))
                assert "success=True" in out, out[-3000:]
                workers.wait_ready(["w1", "w2"])
                yield tmp, env, workers, drivers, folder_hashes(tmp / "local" / "lake")
            finally:
                drivers.stop()
                workers.stop()
    finally:
        cc.release_redis_db(redis_db)


def _instance(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dg.DagsterInstance:
    for var in ("DAGSTER_HOME", "DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"):
        monkeypatch.setenv(var, env[var])
    return dg.DagsterInstance.get()


def _workers_of(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """step -> the Celery worker that executed it (the worker's engine event at the start of each step)."""
    out = {}
    for rec in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        metadata = rec.dagster_event.event_specific_data.metadata
        if "Celery worker" in metadata:
            out[rec.dagster_event.step_key] = metadata["Celery worker"].text
    return out


def _run_id(out: str) -> str:
    return out.split("run ")[-1].split()[0]


def test_the_daily_job_runs_on_two_celery_workers_and_gives_the_multiprocess_lake(cluster, monkeypatch):
    tmp, env, workers, drivers, local_lake = cluster
    out = cc.wait_output(drivers.take(DAY))
    assert "success=True" in out, out[-3000:]
    with _instance(env, monkeypatch) as instance:
        run = instance.get_run_by_id(_run_id(out))
        assert run.status == dg.DagsterRunStatus.SUCCESS and run.tags["dagster/partition"] == DAY
        ran = _workers_of(instance, run.run_id)
        stats = {s.step_key for s in instance.get_run_step_stats(run.run_id)}
    # every step was a Celery task, and both workers took some
    assert set(ran) == stats and {"landing_pull", "bronze_telemetry", "silver_telemetry"} <= stats, (ran, stats)
    assert {w.split("@")[0] for w in ran.values()} == {"w1", "w2"}, ran
    assert "Task execute_plan[" in workers.log("w1") and "Task execute_plan[" in workers.log("w2")
    assert folder_hashes(tmp / "data" / "lake") == local_lake and local_lake


def test_a_worker_killed_inside_a_step_hangs_the_run_until_the_sensor_fails_it_and_the_re_execution_gives_the_same_lake(
        cluster, monkeypatch):
    """dagster-celery's run process waits for each step's result and has no notion of a worker's death: the
    killed step's task was acknowledged when it started (Celery's default), so no worker takes it again and
    no result ever comes. The run stays STARTED with its process waiting. The dead-run sensor asks the workers
    over the broker which runs' tasks they are executing: while the step runs nothing is lost; once its worker is
    gone the step is lost, and at the second evaluation in a row the run is marked failed (``kernel.runs.bury``
    then frees the pool slot it held). The operator ends the waiting process and re-executes the run from the
    failure: the lake equals the clean run's."""
    from pipelines.celery_health import lost_steps
    from pipelines.jobs import dead_run_sensor

    tmp, env, workers, drivers, local_lake = cluster
    broker = env["NEURON_CELERY_BROKER"]
    for var in ("NEURON_EXECUTOR", "NEURON_CELERY_BROKER"):
        monkeypatch.setenv(var, env[var])
    shutil.rmtree(tmp / "data" / "lake")  # the re-run must rebuild everything, not find the first run's lake
    gate = tmp / "gate"
    (gate / "armed").touch()
    run_proc, log = drivers.take(DAY)
    deadline = time.monotonic() + 120
    while not (gate / "reached").exists():
        assert run_proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
        time.sleep(0.1)
    step_pid = int((gate / "reached").read_text())
    killed = next(n for n, p in workers.procs.items() if os.getpgid(step_pid) == p.pid)
    sensor = dead_run_sensor()
    with _instance(env, monkeypatch) as instance:
        # the step runs on its worker, which says so: nothing is lost, and the sensor fails nothing
        context = dg.build_sensor_context(instance=instance)
        assert "0 step(s) lost" in str(sensor(context).skip_message) and not context.cursor
        workers.kill(killed)
        (gate / "armed").unlink()
        workers.start("w3")  # the replacement, while the run is looked at
        run = instance.get_runs(limit=1)[0]
        assert _workers_of(instance, run.run_id)["bronze_telemetry"].startswith(f"{killed}@")
        time.sleep(3)  # the other worker goes on with what does not need the killed step, then nothing happens
        run = instance.get_run_by_id(run.run_id)
        assert run.status == dg.DagsterRunStatus.STARTED and run_proc.poll() is None
        events = [r.dagster_event.event_type_value for r in instance.all_logs(run.run_id)
                  if r.dagster_event and r.dagster_event.step_key == "bronze_telemetry"]
        assert "STEP_START" in events and not {"STEP_SUCCESS", "STEP_FAILURE"} & set(events), events
        assert list((tmp / "data" / "lake").glob("bronze/telemetry/.tmp-*")), "the partition was not half written"
        # the step is lost; the sensor's first evaluation notes it, the second fails the run and frees its slot
        context = dg.build_sensor_context(instance=instance, cursor=context.cursor)
        assert "1 step(s) lost with their Celery worker, 0 run(s) failed" in str(sensor(context).skip_message)
        assert context.cursor == f"{run.run_id}/bronze_telemetry"
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
        assert run.run_id in instance.event_log_storage.get_concurrency_run_ids()  # the killed step's slot
        context = dg.build_sensor_context(instance=instance, cursor=context.cursor)
        assert "1 run(s) failed for it" in str(sensor(context).skip_message)
        failed = instance.get_run_by_id(run.run_id)
        assert failed.status == dg.DagsterRunStatus.FAILURE
        assert not instance.event_log_storage.get_concurrency_run_ids()
        # dagster-celery's run process still waits (it is on the run's host: its launcher's terminate ends it
        # when the daemon launched it; this one the test started)
        assert run_proc.poll() is None
        run_proc.send_signal(signal.SIGKILL)
        run_proc.wait(timeout=30)
        out = cc.wait_output(drivers.take(DAY, parent=run.run_id, last=True))
        assert "success=True" in out, out[-3000:]
        ran = _workers_of(instance, _run_id(out))
        assert "bronze_telemetry" in ran and killed not in {w.split("@")[0] for w in ran.values()}, ran
        assert lost_steps(instance, broker) == []
    workers.wait_ready(["w3"])
    assert folder_hashes(tmp / "data" / "lake") == local_lake
    assert not list((tmp / "data" / "lake").rglob(".tmp-*"))
