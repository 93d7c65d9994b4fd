"""Run (or re-execute from failure) the daily job in this process and SIGKILL it inside one chosen step.

    python -m tests.faults.driver DAY KILL_POINT [PARENT_RUN_ID]

The kill points wrap a function the step really calls, so the process dies in the middle of the step's real
work (a partition half written, a pool slot held, a push half uploaded), as ``kill -9`` of a run worker
would. Without a parent run id the run starts through the CLI's ``run_day`` (the operator's entry point);
with one it is re-executed from that run's failure, as the UI's "Re-execute from failure" does, after the
instance has been cleared of the dead run (``kernel.runs.bury``). ``none`` runs to completion.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable


def _die() -> None:
    sys.stdout.flush()
    os.killpg(0, signal.SIGKILL)  # the whole process group: this run worker and anything it started


def _after(target: object, name: str, when: Callable[..., bool]) -> None:
    """Wrap ``target.name`` so that the process dies right after a call for which ``when(*args)`` holds."""
    original = getattr(target, name)

    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        if when(*args, **kwargs):
            _die()
        return result

    setattr(target, name, wrapped)


def arm(point: str) -> None:
    if point == "bronze_ingest":  # a bronze part file written into the temporary partition, before the swap
        from kernel.lake import PartitionWrite

        _after(PartitionWrite, "copy", lambda self, con, sql: "bronze/telemetry" in str(self.dir))
    elif point == "silver":
        from kernel.lake import PartitionWrite

        _after(PartitionWrite, "copy", lambda self, con, sql: "silver/access_events" in str(self.dir))
    elif point == "gold_suppression":  # the grid protected (perturbed or suppressed), the partition not yet written
        import assets.disclosure as disclosure

        _after(disclosure, "protect_grid", lambda frame, ds, *a, **kw: ds.name == "gate_flow_hourly")
    elif point == "blocking_check":  # the privacy scan of a silver asset, before its result is recorded
        import quality.pii_checks as pii

        _after(pii, "scan_files", lambda paths, *a, **kw: any("silver/vehicle_passages" in str(p) for p in paths))
    elif point == "export_push":  # one chunk of a batch uploaded to the receiver, the batch not committed
        import requests

        _after(requests.Session, "request", lambda self, method, url, *a, **kw: "/chunks/" in url)
    elif point == "warehouse":  # the warehouse file half built aside
        import warehouse.catalog as catalog

        calls = {"n": 0}

        def tenth(lake, ds):
            calls["n"] += 1
            return calls["n"] == 10

        _after(catalog, "_view_sql", tenth)
    elif point != "none":
        raise SystemExit(f"unknown kill point {point!r}")


def main(day: str, point: str, parent: str | None = None) -> int:
    os.setpgrp()
    arm(point)
    import dagster as dg

    if parent is None:
        from pipelines.cli import run_day

        result = run_day(day)
        return 0 if result.success else 1
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    from kernel.runs import bury

    repo = ReconstructableRepository.for_module("pipelines.definitions", "defs", working_directory=os.getcwd())
    with dg.DagsterInstance.get() as instance:
        bury(instance)
        result = dg.execute_job(repo.get_reconstructable_job("daily_job"), instance,
                                run_config={"execution": {"config": {"in_process": {}}}},
                                tags={"dagster/partition": day},
                                reexecution_options=dg.ReexecutionOptions.from_failure(parent, instance),
                                raise_on_error=False)
        return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
