"""Imported once by the daily run's forkserver, before it forks a process for each step.

The multiprocess executor starts one process per step (about 180 for a district-day). Started with ``spawn``,
each of them imported Dagster, Neuron's definitions and, for a check step, great-expectations (about 2 s, and
4–5 s more for great-expectations, per step on this 2-core machine), which made start-up the largest cost of a
small day (docs/benchmarks.md). Forked from a server that has already imported them, a step starts in a fraction
of that.

The Dagster modules below are what a step process imports before it reaches Neuron's code: the job's
reconstruction (which imports the scheduler, the workspace and the remote representation), the instance's
storages, SQLite's and PostgreSQL's, and the step executor. Without them here each step imported them again, and
rebuilt the daily job: about 0.9 s a step (``tests/pipelines/test_daily_executor.py`` checks a step's
reconstruction imports and builds nothing). Nothing here may start a thread or open a connection: a fork copies
only the thread that forks.
"""

from pathlib import Path

import dagster._core.execution.api  # noqa: F401
import dagster._core.executor.child_process_executor  # noqa: F401
import dagster._core.instance.factory  # noqa: F401
import dagster._core.secrets.env_file  # noqa: F401
import dagster._core.secrets.loader  # noqa: F401
import dagster._core.storage.event_log.sqlite  # noqa: F401
import dagster._core.storage.local_compute_log_manager  # noqa: F401
import dagster._core.storage.migration.utils  # noqa: F401
import dagster._core.storage.root  # noqa: F401
import dagster._core.storage.runs.sqlite  # noqa: F401
import dagster._core.storage.schedules.sqlite  # noqa: F401
import dagster._core.storage.sqlite_storage  # noqa: F401
import dagster_postgres  # noqa: F401
import duckdb  # noqa: F401
import fsspec.implementations.local  # noqa: F401
import great_expectations  # noqa: F401
import polars  # noqa: F401
import pyarrow.parquet  # noqa: F401
import upath.implementations.local  # noqa: F401  (the compute logs' paths)
from dagster._core.definitions.reconstruct import ReconstructableRepository

from pipelines.jobs import DAILY_JOB
from quality import gx_runner  # noqa: F401

# the asset graph and the daily job, built once for every step: the job is cached on the repository object that
# every step's reconstruction returns (the module's ``defs``), so a forked step finds it built
ReconstructableRepository.for_module("pipelines.definitions", "defs", str(Path(__file__).resolve().parents[1])
                                     ).get_reconstructable_job(DAILY_JOB).get_definition()
