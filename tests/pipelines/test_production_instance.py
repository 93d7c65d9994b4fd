"""deploy/dagster.yaml, the production instance, against the machine's PostgreSQL: it loads, and runs, their event
logs and the daemon's state live in Postgres. The module gets a database of its own, dropped after."""

import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
from dagster._daemon.types import DaemonHeartbeat
from dagster_postgres.utils import DagsterPostgresException

from tests.services import POSTGRES_PORT, postgres_database

ROOT = Path(__file__).resolve().parents[2]
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", POSTGRES_PORT, "postgres"
DAY = "2026-03-04"


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    with postgres_database(PG_USER) as name:
        yield name


@pytest.fixture
def production_home(pg_database: str, data_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = data_root / "dagster_home_production"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    for var, value in {"DAGSTER_HOME": str(home), "DAGSTER_PG_HOST": PG_HOST, "DAGSTER_PG_USER": PG_USER,
                       "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_DB": pg_database}.items():
        monkeypatch.setenv(var, value)
    return home


def test_the_production_instance_loads_on_postgres_with_queued_runs_pools_and_retries(production_home: Path):
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
        assert instance.run_monitoring_enabled
        concurrency = instance.get_concurrency_config()
        assert concurrency.pool_config.default_pool_limit == 1
        assert concurrency.run_queue_config.max_concurrent_runs == 4
        # one run per partition (day or district-day) and one per district at a time: per value of the tags
        limits = concurrency.run_queue_config.tag_concurrency_limits
        assert [(x["key"], x["limit"], x["value"]) for x in limits] == [
            ("dagster/partition", 1, {"applyLimitPerUniqueValue": True}),
            ("dagster/partition/district", 1, {"applyLimitPerUniqueValue": True})]


def test_a_run_of_the_daily_job_is_recorded_in_postgres(production_home: Path, pg_database: str, data_root: Path):
    from pipelines.definitions import defs
    from simulator.district import simulate_day

    simulate_day(data_root / "landing", date.fromisoformat(DAY), n_communities=1, seed=5)
    job = defs.resolve_job_def("daily_job")
    keys = [dg.AssetKey(["landing", "device_registry"]), dg.AssetKey(["bronze", "device_registry"])]
    with dg.DagsterInstance.get() as instance:
        result = job.get_subset(asset_selection=set(keys)).execute_in_process(partition_key=DAY, instance=instance)
        assert result.success
        run = instance.get_run_by_id(result.run_id)
        assert run.status == dg.DagsterRunStatus.SUCCESS and run.tags["dagster/partition"] == DAY
        mat = instance.get_latest_materialization_event(dg.AssetKey(["bronze", "device_registry"]))
        assert mat is not None and mat.run_id == result.run_id
        assert mat.asset_materialization.metadata["dagster/row_count"].value > 0
        # the daemon's heartbeats are a Postgres table too
        instance.add_daemon_heartbeat(DaemonHeartbeat(time.time(), "SCHEDULER", "neuron-test", None))
        assert "SCHEDULER" in instance.get_daemon_heartbeats()
    # read back through a connection of our own: the rows are in the database, not in a local file
    with psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=pg_database) as con, con.cursor() as cur:
        cur.execute("SELECT status FROM runs WHERE run_id = %s", (result.run_id,))
        assert cur.fetchone() == ("SUCCESS",)
        cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = "
                    "'ASSET_MATERIALIZATION'", (result.run_id,))
        assert cur.fetchone()[0] >= 1
        cur.execute("SELECT count(*) FROM daemon_heartbeats")
        assert cur.fetchone()[0] == 1
    assert not list(production_home.glob("**/*.db")), "a SQLite file was written beside the Postgres instance"


def test_a_deployment_without_its_database_variable_fails_at_load_naming_it(production_home: Path,
                                                                             monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DAGSTER_PG_DB")
    with pytest.raises(dg.DagsterInvalidConfigError, match="DAGSTER_PG_DB"):
        dg.DagsterInstance.get()


def test_a_database_that_does_not_exist_is_an_error_not_a_silent_local_instance(production_home: Path,
                                                                                monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DAGSTER_PG_DB", f"neuron_absent_{uuid.uuid4().hex[:8]}")
    # dagster-postgres retries a failed connection 5 times with exponential back-off (11 s here); the outcome
    # under test is the same after one retry
    from dagster_postgres import utils

    monkeypatch.setattr(utils.retry_pg_connection_fn, "__defaults__", (1, 0.05))
    with pytest.raises(DagsterPostgresException, match="too many retries"), dg.DagsterInstance.get() as instance:
        instance.get_runs(limit=1)
    assert not list(production_home.glob("**/*.db"))


def test_the_day_lease_is_a_row_of_the_instance_database_that_one_run_of_all_hosts_wins(production_home: Path,
                                                                                        data_root: Path):
    """Hosts share the Postgres instance, not a lease folder: four runs on four "hosts" (each its own folder)
    claim one day at once, exactly one wins and the others are told which run holds it; no lease file is
    written anywhere; once the holder has ended the day is free again."""
    import threading

    from dagster._core.storage.dagster_run import DagsterRun

    from kernel.runs import DayBusy, claim_day, day_holder, wait_for_day

    with dg.DagsterInstance.get() as instance:
        runs = [str(uuid.uuid4()) for _ in range(4)]
        for run_id in runs:
            instance.add_run(DagsterRun(job_name="daily_job", run_id=run_id, status=dg.DagsterRunStatus.STARTED))
        barrier, outcomes = threading.Barrier(len(runs)), {}

        def claim(run_id: str, host: Path) -> None:
            barrier.wait()
            try:
                claim_day(instance, run_id, DAY, host)
                outcomes[run_id] = "won"
            except DayBusy as busy:
                outcomes[run_id] = busy.metadata["holder_run_id"].text

        threads = [threading.Thread(target=claim, args=(r, data_root / f"host{i}" / ".leases"))
                   for i, r in enumerate(runs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        winners = [r for r, o in outcomes.items() if o == "won"]
        assert len(outcomes) == 4 and len(winners) == 1, outcomes
        assert all(o == winners[0] for r, o in outcomes.items() if r != winners[0])
        assert day_holder(data_root / "host9", DAY, instance) == winners[0]
        assert not list(data_root.rglob("*.json")) and not list(data_root.rglob("*.lock"))
        # the holder ends: another host's run takes the day
        instance.report_run_failed(instance.get_run_by_id(winners[0]), "ended")
        wait_for_day(instance, DAY, data_root / "host9", poll_s=0.1)
        loser = next(r for r in runs if r != winners[0])
        claim_day(instance, loser, DAY, data_root / "host7")
        assert day_holder(data_root / "host0", DAY, instance) == loser
