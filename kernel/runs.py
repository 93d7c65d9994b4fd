"""Runs that died and days that are busy: what a SIGKILL leaves in the Dagster instance, and the day lease.

A run worker killed with SIGKILL never reports its end: the run stays STARTED and the pool slots its steps
claimed stay claimed, so every later run waits on the pool forever. ``dead_runs`` finds such runs (their
worker process is gone from this host) and ``bury`` marks them failed and frees their slots.

Runs of one day must not overlap (they write the same partitions, and a writer removes the temporary
folders a killed writer of the same partition left). Every step that writes claims the *day lease*
(``claim_day``): a small file naming the run that holds the day, valid while that run is live. A step of
another run fails at once with a clear error instead of interleaving its writes.

On a PostgreSQL instance (deploy/dagster.yaml) runs and their steps may be on different hosts, which share no
lease folder: the lease is then a row of ``neuron_partition_leases`` in the instance's database, claimed under a row
lock, so two hosts cannot both take a day.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.storage.dagster_run import FINISHED_STATUSES

LIVE_STATUSES = (dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.CANCELING)
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class DayBusy(dg.Failure):
    """Another live run holds the day: this step must not write its partitions."""


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def process_started_at(pid: int) -> float | None:
    """Epoch seconds when ``pid`` started (Linux /proc), None when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    boot = _boot_time()
    return None if boot is None else boot + int(fields[19]) / _CLK_TCK


def pid_alive(pid: int, since: float | None = None) -> bool:
    """True when ``pid`` runs on this host (not a zombie) and, given ``since``, started no later than it
    (a later start is another process that reused the pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = next((ln.split()[1] for ln in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if ln.startswith("State:")), "")
        if state in ("Z", "X"):
            return False
    except OSError:
        pass
    started = process_started_at(pid)
    return not (since is not None and started is not None and started > since + 2)


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The pid of the process that executes ``run_id`` and when it started the run (its RUN_START event)."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_START, limit=1).records
    if not records or records[0].event_log_entry.dagster_event is None:
        return None
    return records[0].event_log_entry.dagster_event.pid, records[0].event_log_entry.timestamp


def pid_checks_apply(instance: dg.DagsterInstance) -> bool:
    """Worker pids are meaningful only where runs execute on this host: a local (SQLite) instance.

    A shared Postgres instance runs workers elsewhere (k8s): there the daemon's run monitoring does this."""
    return "sqlite" in type(instance.run_storage).__name__.lower()


def run_is_live(instance: dg.DagsterInstance, run_id: str) -> bool:
    run = instance.get_run_by_id(run_id)
    if run is None or run.status in FINISHED_STATUSES:
        return False
    if not pid_checks_apply(instance) or run.status != dg.DagsterRunStatus.STARTED:
        return True
    worker = worker_pid(instance, run_id)
    return worker is None or pid_alive(*worker)


def dead_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """Runs recorded as STARTED whose worker process is gone from this host."""
    if not pid_checks_apply(instance):
        return []
    started = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    return [r for r in started if (w := worker_pid(instance, r.run_id)) is not None and not pid_alive(*w)]


@dataclass(frozen=True)
class Burial:
    runs_failed: list[str]
    slots_freed: int


def bury(instance: dg.DagsterInstance) -> Burial:
    """Mark dead runs failed and free every pool slot still held by a run that is no longer live."""
    failed = []
    for run in dead_runs(instance):
        instance.report_run_failed(run, "run worker is gone (killed or crashed): marked failed by neuron")
        failed.append(run.run_id)
    freed = 0
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        for run_id in storage.get_concurrency_run_ids():
            if not run_is_live(instance, run_id):
                freed += storage.free_concurrency_slots_for_run(run_id) or 0
    return Burial(failed, freed)


def _lease_path(leases: Path, day: str) -> Path:
    leases.mkdir(parents=True, exist_ok=True)
    return leases / f"{day}.json"


def _shared_key(day: str, district: str) -> str:
    """A lease's key in the instance's database: the partition key (``day`` or ``day|district``)."""
    return f"{day}|{district}" if district else day


def day_holder(leases: Path, day: str, instance: dg.DagsterInstance | None = None, district: str = "") -> str | None:
    """The run holding ``day`` (of ``district``; live or not), None when no run ever claimed it. The lease folder
    is already the district's (``Settings.leases_dir``); the instance's table keys by day and district."""
    if instance is not None and _shared_leases(instance):
        import sqlalchemy as sa

        with instance.run_storage.connect() as conn:
            _lease_table(conn)
            row = conn.execute(sa.text(f"SELECT run_id FROM {LEASE_TABLE} WHERE partition_key = :key"),
                               {"key": _shared_key(day, district)}).first()
        return row[0] if row else None
    path = _lease_path(leases, day)
    try:
        return json.loads(path.read_text())["run_id"]
    except (OSError, ValueError, KeyError):
        return None


def _shared_leases(instance: dg.DagsterInstance) -> bool:
    """Leases live in the instance's database when it is PostgreSQL: hosts share it, not a folder."""
    return "postgres" in type(instance.run_storage).__name__.lower()


LEASE_TABLE = "neuron_partition_leases"
_LEASE_TABLES: set[str] = set()  # databases this process has seen the lease table in


def _lease_table(conn) -> None:
    """Create the lease table once. Two sessions creating it at the same moment can both pass ``IF NOT EXISTS``
    and one then fails on the catalogue's unique index: that one finds the table made."""
    import sqlalchemy as sa

    url = str(conn.engine.url)
    if url in _LEASE_TABLES:
        return
    try:
        with conn.begin_nested() if conn.in_transaction() else conn.begin():
            conn.execute(sa.text(f"CREATE TABLE IF NOT EXISTS {LEASE_TABLE} (partition_key TEXT PRIMARY KEY, "
                                 "run_id TEXT NOT NULL, since DOUBLE PRECISION NOT NULL)"))
    except sa.exc.IntegrityError:
        pass
    _LEASE_TABLES.add(url)


def _claim_shared(instance: dg.DagsterInstance, run_id: str, day: str, district: str) -> None:
    """``claim_day`` in the instance's database: the partition's row, locked until the claim commits, so claims
    of one district-day by any host are serialised and exactly one live run holds it."""
    import sqlalchemy as sa

    key = _shared_key(day, district)
    with instance.run_storage.connect() as autocommit:
        # Dagster's engine autocommits each statement; the row lock needs a transaction (Dagster's own
        # concurrency-slot claims switch the same way)
        conn = autocommit.execution_options(isolation_level="READ COMMITTED")
        _lease_table(conn)
        with conn.begin():
            conn.execute(sa.text(f"INSERT INTO {LEASE_TABLE} (partition_key, run_id, since) "
                                 "VALUES (:key, :run, :now) ON CONFLICT (partition_key) DO NOTHING"),
                         {"key": key, "run": run_id, "now": time.time()})
            holder = conn.execute(sa.text(f"SELECT run_id FROM {LEASE_TABLE} WHERE partition_key = :key "
                                          "FOR UPDATE"), {"key": key}).scalar_one()
            if holder != run_id and run_is_live(instance, holder):
                raise _busy(key, holder)
            if holder != run_id:
                conn.execute(sa.text(f"UPDATE {LEASE_TABLE} SET run_id = :run, since = :now "
                                     "WHERE partition_key = :key"), {"key": key, "run": run_id, "now": time.time()})


def _busy(day: str, holder: str) -> DayBusy:
    return DayBusy(description=f"day {day} is being processed by run {holder}; runs of one day are "
                               "serialised (wait for it, or run `neuron doctor --repair` if it died)",
                   metadata={"holder_run_id": holder})


def claim_day(instance: dg.DagsterInstance, run_id: str, day: str, leases: Path, district: str = "") -> None:
    """Hold ``day`` (of ``district``, whose lease folder ``leases`` is) for ``run_id``; raise ``DayBusy`` when
    another live run holds it. Days of different districts never wait for each other."""
    if _shared_leases(instance):
        _claim_shared(instance, run_id, day, district)
        return
    path = _lease_path(leases, day)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        holder = day_holder(leases, day)
        if holder and holder != run_id and run_is_live(instance, holder):
            raise _busy(day, holder)
        if holder != run_id:
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"run_id": run_id, "since": time.time()}))
            os.replace(tmp, path)


def wait_for_day(instance: dg.DagsterInstance, day: str, leases: Path, poll_s: float = 2.0,
                 say=print, district: str = "") -> None:
    """Block until no live run holds ``day`` (of ``district``; the CLI's queue for same-day runs)."""
    told = None
    while (holder := day_holder(leases, day, instance, district)) and run_is_live(instance, holder):
        if told != holder:
            say(f"waiting for run {holder} to finish day {day} (runs of one day are serialised)")
            told = holder
        time.sleep(poll_s)
