"""Build the analysts' DuckDB file: a schema per layer of views over the lake, dimensions, plus catalog tables.

The file is built aside and renamed over the old one, so an analyst holding it open read-only keeps a
consistent (older) snapshot and pipelines never wait on, or block, a reader's lock. Datasets of the layer
``internal`` (exact, unprotected figures) never enter it: they go to a second file, ``<stem>_internal.duckdb``
next to it, readable by its owner only (mode 0600), which holds everything else as well. docs/warehouse.md says
what analysts find where.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from assets.registry import datasets as declared_datasets
from kernel.dataset import Dataset, accounting_dataset
from kernel.lake import Lake, remove_paths
from warehouse import outbox as outbox_scan
from warehouse.glossary import LOCAL_SUFFIX, Glossary, Text, load_glossary, local_text

HERE = Path(__file__).parent
DISTRICTS_CSV = HERE / "reference" / "districts.csv"
DIM_COMMUNITY_SQL = HERE / "dim_community.sql"
DEFAULT_TIMEZONE = "Asia/Shanghai"  # Settings.timezone's default; the asset passes the configured one
INTERNAL_LAYER = "internal"
INTERNAL_MODE = 0o600
# Registry snapshots that say a community exists on a day; those with community_name/street also name it.
REGISTRIES = ("bronze/device_registry", "bronze/access_doors", "bronze/tollgates", "bronze/car_parks")
# The community and district dimensions, also shown in silver and gold, where analysts look first.
DIMENSION_ALIASES = {"dim.community": ("silver.dim_community", "gold.dim_community"),
                     "dim.district": ("silver.dim_district", "gold.dim_district")}
LAKE_GLOB = "@lake_glob@"  # where a lake view's glob goes in meta.views.definition (warehouse.relink)
TIMESTAMPTZ = "TIMESTAMP WITH TIME ZONE"


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def connect(path: Path, lake: Lake, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """Open a warehouse file so its lake views can be read: on object storage they name ``s3://`` files, which a
    DuckDB connection reads only with the lake's filesystem registered (``neuron warehouse sql`` does this)."""
    return lake.attach(duckdb.connect(str(path), read_only=read_only))


def internal_path(path: Path) -> Path:
    """The data team's file next to the analysts' one: ``neuron.duckdb`` -> ``neuron_internal.duckdb``."""
    return path.with_name(f"{path.stem}_internal{path.suffix}")


def _view_sql(lake: Lake, ds: Dataset) -> str:
    if not lake.files(ds.layer, ds.name):
        return ds.empty_sql(extra="CAST(NULL AS DATE) AS date")  # the hive partition column
    return (f"SELECT * FROM read_parquet({lake.read_source(ds.layer, ds.name)}, hive_partitioning = true, "
            "hive_types = {'date': DATE}, union_by_name = true)")


def leftovers(path: Path) -> list[Path]:
    """Temp files (``.neuron.duckdb.<id>.tmp`` and its WAL, the internal file's private build folder) a killed
    build of ``path`` left behind; one builder runs at a time (the duckdb_warehouse pool), so a build removes
    them before it starts."""
    if not path.parent.exists():
        return []
    return sorted({*path.parent.glob(f".{path.name}.*.tmp*"),
                   *path.parent.glob(f".{internal_path(path).name}.*.tmp*")})


@dataclass
class ColumnDoc:
    en: str | None
    zh: Text
    nullable: bool | None = None
    pii: str | None = None
    derived_from: str | None = None


@dataclass
class ObjectDoc:
    """What the dictionary and the comments say about one view or table."""

    schema: str
    name: str
    kind: str  # view | table
    en: str | None
    zh: Text
    grain: str | None = None
    columns: dict[str, ColumnDoc] = field(default_factory=dict)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


def comment(en: str | None, zh: Text) -> str | None:
    """``English | 中文标题：中文说明``: what duckdb_columns().comment and information_schema show (DESCRIBE does not)."""
    parts = [en] if en else []
    if zh.title_zh:
        same = not zh.description_zh or zh.description_zh == zh.title_zh
        parts.append(zh.title_zh if same else f"{zh.title_zh}：{zh.description_zh}")
    return " | ".join(parts) or None


class _Builder:
    def __init__(self, con: duckdb.DuckDBPyConnection, lake: Lake, tz: str, glossary: Glossary) -> None:
        self.con, self.lake, self.tz, self.glossary = con, lake, tz, glossary
        self.docs: list[ObjectDoc] = []
        self.views: list[tuple] = []  # meta.views rows
        self.counts: dict[str, int] = {}

    def sql(self, query: str, params: list | None = None) -> list[tuple]:
        return self.con.execute(query, params or []).fetchall()

    def insert(self, table: str, rows: list[tuple], values: str = "") -> None:
        """Insert ``rows`` in one statement (``executemany`` goes row by row); ``values`` is the SELECT list
        over the staged columns c1, c2... (default: all of them as they are)."""
        if not rows:
            return
        staged = pa.Table.from_pylist([{f"c{i}": v for i, v in enumerate(r, start=1)} for r in rows])
        self.con.register("staged_rows", staged)
        try:
            self.con.execute(f"INSERT INTO {table} SELECT {values or '*'} FROM staged_rows")
        finally:
            self.con.unregister("staged_rows")

    def describe(self, relation_sql: str) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self.sql(f"DESCRIBE {relation_sql}")]

    def projection(self, columns: list[tuple[str, str]]) -> str:
        """The columns as they are, with ``<col>_local`` (wall-clock time in ``tz``) after each TIMESTAMPTZ."""
        names = {n for n, _ in columns}
        items = []
        for name, type_ in columns:
            items.append(_ident(name))
            if type_ == TIMESTAMPTZ and name + LOCAL_SUFFIX not in names:
                items.append(f"timezone({_q(self.tz)}, {_ident(name)}) AS {_ident(name + LOCAL_SUFFIX)}")
        return ", ".join(items)

    # -- the lake -------------------------------------------------------------------------------------------
    def lake_view(self, ds: Dataset, count: bool) -> None:
        src = _view_sql(self.lake, ds)
        source = self.lake.read_source(ds.layer, ds.name)
        body = f"SELECT {self.projection(self.describe(src))} FROM ({src})"
        self.sql(f"CREATE OR REPLACE VIEW {ds.layer}.{ds.name} AS {body}")
        on_lake = source in body
        if on_lake and isinstance(self.lake, Lake):  # a glob under the folder: warehouse.relink can move it
            rel = Path(self.lake.glob(ds.layer, ds.name)).relative_to(self.lake.root).as_posix()
            self.views.append((ds.layer, ds.name, ds.key, "lake", rel, body.replace(source, LAKE_GLOB)))
        elif on_lake:  # the current commits' files on object storage: the snapshot this build read
            self.views.append((ds.layer, ds.name, ds.key, "object_store", self.lake.dataset_uri(ds.layer, ds.name),
                               None))
        else:
            self.views.append((ds.layer, ds.name, ds.key, "empty", None, None))
        if count:
            self.counts[ds.key] = self.sql(f"SELECT count(*) FROM {ds.layer}.{ds.name}")[0][0]
        text = self.glossary.dataset(ds.layer, ds.name)
        cols = {c.name: ColumnDoc(c.description, self.glossary.column(ds.layer, ds.name, c.name), c.nullable, c.pii)
                for c in ds.columns}
        self.docs.append(ObjectDoc(ds.layer, ds.name, "view", f"{ds.description} Grain: {ds.grain}.", text,
                                   ds.grain, cols))

    def row_accounting(self, accounting: list[Dataset]) -> None:
        template = accounting[0] if accounting else accounting_dataset("none")
        if accounting:
            body = " UNION ALL BY NAME ".join(f"SELECT * FROM audit.{ds.name}" for ds in accounting)
        else:
            src = template.empty_sql(extra="CAST(NULL AS DATE) AS date")
            body = f"SELECT {self.projection(self.describe(src))} FROM ({src})"
        self.sql(f"CREATE OR REPLACE VIEW audit.row_accounting AS {body}")
        self.views.append(("audit", "row_accounting", None, "derived", None, None))
        self.counts["audit/row_accounting"] = self.sql("SELECT count(*) FROM audit.row_accounting")[0][0]
        text, _ = self.glossary.warehouse_object("audit.row_accounting")
        cols = {c.name: ColumnDoc(c.description, self.glossary.column("audit", template.name, c.name), c.nullable,
                                  c.pii) for c in template.columns}
        self.docs.append(ObjectDoc("audit", "row_accounting", "view", text.description_en, text,
                                   template.grain, cols))

    # -- dimensions -----------------------------------------------------------------------------------------
    def districts(self) -> None:
        with open(DISTRICTS_CSV, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        names = list(rows[0])
        self.sql(f"CREATE TABLE dim.district ({', '.join(f'{_ident(n)} VARCHAR' for n in names)})")
        self.insert("dim.district", [tuple(r[n] for n in names) for r in rows])
        self.views.append(("dim", "district", None, "reference",
                           DISTRICTS_CSV.relative_to(HERE.parent).as_posix(), None))
        self.document_own("dim", "district", "table")

    def community(self, available: dict[str, Dataset]) -> None:
        registries = [available[k] for k in REGISTRIES if k in available]
        seen = [f"SELECT community_id, date FROM {ds.layer}.{ds.name}" for ds in registries
                if "community_id" in ds.column_names]
        named = [f"SELECT community_id, date, community_name, "
                 f"{'street' if 'street' in ds.column_names else 'CAST(NULL AS VARCHAR) AS street'} "
                 f"FROM {ds.layer}.{ds.name}" for ds in registries if "community_name" in ds.column_names]
        none = "SELECT CAST(NULL AS VARCHAR) AS community_id, CAST(NULL AS DATE) AS date WHERE false"
        body = (DIM_COMMUNITY_SQL.read_text(encoding="utf-8")
                .replace("@seen@", "\n    UNION ALL ".join(seen) or none)
                .replace("@named@", "\n    UNION ALL ".join(named) or
                         "SELECT CAST(NULL AS VARCHAR) AS community_id, CAST(NULL AS DATE) AS date, "
                         "CAST(NULL AS VARCHAR) AS community_name, CAST(NULL AS VARCHAR) AS street WHERE false"))
        self.sql(f"CREATE OR REPLACE VIEW dim.community AS {body}")
        self.views.append(("dim", "community", None, "derived", None, None))
        self.document_own("dim", "community", "view")

    def aliases(self) -> None:
        by_name = {d.qualified: d for d in self.docs}
        for target, aliases in DIMENSION_ALIASES.items():
            for alias in aliases:
                schema, name = alias.split(".")
                self.sql(f"CREATE OR REPLACE VIEW {alias} AS SELECT * FROM {target}")
                self.views.append((schema, name, None, "derived", None, None))
                src = by_name[target]
                self.docs.append(ObjectDoc(schema, name, "view", f"{src.en} Same as {target}.",
                                           Text(src.zh.title_zh, f"{src.zh.description_zh}（同 {target}）"),
                                           src.grain, dict(src.columns)))

    # -- the catalog tables ---------------------------------------------------------------------------------
    def document_own(self, schema: str, name: str, kind: str) -> None:
        text, cols = self.glossary.warehouse_object(f"{schema}.{name}")
        self.docs.append(ObjectDoc(schema, name, kind, text.description_en, text, None,
                                   {c: ColumnDoc(t.description_en, t) for c, t in cols.items()}))

    def table(self, name: str, ddl: str) -> None:
        self.sql(f"CREATE TABLE meta.{name} ({ddl})")
        self.document_own("meta", name, "table")

    def localise(self, table: str, *columns: str) -> None:
        for c in columns:
            self.sql(f"UPDATE meta.{table} SET {c}{LOCAL_SUFFIX} = timezone({_q(self.tz)}, {c})")

    def exports(self, outbox: Path) -> None:
        self.table("exports", """consumer VARCHAR, dataset VARCHAR, partition DATE, version INTEGER,
            is_latest BOOLEAN, is_correction BOOLEAN, supersedes INTEGER, row_count BIGINT, contract_id VARCHAR,
            contract_version VARCHAR, content_sha256 VARCHAR, generated_at TIMESTAMPTZ, generated_at_local TIMESTAMP,
            code_version VARCHAR, layout VARCHAR, path VARCHAR, manifest JSON""")
        rows = [(m["consumer"], m["dataset"], m["partition"], m["version"], v.is_latest, m.get("is_correction"),
                 m.get("supersedes"), m.get("row_count"), m.get("contract_id"), m.get("contract_version"),
                 m.get("content_sha256"), m.get("generated_at"), m.get("code_version"), v.layout, str(v.path),
                 json.dumps(m, ensure_ascii=False))
                for v in outbox_scan.export_versions(outbox) for m in [v.manifest]]
        self.insert("meta.exports", rows, "c1, c2, CAST(c3 AS DATE), c4, c5, c6, c7, c8, c9, c10, "
                    "c11, TRY_CAST(c12 AS TIMESTAMPTZ), NULL, c13, c14, c15, c16")
        self.localise("exports", "generated_at")
        self.counts["meta/exports"] = len(rows)

    def receipts(self, outbox: Path) -> None:
        self.table("receipts", """consumer VARCHAR, dataset VARCHAR, partition DATE, version INTEGER,
            is_latest BOOLEAN, receipt_id VARCHAR, idempotency_key VARCHAR, status VARCHAR, publisher VARCHAR,
            received_at TIMESTAMPTZ, received_at_local TIMESTAMP, content_sha256 VARCHAR, path VARCHAR""")
        rows = [(r["consumer"], r["dataset"], r["partition"], r["version"], f.is_latest, r["receipt_id"],
                 r["idempotency_key"], r["status"], r["publisher"], r["received_at"],
                 (r.get("detail") or {}).get("content_sha256"), str(f.path))
                for f in outbox_scan.receipt_files(outbox) for r in [f.receipt]]
        self.insert("meta.receipts", rows, "c1, c2, CAST(c3 AS DATE), c4, c5, c6, c7, c8, c9, "
                    "TRY_CAST(c10 AS TIMESTAMPTZ), NULL, c11, c12")
        self.localise("receipts", "received_at")
        self.counts["meta/receipts"] = len(rows)

    def contracts(self, contracts: list) -> None:
        self.table("contracts", """id VARCHAR, consumer VARCHAR, dataset VARCHAR, version VARCHAR,
            title_zh VARCHAR, title_en VARCHAR, k_threshold INTEGER, resource_code VARCHAR, update_cycle VARCHAR,
            raw JSON""")
        self.insert("meta.contracts", [
            (c.id, c.consumer, c.dataset, c.version, c.raw["title_zh"], c.raw["title_en"], c.k_threshold,
             c.raw["catalogue"]["resource_code"], c.raw["update_cycle"], json.dumps(c.raw, ensure_ascii=False))
            for c in contracts])

    def warehouse(self, kind: str, outbox: Path) -> None:
        self.table("warehouse", """file_kind VARCHAR, built_at TIMESTAMPTZ, built_at_local TIMESTAMP,
            time_zone VARCHAR, lake_dir VARCHAR, outbox_dir VARCHAR, relinked_at TIMESTAMPTZ,
            relinked_at_local TIMESTAMP, duckdb_version VARCHAR""")
        self.sql("INSERT INTO meta.warehouse VALUES (?, ?, NULL, ?, ?, ?, NULL, NULL, ?)",
                 [kind, datetime.now(UTC), self.tz, self.lake.location, str(outbox), duckdb.__version__])
        self.localise("warehouse", "built_at")

    def view_table(self) -> None:
        self.table("views", """schema_name VARCHAR, view_name VARCHAR, dataset VARCHAR, source VARCHAR,
            lake_glob VARCHAR, definition VARCHAR""")
        self.insert("meta.views", self.views)

    # -- comments and the dictionary ------------------------------------------------------------------------
    def column_docs(self, doc: ObjectDoc, actual: list[tuple[str, str, bool]]) -> list[tuple[str, str, bool, ColumnDoc]]:
        out = []
        for name, type_, nullable in actual:
            d = doc.columns.get(name)
            if d is None and name == "date" and doc.kind == "view":  # the hive partition column of a lake view
                text = self.glossary.column(doc.schema, doc.name, "date")
                d = ColumnDoc(text.description_en, text, False)
            if d is None and name.endswith(LOCAL_SUFFIX) and (src := doc.columns.get(name[:-len(LOCAL_SUFFIX)])):
                lt = local_text(src.zh, src.en, self.tz)
                d = ColumnDoc(lt.description_en, lt, src.nullable, src.pii, name[:-len(LOCAL_SUFFIX)])
            out.append((name, type_, nullable, d or ColumnDoc(None, Text())))
        return out

    def document(self) -> None:
        self.table("data_dictionary", """layer VARCHAR, dataset VARCHAR, object_kind VARCHAR, grain VARCHAR,
            dataset_title_zh VARCHAR, dataset_description VARCHAR, dataset_description_zh VARCHAR,
            column_position INTEGER, column_name VARCHAR, column_type VARCHAR, nullable BOOLEAN, pii VARCHAR,
            column_title_zh VARCHAR, column_description VARCHAR, column_description_zh VARCHAR,
            derived_from VARCHAR""")
        rows = []
        for doc in self.docs:
            kind = "VIEW" if doc.kind == "view" else "TABLE"
            self.sql(f"COMMENT ON {kind} {doc.qualified} IS {_q(comment(doc.en, doc.zh) or '')}")
            actual = [(r[0], r[1], r[2]) for r in self.sql(
                "SELECT column_name, data_type, is_nullable FROM duckdb_columns() WHERE database_name = "
                "current_database() AND schema_name = ? AND table_name = ? ORDER BY column_index",
                [doc.schema, doc.name])]
            for pos, (name, type_, nullable, d) in enumerate(self.column_docs(doc, actual), start=1):
                text = comment(d.en, d.zh)
                if text:
                    self.sql(f"COMMENT ON COLUMN {doc.qualified}.{_ident(name)} IS {_q(text)}")
                rows.append((doc.schema, doc.name, doc.kind, doc.grain, doc.zh.title_zh, doc.en,
                             doc.zh.description_zh, pos, name, type_, nullable if d.nullable is None else d.nullable,
                             d.pii or "none", d.zh.title_zh, d.en, d.zh.description_zh, d.derived_from))
        self.insert("meta.data_dictionary", rows)


def _build_file(path: Path, lake: Lake, outbox: Path, contracts: list | None, datasets: dict[str, Dataset],
                tz: str, kind: str, count: Iterable[str], glossary: Glossary) -> dict[str, int]:
    con = lake.attach(duckdb.connect(str(path)))
    try:
        con.execute("SET TimeZone = 'UTC'")  # naive times in manifests and receipts are read as UTC
        con.execute("BEGIN TRANSACTION")  # one commit: a statement per column comment would each commit
        b = _Builder(con, lake, tz, glossary)
        fixed = {"audit", "dim", "meta", "silver", "gold"} | ({INTERNAL_LAYER} if kind == "internal" else set())
        for schema in sorted({d.layer for d in datasets.values()} | fixed):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        counted = set(count)
        for ds in datasets.values():
            b.lake_view(ds, ds.key in counted)
        b.row_accounting([ds for ds in datasets.values()
                          if ds.layer == "audit" and ds.name.startswith("row_accounting_")])
        b.districts()
        b.community(datasets)
        b.aliases()
        for name in ("dim/district", "dim/community"):
            b.counts[name] = b.sql(f"SELECT count(*) FROM {name.replace('/', '.')}")[0][0]
        b.exports(outbox)
        b.receipts(outbox)
        if contracts:
            b.contracts(contracts)
        b.warehouse(kind, outbox)
        b.view_table()
        b.document()
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return b.counts


def build_warehouse(path: Path, lake: Lake, outbox: Path, contracts: list | None = None,
                    datasets: dict[str, Dataset] | None = None, timezone: str = DEFAULT_TIMEZONE) -> dict[str, int]:
    """(Re)build the analysts' file at ``path`` over ``datasets`` (every declared one by default) except the
    ``internal`` layer, and the data team's file (``internal_path(path)``, mode 0600) over all of them; returns
    row counts per view (``layer/name``) and catalog table. ``timezone`` is the one of ``<col>_local``."""
    everything = declared_datasets() if datasets is None else datasets
    published = {k: d for k, d in everything.items() if d.layer != INTERNAL_LAYER}
    glossary = load_glossary()
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_paths(leftovers(path))

    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    counts = _build_file(tmp, lake, outbox, contracts, published, timezone, "analysts", published, glossary)
    os.replace(tmp, path)

    # the data team's file is built in a folder only its owner can enter, so neither the file nor its WAL is
    # ever readable by others, and renamed in already 0600
    final = internal_path(path)
    private = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.tmp")
    private.mkdir(mode=0o700)
    try:
        tmp_internal = private / final.name
        internal = [k for k, d in everything.items() if d.layer == INTERNAL_LAYER]
        inner = _build_file(tmp_internal, lake, outbox, contracts, everything, timezone, "internal", internal,
                            glossary)
        os.chmod(tmp_internal, INTERNAL_MODE)
        os.replace(tmp_internal, final)
    finally:
        shutil.rmtree(private, ignore_errors=True)
    counts.update({k: inner[k] for k in internal})
    return counts


def day_rows(con: duckdb.DuckDBPyConnection, day: str) -> dict[str, int]:
    """Rows of ``day`` per lake view (``WHERE date = day``) and per catalog table with a ``partition`` day, by
    ``layer/name``; views without a ``date`` column (dimensions) are left out."""
    objects = con.execute(
        "SELECT schema_name, table_name, column_name FROM duckdb_columns() WHERE database_name = current_database() "
        "AND column_name IN ('date', 'partition') ORDER BY 1, 2").fetchall()
    return {f"{s}/{t}": con.execute(f"SELECT count(*) FROM {s}.{t} WHERE {_ident(c)} = CAST(? AS DATE)",
                                    [day]).fetchall()[0][0] for s, t, c in objects}
