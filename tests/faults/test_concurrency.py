"""Two runs at once: a fresh instance started by several processes together, and two runs of one day.

The day lease is exercised with real Dagster runs of a small lake step (one that holds the day for a while),
in separate processes against one SQLite instance, as two operators (or the CLI and the UI) would start them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest

from kernel.runs import DayBusy, claim_day, day_holder, wait_for_day

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-11-20"

# one run of a lake step that holds the day for `hold` seconds; prints the run's status
RUN = """
import sys, time
import dagster as dg
from kernel.dataset import C, Dataset
from kernel.lake_asset import Area, Step, lake_asset
from kernel.resource import NeuronResource
from pipelines.cli import prepare_dagster_home
from kernel.settings import load_settings

hold, day = float(sys.argv[1]), sys.argv[2]
DS = Dataset("bronze", "held", "one row", "A day held for a while.", (C("x", "BIGINT", "x", False),), domain="demo")

@lake_asset(DS)
def bronze_held(step: Step) -> None:
    time.sleep(hold)
    step.write("SELECT 1 AS x")

prepare_dagster_home(load_settings().dagster_home)
area = Area(dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone="Asia/Shanghai"))
with dg.DagsterInstance.get() as instance:
    res = dg.materialize([bronze_held.build(area)], partition_key=day, instance=instance, raise_on_error=False,
                         resources={"neuron": NeuronResource()})
    failure = [e.event_specific_data.error.message for e in res.all_events if e.event_type_value == "STEP_FAILURE"]
    print("RESULT", res.success, res.run_id, failure[0].splitlines()[0] if failure else "")
"""


def _start(hold: float, day: str = DAY) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", RUN, str(hold), day], cwd=ROOT, env=dict(os.environ), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def _result(proc: subprocess.Popen) -> tuple[bool, str, str]:
    out, _ = proc.communicate(timeout=300)
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    _, ok, run_id, error = (line.split(" ", 3) + [""])[:4]
    return ok == "True", run_id, error


def test_processes_starting_together_on_a_fresh_instance_all_run(data_root: Path):
    """The storage migration of a fresh SQLite instance raced (``UNIQUE constraint failed: alembic_version``)."""
    home = data_root / "fresh_home"
    os.environ["DAGSTER_HOME"] = str(home)  # data_root's monkeypatch restores it
    procs = [_start(0, f"2026-11-{d}") for d in (11, 12, 13, 14)]  # four days: no run waits on another's day
    results = [_result(p) for p in procs]
    assert all(ok for ok, _, _ in results), results
    with dg.DagsterInstance.get() as instance:
        assert len(instance.get_runs()) == 4


def test_a_second_run_of_a_day_fails_at_once_while_the_first_holds_it_then_goes_through(data_root: Path):
    first = _start(hold=6)
    deadline = time.monotonic() + 60
    while day_holder(data_root / ".leases", DAY) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    holder = day_holder(data_root / ".leases", DAY)
    assert holder
    ok, run_id, error = _result(_start(hold=0))
    assert not ok and f"day {DAY} is being processed by run {holder}" in error
    ok_first, first_id, _ = _result(first)
    assert ok_first and first_id == holder
    ok, _, error = _result(_start(hold=0))  # the day is free again once the first run ended
    assert ok, error


def test_the_cli_waits_for_a_live_run_of_the_day_and_takes_over_once_it_ended(data_root: Path):
    leases = data_root / ".leases"
    release, started = threading.Event(), threading.Event()

    @dg.op
    def hold() -> None:
        started.set()
        release.wait(30)

    @dg.job
    def holding():
        hold()

    live = str(uuid.uuid4())
    # no compute-log capture: its `tail` subprocess, under the full suite's xdist worker, held the in-process run
    # for ~60 s at exit (faulthandler: compute_logs._clean_up_subprocess); the lease, not the logs, is under test
    no_logs = {"compute_logs": {"module": "dagster._core.storage.noop_compute_log_manager",
                                "class": "NoOpComputeLogManager"}}
    with dg.instance_for_test(overrides=no_logs) as instance:
        runner = threading.Thread(target=lambda: holding.execute_in_process(instance=instance, run_id=live))
        runner.start()
        assert started.wait(30)
        claim_day(instance, live, DAY, leases)
        with pytest.raises(DayBusy, match=live):
            claim_day(instance, "another-run", DAY, leases)
        said: list[str] = []
        threading.Timer(1.0, release.set).start()
        t0 = time.monotonic()
        wait_for_day(instance, DAY, leases, poll_s=0.1, say=said.append)
        runner.join(30)
        assert time.monotonic() - t0 >= 0.9 and said and live in said[0]
        claim_day(instance, "another-run", DAY, leases)  # the ended run no longer holds the day
        assert day_holder(leases, DAY) == "another-run"
