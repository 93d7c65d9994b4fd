"""Read and write declared datasets in the lake, enforcing each dataset's declared columns and types."""

from __future__ import annotations

import duckdb

from kernel import completeness
from kernel.dataset import Dataset
from kernel.lake import Lake, PartitionWrite


class SchemaMismatch(ValueError):
    """A query's columns differ from its dataset's declaration."""


def conform_sql(con: duckdb.DuckDBPyConnection, ds: Dataset, sql: str) -> str:
    """Project ``sql`` onto the declared columns, failing loudly on a missing or undeclared column."""
    got = [d[0] for d in con.sql(f"SELECT * FROM ({sql}) LIMIT 0").description]
    missing = [c for c in ds.column_names if c not in got]
    extra = [c for c in got if c not in ds.column_names]
    if missing or extra:
        raise SchemaMismatch(f"{ds.key}: missing columns {missing}, undeclared columns {extra}")
    return f"SELECT {ds.select_list()} FROM ({sql})"


def with_completeness(con: duckdb.DuckDBPyConnection, ds: Dataset, sql: str) -> str:
    """``sql`` with the completeness columns added (``kernel.completeness``) when ``ds`` declares sources and
    the query does not carry them yet; the step must read ``audit/completeness`` as the view ``completeness``."""
    if not ds.sources:
        return sql
    got = [d[0] for d in con.sql(f"SELECT * FROM ({sql}) LIMIT 0").description]
    if all(c in got for c in completeness.COMPLETENESS_NAMES):
        return sql
    if not con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ?", [completeness.VIEW]).fetchall()[0][0]:
        raise SchemaMismatch(f"{ds.key} declares sources {sorted(ds.sources)}: its step must read "
                             f"audit/completeness as '{completeness.VIEW}'")
    return completeness.apply_sql(ds, sql)


def write_dataset(con: duckdb.DuckDBPyConnection, lake: Lake, ds: Dataset, day: str, sql: str,
                  order_by: str | None = None) -> int:
    """Write the whole partition of ``ds`` for ``day`` from one query; returns its row count."""
    sql = with_completeness(con, ds, sql)
    query = conform_sql(con, ds, sql) + (f" ORDER BY {order_by}" if order_by else "")
    return lake.write_query(con, query, ds.layer, ds.name, day)


def write_frame(con: duckdb.DuckDBPyConnection, lake: Lake, ds: Dataset, day: str, frame: object,
                order_by: str | None = None) -> int:
    """Write a Polars/Arrow frame as the whole partition of ``ds`` (same checks as ``write_dataset``)."""
    name = f"_frame_{ds.layer}_{ds.name}"
    con.register(name, frame)
    try:
        return write_dataset(con, lake, ds, day, f"SELECT * FROM {name}", order_by=order_by)
    finally:
        con.unregister(name)


def append_part(con: duckdb.DuckDBPyConnection, w: PartitionWrite, ds: Dataset, sql: str) -> int:
    return w.copy(con, conform_sql(con, ds, sql))


def scan_sql(lake: Lake, ds: Dataset, day: str) -> str:
    """SQL reading one partition of ``ds`` (a typed empty relation when the partition does not exist)."""
    files = lake.files(ds.layer, ds.name, day)
    if not files:
        return ds.empty_sql()
    listed = ", ".join(f"'{f}'" for f in files)
    return f"SELECT * FROM read_parquet([{listed}], hive_partitioning = false)"


def create_view(con: duckdb.DuckDBPyConnection, name: str, lake: Lake, ds: Dataset, day: str) -> int:
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {scan_sql(lake, ds, day)}")
    return con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
