"""Imported once by the daily run's forkserver, before it forks a process for each step.

The multiprocess executor starts one process per step (about 180 for a district-day). Started with ``spawn``,
each of them imported Dagster, Neuron's definitions and, for a check step, great-expectations (about 2 s, and
4–5 s more for great-expectations, per step on this 2-core machine), which made start-up the largest cost of a
small day (docs/benchmarks.md). Forked from a server that has already imported them, a step starts in a fraction
of that. Nothing here may start a thread or open a connection: a fork copies only the thread that forks.
"""

import duckdb  # noqa: F401
import great_expectations  # noqa: F401
import polars  # noqa: F401
import pyarrow.parquet  # noqa: F401

from pipelines.definitions import defs
from quality import gx_runner  # noqa: F401

defs.get_repository_def()  # the asset graph and the jobs, resolved once for every step
