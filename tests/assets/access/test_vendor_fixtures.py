"""Conformance: real-shaped Hikvision ISC payloads (tests/fixtures/vendors/hikvision_isc, sources in SOURCE.md)
through the real parser, landing file -> bronze, quarantine and other-ability counts, against hand-written rows."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from assets.access.datasets import ACCESS_BRONZE, ACCESS_OTHER, ACCESS_QUARANTINE, ACCESS_VOCABULARY_GAPS
from assets.access.parse import HERE, ingest_day
from kernel.lake import Lake
from kernel.tokens import Tokenizer

FIXTURES = Path(__file__).parents[2] / "fixtures" / "vendors" / "hikvision_isc"
COMMUNITY = "310107001001"
TZ = "Asia/Shanghai"
TOKENIZER = Tokenizer("access-fixture-key-0123456789", 1)
COLUMNS = ("outcome", "event_id", "door_id", "event_type", "event_kind", "direction", "verify_mode", "user_type",
           "result", "person", "event_ts", "time_quality", "reason", "ability", "event_class", "events")


def _cases() -> list[dict[str, str]]:
    with (FIXTURES / "cases.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def ingest_fixture(tmp: Path, name: str, day: str, vocabulary_dir: Path = HERE) -> tuple[Lake, object]:
    """Land ``<name>.ndjson`` as one community's file of ``day`` and run the real ingest with the fixture doors."""
    landing = tmp / "landing"
    folder = landing / "access_events" / day / COMMUNITY
    folder.mkdir(parents=True)
    shutil.copy(FIXTURES / f"{name}.ndjson", folder / f"{COMMUNITY}-001.ndjson")
    con = duckdb.connect()
    con.execute(f"CREATE TEMP TABLE doors AS SELECT * FROM read_csv('{FIXTURES / 'doors.csv'}', header = true, "
                "all_varchar = true)")
    lake = Lake(tmp / "lake")
    stats = ingest_day(con, lake, landing, day, TZ, TOKENIZER.tokenize_series, vocabulary_dir=vocabulary_dir)
    return lake, stats


def _read(lake: Lake, ds, day: str) -> str:
    files = lake.files(ds.layer, ds.name, day)
    assert files, f"{ds.key} was not written"
    return "read_parquet([" + ", ".join(f"'{f}'" for f in files) + "])"


def canonical_rows(lake: Lake, day: str) -> list[dict[str, str]]:
    """Every record the parser wrote for the day, as the fixture's expected CSV spells it ('' for null)."""
    local = f"strftime(timezone('{TZ}', event_ts), '%Y-%m-%d %H:%M:%S')"
    sql = f"""
        SELECT 'accepted' AS outcome, event_id, door_id, CAST(event_type AS VARCHAR) AS event_type, event_kind,
            direction, verify_mode, user_type, result, CASE WHEN person_token IS NOT NULL THEN 'token' END AS person,
            {local} AS event_ts, time_quality, NULL AS reason, NULL AS ability, NULL AS event_class, NULL AS events
        FROM {_read(lake, ACCESS_BRONZE, day)}
        UNION ALL
        SELECT 'quarantined', event_id, door_id, CAST(event_type AS VARCHAR), NULL, NULL, NULL, NULL, NULL, NULL,
            NULL, NULL, reason, NULL, NULL, NULL
        FROM {_read(lake, ACCESS_QUARANTINE, day)}
        UNION ALL
        SELECT 'routed', NULL, NULL, CAST(event_type AS VARCHAR), NULL, NULL, NULL, NULL, NULL, NULL,
            strftime(hour_start, '%Y-%m-%d %H:%M:%S'), time_quality, NULL, ability, event_class, CAST(events AS VARCHAR)
        FROM {_read(lake, ACCESS_OTHER, day)}"""
    frame = duckdb.sql(f"SELECT * FROM ({sql}) ORDER BY ALL").pl()
    return [{c: "" if v is None else str(v) for c, v in row.items()} for row in frame.iter_rows(named=True)]


def _expected(name: str) -> list[dict[str, str]]:
    with (FIXTURES / f"{name}.expected.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows and tuple(rows[0]) == COLUMNS
    return sorted(rows, key=lambda r: tuple(r[c] for c in COLUMNS))


def lake_text(lake: Lake) -> str:
    """Every value of every Parquet file the ingest wrote, as text."""
    parts = []
    for f in sorted(Path(lake.root).rglob("*.parquet")):
        parts.append(duckdb.sql(f"SELECT * FROM read_parquet('{f}')").pl().select(
            pl.all().cast(pl.String)).write_csv())
    return "\n".join(parts)


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c["name"])
def test_each_vendor_fixture_gives_exactly_its_canonical_rows(tmp_path: Path, case: dict[str, str]):
    lake, stats = ingest_fixture(tmp_path, case["name"], case["day"])
    assert canonical_rows(lake, case["day"]) == _expected(case["name"])
    # every record is accepted, routed, quarantined or a duplicate
    assert stats.landed == stats.bronze_rows + stats.quarantined + stats.duplicates_in_file + \
        stats.counters["routed_non_door"]
    text = lake_text(lake)
    for raw in filter(None, case["identifiers"].split("|")):
        assert raw not in text, raw


def test_fixture_sources_are_documented():
    source = (FIXTURES / "SOURCE.md").read_text(encoding="utf-8")
    for case in _cases():
        assert f"`{case['name']}.ndjson`" in source, case["name"]


def test_an_unmapped_door_event_type_is_a_counted_vocabulary_gap(tmp_path: Path):
    day = "2017-12-28"
    lake, stats = ingest_fixture(tmp_path, "acs_glued_time_unmapped_type", day)
    gaps = duckdb.sql(f"SELECT community_id, vendor, ability, event_type, events "
                      f"FROM {_read(lake, ACCESS_VOCABULARY_GAPS, day)}").fetchall()
    assert gaps == [(COMMUNITY, "hikvision_isc", "event_acs", 66323, 1)]
    assert stats.counters["vocabulary_gap/event_acs/66323"] == 1
    assert stats.reasons == {"unknown_event_type": 1}


def test_adding_an_event_type_is_a_csv_row(tmp_path: Path):
    """The operator's whole change: one line in event_types.csv. The same payload is then accepted, its broken
    happenTime ("2017-12-2823: 00: 03.000", local) repaired to the second (ExtEventInOut 0 is no direction on
    the door's inout_12 convention)."""
    vocab = tmp_path / "vocabulary"
    vocab.mkdir()
    for f in HERE.glob("*.csv"):
        shutil.copy(f, vocab / f.name)
    with (vocab / "event_types.csv").open("a", encoding="utf-8") as f:
        f.write("hikvision_isc,event_acs,66323,door,pass,granted,id_card,operator-added: ID-card check passed\n")
    day = "2017-12-28"
    lake, stats = ingest_fixture(tmp_path, "acs_glued_time_unmapped_type", day, vocabulary_dir=vocab)
    rows = canonical_rows(lake, day)
    assert [(r["outcome"], r["event_kind"], r["verify_mode"], r["direction"], r["event_ts"], r["time_quality"])
            for r in rows] == [("accepted", "pass", "id_card", "unknown", "2017-12-28 23:00:03", "repaired")]
    assert stats.quarantined == 0 and stats.counters["vocabulary_gaps"] == 0
