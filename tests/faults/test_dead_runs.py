"""The dead_run_sensor: a run whose worker was SIGKILLed inside a pooled step is marked failed and its pool slot
freed, so the next run that needs the pool is not blocked forever."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

# a run whose only step takes a slot of the pool, then kills its own process
KILLED = """
import os, signal
import dagster as dg

@dg.op(pool="neuron_ingest")
def parse():
    os.killpg(0, signal.SIGKILL)

@dg.job
def killed():
    parse()

os.setpgrp()
with dg.DagsterInstance.get() as instance:
    killed.execute_in_process(instance=instance)
"""


def test_a_killed_run_is_failed_and_its_pool_slot_freed_by_the_sensor(data_root: Path):
    from pipelines.definitions import defs

    proc = subprocess.run([sys.executable, "-c", KILLED], cwd=ROOT, env=dict(os.environ), timeout=120,
                          capture_output=True)
    assert proc.returncode == -9
    with dg.DagsterInstance.get() as instance:
        run = instance.get_runs(limit=1)[0]
        assert run.status == dg.DagsterRunStatus.STARTED  # the fault: the run never reports its end
        assert run.run_id in instance.event_log_storage.get_concurrency_run_ids()  # and holds the slot
        sensor = defs.resolve_sensor_def("dead_run_sensor")
        result = sensor(dg.build_sensor_context(instance=instance))
        assert "marked 1 dead run(s) failed" in str(result.skip_message if hasattr(result, "skip_message")
                                                      else result)
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert run.run_id not in instance.event_log_storage.get_concurrency_run_ids()
        # a second evaluation finds nothing more to do
        again = sensor(dg.build_sensor_context(instance=instance))
        assert "marked 0 dead run(s) failed, freed 0" in str(getattr(again, "skip_message", again))
