"""The warehouse area: the one serialized asset that rebuilds the analysts' DuckDB file after a day's run."""

# No ``from __future__ import annotations``: Dagster inspects the context and resource annotations.
import time

import dagster as dg

from kernel.dataset import Dataset
from kernel.lake_asset import Area
from kernel.resource import NeuronResource
from kernel.runs import claim_day
from warehouse.catalog import build_warehouse

WAREHOUSE_POOL = "duckdb_warehouse"
WAREHOUSE_KEY = dg.AssetKey(["warehouse", "neuron_duckdb"])


def definitions(area: Area, upstream: list[dg.AssetKey], datasets: dict[str, Dataset],
                contracts: list) -> dg.Definitions:
    """``warehouse/neuron_duckdb``, downstream of every lake and export asset (``upstream``)."""

    @dg.asset(
        key=WAREHOUSE_KEY,
        deps=upstream,
        partitions_def=area.partitions,
        group_name="warehouse",
        kinds={"duckdb"},
        pool=WAREHOUSE_POOL,
        description="data/warehouse/neuron.duckdb: views over the lake per layer, data dictionary, exports, "
                    "contracts. Rebuilt aside and renamed in, so read-only analysts are never blocked.",
    )
    def warehouse_neuron_duckdb(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
        t0 = time.monotonic()
        s = neuron.settings
        claim_day(context.instance, context.run_id, context.partition_key, s.leases_dir)
        counts = build_warehouse(s.warehouse_path, neuron.lake, s.outbox_dir, contracts, datasets)
        return dg.MaterializeResult(metadata={
            "path": dg.MetadataValue.path(str(s.warehouse_path)),
            "views": len(counts),
            **{f"rows/{k}": v for k, v in counts.items()},
            "elapsed_s": round(time.monotonic() - t0, 3),
        })

    return dg.Definitions(assets=[warehouse_neuron_duckdb])
