"""Checks of a gold table published with the cell key method against the simulator's truth.

``recompute`` derives each cell's perturbation independently of the product's SQL: record keys in Python
(``kernel.record_keys.record_key`` under the demo key), cell keys summed with Polars, the p-table looked up.
The published table must equal it exactly, which proves the perturbation is the declared deterministic
function of the records (re-runs, versions and tables reproduce it) and nothing else.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from kernel.record_keys import DEMO_KEY, record_key
from kernel.record_keys import secret as _secret
from kernel.settings import load_settings
from quality.cellkey import PTable

TABLE = PTable(2, 1.0, 0)  # the flow contracts' parameters


def demo_secret() -> bytes:
    return _secret(load_settings({"NEURON_MODE": "test", "NEURON_PERTURBATION_KEY": DEMO_KEY}))


def record_keys(identities: pl.Series) -> pl.Series:
    """The record key of each identity (null stays null), computed in Python."""
    key = demo_secret()
    distinct = identities.drop_nulls().unique()
    mapping = dict(zip(distinct.to_list(), [record_key(v, key) for v in distinct.to_list()], strict=True))
    return identities.replace_strict(mapping, default=None, return_dtype=pl.Int64)


def expected(true: pl.DataFrame, cell_keys: pl.DataFrame, dims: list[str], counts: list[str],
             subsets: tuple[tuple[str, str], ...] = ()) -> pl.DataFrame:
    """True grid + per-cell sums of record keys (``ck_<count>``, missing = 0) -> the published values."""
    j = true.join(cell_keys, on=dims, how="left").with_columns(
        [pl.col(f"ck_{c}").fill_null(0) for c in counts])
    out = j.with_columns([pl.Series(c, TABLE.perturb(j[c].to_numpy(), j[f"ck_{c}"].to_numpy()), dtype=pl.Int64)
                          for c in counts])
    if subsets:
        out = out.with_columns([pl.min_horizontal(p, w).alias(p) for p, w in subsets])
    return out.select(*dims, *counts)


def assert_perturbed(gold: pl.DataFrame, truth: pl.DataFrame, dims: list[str], counts: list[str],
                     d: int = TABLE.D) -> dict[str, float]:
    """Nothing withheld, zeros stay zero, every count within +-D of the truth, unbiased; returns statistics."""
    assert not gold["suppressed"].any() and gold["suppression"].null_count() == gold.height
    j = gold.join(truth, on=dims, how="left", suffix="_true")
    assert j.height == gold.height
    devs = []
    for c in counts:
        t = j[f"{c}_true"].fill_null(0).to_numpy()
        g = j[c].to_numpy()
        assert (g[t == 0] == 0).all(), f"{c}: a zero cell was published non-zero"
        assert (np.abs(g - t) <= d).all(), f"{c}: a deviation beyond {d}"
        assert (g >= 0).all()
        devs.append(g - t)
    dev = np.concatenate(devs)
    return {"cells": int(dev.size), "mean": float(dev.mean()), "mae": float(np.abs(dev).mean()),
            "changed": float((dev != 0).mean())}
