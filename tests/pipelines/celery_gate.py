"""The Celery app of a test's workers: Neuron's (``pipelines.celery_worker``), with a gate in the bronze telemetry
write. While ``$NEURON_TEST_CELERY_GATE/armed`` exists, the step stops right after it wrote a part file into its
temporary partition (the partition half written, not swapped in; on object storage staged, not uploaded), writes
its pid to ``.../reached`` and waits there to be killed, so a test kills a worker inside a step, not before or
after it.

    python -m pipelines.celery_worker --app tests.pipelines.celery_gate --name w1 --concurrency 1
"""

import os
import time
from pathlib import Path

from kernel.lake import PartitionWrite
from pipelines.celery_worker import app, execute_plan  # noqa: F401  (what Celery's -A looks for)

GATE = Path(os.environ["NEURON_TEST_CELERY_GATE"])
GATED = "bronze/telemetry"
GATED_STEP = "bronze_telemetry"
_copy = PartitionWrite.copy


def _step_key() -> str | None:
    from dagster._core.execution.context.compute import current_execution_context

    context = current_execution_context.get()
    return context.get_step_execution_context().step.key if context is not None else None


def _gated(write: PartitionWrite) -> bool:
    """The bronze telemetry partition's write: on disk its temporary folder is under bronze/telemetry/; on object
    storage a staging folder named by the dataset alone (``.lake-telemetry-<day>-*``), so the step decides."""
    if GATED in str(write.dir):
        return True
    return write.dir.name.startswith(".lake-telemetry-") and _step_key() == GATED_STEP


def _gated_copy(self: PartitionWrite, con, sql: str) -> int:
    rows = _copy(self, con, sql)
    if (GATE / "armed").exists() and _gated(self):
        (GATE / "reached").write_text(str(os.getpid()))
        while True:
            time.sleep(1)
    return rows


PartitionWrite.copy = _gated_copy
