"""The limits of Neuron's concurrency pools on a local instance (``neuron`` commands, benches, tests).

Dagster keeps a pool's limit in the instance's storage, not in ``dagster.yaml``, which only has a default for every
pool (``concurrency.pools.default_limit: 1``). Neuron's two pools want different limits:

- ``duckdb_warehouse``: 1. The warehouse is one DuckDB file, and DuckDB lets one process write it at a time.
- ``neuron_ingest`` (the bronze parses): ``NEURON_INGEST_SLOTS``, 2 by default. Each parse holds up to
  ``NEURON_STEP_MEMORY_MB`` of DuckDB. On 2 cores two slots bought no time at 600 communities (one parse
  already kept both cores busy through DuckDB's threads) but 13 % at 60, where the small Python-heavy parses leave
  a core idle; at 1536 MB a step they keep a 600-community day under 4 GB (docs/benchmarks.md).

A limit an operator set (``dagster instance concurrency set neuron_ingest 4``, or the UI) wins. Neuron sets a pool
only while its limit is Dagster's default or the value Neuron itself set last (remembered in the instance's own
key-value store, so it works on SQLite and Postgres alike), so a change of ``NEURON_INGEST_SLOTS`` reaches an
instance Neuron configured, and never overrides an operator.

Local instances get this whenever ``neuron`` prepares ``$DAGSTER_HOME`` (``prepare_dagster_home``); a production
instance (Postgres) with ``neuron pools``, once after a deployment (docs/operations.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import dagster as dg

from kernel.settings import Settings
from warehouse.definitions import WAREHOUSE_POOL

INGEST_POOL = "neuron_ingest"
MARKER = "neuron/pool_limits"  # the limits Neuron set last, in the instance's key-value store


@dataclass
class PoolReport:
    kept: dict[str, int] = field(default_factory=dict)  # pool -> an operator's limit, left as it is


def wanted_limits(settings: Settings) -> dict[str, int]:
    return {INGEST_POOL: settings.ingest_slots, WAREHOUSE_POOL: 1}


def apply_pool_limits(instance: dg.DagsterInstance, settings: Settings) -> PoolReport:
    """Give each Neuron pool its limit unless an operator set one (module docstring). Local callers hold the
    instance's init lock, so two processes do not interleave the read and the write."""
    stored = instance.run_storage.get_cursor_values({MARKER}).get(MARKER)
    ours: dict[str, int] = json.loads(stored) if stored else {}
    current = {p.name: p for p in instance.event_log_storage.get_pool_limits()}
    report = PoolReport()
    for pool, limit in wanted_limits(settings).items():
        have = current.get(pool)
        if have is not None and not have.from_default and have.limit != ours.get(pool):
            report.kept[pool] = have.limit
            ours.pop(pool, None)  # the operator's now: a later NEURON_INGEST_SLOTS does not take it back
            continue
        if have is None or have.from_default or have.limit != limit:
            instance.event_log_storage.set_concurrency_slots(pool, limit)
        ours[pool] = limit
    instance.run_storage.set_cursor_values({MARKER: json.dumps(ours, sort_keys=True)})
    return report
