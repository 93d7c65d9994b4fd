"""The daily job on real Celery workers, for a test: a throwaway database on the machine's PostgreSQL as the
instance (``deploy/dagster.yaml``), a database of its own on the machine's Redis as the broker, worker processes
(``pipelines.celery_worker``), and a driver that runs the job, or re-executes a run from its failure, in a
process of its own (the run's process must build the job with NEURON_EXECUTOR=celery, and may hang).

    printf "PARTITION_KEY [PARENT_RUN_ID]\n..." | python -m tests.pipelines.celery_cluster

(a partition key is a day, or ``day|district`` when NEURON_DISTRICTS is set; one run per line, one after
another; ``NEURON_TEST_IN_PROCESS=1`` runs them with the in-process executor, as a reference)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PG_HOST, PG_USER = "127.0.0.1", "postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
CLAIM_KEY = "neuron:test-claim"
# the telemetry chain, landing to silver, with its checks (12 steps): a bronze parse in a pool, its quarantine and
# audit, the silver table, on both workers at once where the graph allows
SELECTION = ("landing/device_registry", "landing/telemetry", "bronze/device_registry", "bronze/telemetry",
             "quarantine/telemetry", "audit/ingest", "silver/telemetry")


def claim_redis_db() -> int:
    """A Redis database no one else uses (1-15; 0 is left to the machine): its claim key is set where it was not,
    atomically, in an empty database, so two test runs at once never share a queue."""
    import redis

    for db in range(1, 16):
        con = redis.Redis(REDIS_HOST, REDIS_PORT, db=db)
        try:
            if con.dbsize() == 0 and con.set(CLAIM_KEY, uuid.uuid4().hex, nx=True, ex=3600):
                return db
        finally:
            con.close()
    raise RuntimeError("every Redis database 1-15 is in use")


def release_redis_db(db: int) -> None:
    """Empty it: the queue, the claim and any step a killed worker left unacknowledged (Redis would hand that
    to a worker again after the visibility timeout, an hour)."""
    import redis

    con = redis.Redis(REDIS_HOST, REDIS_PORT, db=db)
    con.flushdb()
    con.close()


def environment(data_root: Path, home: Path, database: str, redis_db: int, gate: Path) -> dict[str, str]:
    """What every process of the cluster gets: the workers, the driver and the test itself (for the instance)."""
    from kernel.settings import SUBROOT_VARIABLES

    env = {k: v for k, v in os.environ.items() if k not in SUBROOT_VARIABLES and not k.startswith("PYTEST_")}
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    env.update({"NEURON_MODE": "test", "NEURON_DATA_DIR": str(data_root), "DAGSTER_HOME": str(home),
                "DAGSTER_PG_HOST": PG_HOST, "DAGSTER_PG_USER": PG_USER, "DAGSTER_PG_PASSWORD": "",
                "DAGSTER_PG_DB": database, "NEURON_EXECUTOR": "celery",
                "NEURON_CELERY_BROKER": f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}",
                "NEURON_TEST_CELERY_GATE": str(gate), "GX_ANALYTICS_ENABLED": "false",
                "PYTHONPATH": str(ROOT)})
    env.pop("NEURON_CELERY_BACKEND", None)  # the default, rpc://
    return env


class Workers:
    """Celery worker processes, each the leader of a process group of its own (it and its pool's processes)."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.procs = env, logs, {}
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str) -> None:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115  (the worker's, closed with the file table)
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "pipelines.celery_worker", "--app", "tests.pipelines.celery_gate",
             "--name", name, "--concurrency", "1"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, names: list[str], timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        waiting = set(names)
        while waiting:
            for name in list(waiting):
                if self.procs[name].poll() is not None:
                    raise RuntimeError(f"worker {name} exited:\n{self.log(name)[-3000:]}")
                if f"{name}@" in self.log(name) and " ready." in self.log(name):
                    waiting.discard(name)
            if waiting and time.monotonic() > deadline:
                raise TimeoutError(f"workers {sorted(waiting)} not ready in {timeout_s} s")
            time.sleep(0.2)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def kill(self, name: str) -> None:
        """SIGKILL the worker and its pool's processes at once, as a host or container that dies."""
        proc = self.procs[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGKILL every worker still running: a warm shutdown of idle workers took 4-5 s, and the test's Redis
        database is emptied after them anyway."""
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


class Drivers:
    """Driver processes, each started (its imports done) before it is needed: ``take`` hands over the waiting
    one and starts the next, so a run does not wait for a Python process to import Neuron and Dagster."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.n = env, logs, 0
        logs.mkdir(parents=True, exist_ok=True)
        self.spare = self._start()

    def _start(self) -> tuple[subprocess.Popen, Path]:
        self.n += 1
        log = self.logs / f"driver-{self.n}.log"
        proc = subprocess.Popen([sys.executable, "-m", "tests.pipelines.celery_cluster"], cwd=ROOT, env=self.env,
                                stdin=subprocess.PIPE, stdout=open(log, "wb"),  # noqa: SIM115
                                stderr=subprocess.STDOUT, text=True)
        return proc, log

    def take(self, *keys: str, parent: str | None = None, last: bool = False) -> tuple[subprocess.Popen, Path]:
        """Start runs of the selection for each partition key in turn (or a re-execution of ``parent`` from its
        failure); the driver prints ``run <id> success=<bool>`` for each and exits 0 when all succeeded.
        ``last``: no next driver."""
        proc, log = self.spare
        self.spare = None if last else self._start()
        proc.stdin.write("".join(f"{key} {parent or ''}\n" for key in keys))
        proc.stdin.close()
        return proc, log

    def stop(self) -> None:
        if self.spare:
            self.spare[0].kill()
            self.spare[0].wait(timeout=30)


def wait_output(driver: tuple[subprocess.Popen, Path], timeout_s: float = 240) -> str:
    proc, log = driver
    proc.wait(timeout=timeout_s)
    return log.read_text(errors="replace")


def main() -> int:
    """Import what a run needs, then wait for ``DAY [PARENT_RUN_ID]`` on standard input and run it."""
    import dagster as dg
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    from kernel.partitions import partitions_def
    from kernel.settings import load_settings
    from pipelines.definitions import defs
    from pipelines.jobs import DAILY_JOB

    job = ReconstructableRepository.for_module("pipelines.definitions", "defs", str(ROOT)
                                               ).get_reconstructable_job(DAILY_JOB)
    job.get_definition()
    lines = [ln.split() for ln in sys.stdin.read().splitlines() if ln.strip()]
    if not lines:
        return 2
    settings = load_settings()
    ok = True
    with dg.DagsterInstance.get() as instance:
        for words in lines:
            key, parent = words[0], (words[1] if len(words) > 1 else None)
            # the partition's tags as the UI or a schedule sets them (with districts: the dimensions' tags too)
            tags = dict(partitions_def(settings).get_tags_for_partition_key(key))
            if parent:
                # execute_job's re-execution does not carry the parent's partition tags over (the UI's does)
                result = dg.execute_job(job, instance, tags=tags,
                                        reexecution_options=dg.ReexecutionOptions.from_failure(parent, instance))
            else:
                # the day's run config: the multiprocess executor's forkserver (none with Celery: it is configured)
                if os.environ.get("NEURON_TEST_IN_PROCESS") == "1":
                    config = {"execution": {"config": {"in_process": {}}}}
                elif settings.executor == "multiprocess":
                    config = defs.resolve_job_def(DAILY_JOB).partitioned_config.get_run_config_for_partition_key(key)
                else:
                    config = {}
                result = dg.execute_job(job, instance, tags=tags, run_config=config,
                                        asset_selection=[dg.AssetKey(k.split("/")) for k in SELECTION])
            print(f"run {result.run_id} success={result.success}", flush=True)
            ok = ok and result.success
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
