"""Telemetry as an adversary: bad files planted in a simulated day never fail ``bronze_telemetry``.

A truncated .gz (a real file cut in half), junk with a correct name, real content re-encoded as UTF-16 (with
and without a byte-order mark), a zero-byte file and a whole file re-delivered with malformed lines in it,
all in one community's folders. Materialised through Dagster and compared with the real parser's clean parse
of the same day without them.
"""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl
import pytest

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
DAY, SEED, N = "2026-11-18", 11, 2
# planted file -> the kind of failure its detail must name
UNREADABLE = {"ctwing/{c}-0003-cut.ndjson.gz": "truncated gzip",
              "ctwing/{c}-0004.ndjson.gz": "not gzip despite the .gz name",
              "ctwing/{c}-0005-utf16.ndjson.gz": "UTF-16",
              "iotda/{c}-0006-utf16.ndjson.gz": "UTF-16|NUL bytes",
              "iotda/{c}-0007.ndjson.gz": "zero-byte file"}
REDELIVERED = "ctwing/{c}-0009-redelivered.ndjson.gz"


def _rel(name: str, c: str) -> str:
    return f"telemetry/{DAY}/{name.format(c=c)}"


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory):
    from assets.telemetry.datasets import DEVICE_REGISTRY
    from assets.telemetry.parse import ingest_day, load_vocabulary, parse_batch
    from kernel.io import create_view
    from kernel.lake import Lake
    from kernel.ndjson import read_lines
    from kernel.resource import NeuronResource
    from simulator.district import REGISTRY_COLUMNS, district_registry
    from simulator.telemetry import simulate_telemetry_day
    from tests.conftest import use_data_root

    with pytest.MonkeyPatch.context() as mp:
        root = use_data_root(mp, tmp_path_factory.mktemp("telemetry_bad") / "data")
        landing = root / "landing"
        regs = district_registry(N, SEED)
        (landing / "device_registry" / DAY).mkdir(parents=True)
        regs.select(REGISTRY_COLUMNS).write_csv(landing / "device_registry" / DAY / "devices.csv")
        simulate_telemetry_day(landing, regs, date.fromisoformat(DAY), SEED)
        folder = landing / "telemetry" / DAY
        c = sorted(regs["community_id"].unique())[0]
        # the file the platform re-delivers holds malformed lines (and the simulator's other faults)
        orig = folder / "ctwing" / f"{c}-0001.ndjson.gz"
        orig.write_bytes(gzip_bytes(add_malformed_lines(gunzip_text(orig))))
        clean = copy_landing(landing, root / "clean_landing")

        iotda = gunzip_text(folder / "iotda" / f"{c}-0001.ndjson.gz")
        planted = {"ctwing/{c}-0003-cut.ndjson.gz": half((folder / "iotda" / f"{c}-0001.ndjson.gz").read_bytes()),
                   "ctwing/{c}-0004.ndjson.gz": junk(),
                   "ctwing/{c}-0005-utf16.ndjson.gz": gzip_bytes(utf16(gunzip_text(orig), bom=True)),
                   "iotda/{c}-0006-utf16.ndjson.gz": gzip_bytes(utf16(iotda, bom=False)),
                   "iotda/{c}-0007.ndjson.gz": b"",
                   REDELIVERED: orig.read_bytes()}
        for name, data in planted.items():
            (folder / name.format(c=c)).write_bytes(data)

        res = materialise(DAY, ("telemetry_bronze", "telemetry_silver"))

        # the clean parse: the real parser over the pristine copy, with the registry the run wrote
        neuron = NeuronResource()
        con = duckdb.connect()
        create_view(con, "registry", neuron.lake, DEVICE_REGISTRY, DAY)
        clean_lake = Lake(root / "clean_lake")
        tok = neuron.tokenizer("telemetry")
        stats = ingest_day(con, clean_lake, clean, DAY, neuron.settings.timezone,
                           lambda v: tok.tokenize_series(v, "person"))
        # the re-delivered file alone: what its copy adds
        load_vocabulary(con)
        parse_batch(con, read_lines([clean / "telemetry" / DAY / "ctwing" / orig.name], clean), DAY,
                    neuron.settings.timezone, lambda v: tok.tokenize_series(v, "person"))
        alone = dict(zip(("accepted", "rejected", "dup_in"), con.execute(
            "SELECT count(*) FILTER (WHERE reason IS NULL AND NOT dup_in_file), count(*) FILTER (WHERE reason IS "
            "NOT NULL), count(*) FILTER (WHERE dup_in_file) FROM records").fetchall()[0], strict=True))
        yield {"root": root, "c": c, "res": res, "clean_lake": clean_lake.root, "clean_stats": stats,
               "alone": alone, "orig": _rel(f"ctwing/{orig.name}", c)}


def _lake(day, layer: str, name: str, clean: bool = False) -> pl.DataFrame:
    return lake_frame(day["clean_lake"] if clean else day["root"] / "lake", layer, name, DAY)


def test_the_steps_succeed_and_every_blocking_check_passes(day):
    assert day["res"].success
    assert failed_checks(day["res"]) == []


def test_every_other_file_is_in_bronze_exactly_as_without_the_bad_files(day):
    c = day["c"]
    bronze = _lake(day, "bronze", "telemetry")
    redelivered = _rel(REDELIVERED, c)
    assert not bronze["source_file"].is_in([_rel(n, c) for n in UNREADABLE]).any()
    clean = _lake(day, "bronze", "telemetry", clean=True)
    assert canonical(without_files(bronze, {redelivered})).equals(canonical(clean))
    # the re-delivered copy lands like its original (silver collapses the two)
    copy = bronze.filter(pl.col("source_file") == redelivered).with_columns(source_file=pl.lit(day["orig"]))
    assert copy.height == day["alone"]["accepted"] > 0
    assert canonical(copy).equals(canonical(clean.filter(pl.col("source_file") == day["orig"])))


def test_each_bad_file_is_one_quarantine_row_naming_the_file_and_the_failure(day):
    q = _lake(day, "quarantine", "telemetry")
    for name, kind in UNREADABLE.items():
        assert_whole_file_row(q, _rel(name, day["c"]), kind, community=day["c"])
    clean = _lake(day, "quarantine", "telemetry", clean=True)
    rest = without_files(q, {_rel(n, day["c"]) for n in UNREADABLE})
    assert canonical(rest).equals(canonical(clean))  # nothing else changed, nothing from the re-delivered copy


def test_accounting_balances_and_the_redelivered_bad_lines_count_once(day):
    acc = _lake(day, "audit", "row_accounting_telemetry").row(0, named=True)
    ingest = _lake(day, "audit", "ingest").row(0, named=True)
    clean, alone = day["clean_stats"], day["alone"]
    assert acc["balanced"]
    assert alone["rejected"] >= 6  # the malformed lines woven in, plus the simulator's own faults
    bad = len(UNREADABLE)
    assert acc["files"] == clean.files + bad + 1
    assert acc["landed"] == clean.landed + bad + sum(alone.values())
    assert acc["quarantined"] == clean.quarantined + bad
    assert acc["duplicates_in_file"] == clean.duplicates_in_file + alone["dup_in"]
    clean_bronze = _lake(day, "bronze", "telemetry", clean=True)
    identities = clean_bronze.select("device_id", "event_ts", "metric", "value").unique().height
    assert acc["accepted"] == identities
    # the copy's readings collapse in silver, its rejected lines are counted by the parser: once each
    assert acc["duplicates_cross_file"] == (clean_bronze.height - identities + clean.duplicates_cross_file
                                            + alone["accepted"] + alone["rejected"])
    assert ingest["duplicates_cross_file"] == clean.duplicates_cross_file + alone["rejected"]
    assert ingest["files_quarantined"] == bad


def test_every_community_keeps_its_telemetry(day):
    silver = _lake(day, "silver", "telemetry")
    assert silver["community_id"].n_unique() == N
    clean = _lake(day, "bronze", "telemetry", clean=True)
    assert silver.height == clean.select("device_id", "event_ts", "metric", "value").unique().height


def test_no_landing_content_reaches_the_quarantine(day):
    q = _lake(day, "quarantine", "telemetry")
    whole = q.filter(pl.col("reason") == "unreadable_file")
    assert whole.height == len(UNREADABLE)
    assert not whole["detail"].str.contains('deviceId|notify_data|"').any()
