"""Build the analysts' DuckDB file: a schema per layer of views over the lake, plus catalog tables.

The file is built aside and renamed over the old one, so an analyst holding it open read-only keeps a
consistent (older) snapshot and pipelines never wait on, or block, a reader's lock.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import duckdb

from assets.registry import datasets as declared_datasets
from kernel.dataset import Dataset
from kernel.lake import Lake, remove_paths


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _view_sql(lake: Lake, ds: Dataset) -> str:
    if not lake.files(ds.layer, ds.name):
        return ds.empty_sql(extra="CAST(NULL AS DATE) AS date")  # the hive partition column
    return (f"SELECT * FROM read_parquet({_q(lake.glob(ds.layer, ds.name))}, hive_partitioning = true, "
            "hive_types = {'date': DATE}, union_by_name = true)")


def leftovers(path: Path) -> list[Path]:
    """Temp files (``.neuron.duckdb.<id>.tmp`` and its WAL) a killed build of ``path`` left behind; one builder
    runs at a time (the duckdb_warehouse pool), so a build removes them before it starts."""
    return sorted(path.parent.glob(f".{path.name}.*.tmp*")) if path.parent.exists() else []


def build_warehouse(path: Path, lake: Lake, outbox: Path, contracts: list | None = None,
                    datasets: dict[str, Dataset] | None = None) -> dict[str, int]:
    """(Re)build the warehouse file at ``path`` over ``datasets`` (every declared one by default); returns row
    counts per view."""
    DATASETS = declared_datasets() if datasets is None else datasets  # noqa: N806
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_paths(leftovers(path))
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    counts: dict[str, int] = {}
    con = duckdb.connect(str(tmp))
    try:
        for layer in sorted({d.layer for d in DATASETS.values()}):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {layer}")
        con.execute("CREATE SCHEMA IF NOT EXISTS meta")
        for ds in DATASETS.values():
            con.execute(f"CREATE OR REPLACE VIEW {ds.layer}.{ds.name} AS {_view_sql(lake, ds)}")
            con.execute(f"COMMENT ON VIEW {ds.layer}.{ds.name} IS {_q(ds.description + ' Grain: ' + ds.grain)}")
            counts[ds.key] = con.execute(f"SELECT count(*) FROM {ds.layer}.{ds.name}").fetchall()[0][0]
        accounting = [ds for ds in DATASETS.values() if ds.layer == "audit" and ds.name.startswith("row_accounting_")]
        con.execute("CREATE OR REPLACE VIEW audit.row_accounting AS "
                    + " UNION ALL BY NAME ".join(f"SELECT * FROM audit.{ds.name}" for ds in accounting))
        con.execute("COMMENT ON VIEW audit.row_accounting IS 'Row conservation of every source, one row per "
                    "source and partition: landed = accepted + quarantined + duplicates.'")
        dictionary = [
            (ds.layer, ds.name, ds.grain, ds.description, c.name, c.type, c.nullable, c.pii, c.description)
            for ds in DATASETS.values() for c in ds.columns
        ]
        con.execute("""CREATE TABLE meta.data_dictionary (layer VARCHAR, dataset VARCHAR, grain VARCHAR,
            dataset_description VARCHAR, column_name VARCHAR, column_type VARCHAR, nullable BOOLEAN,
            pii VARCHAR, column_description VARCHAR)""")
        con.executemany("INSERT INTO meta.data_dictionary VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", dictionary)
        con.execute("""CREATE TABLE meta.exports (consumer VARCHAR, dataset VARCHAR, partition DATE, version INTEGER,
            is_correction BOOLEAN, row_count BIGINT, contract_id VARCHAR, contract_version VARCHAR,
            content_sha256 VARCHAR, generated_at VARCHAR, path VARCHAR)""")
        manifests = sorted(outbox.glob("*/*/*/manifest.json")) if outbox.exists() else []
        rows = []
        for mpath in manifests:
            m = json.loads(mpath.read_text(encoding="utf-8"))
            rows.append((m["consumer"], m["dataset"], m["partition"], m["version"], m["is_correction"],
                         m["row_count"], m["contract_id"], m["contract_version"], m["content_sha256"],
                         m["generated_at"], str(mpath.parent)))
        if rows:
            con.executemany("INSERT INTO meta.exports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        counts["meta/exports"] = len(rows)
        con.execute("""CREATE TABLE meta.receipts (consumer VARCHAR, dataset VARCHAR, partition DATE, version INTEGER,
            receipt_id VARCHAR, idempotency_key VARCHAR, status VARCHAR, publisher VARCHAR, received_at VARCHAR,
            content_sha256 VARCHAR, path VARCHAR)""")
        receipts = sorted(outbox.glob("*/_receipts/*/*/v*.json")) if outbox.exists() else []
        rrows = []
        for rpath in receipts:
            r = json.loads(rpath.read_text(encoding="utf-8"))
            rrows.append((r["consumer"], r["dataset"], r["partition"], r["version"], r["receipt_id"],
                          r["idempotency_key"], r["status"], r["publisher"], r["received_at"],
                          (r.get("detail") or {}).get("content_sha256"), str(rpath)))
        if rrows:
            con.executemany("INSERT INTO meta.receipts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rrows)
        counts["meta/receipts"] = len(rrows)
        if contracts:
            con.execute("""CREATE TABLE meta.contracts (id VARCHAR, consumer VARCHAR, dataset VARCHAR,
                version VARCHAR, title_zh VARCHAR, title_en VARCHAR, k_threshold INTEGER, resource_code VARCHAR,
                update_cycle VARCHAR, raw JSON)""")
            con.executemany("INSERT INTO meta.contracts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                (c.id, c.consumer, c.dataset, c.version, c.raw["title_zh"], c.raw["title_en"], c.k_threshold,
                 c.raw["catalogue"]["resource_code"], c.raw["update_cycle"], json.dumps(c.raw, ensure_ascii=False))
                for c in contracts])
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, path)
    return counts
