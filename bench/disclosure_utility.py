"""Benchmark: how much of each flow count the district receives, under suppression (k=5) and the cell key method.

Usage: uv run python bench/disclosure_utility.py --work bench/out/domains_c6 [--work bench/out/domains_c600]
Each work folder is one run of ``bench/domains.py --domains access,vehicles`` (its landing holds the simulator's
truth, its lake the published gold). Per people-count export and count column:

* **suppression (k=5)**: the dataset's suppression (``quality.suppression`` with its declared margins; parking
  with its run rule) applied to the true grid: the share of the true count in published cells; published
  cells are exact.
* **cell key**: the gold the pipeline wrote (the contracts name ``cell_key``): the share of the true count in
  cells published non-zero, the mean absolute error over all cells, the largest deviation, and the relative
  error of the column total.

Not a test: it prints a Markdown table and writes ``disclosure_utility.json`` next to the inputs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import polars as pl

from assets.access.datasets import ACCESS_DAILY, GATE_FLOW_HOURLY
from assets.disclosure import suppress_grid
from assets.vehicles.datasets import PARKING_OCCUPANCY_15MIN, VEHICLE_FLOW_HOURLY
from assets.vehicles.occupancy import protect_occupancy

K = 5


def _gold(work: Path, name: str, day: str) -> pl.DataFrame:
    return pl.read_parquet(work / "data" / "lake" / "gold" / name / f"date={day}" / "*.parquet")


def _truth(work: Path, domain: str, day: str, name: str) -> pl.DataFrame:
    frame = pl.read_parquet(work / "landing" / "_truth" / domain / day / f"{name}.parquet")
    return frame.with_columns(pl.col(pl.Datetime).cast(pl.Datetime("us")))


def _true_grid(gold: pl.DataFrame, truth: pl.DataFrame, dims: list[str], counts: list[str]) -> pl.DataFrame:
    truth = truth.with_columns([pl.col(d).cast(gold.schema[d]) for d in dims if d in truth.columns])
    return gold.select(dims).join(truth.select(*dims, *counts), on=dims, how="left").with_columns(
        [pl.col(c).fill_null(0).cast(pl.Int64) for c in counts])


def _rows(export: str, counts: list[str], true: pl.DataFrame, suppressed: pl.DataFrame, gold: pl.DataFrame,
          dims: list[str]) -> list[dict[str, object]]:
    out = []
    sup = true.join(suppressed.select(*dims, "suppressed"), on=dims)
    ck = true.join(gold.select(*dims, *counts), on=dims, suffix="_pub")
    for c in counts:
        total = int(true[c].sum())
        shown = int(sup.filter(~pl.col("suppressed"))[c].sum())
        t, p = ck[c].to_numpy(), ck[f"{c}_pub"].to_numpy()
        dev = p - t
        out.append({
            "export": export, "count": c, "cells": true.height, "true_total": total,
            "suppression_share": round(shown / total, 4) if total else None,
            "suppression_hidden_cells": round(float(sup["suppressed"].mean()), 4),
            "cell_key_share": round(float(t[p > 0].sum()) / total, 4) if total else None,
            "cell_key_mae": round(float(np.abs(dev).mean()), 4),
            "cell_key_mae_nonzero": round(float(np.abs(dev[t > 0]).mean()), 4) if (t > 0).any() else None,
            "cell_key_max_dev": int(np.abs(dev).max(initial=0)),
            "cell_key_total_rel_error": round(float(abs(p.sum() - total) / total), 5) if total else None,
        })
    return out


def measure(work: Path, day: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    specs = [
        (GATE_FLOW_HOURLY, "access", "gate_hour", lambda t: t.filter(pl.col("kind") == "gate")),
        (ACCESS_DAILY, "access", "access_daily", lambda t: t),
        (VEHICLE_FLOW_HOURLY, "vehicles", "gate_hour", lambda t: t),
    ]
    for ds, domain, truth_name, pick in specs:
        gold = _gold(work, ds.name, day)
        dims, counts = list(ds.keys), list(ds.counts)
        true = _true_grid(gold, pick(_truth(work, domain, day, truth_name)), dims, counts)
        rows += _rows(ds.name, counts, true, suppress_grid(true, ds, K), gold, dims)
    ds = PARKING_OCCUPANCY_15MIN
    gold = _gold(work, ds.name, day)
    dims, counts = ["park_id", "slot_start"], list(ds.counts)
    true = _true_grid(gold, _truth(work, "vehicles", day, "occupancy_15min"), dims, counts)
    grid = gold.select("community_id", "park_id", "slot_start", "capacity").join(true, on=dims).with_columns(
        available=(pl.col("capacity").cast(pl.Int64) - pl.col("occupied")).clip(0))
    sup = protect_occupancy(grid.select("community_id", "park_id", "slot_start", "capacity", "occupied",
                                        "available", "entries", "exits"), K)
    rows += _rows(ds.name, counts, true, sup, gold, dims)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", type=Path, action="append", required=True)
    ap.add_argument("--day", default="2026-11-20")
    args = ap.parse_args()
    print("| communities | export | count | true total | suppression k=5: share published | hidden cells "
          "| cell key: share published | MAE (all cells) | MAE (non-zero cells) | max dev | total rel. error |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for work in args.work:
        communities = json.loads((work / "result.json").read_text())["communities"] \
            if (work / "result.json").exists() else "?"
        rows = measure(work, args.day)
        (work / "disclosure_utility.json").write_text(json.dumps(rows, indent=2))
        for r in rows:
            print(f"| {communities} | {r['export']} | {r['count']} | {r['true_total']} | "
                  f"{r['suppression_share']:.1%} | {r['suppression_hidden_cells']:.1%} | {r['cell_key_share']:.1%} | "
                  f"{r['cell_key_mae']} | {r['cell_key_mae_nonzero']} | {r['cell_key_max_dev']} | "
                  f"{r['cell_key_total_rel_error']:.3%} |" if r["true_total"] else
                  f"| {communities} | {r['export']} | {r['count']} | 0 | - | - | - | - | - | - | - |")


if __name__ == "__main__":
    main()
