"""Production, the whole path: the daily job's steps on two real Celery workers (dagster-celery, the machine's Redis
as broker), a throwaway PostgreSQL database as the instance, the lake on an S3-compatible server on loopback (moto),
and two districts (``NEURON_DISTRICTS``), two days each. Every district-day's partitions hash as the same
district-day run in process on local disk. Then a worker is SIGKILLed inside a step that writes to the store: what
dagster-celery does about it, what the store holds meanwhile, and the re-run's lake.

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

from tests.lake_hashes import folder_hashes, partition_hashes
from tests.pipelines import celery_cluster as cc
from tests.services import S3_CREDENTIALS, moto_s3, postgres_database

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("celery")]
DAYS = ("2026-03-05", "2026-03-06")
DISTRICTS = ("putuo", "jingan")
BUCKET = "neuron-city"
DAY = DAYS[0]  # the killed run's day, in the first district


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """Two workers (w1, w2; one step at a time each) on the two districts' landing files, and the same four
    district-days run in process into a lake on local disk (the reference), while the workers start."""
    from simulator.district import simulate_day

    tmp = tmp_path_factory.mktemp("celery")
    redis_db = cc.claim_redis_db()
    try:
        with postgres_database() as database, moto_s3(BUCKET) as endpoint:
            env = cc.environment(tmp / "data", tmp / "dagster_home", database, redis_db, tmp / "gate")
            env.update({**S3_CREDENTIALS, "NEURON_DISTRICTS": ",".join(DISTRICTS),
                        "NEURON_LAKE_URI": f"s3://{BUCKET}/city", "NEURON_S3_ENDPOINT_URL": endpoint})
            (tmp / "gate").mkdir()
            (tmp / "logs").mkdir()
            for i, district in enumerate(DISTRICTS):
                for j, day in enumerate(DAYS):
                    simulate_day(tmp / "data" / "landing" / district, date.fromisoformat(day), n_communities=1,
                                 seed=11 + 10 * i + j)
            shutil.copytree(tmp / "data" / "landing", tmp / "local" / "landing")
            workers = cc.Workers(env, tmp / "logs")
            local_env = {k: v for k, v in env.items() if k != "NEURON_LAKE_URI"}
            local = cc.Drivers({**local_env, "NEURON_DATA_DIR": str(tmp / "local"), "NEURON_EXECUTOR": "multiprocess",
                                "NEURON_TEST_IN_PROCESS": "1"}, tmp / "logs" / "local")
            drivers = cc.Drivers(env, tmp / "logs")
            try:
                workers.start("w1")
                workers.start("w2")
                out = cc.wait_output(local.take(*(f"{d}|{x}" for d in DAYS for x in DISTRICTS), last=True))
                assert out.count("success=True") == 4, out[-3000:]
                workers.wait_ready(["w1", "w2"])
                reference = {x: folder_hashes(tmp / "local" / "lake" / x) for x in DISTRICTS}
                yield tmp, env, workers, drivers, reference
            finally:
                drivers.stop()
                workers.stop()
    finally:
        cc.release_redis_db(redis_db)


def _store(env: dict[str, str], district: str, monkeypatch: pytest.MonkeyPatch):
    """The district's lake on the store, opened as a step opens it."""
    from kernel.lake import open_lake
    from kernel.settings import load_settings

    for var in (*S3_CREDENTIALS, "NEURON_S3_ENDPOINT_URL"):
        monkeypatch.setenv(var, env[var])
    return open_lake(load_settings(env).for_district(district))


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


def test_two_districts_two_days_on_celery_postgres_and_the_store_equal_the_same_days_on_disk(cluster, monkeypatch):
    """The must-show of production: each day's two districts run at once (their partitions, leases and sub-roots
    are apart), every step a Celery task, and every district-day's partitions on the store hash as on disk."""
    tmp, env, workers, drivers, reference = cluster
    run_ids = {}
    for day in DAYS:
        started = {x: drivers.take(f"{day}|{x}") for x in DISTRICTS}
        for district, driver in started.items():
            out = cc.wait_output(driver)
            assert "success=True" in out, out[-3000:]
            run_ids[(day, district)] = _run_id(out)
    with _instance(env, monkeypatch) as instance:
        used = set()
        for (day, district), run_id in run_ids.items():
            run = instance.get_run_by_id(run_id)
            assert run.status == dg.DagsterRunStatus.SUCCESS
            assert (run.tags["dagster/partition"], run.tags["dagster/partition/district"]) == (
                f"{day}|{district}", district)
            ran = _workers_of(instance, run_id)
            stats = {s.step_key for s in instance.get_run_step_stats(run_id)}
            # every step was a Celery task
            assert set(ran) == stats and {"landing_pull", "bronze_telemetry", "silver_telemetry"} <= stats, (ran, stats)
            used |= {w.split("@")[0] for w in ran.values()}
        # the two districts of a day ran side by side, not one after the other
        for day in DAYS:
            a, b = (instance.get_run_record_by_id(run_ids[(day, x)]) for x in DISTRICTS)
            assert a.start_time < b.end_time and b.start_time < a.end_time, day
    assert used == {"w1", "w2"}
    assert "Task execute_plan[" in workers.log("w1") and "Task execute_plan[" in workers.log("w2")
    assert not (tmp / "data" / "lake").exists()  # the lake is on the store: nothing on local disk but the cache
    for district in DISTRICTS:
        on_store = partition_hashes(_store(env, district, monkeypatch))
        assert on_store == reference[district], district
        assert {k.rsplit("/", 1)[1] for k in on_store} == set(DAYS)
        assert sum(n for n, _ in on_store.values()) > 10_000
    assert reference["putuo"] != reference["jingan"]  # two districts' data, not one twice
    store = _store(env, "putuo", monkeypatch)
    assert sorted(p.rsplit("/", 1)[1] for p in store.fs.ls(f"{BUCKET}/city")) == sorted(DISTRICTS)


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

    tmp, env, workers, drivers, reference = cluster
    broker = env["NEURON_CELERY_BROKER"]
    for var in ("NEURON_EXECUTOR", "NEURON_CELERY_BROKER"):
        monkeypatch.setenv(var, env[var])
    store = _store(env, DISTRICTS[0], monkeypatch)
    store.fs.rm(store.uri, recursive=True)  # the re-run must rebuild everything, not find the first runs' lake
    gate = tmp / "gate"
    (gate / "armed").touch()
    key = f"{DAY}|{DISTRICTS[0]}"
    run_proc, log = drivers.take(key)
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
        # half written: a part file staged on the worker's host, nothing uploaded, no pointer: nothing to read
        assert list((tmp / "data" / ".lake_cache").glob(f".lake-telemetry-{DAY}-*/*.parquet"))
        assert store.pointer("bronze", "telemetry", DAY) is None and not store.files("bronze", "telemetry", DAY)
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
        out = cc.wait_output(drivers.take(key, parent=run.run_id, last=True))
        assert "success=True" in out, out[-3000:]
        ran = _workers_of(instance, _run_id(out))
        assert "bronze_telemetry" in ran and killed not in {w.split("@")[0] for w in ran.values()}, ran
        assert lost_steps(instance, broker) == []
    workers.wait_ready(["w3"])
    expected = {k: v for k, v in reference[DISTRICTS[0]].items() if k.endswith(f"/{DAY}")}
    assert partition_hashes(store) == expected and expected
    # the killed writer left no commit on the store (its stage stays on the dead host, for the doctor)
    assert [o for layer, ds in store.datasets() for o in store.orphans(layer, ds, min_age_s=0)] == []
