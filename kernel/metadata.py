"""Asset metadata built the same way for every dataset: column schema, markdown tables, a preview of gold rows.

Metadata holds counts, names and aggregates only, never a landing value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import dagster as dg
import duckdb

from kernel.dataset import Dataset


def asset_key(ds: Dataset) -> dg.AssetKey:
    """The asset key of a declared dataset: ``[layer, name]``."""
    return dg.AssetKey([ds.layer, ds.name])


def md_table(rows: Iterable[Sequence[object]], header: Sequence[str]) -> dg.MetadataValue:
    """A markdown table for asset metadata (counts by reason, by type...; never values)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in r) + " |" for r in rows]
    return dg.MetadataValue.md("\n".join(lines))


def column_schema(ds: Dataset) -> dg.TableSchema:
    """``dagster/column_schema`` from the declaration: name, type, nullability and description per column."""
    return dg.TableSchema(columns=[
        dg.TableColumn(c.name, c.type, description=c.description + (" (keyed token)" if c.pii == "token" else ""),
                       constraints=dg.TableColumnConstraints(nullable=c.nullable))
        for c in ds.columns])


def reasons_metadata(reasons: dict[str, int]) -> dict[str, object]:
    """Quarantine metadata: a table of reasons and one ``reason/<r>`` number per reason."""
    ordered = sorted(reasons.items())
    return {"by_reason": md_table(ordered, ("reason", "records")), **{f"reason/{r}": int(n) for r, n in ordered}}


def preview(con: duckdb.DuckDBPyConnection, files: list[str], limit: int = 10) -> dg.MetadataValue:
    """The first rows of a (gold, aggregate) partition as a markdown table."""
    if not files:
        return dg.MetadataValue.md("(empty partition)")
    listed = ", ".join(f"'{f}'" for f in files)
    rel = con.sql(f"SELECT * FROM read_parquet([{listed}]) LIMIT {int(limit)}")
    return md_table(rel.fetchall(), rel.columns)
