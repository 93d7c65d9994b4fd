"""The one serialized asset that rebuilds the analysts' DuckDB warehouse after a day's run."""

import time

import dagster as dg

from pipelines.partitions import daily
from pipelines.resources import NeuronResource
from warehouse.catalog import build_warehouse

WAREHOUSE_POOL = "duckdb_warehouse"


def build_warehouse_asset(upstream: list[dg.AssetKey], contracts: list) -> dg.AssetsDefinition:
    @dg.asset(
        key=dg.AssetKey(["warehouse", "neuron_duckdb"]),
        deps=upstream,
        partitions_def=daily,
        group_name="warehouse",
        kinds={"duckdb"},
        pool=WAREHOUSE_POOL,
        description="data/warehouse/neuron.duckdb: views over the lake per layer, data dictionary, exports, "
                    "contracts. Rebuilt aside and renamed in, so read-only analysts are never blocked.",
    )
    def warehouse_neuron_duckdb(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
        t0 = time.monotonic()
        s = neuron.settings
        counts = build_warehouse(s.warehouse_path, neuron.lake, s.outbox_dir, contracts)
        return dg.MaterializeResult(metadata={
            "path": dg.MetadataValue.path(str(s.warehouse_path)),
            "views": len(counts),
            **{f"rows/{k}": v for k, v in counts.items()},
            "elapsed_s": round(time.monotonic() - t0, 3),
        })

    return warehouse_neuron_duckdb
