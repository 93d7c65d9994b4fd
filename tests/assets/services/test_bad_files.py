"""Property services as an adversary: bad exports planted in a simulated day never fail the services parse.

Correctly named exports that are junk, real content as UTF-16 (with and without a byte-order mark), a zero-byte
file, a real export cut in half (GB18030 or UTF-8, possibly mid-character) and a whole export delivered twice
with rejected rows in it, all in one community's folder. Materialised through Dagster and compared with the
real parser's clean parse of the same day without them.
"""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl
import pytest

from tests.assets.bad_files import (
    assert_whole_file_row,
    canonical,
    copy_landing,
    failed_checks,
    half,
    junk,
    lake_frame,
    materialise,
    utf16,
    without_files,
)

pytestmark = pytest.mark.slow
DAY, SEED, N = "2026-11-15", 21, 2
SOURCES = ("work_orders", "work_order_events", "fee_bills", "payments")
# planted file (community {c}) -> (source, reason, kind named in the detail)
WHOLE = {"payments_{c}_part7.csv": ("payments", "undecodable_file", "neither UTF-8 nor GB18030"),
         "fee_bills_{c}_part7.csv": ("fee_bills", "undecodable_file", "UTF-16"),
         "work_order_events_{c}_part7.csv": ("work_order_events", "undecodable_file", "UTF-16|NUL bytes"),
         "work_orders_{c}_part7.csv": ("work_orders", "unreadable_file", "zero-byte file")}
CUT = "work_order_events_{c}_part8.csv"
REDELIVERED = "fee_bills_{c}_part9.csv"


def _decode(data: bytes) -> str:
    from assets.services.encoding import decode_bytes

    return decode_bytes(data)[0]


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory):
    from assets.services.parse import ingest_day
    from kernel.lake import Lake
    from kernel.resource import NeuronResource
    from simulator import services
    from simulator.canaries import canary_residents, write_canaries
    from simulator.district import district_registry
    from simulator.registry import communities
    from tests.conftest import use_data_root

    with pytest.MonkeyPatch.context() as mp:
        root = use_data_root(mp, tmp_path_factory.mktemp("services_bad") / "data")
        landing = root / "landing"
        canaries = canary_residents(SEED)
        write_canaries(landing, DAY, canaries)
        summary = services.simulate(landing, date.fromisoformat(DAY), communities(N, SEED),
                                    district_registry(N, SEED), SEED, canaries, faults=True)
        folder = sorted(p for p in (landing / "property_services" / DAY).iterdir() if p.is_dir())[0]
        c = folder.name
        clean = copy_landing(landing, root / "clean_landing")

        def real(source: str) -> bytes:
            return (folder / f"{source}_{c}.csv").read_bytes()

        planted = {"payments_{c}_part7.csv": junk(seed=8),
                   "fee_bills_{c}_part7.csv": utf16(_decode(real("fee_bills")), bom=True),
                   "work_order_events_{c}_part7.csv": utf16(_decode(real("work_order_events")), bom=False),
                   "work_orders_{c}_part7.csv": b"",
                   CUT: half(real("work_order_events")),
                   REDELIVERED: real("fee_bills")}
        for name, data in planted.items():
            (folder / name.format(c=c)).write_bytes(data)

        res = materialise(DAY, ("services_bronze", "services_silver"))

        neuron = NeuronResource()
        tok = neuron.tokenizer("services")
        clean_lake = Lake(root / "clean_lake")
        stats = ingest_day(duckdb.connect(), clean_lake, clean, DAY, neuron.settings.timezone,
                           tok.tokenize_series)
        yield {"root": root, "c": c, "res": res, "clean_lake": clean_lake.root, "clean_stats": stats,
               "summary": summary, "folder": f"property_services/{DAY}/{c}"}


def _lake(day, layer: str, name: str, clean: bool = False) -> pl.DataFrame:
    return lake_frame(day["clean_lake"] if clean else day["root"] / "lake", layer, name, DAY)


def _rel(day, name: str) -> str:
    return f"{day['folder']}/{name.format(c=day['c'])}"


def test_the_steps_succeed_and_every_blocking_check_passes(day):
    assert day["res"].success
    assert failed_checks(day["res"]) == []


@pytest.mark.parametrize("source", SOURCES)
def test_every_other_file_is_in_bronze_exactly_as_without_the_bad_files(day, source):
    planted = {_rel(day, n) for n in (*WHOLE, CUT, REDELIVERED)}
    bronze = _lake(day, "bronze", source)
    clean = _lake(day, "bronze", source, clean=True)
    assert canonical(without_files(bronze, planted)).equals(canonical(clean))


def test_each_bad_export_is_one_quarantine_row_naming_the_file(day):
    for name, (source, reason, kind) in WHOLE.items():
        assert_whole_file_row(_lake(day, "quarantine", source), _rel(day, name), kind, reason=reason,
                              community=day["c"])


def test_an_export_cut_mid_row_keeps_its_complete_rows(day):
    """The cut copy repeats the original's complete rows (silver collapses them by id); it is never refused
    whole, even when the cut falls inside a GB18030 or UTF-8 character."""
    bronze = _lake(day, "bronze", "work_order_events")
    cut = bronze.filter(pl.col("source_file") == _rel(day, CUT))
    orig = bronze.filter(pl.col("source_file") == _rel(day, "work_order_events_{c}.csv"))
    assert 0 < cut.height < orig.height
    keys = ["order_id", "seq", "status", "event_ts"]
    assert cut.select(keys).join(orig.select(keys), on=keys, how="anti", nulls_equal=True).height <= 1
    q = _lake(day, "quarantine", "work_order_events")
    assert q.filter(pl.col("source_file") == _rel(day, CUT))["source_line"].min() != 0


@pytest.mark.parametrize("source", SOURCES)
def test_accounting_balances_and_every_community_keeps_its_records(day, source):
    acc = _lake(day, "audit", f"row_accounting_{source}").row(0, named=True)
    assert acc["balanced"]
    clean = day["clean_stats"][source]
    planted = [n for n in (*WHOLE, CUT, REDELIVERED) if n.startswith(f"{source}_{{c}}")]
    assert acc["files"] == clean.files + len(planted)
    assert acc["accepted"] == _lake(day, "silver", source).height
    assert _lake(day, "silver", source)["community_id"].n_unique() == N
    if source in ("payments", "work_orders"):  # nothing of the planted files reaches these sources' records
        assert acc["landed"] == clean.landed + 1
        assert acc["quarantined"] == clean.quarantined + 1


def test_the_rejected_rows_of_a_redelivered_export_count_once(day):
    q = _lake(day, "quarantine", "fee_bills")
    orig = q.filter(pl.col("source_file") == _rel(day, "fee_bills_{c}.csv"))
    assert orig.height > 0  # the simulator's bad amounts
    assert q.filter(pl.col("source_file") == _rel(day, REDELIVERED)).height == 0
