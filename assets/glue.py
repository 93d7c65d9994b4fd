"""Small Dagster glue shared by every domain's assets: asset keys from datasets, markdown tables, step DuckDBs."""

import dagster as dg
import duckdb

from pipelines.resources import NeuronResource
from warehouse.dataset import Dataset
from warehouse.io import create_view


def key(ds: Dataset) -> dg.AssetKey:
    """The asset key of a declared dataset: ``[layer, name]``."""
    return dg.AssetKey([ds.layer, ds.name])


def md_table(rows: list[tuple], header: tuple[str, ...]) -> dg.MetadataValue:
    """A markdown table for asset metadata (counts by reason, by type...; never values)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in r) + " |" for r in rows]
    return dg.MetadataValue.md("\n".join(lines))


def open_views(neuron: NeuronResource, day: str, **views: Dataset) -> duckdb.DuckDBPyConnection:
    """A step's DuckDB with one temp view per upstream partition it reads (``name=dataset``)."""
    con = neuron.duckdb()
    for name, ds in views.items():
        create_view(con, name, neuron.lake, ds, day)
    return con
