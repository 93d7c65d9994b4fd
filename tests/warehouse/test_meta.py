"""Catalog tables: meta.exports reads every version of every batch in either outbox layout (is_latest marks the
one to read), meta.receipts every receipt; their times are TIMESTAMPTZ with a local twin."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from assets.registry import datasets
from exports.contracts import load_contracts
from exports.filedrop import publish_filedrop
from exports.publishing.batch import Receipt
from exports.publishing.versions import receipts_dir_for, write_receipt
from kernel.lake import Lake
from warehouse.catalog import build_warehouse
from warehouse.outbox import latest_pointer

DAY = "2026-11-19"


def _manifest(folder: Path, version: int, generated_at: str, dataset: str = "environment_hourly") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps({
        "dataset": dataset, "consumer": "zhilian_putuo", "contract_id": f"zhilian_putuo.{dataset}",
        "contract_version": "1.0.0", "partition": DAY, "version": version, "is_correction": version > 1,
        "supersedes": version - 1 if version > 1 else None, "row_count": 10 * version,
        "content_sha256": f"{version:064d}", "generated_at": generated_at, "code_version": "0.1.0"}))


def _exports(tmp_path: Path, outbox: Path) -> list[tuple]:
    path = tmp_path / "neuron.duckdb"
    build_warehouse(path, Lake(tmp_path / "lake"), outbox, datasets={})
    con = duckdb.connect(str(path), read_only=True)
    return con.execute("SELECT dataset, version, is_latest, layout, row_count, is_correction, supersedes "
                       "FROM meta.exports ORDER BY dataset, version").fetchall()


def test_the_earlier_layout_current_manifest_and_its_history(tmp_path: Path):
    day = tmp_path / "outbox" / "zhilian_putuo" / "environment_hourly" / DAY
    _manifest(day, 3, "2026-11-20T02:00:00+00:00")
    _manifest(day / "history" / "v1", 1, "2026-11-19T18:00:00+00:00")
    _manifest(day / "history" / "v2", 2, "2026-11-19T20:00:00+00:00")
    assert _exports(tmp_path, tmp_path / "outbox") == [
        ("environment_hourly", 1, False, "legacy_history", 10, False, None),
        ("environment_hourly", 2, False, "legacy_history", 20, True, 1),
        ("environment_hourly", 3, True, "legacy", 30, True, 2)]


def test_version_folders_follow_the_latest_pointer_in_any_form(tmp_path: Path):
    base = tmp_path / "outbox" / "zhilian_putuo"
    for dataset, pointer in (("as_text", "v2\n"), ("as_json", '{"version": 2}'), ("as_symlink", None),
                             ("no_pointer", "")):
        day = base / dataset / DAY
        for v in (1, 2, 3):
            _manifest(day / f"v{v}", v, f"2026-11-19T1{v}:00:00+00:00", dataset)
        if pointer is None:
            os.symlink("v2", day / "latest")
        elif pointer:
            (day / "latest").write_text(pointer)
    # v3 is complete but the pointer still names v2 (the writer moves it last): v2 is what a poller reads
    rows = _exports(tmp_path, tmp_path / "outbox")
    latest = {(d, v) for d, v, is_latest, layout, *_ in rows if is_latest}
    assert latest == {("as_text", 2), ("as_json", 2), ("as_symlink", 2), ("no_pointer", 3)}
    assert {r[3] for r in rows} == {"version_folder"}
    assert len(rows) == 12  # every version, and the symlink is not read as a version of its own
    assert latest_pointer(base / "as_symlink" / DAY) == 2


def test_a_day_migrating_between_layouts_lists_each_version_once(tmp_path: Path):
    day = tmp_path / "outbox" / "zhilian_putuo" / "environment_hourly" / DAY
    _manifest(day, 2, "2026-11-20T02:00:00+00:00")  # still at the top
    _manifest(day / "v1", 1, "2026-11-19T18:00:00+00:00")  # history/v1 already moved to v1/
    _manifest(day / "v2", 2, "2026-11-20T02:00:00+00:00")  # v2 copied, pointer not yet written
    (tmp_path / "outbox" / "zhilian_putuo" / "environment_hourly" / f".tmp-{DAY}-abc").mkdir()  # staging
    rows = _exports(tmp_path, tmp_path / "outbox")
    assert [(v, latest, layout) for _, v, latest, layout, *_ in rows] == [
        (1, False, "version_folder"), (2, True, "version_folder")]


def test_batches_the_real_writer_publishes_are_listed_with_their_latest(tmp_path: Path):
    """Whatever layout exports/filedrop.py writes, a correction shows both versions and the newer is latest."""
    contract = next(c for c in load_contracts() if c.id == "zhilian_putuo.environment_hourly")
    gold = datasets()["gold/environment_hourly"]
    con = duckdb.connect()

    def relation(pm25: int) -> str:
        given = {"community_id": "'310107001001'", "hour_start": f"TIMESTAMP '{DAY} 23:00:00'",
                 "pm25_avg": str(pm25)}
        cols = ", ".join(f'CAST({given.get(c.name, "NULL" if c.nullable else "0")} AS {c.type}) AS "{c.name}"'
                         for c in gold.columns)
        return f"SELECT DATE '{DAY}' AS stat_date, {cols}"

    outbox = tmp_path / "outbox"
    first = publish_filedrop(con, relation(35), contract, DAY, outbox)
    second = publish_filedrop(con, relation(36), contract, DAY, outbox)
    assert (first.manifest["version"], second.manifest["version"]) == (1, 2)
    rows = _exports(tmp_path, outbox)
    assert [(v, latest, corr) for _, v, latest, _, _, corr, _ in rows] == [(1, False, False), (2, True, True)]


def test_times_are_typed_with_a_local_twin(tmp_path: Path):
    outbox = tmp_path / "outbox"
    _manifest(outbox / "zhilian_putuo" / "environment_hourly" / DAY / "v1", 1, "2026-11-19T18:30:00+00:00")
    received = datetime(2026, 11, 19, 18, 31, 2, 500000, tzinfo=UTC)
    write_receipt(receipts_dir_for(outbox, "zhilian_putuo"), Receipt(
        receipt_id="r-1", consumer="zhilian_putuo", dataset="environment_hourly", partition=DAY, version=1,
        idempotency_key="k-1", status="committed", publisher="https_push",
        received_at=received.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        detail={"content_sha256": "0" * 64}))
    path = tmp_path / "neuron.duckdb"
    build_warehouse(path, Lake(tmp_path / "lake"), outbox, datasets={})
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    types = dict(con.execute("SELECT table_name || '.' || column_name, data_type FROM duckdb_columns() "
                             "WHERE schema_name = 'meta' AND (column_name LIKE '%\\_at' ESCAPE '\\' "
                             "OR column_name LIKE '%\\_at\\_local' ESCAPE '\\')").fetchall())
    assert types == {
        "exports.generated_at": "TIMESTAMP WITH TIME ZONE", "exports.generated_at_local": "TIMESTAMP",
        "receipts.received_at": "TIMESTAMP WITH TIME ZONE", "receipts.received_at_local": "TIMESTAMP",
        "warehouse.built_at": "TIMESTAMP WITH TIME ZONE", "warehouse.built_at_local": "TIMESTAMP",
        "warehouse.relinked_at": "TIMESTAMP WITH TIME ZONE", "warehouse.relinked_at_local": "TIMESTAMP"}
    assert con.execute("SELECT generated_at, generated_at_local FROM meta.exports").fetchall() == [
        (datetime(2026, 11, 19, 18, 30, tzinfo=UTC), datetime(2026, 11, 20, 2, 30))]
    assert con.execute("SELECT received_at, received_at_local, is_latest, content_sha256 FROM meta.receipts"
                       ).fetchall() == [(received, datetime(2026, 11, 20, 2, 31, 2, 500000), True, "0" * 64)]
