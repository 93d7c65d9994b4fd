"""Governance as an adversary: bad exports planted in a simulated day never fail the governance parse.

The exports have fixed names, so the bad files replace real ones (files nothing else depends on, so every other
file's verdicts stay the same): junk, real content as UTF-16 with and without a byte-order mark, a zero-byte
export, an e-ballot export cut in half, and the whole e-ballot export delivered a second time under another
name. Materialised through Dagster and compared with the real parser's clean parse of the same day.
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
DAY, SEED, N = "2026-11-05", 10, 3  # seed 10: every community has ballots or sign-ins that day
A, C = "310107002001", "310107003001"
# replaced export -> (source, reason, kind named in the detail)
WHOLE = {f"{A}/app_notices.ndjson": ("announcements", "undecodable_file", "neither UTF-8 nor GB18030"),
         f"{A}/paper_ballots.csv": ("ballots", "unreadable_file", "zero-byte file"),
         f"{C}/app_activities.ndjson": ("activities", "undecodable_file", "UTF-16"),
         f"{C}/app_signin.csv": ("participation", "undecodable_file", "UTF-16|NUL bytes")}
CUT = f"{A}/evote_ballots.ndjson"
RESENT = f"{A}/evote_ballots_resent.ndjson"
SOURCES = ("votes", "ballots", "announcements", "activities", "participation")
BRONZE = {s: f"governance_{s}" for s in SOURCES}


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory):
    from assets.governance.parse import ingest
    from assets.telemetry.datasets import DEVICE_REGISTRY
    from kernel.io import create_view
    from kernel.lake import Lake
    from kernel.resource import NeuronResource
    from simulator import governance as sim
    from simulator.canaries import canary_residents, write_canaries
    from simulator.district import REGISTRY_COLUMNS, district_registry
    from simulator.registry import communities
    from tests.conftest import use_data_root

    with pytest.MonkeyPatch.context() as mp:
        root = use_data_root(mp, tmp_path_factory.mktemp("governance_bad") / "data")
        landing = root / "landing"
        canaries = canary_residents(SEED)
        write_canaries(landing, DAY, canaries)
        (landing / "device_registry" / DAY).mkdir(parents=True)
        district_registry(N, SEED).select(REGISTRY_COLUMNS).write_csv(landing / "device_registry" / DAY /
                                                                       "devices.csv")
        sim.simulate(landing, date.fromisoformat(DAY), communities(N, SEED), None, SEED, canaries)
        clean = copy_landing(landing, root / "clean_landing")
        folder = landing / "governance" / DAY
        ballots = (folder / CUT).read_bytes()
        planted = {f"{A}/app_notices.ndjson": junk(seed=9),
                   f"{A}/paper_ballots.csv": b"",
                   f"{C}/app_activities.ndjson": utf16((folder / f"{C}/app_activities.ndjson").read_text("utf-8")),
                   f"{C}/app_signin.csv": utf16((folder / f"{C}/app_signin.csv").read_text("utf-8-sig"), bom=False),
                   CUT: half(ballots),
                   RESENT: ballots}
        for name, data in planted.items():
            assert name == RESENT or (folder / name).stat().st_size > 1, name  # a real export is replaced
            (folder / name).write_bytes(data)
        cut_lines = half(ballots).count(b"\n")  # complete lines of the cut export

        res = materialise(DAY, ("governance_bronze", "governance_silver"), (("bronze", "device_registry"),))

        neuron = NeuronResource()
        con = duckdb.connect()
        create_view(con, "registry", neuron.lake, DEVICE_REGISTRY, DAY)
        clean_lake = Lake(root / "clean_lake")
        stats = ingest(con, clean_lake, clean, DAY, neuron.settings.timezone, neuron.tokenizer("governance"))
        yield {"root": root, "res": res, "clean_lake": clean_lake.root, "clean_stats": stats,
               "cut_lines": cut_lines}


def _lake(day, layer: str, name: str, clean: bool = False) -> pl.DataFrame:
    return lake_frame(day["clean_lake"] if clean else day["root"] / "lake", layer, name, DAY)


def _rel(name: str) -> str:
    return f"governance/{DAY}/{name}"


def test_the_steps_succeed_and_every_blocking_check_passes(day):
    assert day["res"].success
    assert failed_checks(day["res"]) == []


@pytest.mark.parametrize("source", SOURCES)
def test_every_other_file_is_in_bronze_exactly_as_without_the_bad_files(day, source):
    replaced = {_rel(n) for n in (*WHOLE, CUT)}
    bronze = _lake(day, "bronze", BRONZE[source])
    clean = _lake(day, "bronze", BRONZE[source], clean=True)
    assert canonical(without_files(bronze, replaced)).equals(canonical(without_files(clean, replaced)))
    assert not bronze["source_file"].is_in([_rel(n) for n in WHOLE]).any()


def test_a_cut_export_keeps_its_complete_lines_and_quarantines_only_the_cut_one(day):
    cut, n = _rel(CUT), day["cut_lines"]
    bronze = _lake(day, "bronze", "governance_ballots").filter(pl.col("source_file") == cut)
    clean = _lake(day, "bronze", "governance_ballots", clean=True).filter(pl.col("source_file") == cut,
                                                                          pl.col("source_line") <= n)
    assert canonical(bronze).equals(canonical(clean)) and bronze.height > 0
    q = _lake(day, "quarantine", "governance_ballots").filter(pl.col("source_file") == cut)
    clean_q = _lake(day, "quarantine", "governance_ballots", clean=True).filter(pl.col("source_file") == cut)
    assert q.filter(pl.col("source_line") > n)["source_line"].to_list() == [n + 1]  # the cut line
    assert q.filter(pl.col("source_line") <= n).height == clean_q.filter(pl.col("source_line") <= n).height


def test_each_bad_export_is_one_quarantine_row_naming_the_file(day):
    for name, (source, reason, kind) in WHOLE.items():
        assert_whole_file_row(_lake(day, "quarantine", BRONZE[source]), _rel(name), kind, reason=reason,
                              community=name.split("/")[0])
    # the whole export delivered again under another name: one record, refused whole, never parsed twice
    assert_whole_file_row(_lake(day, "quarantine", "governance_ballots"), _rel(RESENT),
                          "not one of the governance exports", reason="unknown_file", community=A)


@pytest.mark.parametrize("source", SOURCES)
def test_accounting_balances_for_every_source(day, source):
    acc = _lake(day, "audit", f"row_accounting_governance_{source}").row(0, named=True)
    assert acc["balanced"]
    clean = day["clean_stats"][source]
    assert acc["files"] == clean.files + (source == "ballots")  # the re-sent export
    bad = [n for n, (s, _, _) in WHOLE.items() if s == source]
    if source in ("votes", "announcements"):  # untouched by the cut: whole files only
        assert acc["quarantined"] == _lake(day, "quarantine", BRONZE[source], clean=True).height + len(bad)
