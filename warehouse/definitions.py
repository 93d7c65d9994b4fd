"""The warehouse area: the one serialized asset that rebuilds the analysts' DuckDB file after a day's run."""

# No ``from __future__ import annotations``: Dagster inspects the context and resource annotations.
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import dagster as dg

from kernel.dataset import Dataset
from kernel.lake import Lake
from kernel.lake_asset import Area
from kernel.partitions import day_of
from kernel.resource import NeuronResource
from kernel.runs import claim_day
from kernel.settings import Settings
from warehouse.catalog import INTERNAL_LAYER, build_warehouse, connect, day_rows, internal_path

WAREHOUSE_POOL = "duckdb_warehouse"
WAREHOUSE_KEY = dg.AssetKey(["warehouse", "neuron_duckdb"])


def day_metadata(path: Path, lake: Lake, day: str, totals: dict[str, int]) -> dict[str, object]:
    """What the materialisation of ``day`` says: that day's rows per view and catalog table (``rows/<layer>/<name>``,
    ``WHERE date = day``, or ``partition`` for meta.exports and meta.receipts; internal views read from the
    data team's file), and the whole warehouse's rows, named apart (``total_rows/...``)."""
    with connect(path, lake) as con:
        rows = day_rows(con, day)
    internal = internal_path(path)
    if internal.exists() and any(k.startswith(f"{INTERNAL_LAYER}/") for k in totals):
        with connect(internal, lake) as con:
            rows.update({k: v for k, v in day_rows(con, day).items() if k.startswith(f"{INTERNAL_LAYER}/")})
    shown = {k: f"{v:,}" for k, v in totals.items()}
    table = "\n".join(["| view | rows on the day | rows in total |", "|---|---:|---:|",
                       *(f"| {k} | {rows[k]:,} | {shown.get(k, '')} |" for k in sorted(rows))])
    return {
        "rows_on_day": sum(rows.values()),
        **{f"rows/{k}": v for k, v in sorted(rows.items())},
        "rows_by_view": dg.MetadataValue.md(table),
        "total_rows": sum(totals.values()),
        **{f"total_rows/{k}": v for k, v in sorted(totals.items())},
    }


def definitions(area: Area, upstream: list[dg.AssetKey], datasets: dict[str, Dataset], contracts: list,
                outbox_catch_up: Callable[[Settings], Mapping[str, int]] | None = None) -> dg.Definitions:
    """``warehouse/neuron_duckdb``, downstream of every lake and export asset (``upstream``). ``outbox_catch_up``
    brings the outbox folder up to the deployment's outbox store before ``meta.exports`` and ``meta.receipts`` read
    it (exports.outbox_store.mirror_outbox, passed in by the code location: the warehouse does not import exports)."""

    @dg.asset(
        key=WAREHOUSE_KEY,
        deps=upstream,
        partitions_def=area.partitions,
        group_name="warehouse",
        kinds={"duckdb"},
        pool=WAREHOUSE_POOL,
        description="data/warehouse/neuron.duckdb: views over the lake per layer, community and district "
                    "dimensions, bilingual data dictionary, exports, contracts; and neuron_internal.duckdb beside "
                    "it (mode 0600, data team only) with the exact internal figures too. Rebuilt aside and renamed "
                    "in, so read-only analysts are never blocked. docs/warehouse.md.",
    )
    def warehouse_neuron_duckdb(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
        t0 = time.monotonic()
        s = neuron.settings
        day = day_of(context.partition_key)
        claim_day(context.instance, context.run_id, day, s.leases_dir, s.district)
        caught_up = dict(outbox_catch_up(s)) if outbox_catch_up is not None else {}
        counts = build_warehouse(s.warehouse_path, neuron.lake, s.outbox_dir, contracts, datasets, s.timezone)
        return dg.MaterializeResult(metadata={
            **caught_up,
            "path": dg.MetadataValue.path(str(s.warehouse_path)),
            "internal_path": dg.MetadataValue.path(str(internal_path(s.warehouse_path))),
            "views": len(counts),
            **day_metadata(s.warehouse_path, neuron.lake, day, counts),
            "elapsed_s": round(time.monotonic() - t0, 3),
        })

    return dg.Definitions(assets=[warehouse_neuron_duckdb])
