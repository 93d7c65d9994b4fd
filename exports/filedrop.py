"""File-drop publication: every version of a batch in its own folder, and a ``latest`` pointer.

Layout::

    <outbox>/<consumer>/<dataset>/<yyyy-mm-dd>/v1/      data.parquet, data.csv, manifest.json,
                                              v2/      contract.yaml, contract.schema.json
                                              latest   "v2\\n": the current version

A version folder is staged beside the dataset folder (``.tmp-<day>-<id>``) and renamed into place complete,
so a ``v<N>`` folder never exists half-written; ``latest`` is replaced atomically after that rename, so it
only ever names a complete folder. A changed partition (or a new contract version) becomes version N+1,
marked as a correction with the reason computed against version N; earlier versions are kept. Re-running an
unchanged partition publishes nothing new. A poller can list version folders (each new one appears once,
complete) or read ``latest``.

``data.csv`` is UTF-8 with a BOM and has the contract's ``title_zh`` as header (Parquet keeps the English
column names, with the contract's titles and descriptions as Arrow field metadata).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from exports.contracts import Contract
from exports.publishing.changes import describe_correction
from exports.publishing.contract_doc import CONTRACT_FILE, SCHEMA_FILE, csv_header, schema_bytes
from kernel.lake import remove_paths

BOM = b"\xef\xbb\xbf"
LATEST = "latest"
MANIFEST = "manifest.json"
DATA_FILES = ("data.parquet", "data.csv")
BATCH_FILES = (*DATA_FILES, CONTRACT_FILE, SCHEMA_FILE)
VERSION_RE = re.compile(r"^v([1-9][0-9]*)$")


def code_version(override: str = "") -> str:
    """``NEURON_CODE_VERSION`` when the deployment sets it (``override``), else package version + git sha."""
    return override or _installed_version()


@functools.cache
def _installed_version() -> str:
    try:
        version = metadata.version("neuron")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{version}+{sha}" if sha else version


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Publication:
    path: Path  # the version folder (the current one when nothing new was written)
    manifest: dict
    published: bool  # False when the content was unchanged and nothing new was written


# ----------------------------------------------------------------------------------------------- layout
def partition_dir(outbox: Path, consumer: str, dataset: str, day: str) -> Path:
    """``<outbox>/<consumer>/<dataset>/<day>``: the folder holding a day's version folders and ``latest``."""
    return Path(outbox) / consumer / dataset / day


def batch_dir(outbox: Path, contract: Contract, day: str) -> Path:
    """The day folder of ``contract`` (its versions are ``v<N>/`` inside; see ``current_batch``)."""
    return partition_dir(outbox, contract.consumer, contract.dataset, day)


def versions(partition: Path) -> dict[int, Path]:
    """The complete version folders of a day folder (a folder counts once its manifest is in it), by number."""
    if not partition.is_dir():
        return {}
    return {int(m.group(1)): p for p in partition.iterdir()
            if (m := VERSION_RE.fullmatch(p.name)) and (p / MANIFEST).is_file()}


def latest_version(partition: Path) -> int | None:
    """The version ``latest`` names, or None when there is no (readable) pointer."""
    try:
        m = VERSION_RE.fullmatch((partition / LATEST).read_text(encoding="ascii").strip())
    except (OSError, UnicodeDecodeError):
        return None
    return int(m.group(1)) if m else None


def current_batch(partition: Path) -> Path | None:
    """The folder of the current version of a day: what ``latest`` names (a day folder of the layout before
    version folders, with ``manifest.json`` at its top, is its own current batch); None when nothing is
    published."""
    n = latest_version(partition)
    if n is not None and (partition / f"v{n}" / MANIFEST).is_file():
        return partition / f"v{n}"
    if (partition / MANIFEST).is_file():
        return partition
    return None


def resolve_batch(path: Path) -> Path:
    """``path`` itself when it is a batch folder, else the current version of the day folder it names."""
    if (path / MANIFEST).is_file():
        return path
    return current_batch(path) or path


def current_batches(outbox: Path, consumer: str = "*", dataset: str = "*", day: str = "*") -> list[Path]:
    """The current version folder of every published day matching the patterns, sorted."""
    if not Path(outbox).exists():
        return []
    found = (current_batch(p) for p in Path(outbox).glob(f"{consumer}/{dataset}/{day}") if p.is_dir()
             and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", p.name))
    return sorted(p for p in found if p is not None)


def leftovers(outbox: Path, consumer: str = "*", dataset: str = "*", day: str = "*") -> list[Path]:
    """What a killed export left: staging folders (``.tmp-<day>-<id>`` beside the day folders) and pointer temp
    files (``<day>/.latest-<id>.tmp``). Runs of one day are serialised by the day lease, so an export removes
    its own day's before it stages a batch."""
    if not Path(outbox).exists():
        return []
    return sorted([*outbox.glob(f"{consumer}/{dataset}/.tmp-{day}-*"),
                   *outbox.glob(f"{consumer}/{dataset}/{day}/.{LATEST}-*.tmp")])


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_latest(partition: Path, version: int) -> None:
    """Point ``latest`` at ``v<version>`` atomically (temp file, fsync, rename): a reader sees the old or the
    new pointer, never a partial one. The version folder must already be complete."""
    if not (partition / f"v{version}" / MANIFEST).is_file():
        raise FileNotFoundError(f"{partition / f'v{version}'} is not a complete version folder")
    if latest_version(partition) == version:
        return
    tmp = partition / f".{LATEST}-{uuid.uuid4().hex[:10]}.tmp"
    try:
        with open(tmp, "w", encoding="ascii") as fh:
            fh.write(f"v{version}\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, partition / LATEST)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(partition)


def _legacy_files(partition: Path) -> list[Path]:
    """The batch files at the top of a day folder of the previous layout (not the pointer or temp files)."""
    return [p for p in partition.iterdir() if p.is_file() and p.name != LATEST and not p.name.startswith(".")]


def migrate_legacy(partition: Path) -> bool:
    """Turn a day folder of the layout before version folders (current files at its top, superseded ones in
    ``history/v<n>/``) into ``v<n>/`` folders and ``latest``. Each step is atomic and the top-level manifest
    goes last, so an interrupted migration is completed by the next call. True when something was migrated."""
    top = partition / MANIFEST
    if not top.is_file():
        return False
    current = int(json.loads(top.read_text(encoding="utf-8"))["version"])
    history = partition / "history"
    if history.is_dir():
        for old in sorted(history.iterdir()):
            if VERSION_RE.fullmatch(old.name) and not (partition / old.name).exists():
                os.rename(old, partition / old.name)
    target = partition / f"v{current}"
    if not target.exists():
        stage = partition.parent / f".tmp-{partition.name}-{uuid.uuid4().hex[:10]}"
        stage.mkdir()
        for path in _legacy_files(partition):
            shutil.copy2(path, stage / path.name)
        os.rename(stage, target)
    write_latest(partition, current)
    for path in _legacy_files(partition):
        if path.name != MANIFEST:
            path.unlink()
    shutil.rmtree(history, ignore_errors=True)
    top.unlink()
    return True


# ------------------------------------------------------------------------------------------------ files
def parquet_schema(contract: Contract, arrow: pa.Schema) -> pa.Schema:
    """``arrow`` (the relation's own types, in contract order) with the contract's nullability, per field
    ``title_zh``/``description_zh``/``description_en``/``unit`` and the contract's id, version and titles as
    schema metadata."""
    fields = []
    for field, col in zip(arrow, contract.columns, strict=True):
        meta = {k: str(col[k]) for k in ("title_zh", "description_zh", "description_en", "unit") if col.get(k)}
        fields.append(pa.field(field.name, field.type, nullable=bool(col["nullable"]), metadata=meta))
    return pa.schema(fields, metadata={"contract_id": contract.id, "contract_version": contract.version,
                                       "title_zh": str(contract.raw["title_zh"]),
                                       "title_en": str(contract.raw["title_en"])})


def write_parquet(con: duckdb.DuckDBPyConnection, table: str, contract: Contract, path: Path,
                  order: str | None = None) -> None:
    data = con.sql(f"SELECT * FROM {table}" + (f" ORDER BY {order}" if order else "")).to_arrow_table()
    schema = parquet_schema(contract, data.schema)
    pq.write_table(pa.Table.from_arrays(data.columns, schema=schema), path, compression="zstd")


def write_csv(body: Path, contract: Contract, out: Path) -> None:
    """``body`` (DuckDB's CSV with the English header) as ``out``: a BOM, the ``title_zh`` header, the rows."""
    with open(body, "rb") as src, open(out, "wb") as dst:
        src.readline()  # the English header: column names, no quoting or newline inside
        dst.write(BOM)  # Excel on Chinese Windows reads a BOM-less CSV as GBK
        dst.write((",".join(csv_header(contract.raw)) + "\n").encode("utf-8"))
        shutil.copyfileobj(src, dst)


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


# -------------------------------------------------------------------------------------------------- publish
def publish_filedrop(
    con: duckdb.DuckDBPyConnection,
    relation_sql: str,
    contract: Contract,
    day: str,
    outbox: Path,
    gate: Callable[[list[Path]], None] | None = None,
    code_version_override: str = "",
    inputs: dict[str, Any] | None = None,
) -> Publication:
    """Write version N+1 of the batch for ``day`` from ``relation_sql`` (already in contract column order),
    unless the current version has the same content under the same contract version.

    ``inputs`` (e.g. ``{"landing": fingerprints}``) is recorded in the manifest so the next correction can
    say what changed. The manifest's ``period`` is what the batch covers under the contract's cycle."""
    partition = batch_dir(outbox, contract, day)
    partition.mkdir(parents=True, exist_ok=True)
    remove_paths(leftovers(outbox, contract.consumer, contract.dataset, day))
    migrate_legacy(partition)
    tmp = partition.parent / f".tmp-{day}-{uuid.uuid4().hex[:10]}"
    tmp.mkdir()
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE export_rows AS SELECT * FROM ({relation_sql})")
        # one order for the same rows, always: the key columns, then every other column for ties. A table's
        # insertion order is not kept (the connections run with preserve_insertion_order off), so each file is
        # written from its own ORDER BY; otherwise a re-run could write the same rows in another order, under
        # another content hash, and publish an unchanged day as a correction
        columns = [c["name"] for c in contract.columns]  # the relation is in contract column order
        order = ", ".join(f'"{c}"' for c in [*contract.key_columns,
                                               *(c for c in columns if c not in contract.key_columns)])
        rows = con.execute("SELECT count(*) FROM export_rows").fetchall()[0][0]
        write_parquet(con, "export_rows", contract, tmp / "data.parquet", order)
        body = tmp / "body.csv"
        con.execute(f"COPY (SELECT * FROM export_rows ORDER BY {order}) TO '{body}' "
                    f"(FORMAT csv, HEADER true, TIMESTAMPFORMAT '%Y-%m-%d %H:%M:%S')")
        # the content identity: rows and English column names, whatever the header language or file encoding
        content_sha = sha256_file(body)
        write_csv(body, contract, tmp / "data.csv")
        body.unlink()

        held = versions(partition)
        previous_n = max(held) if held else None
        previous = json.loads((held[previous_n] / MANIFEST).read_text(encoding="utf-8")) if previous_n else None
        if (previous is not None and previous.get("content_sha256") == content_sha
                and previous.get("contract_version") == contract.version):
            write_latest(partition, previous_n)  # repairs a pointer an interrupted run left one version behind
            return Publication(held[previous_n], previous, published=False)
        version = previous_n + 1 if previous_n else 1

        shutil.copyfile(contract.path, tmp / CONTRACT_FILE)  # the contract file itself, comments included
        (tmp / SCHEMA_FILE).write_bytes(schema_bytes(contract.raw))
        manifest: dict[str, Any] = {
            "dataset": contract.dataset,
            "consumer": contract.consumer,
            "contract_id": contract.id,
            "contract_version": contract.version,
            "title_zh": contract.raw["title_zh"],
            "title_en": contract.raw["title_en"],
            "partition": day,
            "period": contract.covered_period(day),
            "version": version,
            "is_correction": previous is not None,
            "supersedes": previous_n,
            "row_count": rows,
            "content_sha256": content_sha,
            **({"disclosure": contract.disclosure.describe()} if contract.counts_people else {}),
            "csv": {"encoding": "utf-8-sig", "header": "title_zh"},
            "contract_files": {"yaml": CONTRACT_FILE, "json_schema": SCHEMA_FILE},
            "files": [
                {
                    "path": name,
                    "sha256": sha256_file(tmp / name),
                    "bytes": (tmp / name).stat().st_size,
                    "rows": rows if name in DATA_FILES else None,
                }
                for name in BATCH_FILES
            ],
            "inputs": inputs or {},
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "code_version": code_version(code_version_override),
        }
        manifest["correction"] = (describe_correction(held[previous_n], previous, tmp, manifest, previous_n)
                                  if previous is not None and previous_n is not None else None)
        (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        if gate is not None:  # e.g. the privacy scan: raising here leaves the outbox untouched
            gate([tmp / name for name in (*BATCH_FILES, MANIFEST)])
        for name in (*BATCH_FILES, MANIFEST):
            _fsync(tmp / name)
        final = partition / f"v{version}"
        os.rename(tmp, final)  # the whole version folder appears at once; fails if it somehow exists
        _fsync_dir(partition)
        write_latest(partition, version)
        return Publication(final, manifest, published=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def verify_batch(path: Path) -> list[str]:
    """Problems with a batch folder, or with the current version of a day folder (empty list = manifest
    checksums hold)."""
    path = resolve_batch(path)
    problems = []
    manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    for f in manifest["files"]:
        p = path / f["path"]
        if not p.exists():
            problems.append(f"{f['path']}: missing")
        elif sha256_file(p) != f["sha256"]:
            problems.append(f"{f['path']}: sha256 mismatch")
    return problems
