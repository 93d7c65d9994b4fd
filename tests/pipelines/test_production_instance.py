"""deploy/dagster.yaml, the production instance, against the machine's PostgreSQL: it loads, and runs, their event
logs, schedule and daemon state live in Postgres. Each test session gets a database of its own, dropped after."""

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
from dagster._daemon.types import DaemonHeartbeat

ROOT = Path(__file__).resolve().parents[2]
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
DAY = "2026-03-04"


def _pg_up() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


def _ensure_postgres() -> None:
    """The machine's PostgreSQL, started the way the machine starts it when it is down."""
    if _pg_up():
        return
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions:
        pytest.fail("PostgreSQL is not listening on 127.0.0.1:5432 and is not installed here")
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"], check=False,
                   capture_output=True, timeout=60)
    for _ in range(60):
        if _pg_up():
            return
        time.sleep(0.5)
    pytest.fail("PostgreSQL did not start on 127.0.0.1:5432")


def _admin():
    con = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres")
    con.autocommit = True
    return con


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    _ensure_postgres()
    name = f"neuron_test_{uuid.uuid4().hex[:12]}"
    con = _admin()  # autocommit: CREATE DATABASE cannot run in a transaction (nor in psycopg2's `with con`)
    with con.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    con.close()
    try:
        yield name
    finally:
        con = _admin()
        with con.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        con.close()


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
        # one run per day at a time: the limit applies per value of the partition tag
        limits = concurrency.run_queue_config.tag_concurrency_limits
        assert [(x["key"], x["limit"], x["value"]) for x in limits] == [
            ("dagster/partition", 1, {"applyLimitPerUniqueValue": True})]


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
        # the daemon's heartbeats and the schedules' state are Postgres tables too
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
