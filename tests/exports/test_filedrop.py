"""The file drop as the district sees it: every version in its own folder, a ``latest`` pointer that only ever
names a complete folder, the contract inside every batch, a Chinese CSV header 1:1 with the English names,
Parquet field metadata, and a manifest with a title and a computed correction reason."""

from __future__ import annotations

import csv
import io
import json
import shutil
import threading
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import jsonschema
import pyarrow.parquet as pq
import pytest

from exports import filedrop
from exports.contracts import load_contracts
from exports.filedrop import (
    LATEST,
    current_batch,
    current_batches,
    latest_version,
    leftovers,
    migrate_legacy,
    publish_filedrop,
    verify_batch,
)
from exports.publishing import Batch
from exports.publishing.contract_doc import CONTRACT_FILE, SCHEMA_FILE, schema_bytes

from .rows import relation

DAY = "2026-11-21"
CONTRACTS = {c.id: c for c in load_contracts()}
DAILY = CONTRACTS["zhilian_putuo.device_health_daily"]


def _publish(outbox: Path, contract=DAILY, day: str = DAY, **kw):
    rows = {k: kw.pop(k) for k in ("n", "changed", "start") if k in kw}
    return publish_filedrop(duckdb.connect(), relation(contract, day, **rows), contract, day, outbox, **kw)


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def _poll(outbox: Path) -> set[str]:
    """What a poller keyed on folder names sees: every version folder of every day."""
    return {p.relative_to(outbox).as_posix() for p in outbox.glob("*/*/*/v*") if p.is_dir()}


# ------------------------------------------------------------------------------------------- contract in batch
@pytest.mark.parametrize("contract", list(CONTRACTS.values()), ids=list(CONTRACTS))
def test_every_batch_carries_its_contract_and_schema_listed_with_sha256(tmp_path: Path, contract) -> None:
    pub = _publish(tmp_path, contract)
    folder = pub.path
    assert folder == tmp_path / contract.consumer / contract.dataset / DAY / "v1"
    assert (folder / CONTRACT_FILE).read_bytes() == contract.path.read_bytes()  # the file itself, comments too
    assert (folder / SCHEMA_FILE).read_bytes() == schema_bytes(contract.raw)
    listed = {f["path"]: f for f in pub.manifest["files"]}
    assert set(listed) == {"data.parquet", "data.csv", CONTRACT_FILE, SCHEMA_FILE}
    assert listed[CONTRACT_FILE]["rows"] is None and listed["data.csv"]["rows"] == pub.manifest["row_count"]
    assert pub.manifest["contract_files"] == {"yaml": CONTRACT_FILE, "json_schema": SCHEMA_FILE}
    assert verify_batch(folder) == [] and verify_batch(folder.parent) == []  # the day folder resolves to latest
    Batch.from_dir(folder)  # sizes and sha256 of all four files hold


@pytest.mark.parametrize("contract", list(CONTRACTS.values()), ids=list(CONTRACTS))
def test_the_json_schema_describes_one_row_and_every_published_row_validates(tmp_path: Path, contract) -> None:
    folder = _publish(tmp_path, contract).path
    schema = json.loads((folder / SCHEMA_FILE).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert list(schema["properties"]) == [c["name"] for c in contract.columns]
    assert schema["required"] == [c["name"] for c in contract.columns] and not schema["additionalProperties"]
    assert schema["x-csv-header"] == [c["title_zh"] for c in contract.columns]
    for col in contract.columns:
        prop = schema["properties"][col["name"]]
        assert prop["title"] == col["title_zh"] and prop["description"] == col["description_zh"]
        assert prop["x-description-en"] == col["description_en"] and prop["x-duckdb-type"] == col["type"]
        assert ("null" in prop["type"]) == col["nullable"], col["name"]
        assert prop.get("x-unit") == col.get("unit")
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())

    def as_json(v):
        if isinstance(v, datetime):
            return v.strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(v, date):
            return v.isoformat()
        return float(v) if isinstance(v, Decimal) else v

    rows = pq.read_table(folder / "data.parquet").to_pylist()
    assert rows
    for row in rows:
        validator.validate({k: as_json(v) for k, v in row.items()})
    nullable = next((c["name"] for c in contract.columns if c["nullable"]), None)
    if nullable:
        validator.validate({**{k: as_json(v) for k, v in rows[0].items()}, nullable: None})
    required = next(c["name"] for c in contract.columns if not c["nullable"])
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**{k: as_json(v) for k, v in rows[0].items()}, required: None})


# ------------------------------------------------------------------------------------------------- CSV, Parquet
@pytest.mark.parametrize("contract", list(CONTRACTS.values()), ids=list(CONTRACTS))
def test_csv_header_is_chinese_and_maps_one_to_one_to_the_english_names(tmp_path: Path, contract) -> None:
    folder = _publish(tmp_path, contract).path
    raw = (folder / "data.csv").read_bytes()
    assert raw.startswith(filedrop.BOM)  # UTF-8 with BOM: Excel on Chinese Windows reads it right
    header, *rows = list(csv.reader(io.StringIO(raw[3:].decode("utf-8"))))
    english = pq.read_schema(folder / "data.parquet").names
    assert english == [c["name"] for c in contract.columns]  # Parquet keeps the English snake_case names
    assert header == [c["title_zh"] for c in contract.columns]
    assert len(set(header)) == len(header) and all(any("\u4e00" <= ch <= "\u9fff" for ch in h) for h in header)
    assert dict(zip(english, header, strict=True)) == contract.titles  # column i of the CSV is column i of Parquet
    assert len(rows) == pq.read_metadata(folder / "data.parquet").num_rows
    con = duckdb.connect()  # same values in both files, column by column (as DuckDB renders them)
    parquet = con.execute(f"SELECT CAST(COLUMNS(*) AS VARCHAR) FROM '{folder / 'data.parquet'}'").fetchall()
    assert [[("" if v is None else v) for v in r] for r in parquet] == rows


def test_parquet_fields_carry_the_contracts_descriptions_and_the_schema_names_the_contract(tmp_path: Path) -> None:
    for contract in CONTRACTS.values():
        schema = pq.read_schema(_publish(tmp_path / contract.id, contract).path / "data.parquet")
        assert schema.metadata[b"contract_id"].decode() == contract.id
        assert schema.metadata[b"contract_version"].decode() == contract.version
        assert schema.metadata[b"title_zh"].decode() == contract.raw["title_zh"]
        for col in contract.columns:
            field = schema.field(col["name"])
            meta = {k.decode(): v.decode() for k, v in field.metadata.items()}
            assert meta["title_zh"] == col["title_zh"] and meta["description_zh"] == col["description_zh"]
            assert meta["description_en"] == col["description_en"] and meta.get("unit") == col.get("unit")
            assert field.nullable == col["nullable"]
    units = [c for contract in CONTRACTS.values() for c in contract.columns if c.get("unit")]
    assert units, "some contract columns state a unit"
    # DuckDB (the receiver's validator, the analysts' tool) reads the contract's types from it
    described = duckdb.connect().execute(
        f"DESCRIBE SELECT * FROM '{_publish(tmp_path / 'd', DAILY).path / 'data.parquet'}'").fetchall()
    assert [(r[0], r[1]) for r in described] == [(c["name"], c["type"]) for c in DAILY.columns]


# --------------------------------------------------------------------------------------- versions, latest, title
def test_manifest_has_the_contracts_title_and_its_period(tmp_path: Path) -> None:
    m = _publish(tmp_path).manifest
    assert (m["title_zh"], m["title_en"]) == (DAILY.raw["title_zh"], DAILY.raw["title_en"])
    assert m["period"] == {"cycle": "daily", "start": DAY, "end": DAY}
    assert m["correction"] is None and m["version"] == 1 and not m["is_correction"]
    assert m["csv"] == {"encoding": "utf-8-sig", "header": "title_zh"}


def test_a_poller_listing_folders_sees_v1_and_v2_of_a_corrected_day(tmp_path: Path) -> None:
    v1 = _publish(tmp_path, n=6)
    seen_first = _poll(tmp_path)
    v1_files = {p.name: p.read_bytes() for p in v1.path.iterdir()}
    v2 = _publish(tmp_path, n=6, changed=[1, 4])
    seen_then = _poll(tmp_path)
    day = f"{DAILY.consumer}/{DAILY.dataset}/{DAY}"
    assert seen_first == {f"{day}/v1"} and seen_then == {f"{day}/v1", f"{day}/v2"}
    assert seen_then - seen_first == {f"{day}/v2"}  # the correction is a new name, not a rewrite
    assert {p.name: p.read_bytes() for p in v1.path.iterdir()} == v1_files  # v1 kept as it was
    assert (tmp_path / day / LATEST).read_text() == "v2\n" and current_batch(tmp_path / day) == v2.path
    assert v2.manifest["is_correction"] and v2.manifest["supersedes"] == 1 and v2.manifest["version"] == 2
    # an unchanged re-run publishes nothing new; latest stays
    again = _publish(tmp_path, n=6, changed=[1, 4])
    assert not again.published and again.path == v2.path and _poll(tmp_path) == seen_then
    assert current_batches(tmp_path) == [v2.path]


def test_the_same_rows_in_another_order_are_the_same_version(tmp_path: Path) -> None:
    """Found at 60 communities: a re-run wrote the same 141,696 rows of an export in another order (insertion
    order is not kept with preserve_insertion_order off and two threads), so the content hash changed and an
    unchanged day would have gone out as a correction. Rows tied on the key are ordered by their other columns."""
    contract = DAILY
    con = duckdb.connect(config={"preserve_insertion_order": False, "threads": 2})
    rows = relation(contract, DAY, n=20_000)
    first = publish_filedrop(con, f"SELECT * FROM ({rows}) ORDER BY random()", contract, DAY, tmp_path)
    keys = ", ".join(f'"{c}"' for c in contract.key_columns)
    # the same rows, shuffled, and every key duplicated with different values (ties the key order cannot break)
    tied = f"SELECT * FROM ({rows}) UNION ALL SELECT * FROM ({relation(contract, DAY, n=20_000, changed=range(0, 20_000, 7))})"
    for _ in range(3):
        again = publish_filedrop(con, f"SELECT * FROM ({rows}) ORDER BY random() DESC", contract, DAY, tmp_path)
        assert not again.published and again.path == first.path
    a = publish_filedrop(con, f"SELECT * FROM ({tied}) ORDER BY random()", contract, DAY, tmp_path)
    b = publish_filedrop(con, f"SELECT * FROM ({tied}) ORDER BY {keys} DESC, random()", contract, DAY, tmp_path)
    assert a.published and not b.published and b.path == a.path
    body = (a.path / "data.csv").read_text(encoding="utf-8-sig").splitlines()[1:]
    assert len(body) == 40_000 and pq.read_table(a.path / "data.parquet").num_rows == 40_000


def test_the_correction_reason_is_computed_from_the_two_versions(tmp_path: Path) -> None:
    landing = {"telemetry/2026-11-21": {"files": 3, "bytes": 300, "fingerprint": "a"},
               "device_registry/2026-11-21": {"files": 1, "bytes": 10, "fingerprint": "r"}}
    _publish(tmp_path, n=6, inputs={"landing": landing})
    late = {**landing, "telemetry/2026-11-21": {"files": 4, "bytes": 420, "fingerprint": "b"}}
    # rows 0..5 -> 1..7: row 0 removed, rows 6 and 7 added, rows 2 and 3 changed
    m = _publish(tmp_path, n=7, start=1, changed=[2, 3], inputs={"landing": late}).manifest
    c = m["correction"]
    assert c["against"]["version"] == 1 and c["matched_on"] == DAILY.key_columns
    assert c["rows"] == {"before": 6, "after": 7, "added": 2, "removed": 1, "changed": 2}
    values = [col["name"] for col in DAILY.columns if col["name"] not in DAILY.key_columns]
    assert set(c["columns_changed"]) == set(values) and set(c["columns_changed"].values()) == {2}
    assert c["triggers"] == [{"kind": "landing_files", "input": "telemetry/2026-11-21",
                              "before": {"files": 3, "bytes": 300}, "after": {"files": 4, "bytes": 420}}]
    assert "2 rows changed" in c["reason_en"] and "2 added, 1 removed" in c["reason_en"]
    assert "landing files telemetry/2026-11-21 (3 files" in c["reason_en"]
    assert "更正第1版" in c["reason_zh"] and "2行数值变化" in c["reason_zh"] and "新增2行，删除1行" in c["reason_zh"]
    assert DAILY.titles[values[0]] in c["reason_zh"]  # columns named by their Chinese titles in Chinese


def test_a_contract_change_alone_is_a_correction_that_says_so(tmp_path: Path, monkeypatch) -> None:
    _publish(tmp_path, inputs={"landing": {}})
    bumped = type(DAILY)({**DAILY.raw, "version": "99.0.0"}, DAILY.path)
    m = _publish(tmp_path, bumped, inputs={"landing": {}}).manifest
    assert m["version"] == 2 and m["correction"]["rows"]["changed"] == 0
    assert m["correction"]["triggers"] == [{"kind": "contract_version", "before": DAILY.version, "after": "99.0.0"}]
    assert f"contract version {DAILY.version} -> 99.0.0" in m["correction"]["reason_en"]


def test_unexplained_changes_say_the_recorded_inputs_did_not_change(tmp_path: Path) -> None:
    _publish(tmp_path, inputs={"landing": {"telemetry/x": {"files": 1, "bytes": 1, "fingerprint": "f"}}})
    m = _publish(tmp_path, changed=[0], inputs={"landing": {"telemetry/x": {"files": 1, "bytes": 1,
                                                                             "fingerprint": "f"}}}).manifest
    assert m["correction"]["triggers"] == []
    assert "recorded inputs" in m["correction"]["reason_en"] and "均未变化" in m["correction"]["reason_zh"]


def test_latest_never_names_an_incomplete_folder_while_versions_are_written(tmp_path: Path) -> None:
    """A reader polling ``latest`` during 12 publications always finds a complete, verifiable batch."""
    _publish(tmp_path)
    day = tmp_path / DAILY.consumer / DAILY.dataset / DAY
    stop, problems, reads = threading.Event(), [], [0]

    def reader() -> None:
        while not stop.is_set():
            n = latest_version(day)
            folder = day / f"v{n}"
            try:
                batch = Batch.from_dir(folder)  # manifest present, every listed file with its size and sha256
                if batch.version != n:
                    problems.append(f"latest v{n} holds version {batch.version}")
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                problems.append(f"v{n}: {exc}")
            reads[0] += 1

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(12):
            _publish(tmp_path, changed=[i % 6])
    finally:
        stop.set()
        thread.join()
    assert problems == [] and reads[0] > 12
    assert latest_version(day) == 13 and sorted(filedrop.versions(day)) == list(range(1, 14))


def test_a_failed_gate_leaves_latest_and_every_version_untouched(tmp_path: Path) -> None:
    v1 = _publish(tmp_path)
    day = v1.path.parent

    def refuse(staged: list[Path]) -> None:
        assert {p.name for p in staged} == {"data.parquet", "data.csv", CONTRACT_FILE, SCHEMA_FILE, "manifest.json"}
        raise RuntimeError("privacy scan hit")

    with pytest.raises(RuntimeError):
        _publish(tmp_path, changed=[0], gate=refuse)
    assert sorted(p.name for p in day.iterdir()) == [LATEST, "v1"] and latest_version(day) == 1
    assert leftovers(tmp_path) == []


def test_a_crash_between_the_version_folder_and_the_pointer_is_repaired_by_the_next_run(tmp_path, monkeypatch):
    v1 = _publish(tmp_path)
    day = v1.path.parent
    real = filedrop.write_latest

    def crash(partition: Path, version: int) -> None:
        raise KeyboardInterrupt("killed after the rename")

    monkeypatch.setattr(filedrop, "write_latest", crash)
    with pytest.raises(KeyboardInterrupt):
        _publish(tmp_path, changed=[0])
    assert latest_version(day) == 1 and verify_batch(day / "v1") == []  # still a complete folder
    assert verify_batch(day / "v2") == []  # the new folder appeared whole, it is just not current yet
    monkeypatch.setattr(filedrop, "write_latest", real)
    again = _publish(tmp_path, changed=[0])
    assert not again.published and again.path == day / "v2" and latest_version(day) == 2


def test_leftovers_of_a_killed_export_are_removed_and_never_listed_as_versions(tmp_path: Path) -> None:
    v1 = _publish(tmp_path)
    day = v1.path.parent
    (day.parent / f".tmp-{DAY}-deadbeef00").mkdir()
    (day / ".latest-deadbeef00.tmp").write_text("v9")
    assert len(leftovers(tmp_path)) == 2 and _poll(tmp_path) == {f"{DAILY.consumer}/{DAILY.dataset}/{DAY}/v1"}
    _publish(tmp_path, changed=[0])
    assert leftovers(tmp_path) == [] and latest_version(day) == 2


def test_a_day_folder_of_the_previous_layout_is_migrated_with_its_history(tmp_path: Path) -> None:
    """Before version folders: current files at the top of the day folder, superseded ones in history/v<n>/."""
    v1 = _publish(tmp_path)
    v2 = _publish(tmp_path, changed=[0])
    day = v2.path.parent
    legacy = tmp_path / "legacy" / DAILY.consumer / DAILY.dataset / DAY
    (legacy / "history").mkdir(parents=True)
    shutil.copytree(v1.path, legacy / "history" / "v1")
    for p in v2.path.iterdir():  # (a real one lists only data files; what is at the top moves as it is)
        shutil.copy2(p, legacy / p.name)
    assert current_batch(legacy) == legacy  # still readable before migration
    assert migrate_legacy(legacy) and not migrate_legacy(legacy)
    assert sorted(p.name for p in legacy.iterdir()) == [LATEST, "v1", "v2"] and latest_version(legacy) == 2
    assert _manifest(legacy / "v2") == _manifest(day / "v2") and verify_batch(legacy / "v1") == []
    third = _publish(tmp_path / "legacy", changed=[0, 1])
    assert third.manifest["version"] == 3 and third.manifest["correction"]["against"]["version"] == 2


def test_a_monthly_batch_covers_the_closed_previous_month(tmp_path: Path) -> None:
    monthly = CONTRACTS["zhilian_putuo.governance_monthly"]
    m = _publish(tmp_path, monthly, day="2026-03-01").manifest
    assert m["period"] == {"cycle": "monthly", "start": "2026-02-01", "end": "2026-02-28"}
    assert m["partition"] == "2026-03-01"
