"""Access events as an adversary: bad files planted in a simulated day never fail ``bronze_access_events``.

A truncated .gz (a real file cut in half), junk with a correct name, real content as UTF-16 (gzipped with a
byte-order mark, and a plain .ndjson without one), a zero-byte file and a whole file re-delivered with
malformed lines in it, all in one community's folder. Materialised through Dagster and compared with the real
parser's clean parse of the same day without them.
"""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl
import pytest

from tests.assets.access.helpers import simulate_access_day
from tests.assets.bad_files import (
    add_malformed_lines,
    assert_whole_file_row,
    canonical,
    copy_landing,
    failed_checks,
    gunzip_text,
    gzip_bytes,
    half,
    junk,
    lake_frame,
    materialise,
    utf16,
    without_files,
)

pytestmark = pytest.mark.slow
DAY, SEED, N = "2026-11-17", 9, 2
UNREADABLE = {"{c}-090-cut.ndjson.gz": "truncated gzip",
              "{c}-091.ndjson.gz": "not gzip despite the .gz name",
              "{c}-092-utf16.ndjson.gz": "UTF-16",
              "{c}-093-utf16.ndjson": "UTF-16|NUL bytes",
              "{c}-094.ndjson.gz": "zero-byte file"}
REDELIVERED = "{c}-099-redelivered.ndjson.gz"


def _rel(name: str, c: str) -> str:
    return f"access_events/{DAY}/{c}/{name.format(c=c)}"


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory):
    from assets.access.datasets import ACCESS_DOORS
    from assets.access.parse import HERE, ingest_day, load_vocabulary, parse_batch
    from kernel.io import create_view
    from kernel.lake import Lake
    from kernel.ndjson import read_lines
    from kernel.resource import NeuronResource
    from kernel.sqlfile import run_script
    from tests.conftest import use_data_root

    with pytest.MonkeyPatch.context() as mp:
        root = use_data_root(mp, tmp_path_factory.mktemp("access_bad") / "data")
        landing = root / "landing"
        summary = simulate_access_day(landing, date.fromisoformat(DAY), N, SEED, telemetry=False)
        folders = sorted(p for p in (landing / "access_events" / DAY).iterdir() if p.is_dir())
        c = folders[0].name
        real = sorted(folders[0].glob("*.ndjson.gz"), key=lambda p: (-p.stat().st_size, p.name))
        orig = real[0]  # the community's busiest hour
        orig.write_bytes(gzip_bytes(add_malformed_lines(gunzip_text(orig))))
        clean = copy_landing(landing, root / "clean_landing")

        other = gunzip_text(real[1])
        planted = {"{c}-090-cut.ndjson.gz": half(real[1].read_bytes()),
                   "{c}-091.ndjson.gz": junk(seed=3),
                   "{c}-092-utf16.ndjson.gz": gzip_bytes(utf16(other, bom=True)),
                   "{c}-093-utf16.ndjson": utf16(other, bom=False),
                   "{c}-094.ndjson.gz": b"",
                   REDELIVERED: orig.read_bytes()}
        for name, data in planted.items():
            (folders[0] / name.format(c=c)).write_bytes(data)

        res = materialise(DAY, ("access_bronze", "access_silver"))

        neuron = NeuronResource()
        con = duckdb.connect()
        create_view(con, "doors", neuron.lake, ACCESS_DOORS, DAY)
        clean_lake = Lake(root / "clean_lake")
        tokenize = neuron.tokenizer("access").tokenize_series
        stats = ingest_day(con, clean_lake, clean, DAY, neuron.settings.timezone, tokenize)
        load_vocabulary(con)
        parse_batch(con, read_lines([clean / "access_events" / DAY / c / orig.name], clean), DAY,
                    neuron.settings.timezone, tokenize)
        run_script(con, HERE / "bronze_outputs.sql")
        alone = dict(zip(("accepted", "rejected", "dup_in", "routed"), con.execute(
            "SELECT count(*) FILTER (WHERE reason IS NULL AND NOT dup_in_file AND NOT routed), "
            "count(*) FILTER (WHERE reason IS NOT NULL), count(*) FILTER (WHERE dup_in_file), "
            "count(*) FILTER (WHERE reason IS NULL AND NOT dup_in_file AND routed) FROM records").fetchall()[0],
            strict=True))
        yield {"root": root, "c": c, "res": res, "clean_lake": clean_lake.root, "clean_stats": stats,
               "alone": alone, "orig": _rel(orig.name, c), "summary": summary}


def _lake(day, layer: str, name: str, clean: bool = False) -> pl.DataFrame:
    return lake_frame(day["clean_lake"] if clean else day["root"] / "lake", layer, name, DAY)


def test_the_steps_succeed_and_every_blocking_check_passes(day):
    assert day["res"].success
    assert failed_checks(day["res"]) == []


def test_every_other_file_is_in_bronze_exactly_as_without_the_bad_files(day):
    c = day["c"]
    bronze = _lake(day, "bronze", "access_events")
    redelivered = _rel(REDELIVERED, c)
    assert not bronze["source_file"].is_in([_rel(n, c) for n in UNREADABLE]).any()
    clean = _lake(day, "bronze", "access_events", clean=True)
    assert canonical(without_files(bronze, {redelivered})).equals(canonical(clean))
    copy = bronze.filter(pl.col("source_file") == redelivered).with_columns(source_file=pl.lit(day["orig"]))
    assert copy.height == day["alone"]["accepted"] > 0
    assert canonical(copy).equals(canonical(clean.filter(pl.col("source_file") == day["orig"])))


def test_each_bad_file_is_one_quarantine_row_naming_the_file_and_the_failure(day):
    q = _lake(day, "quarantine", "access_events")
    for name, kind in UNREADABLE.items():
        assert_whole_file_row(q, _rel(name, day["c"]), kind, community=day["c"])
    clean = _lake(day, "quarantine", "access_events", clean=True)
    rest = without_files(q, {_rel(n, day["c"]) for n in UNREADABLE})
    assert canonical(rest).equals(canonical(clean))  # nothing from the re-delivered copy


def test_accounting_balances_and_the_redelivered_bad_lines_count_once(day):
    acc = _lake(day, "audit", "row_accounting_access_events").row(0, named=True)
    ingest = _lake(day, "audit", "ingest_access_events").row(0, named=True)
    clean, alone, truth = day["clean_stats"], day["alone"], day["summary"]
    assert acc["balanced"]
    assert alone["rejected"] >= 6
    bad = len(UNREADABLE)
    assert acc["files"] == clean.files + bad + 1 == truth["files"] + bad + 1
    assert acc["landed"] == clean.landed + bad + sum(alone.values())
    assert acc["quarantined"] == clean.quarantined + bad
    assert acc["duplicates_in_file"] == clean.duplicates_in_file + alone["dup_in"]
    assert acc["accepted"] == truth["accepted"]  # every event of every community, as the simulator sent them
    clean_bronze = _lake(day, "bronze", "access_events", clean=True)
    # the re-delivered copy's other-ability events (field detection, people counting...) are duplicates too
    assert alone["routed"] > 0
    assert acc["duplicates_cross_file"] == (clean_bronze.height - truth["door_events"] + clean.duplicates_cross_file
                                            + alone["accepted"] + alone["rejected"] + alone["routed"])
    assert ingest["duplicates_cross_file"] == clean.duplicates_cross_file + alone["rejected"] + alone["routed"]
    assert ingest["files_quarantined"] == bad


def test_every_community_keeps_its_access_events(day):
    silver = _lake(day, "silver", "access_events")
    assert silver["community_id"].n_unique() == N
    assert dict(silver.group_by("status").len().iter_rows()) == {int(k): v for k, v in
                                                                 day["summary"]["final_status"].items()}
