"""deploy/dagster.yaml's run queue, through a real ``dagster-daemon``, for a deployment of two districts: runs
submitted as the UI submits them (a GraphQL launch against the workspace) wait in the queue on the Postgres
instance, the daemon launches them as run processes, one run per district at a time (the
``dagster/partition/district`` tag limit: a district's days go one after another), and a failed run is retried
once.

The daemon and its runs are real processes on the machine's PostgreSQL (a database of the test's own); the runs
materialise a small selection of the daily job (a day's device registry, landing and bronze), so the test
measures the queue, not the day.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import psutil
import pytest

from tests.services import postgres_database

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("queued_runs")]
ROOT = Path(__file__).resolve().parents[2]
DAYS = ("2026-03-02", "2026-03-03")
DISTRICTS = ("putuo", "jingan")
MISSING = "2026-03-01"  # before the first registry snapshot: the run fails, and is retried once
SELECTION = (["landing", "device_registry"], ["bronze", "device_registry"])
LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message }
    ... on PipelineConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
  }
}
"""


@pytest.fixture(scope="module")
def queue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Path]]:
    from simulator.district import simulate_day

    tmp = tmp_path_factory.mktemp("queue")
    home = tmp / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    for district in DISTRICTS:
        for day in DAYS:
            simulate_day(tmp / "data" / "landing" / district, date.fromisoformat(day), n_communities=1, seed=3)
    with postgres_database() as database:
        env = {**os.environ, "DAGSTER_HOME": str(home), "NEURON_DATA_DIR": str(tmp / "data"),
               "NEURON_DISTRICTS": ",".join(DISTRICTS),
               "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_USER": "postgres", "DAGSTER_PG_PASSWORD": "",
               "DAGSTER_PG_DB": database}
        for var in ("NEURON_LAKE_URI", "NEURON_EXECUTOR"):
            env.pop(var, None)
        log = tmp / "daemon.log"
        with open(log, "wb") as out:
            daemon = subprocess.Popen([sys.executable, "-m", "dagster._daemon", "run", "-w", "workspace.yaml"],
                                      cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        try:
            yield env, log
        finally:  # the daemon, its code server and any run process it started
            # the code server runs in a session of its own (it outlived a killed daemon's group, holding its
            # Postgres connections): every descendant is named before the daemon goes
            descendants = psutil.Process(daemon.pid).children(recursive=True)
            os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.wait(timeout=30)
            for proc in descendants:
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.terminate()
            _, alive = psutil.wait_procs(descendants, timeout=15)
            for proc in alive:
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.kill()


def _launch(context, day: str, district: str) -> str:
    from dagster_graphql.test.utils import execute_dagster_graphql

    params = {
        "selector": {"repositoryLocationName": "pipelines.definitions:defs", "repositoryName": "__repository__",
                     "jobName": "daily_job", "assetSelection": [{"path": p} for p in SELECTION]},
        # in the run's process (an operator's choice the job allows): what is measured is the queue, not the steps
        "runConfigData": {"execution": {"config": {"in_process": {}}}},
        # the partition's tags as the UI sets them for a date × district key
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": f"{day}|{district}"},
                                       {"key": "dagster/partition/date", "value": day},
                                       {"key": "dagster/partition/district", "value": district}]},
    }
    # in a thread of its own: it calls asyncio.run, which refuses to run where an event loop is already running
    # (a test earlier in this worker may have left one, as Playwright's sync API does)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        result = pool.submit(execute_dagster_graphql, context, LAUNCH, {"params": params}).result()
    launched = result.data["launchPipelineExecution"]
    # QUEUED, or already taken by the daemon when the response reads the run (it polls every few seconds and may
    # dequeue in between, as a CI run saw); that every run passed through the queue is asserted on its event log
    assert launched["__typename"] == "LaunchRunSuccess", launched
    assert launched["run"]["status"] in {"QUEUED", "STARTING", "STARTED"}, launched
    return launched["run"]["runId"]


def _wait(instance: dg.DagsterInstance, ok, what: str, log: Path, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while not (found := ok()):
        assert time.monotonic() < deadline, f"{what}; daemon log:\n{log.read_text(errors='replace')[-3000:]}"
        time.sleep(0.5)
    return found


def test_runs_wait_in_the_queue_one_per_district_and_a_failed_run_is_retried_once(queue, monkeypatch):
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    env, log = queue
    for var in ("DAGSTER_HOME", "NEURON_DATA_DIR", "DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD",
                "DAGSTER_PG_DB", "NEURON_DISTRICTS"):
        monkeypatch.setenv(var, env[var])
    monkeypatch.chdir(ROOT)
    with dg.DagsterInstance.get() as instance, WorkspaceProcessContext(
            instance, WorkspaceFileTarget(paths=[str(ROOT / "workspace.yaml")])) as workspace:
        context = workspace.create_request_context()
        # a district's two days, and the other district's day and a day it cannot build
        first, second = _launch(context, DAYS[0], "putuo"), _launch(context, DAYS[1], "putuo")
        other, failing = _launch(context, DAYS[0], "jingan"), _launch(context, MISSING, "jingan")
        ids = [first, second, other, failing]
        # submitted runs wait for the daemon: nothing runs in the submitting process
        assert {instance.get_run_by_id(r).status for r in ids} <= {dg.DagsterRunStatus.QUEUED,
                                                                  dg.DagsterRunStatus.NOT_STARTED,
                                                                  dg.DagsterRunStatus.STARTING,
                                                                  dg.DagsterRunStatus.STARTED}
        done = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}

        def finished():
            runs = instance.get_runs()
            retries = [r for r in runs if r.tags.get("dagster/parent_run_id") == failing]
            return (all(instance.get_run_by_id(r).status in done for r in ids) and retries
                    and all(r.status in done for r in retries) and (runs, retries))

        runs, retries = _wait(instance, finished, "the runs did not all finish", log)
        by_id = {r.run_id: r for r in runs}
        assert [by_id[r].status for r in (first, second, other)] == [dg.DagsterRunStatus.SUCCESS] * 3
        assert by_id[failing].status == dg.DagsterRunStatus.FAILURE
        # every run went through the queue and was launched by the daemon
        for run_id in ids:
            kinds = {r.dagster_event.event_type_value for r in instance.all_logs(run_id) if r.dagster_event}
            assert {"PIPELINE_ENQUEUED", "PIPELINE_STARTING", "PIPELINE_START"} <= kinds, (run_id, kinds)
        # one run of a district at a time: each district's second run started after its first ended
        records = {r.dagster_run.run_id: r for r in instance.get_run_records(dg.RunsFilter(run_ids=ids))}
        for pair in ((first, second), (other, failing)):
            a, b = sorted((records[r] for r in pair), key=lambda r: r.start_time)
            assert b.start_time >= a.end_time, (a.start_time, a.end_time, b.start_time)
        # each run wrote its own district's lake
        data = Path(env["NEURON_DATA_DIR"])
        for district in DISTRICTS:
            assert list((data / "lake" / district / "bronze" / "device_registry").glob(f"date={DAYS[0]}/*.parquet"))
        assert list((data / "lake" / "putuo" / "bronze" / "device_registry").glob(f"date={DAYS[1]}/*.parquet"))
        # the failed run was retried once (deploy/dagster.yaml: max_retries 1), and the retry failed too
        assert len(retries) == 1 and retries[0].tags.get("dagster/retry_number") == "1"
        assert retries[0].status == dg.DagsterRunStatus.FAILURE
        time.sleep(2)
        assert not [r for r in instance.get_runs() if r.tags.get("dagster/parent_run_id") == retries[0].run_id]
