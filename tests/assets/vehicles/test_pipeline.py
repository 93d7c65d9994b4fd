"""A simulated vehicles day through Dagster: accounting, truth, suppression, privacy and publication."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest

from quality.pii_scan import load_canaries, scan_tree
from tests.assets import cellkey_check
from tests.assets.vehicles.conftest import simulate_landing

pytestmark = pytest.mark.slow
DAY = "2026-11-21"
EXPORTS = [dg.AssetKey(["export", "public_security", "vehicle_flow_hourly"]),
           dg.AssetKey(["export", "zhilian_putuo", "parking_occupancy_15min"])]
FLOW_DIMS = ["community_id", "gate_id", "hour_start", "direction", "plate_group", "plate_type", "residency"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    from pipelines.definitions import defs
    from tests.conftest import use_data_root

    with pytest.MonkeyPatch.context() as mp:
        root = use_data_root(mp, tmp_path_factory.mktemp("vehicles_e2e") / "data")
        landed = simulate_landing(root / "landing", DAY, n=3, seed=13)
        sel = dg.AssetSelection.groups("vehicles_bronze", "vehicles_silver", "vehicles_gold") \
            | dg.AssetSelection.assets(*EXPORTS)
        job = dg.Definitions.merge(defs, dg.Definitions(jobs=[dg.define_asset_job("vehicles_day", sel)]))
        with dg.DagsterInstance.get() as instance:
            res = job.resolve_job_def("vehicles_day").execute_in_process(partition_key=DAY, instance=instance,
                                                                          raise_on_error=False)
        yield root, landed, res


def _read(root: Path, layer: str, name: str) -> pl.DataFrame:
    return pl.read_parquet(root / "lake" / layer / name / f"date={DAY}" / "*.parquet")


def _truth(root: Path, name: str) -> pl.DataFrame:
    frame = pl.read_parquet(root / "landing" / "_truth" / "vehicles" / DAY / name)
    return frame.with_columns(pl.col(pl.Datetime).cast(pl.Datetime("us")))


def test_the_day_succeeds_with_every_check_passing(run) -> None:
    _, _, res = run
    assert res.success
    failed = [(e.asset_key.to_user_string(), e.check_name) for e in res.get_asset_check_evaluations()
              if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]
    assert failed == []


@pytest.mark.parametrize("source", ["vehicle_passages", "parking"])
def test_row_accounting_balances_and_equals_the_simulator_truth(run, source: str) -> None:
    root, landed, _ = run
    acc = _read(root, "audit", f"row_accounting_{source}").row(0, named=True)
    truth = landed.summary[source]
    assert acc["balanced"]
    assert acc["landed"] == truth["landed"]
    assert acc["quarantined"] == sum(truth["quarantined"].values())
    assert acc["duplicates_in_file"] == truth["duplicates_in_file"]
    assert acc["duplicates_cross_file"] == truth["duplicates_cross_file"]
    assert acc["accepted"] == truth["accepted"]


def test_vehicle_flow_is_the_truth_perturbed_by_the_cell_key_of_its_passages(run) -> None:
    """Every cell published within +-2 of the truth (zeros zero), exactly the p-table value for the cell key
    recomputed here from silver's passage keys."""
    root, _, _ = run
    gold = _read(root, "gold", "vehicle_flow_hourly")
    truth = _truth(root, "gate_hour.parquet")
    assert truth.join(gold, on=FLOW_DIMS, how="anti").height == 0  # every truth cell is on the grid
    stats = cellkey_check.assert_perturbed(gold, truth, FLOW_DIMS, ["vehicles"])
    assert stats["changed"] > 0.0
    silver = _read(root, "silver", "vehicle_passages")
    keys = silver.with_columns(rk=cellkey_check.record_keys(silver["passage_key"]),
                               hour_start=pl.col("hour_start").cast(gold.schema["hour_start"])) \
        .group_by(FLOW_DIMS).agg(ck_vehicles=pl.col("rk").sum())
    true_grid = gold.select(FLOW_DIMS).join(truth.with_columns(pl.col("hour_start").cast(gold.schema["hour_start"])),
                                            on=FLOW_DIMS, how="left").with_columns(
        pl.col("vehicles").fill_null(0).cast(pl.Int64))
    want = cellkey_check.expected(true_grid.select(*FLOW_DIMS, "vehicles"), keys, FLOW_DIMS, ["vehicles"])
    assert gold.select(*FLOW_DIMS, "vehicles").sort(FLOW_DIMS).equals(want.sort(FLOW_DIMS))


PARK_DIMS = ["park_id", "slot_start"]
PARK_COUNTS = ["entries", "exits", "occupied"]


def test_parking_occupancy_is_the_truth_perturbed_by_the_cell_key_of_its_sessions(run) -> None:
    """Entries, exits and the stock within +-2 of the truth (zeros zero), exactly the p-table value for the
    cell keys recomputed here from silver's sessions; available follows the published stock."""
    root, _, _ = run
    occ = _read(root, "gold", "parking_occupancy_15min")
    truth = _truth(root, "occupancy_15min.parquet").with_columns(pl.col("slot_start").cast(occ.schema["slot_start"]))
    assert occ.height == truth.height and occ["capacity"].null_count() == 0
    stats = cellkey_check.assert_perturbed(occ, truth.select(*PARK_DIMS, *PARK_COUNTS), PARK_DIMS, PARK_COUNTS)
    assert stats["changed"] > 0.0
    assert (occ["available"] == (occ["capacity"].cast(pl.Int64) - occ["occupied"]).clip(0)).all()
    sessions = _read(root, "silver", "parking_sessions")
    sessions = sessions.with_columns(
        rk=cellkey_check.record_keys(sessions["park_id"] + "/" + sessions["parking_serial"]),
        e=pl.col("enter_ts").dt.convert_time_zone("Asia/Shanghai").dt.replace_time_zone(None).cast(occ.schema["slot_start"]),
        l=pl.col("leave_ts").dt.convert_time_zone("Asia/Shanghai").dt.replace_time_zone(None).cast(occ.schema["slot_start"]))
    grid = occ.select(PARK_DIMS).with_columns(slot_end=pl.col("slot_start") + pl.duration(minutes=15))
    pairs = grid.join(sessions.select("park_id", "rk", "e", "l"), on="park_id", how="left")
    keys = pairs.group_by(PARK_DIMS).agg(
        ck_occupied=pl.col("rk").filter((pl.col("e") < pl.col("slot_end"))
                                        & (pl.col("l").is_null() | (pl.col("l") >= pl.col("slot_end")))).sum(),
        ck_entries=pl.col("rk").filter((pl.col("e") >= pl.col("slot_start")) & (pl.col("e") < pl.col("slot_end"))).sum(),
        ck_exits=pl.col("rk").filter((pl.col("l") >= pl.col("slot_start")) & (pl.col("l") < pl.col("slot_end"))).sum())
    true_grid = occ.select(PARK_DIMS).join(truth, on=PARK_DIMS, how="left").select(
        *PARK_DIMS, *[pl.col(c).cast(pl.Int64) for c in PARK_COUNTS])
    want = cellkey_check.expected(true_grid, keys, PARK_DIMS, PARK_COUNTS)
    assert occ.select(*PARK_DIMS, *PARK_COUNTS).sort(PARK_DIMS).equals(want.sort(PARK_DIMS))


def test_sessions_statuses_and_payments_equal_truth(run) -> None:
    root, landed, _ = run
    sessions = _read(root, "silver", "parking_sessions")
    got = dict(sessions.group_by("status").len().iter_rows())
    assert got == landed.summary["parking"]["sessions_by_status"]
    truth = _truth(root, "sessions.parquet").rename({"status": "status_truth", "enter_ts": "enter_truth",
                                                     "leave_ts": "leave_truth"})
    both = sessions.join(truth, on=["park_id", "parking_serial"])
    assert both.height == sessions.height
    assert (both["status"] == both["status_truth"]).all()
    pay = _read(root, "silver", "parking_payments")
    assert pay.height == landed.summary["parking"]["payments"]
    assert pay["value_fen"].sum() == landed.summary["parking"]["payments_fen"]
    assert pay["value_fen"].dtype == pl.Int64 and sessions["total_fen"].dtype == pl.Int64


def test_exit_without_entry_is_exit_only_and_overnight_entries_are_flagged(run) -> None:
    root, _, _ = run
    s = _read(root, "silver", "parking_sessions").filter(pl.col("status") == "exit_only")
    assert s.height > 0 and s["leave_ts"].null_count() == 0
    assert s["entered_before_day"].sum() > 0  # entered on an earlier day: exit-only today
    assert (~s["entered_before_day"]).sum() > 0  # the entry push was lost


def test_enter_time_changed_between_pushes_pairs_on_serial_and_takes_the_exit_time(run) -> None:
    root, landed, _ = run
    s = _read(root, "silver", "parking_sessions")
    corrected = s.filter(pl.col("enter_time_corrected"))
    assert corrected.height == landed.summary["parking"]["enter_time_changed"] > 0
    assert set(corrected["status"]) == {"closed"}
    truth = _truth(root, "sessions.parquet").select("park_id", "parking_serial", enter_truth="enter_ts")
    both = corrected.join(truth, on=["park_id", "parking_serial"])
    got = both.select(pl.col("enter_ts").dt.convert_time_zone("Asia/Shanghai").dt.replace_time_zone(None))
    assert got.to_series().to_list() == both["enter_truth"].to_list()


def test_resident_or_visitor_follows_the_register(run) -> None:
    root, landed, _ = run
    silver = _read(root, "silver", "vehicle_passages")
    truth = _truth(root, "gate_hour.parquet")
    by_truth = dict(truth.group_by("residency").agg(pl.col("vehicles").sum()).iter_rows())
    assert dict(silver.group_by("residency").len().iter_rows()) == by_truth
    share = by_truth["visitor"] / sum(by_truth.values())
    assert 0.2 < share < 0.4
    assert silver.filter((pl.col("plate_group") == "no_plate") & (pl.col("residency") == "resident")).height == 0


def test_no_plate_or_canary_value_reaches_the_lake_or_the_outbox(run) -> None:
    root, landed, _ = run
    canaries = load_canaries(root / "landing")
    assert any(c.kind == "plate" for c in canaries)
    assert scan_tree(root / "lake", canaries=canaries) == []
    assert scan_tree(root / "outbox", canaries=canaries) == []
    # and the scanner would have seen them: the canary plates are in the landing files
    landing_hits = scan_tree(root / "landing" / "parking", canaries=canaries)
    assert landing_hits


def test_export_batches_are_in_the_outbox(run) -> None:
    root, _, res = run
    for consumer, dataset in (("public_security", "vehicle_flow_hourly"), ("zhilian_putuo", "parking_occupancy_15min")):
        manifest = root / "outbox" / consumer / dataset / DAY / "v1" / "manifest.json"
        assert manifest.exists()
        assert json.loads(manifest.read_text())["row_count"] > 0


def test_plate_tokens_in_silver_are_keyed_tokens(run) -> None:
    root, _, _ = run
    con = duckdb.connect()
    bad = con.execute(f"""SELECT count(*) FROM read_parquet('{root}/lake/silver/*/date={DAY}/*.parquet', union_by_name=true)
        WHERE plate_token IS NOT NULL AND NOT regexp_full_match(plate_token, 'plate_v[0-9]+_[a-z2-7]{{32}}')""").fetchall()
    assert bad[0][0] == 0


def _derivable(pub: pl.DataFrame, truth: pl.DataFrame) -> list[tuple[str, object, str]]:
    """Hidden non-zero entries/exits cells a reader can compute from the published rows of ``pub``.

    Per car park: unknowns are the hidden cells and the stock at the day start. Equations: every published
    occupied(t) = start + sum over s <= t of (entries - exits); the start and the end-of-day stock as known
    (the neighbouring days publish them, near enough); every hidden zero as known (conservative, like
    quality.suppression's audit). A cell is derivable when its unit vector lies in the equations' row space.
    """
    rows = pub.join(truth.select("park_id", "slot_start", "entries_truth", "exits_truth"), on=["park_id", "slot_start"])
    found = []
    for park, grp in rows.sort("slot_start").group_by("park_id", maintain_order=True):
        hidden = grp["suppressed"].to_numpy()
        idx = np.flatnonzero(hidden)
        if idx.size == 0:
            continue
        cells = [(t, c) for t in idx for c in ("entries", "exits")]
        col = {cell: j + 1 for j, cell in enumerate(cells)}  # column 0 is the start stock
        eq = [np.eye(1, len(cells) + 1, 0)[0]]  # start known
        end = np.zeros(len(cells) + 1)
        end[0] = 1
        for t, c in cells:
            end[col[(t, c)]] = 1 if c == "entries" else -1
        eq.append(end)  # end-of-day stock known
        for t in range(grp.height):
            if grp["occupied"][t] is None:
                continue
            row = np.zeros(len(cells) + 1)
            row[0] = 1
            for s_, c in cells:
                if s_ <= t:
                    row[col[(s_, c)]] = 1 if c == "entries" else -1
            eq.append(row)
        value = {(t, c): grp[f"{c}_truth"][int(t)] for t, c in cells}
        eq += [np.eye(1, len(cells) + 1, col[cell])[0] for cell, v in value.items() if v == 0]
        a = np.array(eq)
        _, sv, vt = np.linalg.svd(a, full_matrices=False)
        basis = vt[sv > 1e-9]
        for cell, v in value.items():
            if v == 0:
                continue
            unit = np.eye(1, len(cells) + 1, col[cell])[0]
            if np.linalg.norm(unit - basis.T @ (basis @ unit)) < 1e-6:
                found.append((park[0], grp["slot_start"][int(cell[0])], cell[1]))
    return found


def test_under_suppression_no_hidden_movement_can_be_derived_from_the_published_occupancy(run) -> None:
    """The suppression fallback (occupancy.protect_occupancy) applied to the day's true grid."""
    from assets.vehicles.occupancy import protect_occupancy

    root, _, _ = run
    occ = _read(root, "gold", "parking_occupancy_15min")
    truth = _truth(root, "occupancy_15min.parquet").with_columns(pl.col("slot_start").cast(occ.schema["slot_start"]))
    grid = occ.select("community_id", "park_id", "slot_start", "capacity").join(
        truth.select("park_id", "slot_start", "occupied", "entries", "exits"), on=["park_id", "slot_start"]
    ).with_columns(available=(pl.col("capacity").cast(pl.Int64) - pl.col("occupied")).clip(0),
                   **{c: pl.col(c).cast(pl.Int64) for c in ("occupied", "entries", "exits")})
    sup = protect_occupancy(grid.select(occ.drop("suppressed", "suppression", "completeness", "incomplete_sources").columns), 5)
    truth = truth.rename({"entries": "entries_truth", "exits": "exits_truth", "occupied": "occupied_truth"})
    assert sup.filter("suppressed").height > 0
    assert _derivable(sup, truth) == []
    # the audit can fail: publish the true stock on every row (the old table) and hidden cells come back
    naive = sup.drop("occupied").join(truth.select("park_id", "slot_start", occupied="occupied_truth"),
                                      on=["park_id", "slot_start"])
    assert len(_derivable(naive, truth)) > 0


def test_under_the_cell_key_method_the_stock_chain_pins_no_small_movement(run) -> None:
    """A reader who knows occupied(t) = occupied(t-1) + entries(t) - exits(t) (true in the data) and the
    p-table bounds every published value and solves the LP for each small movement: an interval, never a count."""
    from scipy.optimize import linprog

    from quality.cellkey import PTable
    from quality.disclosure_audit import preimage_bounds

    root, _, _ = run
    table = PTable(2, 1.0, 0)
    occ = _read(root, "gold", "parking_occupancy_15min").sort("park_id", "slot_start")
    truth = _truth(root, "occupancy_15min.parquet").with_columns(
        pl.col("slot_start").cast(occ.schema["slot_start"])).sort("park_id", "slot_start")
    attacked = 0
    for park in occ["park_id"].unique().sort().to_list():
        pub = occ.filter(pl.col("park_id") == park)
        tru = truth.filter(pl.col("park_id") == park)
        n = pub.height
        o, e, x = (tru[c].to_numpy() for c in ("occupied", "entries", "exits"))
        assert (o[1:] - o[:-1] == e[1:] - x[1:]).all()  # the identity the reader uses holds in the truth
        box = []
        for c in ("occupied", "entries", "exits"):
            lo, hi = preimage_bounds(pub[c].to_numpy(), table)
            box += list(zip(lo.tolist(), hi.tolist(), strict=True))
        a_eq = np.zeros((n - 1, 3 * n))  # variables: occupied 0..n-1, entries n..2n-1, exits 2n..3n-1
        for t in range(1, n):
            a_eq[t - 1, [t, t - 1, n + t, 2 * n + t]] = [1, -1, -1, 1]
        small = [n + t for t in range(n) if 1 <= e[t] <= 4] + [2 * n + t for t in range(n) if 1 <= x[t] <= 4]
        for v in small[:40]:
            c = np.zeros(3 * n)
            c[v] = 1
            lo = linprog(c, A_eq=a_eq, b_eq=np.zeros(n - 1), bounds=box, method="highs")
            hi = linprog(-c, A_eq=a_eq, b_eq=np.zeros(n - 1), bounds=box, method="highs")
            assert lo.status == 0 and hi.status == 0
            assert np.floor(-hi.fun + 1e-9) - np.ceil(lo.fun - 1e-9) >= 1, (park, v)
            attacked += 1
    assert attacked > 20


def test_a_passage_lost_in_the_gate_join_fails_the_row_accounting(run, tmp_path: Path) -> None:
    """Silver measures the re-sends it collapses; a bronze row whose gate left the registry is not hidden."""
    import shutil

    from pipelines.definitions import defs
    from tests.conftest import use_data_root

    src, _, _ = run
    root = tmp_path / "data"
    for sub in ("lake", "landing"):
        shutil.copytree(src / sub, root / sub)
    gates = root / "lake" / "bronze" / "tollgates" / f"date={DAY}"
    registry = pl.read_parquet(gates / "*.parquet")
    used = pl.read_parquet(root / "lake" / "bronze" / "vehicle_passages" / f"date={DAY}" / "*.parquet")
    gone = used["tollgate_id"].mode()[0]
    lost = int((used["tollgate_id"] == gone).sum())
    for f in gates.glob("*.parquet"):
        f.unlink()
    registry.filter(pl.col("tollgate_id") != gone).write_parquet(gates / "part-0.parquet")
    with pytest.MonkeyPatch.context() as mp:
        use_data_root(mp, root)
        sel = dg.AssetSelection.assets(dg.AssetKey(["silver", "vehicle_passages"]))
        job = dg.Definitions.merge(defs, dg.Definitions(jobs=[dg.define_asset_job("silver_only", sel)]))
        with dg.DagsterInstance.get() as instance:
            res = job.resolve_job_def("silver_only").execute_in_process(partition_key=DAY, instance=instance,
                                                                         raise_on_error=False)
    evals = {e.check_name: e for e in res.get_asset_check_evaluations()}
    check = evals["row_accounting_vehicle_passages"]
    assert not check.passed
    assert check.metadata["lost_in_silver"].value == lost > 0
    assert check.metadata["difference"].value == lost


def test_no_raw_plate_of_any_landing_file_is_in_any_written_parquet(run) -> None:
    """Every plate string the vendors sent (as sent and as repaired) is absent from every Parquet file the day wrote:
    bronze, silver, gold, quarantine and audit of every domain, scanned value by value."""
    import re

    from assets.vehicles.parse import repair_plate

    root, _, _ = run
    sent: set[str] = set()
    for f in [*(root / "landing" / "vehicle_passages").rglob("*.json"), *(root / "landing" / "parking").rglob("*.ndjson")]:
        sent |= set(re.findall(r'"(?:PlateNo|plate|plateNo)"\s*:\s*"([^"]+)"', f.read_text(encoding="utf-8")))
    for f in (root / "landing" / "parking").rglob("registered_vehicles.csv"):
        sent |= set(pl.read_csv(f, infer_schema=False)["plate"].drop_nulls())
    plates = {p for p in sent | {repair_plate(p) for p in sent} if p and not p.startswith(("无", "未"))}
    assert len(plates) > 1000
    # a value "looks like" a plate when it holds a province character followed by a letter; every such value
    # must not be (or contain) a plate that was sent
    province = re.compile(r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼]\s*[A-Za-zＡ-Ｚ]")
    files = list((root / "lake").rglob("*.parquet"))
    assert len(files) > 10
    leaks = []
    for f in files:
        frame = pl.read_parquet(f)
        for col in frame.select(pl.col(pl.String)).columns:
            values = set(frame[col].drop_nulls().unique())
            leaks += [(f.name, col, v) for v in values if v in plates or (province.search(v) and any(
                p in v for p in plates))]
    assert leaks == []
