"""The Celery app of a test's workers: Neuron's (``pipelines.celery_worker``), with a gate in the bronze telemetry
write. While ``$NEURON_TEST_CELERY_GATE/armed`` exists, the step stops right after it wrote a part file into its
temporary partition (the partition half written, not swapped in), writes its pid to ``.../reached`` and waits
there to be killed, so a test kills a worker inside a step, not before or after it.

    python -m pipelines.celery_worker --app tests.pipelines.celery_gate --name w1 --concurrency 1
"""

import os
import time
from pathlib import Path

from kernel.lake import PartitionWrite
from pipelines.celery_worker import app, execute_plan  # noqa: F401  (what Celery's -A looks for)

GATE = Path(os.environ["NEURON_TEST_CELERY_GATE"])
GATED = "bronze/telemetry"
_copy = PartitionWrite.copy


def _gated_copy(self: PartitionWrite, con, sql: str) -> int:
    rows = _copy(self, con, sql)
    if GATED in str(self.dir) and (GATE / "armed").exists():
        (GATE / "reached").write_text(str(os.getpid()))
        while True:
            time.sleep(1)
    return rows


PartitionWrite.copy = _gated_copy
