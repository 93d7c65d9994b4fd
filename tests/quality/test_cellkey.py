"""The perturbation table and record keys of the cell key method (quality.cellkey, kernel.record_keys)."""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.disclosure import protect_grid
from kernel.dataset import SUPPRESSION_COLUMNS, C, Dataset
from kernel.disclosure import Disclosure
from kernel.record_keys import DEMO_KEY, PerturbationKeyError, install_record_key, record_key, secret
from kernel.settings import load_settings
from quality.cellkey import KEY_SPACE, PTable, PTableError

PARAMS = [(2, 1.0, 0), (2, 0.5, 0), (2, 1.0, 1), (3, 1.5, 2), (3, 2.0, 0), (4, 3.0, 1)]


@pytest.mark.parametrize(("D", "V", "js"), PARAMS)
def test_every_row_is_a_distribution_within_D_with_mean_zero_and_the_variance_where_reachable(D, V, js):
    table = PTable(D, V, js)
    offsets, _ = table.table
    probs = table.probabilities()
    assert probs[0].tolist() == [1.0 if o == 0 else 0.0 for o in offsets]  # zeros stay zero
    for i in range(1, table.last_row + 1):
        p = probs[i]
        assert p.min() >= -1e-12 and abs(p.sum() - 1) < 1e-9
        assert abs(p @ offsets) < 1e-6, f"row {i} is biased"
        published = i + offsets[p > 1e-12]
        assert (published >= 0).all() and not ((published >= 1) & (published <= js)).any()
    interior = probs[table.last_row]
    assert abs(interior @ offsets**2 - V) < 1e-6  # no boundary in reach: the declared variance exactly


def test_invalid_parameters_are_refused():
    for args in [(0, 1.0, 0), (2, 0.0, 0), (2, 5.0, 0), (2, 1.0, 2), (2, 1.0, -1)]:
        with pytest.raises(PTableError):
            PTable(*args)


@settings(max_examples=200, deadline=None)
@given(counts=st.lists(st.integers(0, 10_000), min_size=1, max_size=50),
       keys=st.lists(st.integers(0, 2**40), min_size=50, max_size=50))
def test_perturbed_counts_stay_within_D_and_never_negative_and_zero_stays_zero(counts, keys):
    table = PTable(2, 1.0, 0)
    c = np.array(counts)
    out = table.perturb(c, np.array(keys[: len(counts)]))
    assert (np.abs(out - c) <= 2).all() and (out >= 0).all()
    assert (out[c == 0] == 0).all()


def test_the_perturbation_follows_the_table_for_uniform_cell_keys():
    table = PTable(2, 1.0, 0)
    rng = np.random.default_rng(7)
    n = 200_000
    for i in (1, 2, 7):
        dev = table.perturbation(np.full(n, i), rng.integers(0, KEY_SPACE, n))
        freq = np.array([(dev == o).mean() for o in table.table[0]])
        assert np.abs(freq - table.probabilities()[min(i, table.last_row)]).max() < 0.01


def test_the_cell_key_is_taken_modulo_2_to_the_32():
    table = PTable(2, 1.0, 0)
    keys = np.array([5, 5 + KEY_SPACE, 5 + 7 * KEY_SPACE])
    assert len(set(table.perturbation(np.array([9, 9, 9]), keys))) == 1


def test_describe_states_the_parameters_and_non_additivity():
    d = PTable(2, 1.0, 0).describe()
    assert d["method"] == "cell_key" and d["max_deviation"] == 2 and d["additive"] is False
    assert d["row_variance"]["3"] == pytest.approx(1.0)


# -- record keys


def _settings(**env):
    return load_settings({"NEURON_MODE": "test", **env})


def test_the_sql_record_key_equals_the_python_one_and_the_secret_stays_out_of_sql():
    s = _settings(NEURON_PERTURBATION_KEY="a-long-enough-secret-for-tests")
    con = install_record_key(duckdb.connect(), s)
    ids = ["evt-1", "evt-2", "同一事件", "x" * 200]
    got = [con.execute("SELECT neuron_record_key(?)", [i]).fetchall()[0][0] for i in ids]
    assert got == [record_key(i, secret(s)) for i in ids]
    assert all(0 <= k < KEY_SPACE for k in got) and len(set(got)) == len(ids)
    macro = con.execute("SELECT macro_definition FROM duckdb_functions() WHERE function_name = "
                        "'neuron_record_key'").fetchall()
    assert "a-long-enough" not in str(macro) and secret(s).hex() not in str(macro)


def test_another_key_gives_other_record_keys():
    a, b = secret(_settings(NEURON_PERTURBATION_KEY="first-secret-key-0001")), secret(
        _settings(NEURON_PERTURBATION_KEY="second-secret-key-002"))
    assert record_key("evt-1", a) != record_key("evt-1", b)


@pytest.mark.parametrize("raw", ["", DEMO_KEY, DEMO_KEY.encode().hex(), f"  {DEMO_KEY}  ", "short"])
def test_production_refuses_a_missing_demo_hex_demo_or_short_perturbation_key(raw):
    with pytest.raises(PerturbationKeyError):
        secret(load_settings({"NEURON_MODE": "production", "NEURON_PERTURBATION_KEY": raw}))


def test_demo_mode_falls_back_to_the_public_key():
    assert secret(_settings()) == secret(_settings(NEURON_PERTURBATION_KEY=DEMO_KEY))


# -- the mechanism on a grid

DS = Dataset("gold", "ck_test", "community x hour", "test", (
    C("community_id", "VARCHAR", "c", False), C("hour", "INTEGER", "h", False),
    C("passes", "BIGINT", "p"), C("visitors", "BIGINT", "v"), *SUPPRESSION_COLUMNS),
    domain="test", keys=("community_id", "hour"), counts=("passes", "visitors"), subsets=(("visitors", "passes"),))


def test_protect_grid_perturbs_drops_the_keys_clamps_parts_and_withholds_nothing():
    frame = pl.DataFrame({"community_id": ["a"] * 4, "hour": [0, 1, 2, 3], "passes": [0, 1, 3, 40],
                          "visitors": [0, 1, 3, 2], "ck_passes": [0, 11, 2**31, 99], "ck_visitors": [0, 5, 7, 3]})
    out, stats = protect_grid(frame, DS, Disclosure("cell_key", max_deviation=2, variance=1.0))
    assert [c for c in out.columns if c.startswith("ck_")] == []
    assert not out["suppressed"].any() and out["suppression"].null_count() == 4
    assert out.row(0) == ("a", 0, 0, 0, False, None)
    assert (out["visitors"] <= out["passes"]).all()
    assert stats["max_abs_deviation"] <= 2
    again, _ = protect_grid(frame, DS, Disclosure("cell_key", max_deviation=2, variance=1.0))
    assert again.equals(out)  # deterministic


def test_protect_grid_refuses_a_cell_key_dataset_without_cell_keys_or_with_derived_columns():
    frame = pl.DataFrame({"community_id": ["a"], "hour": [0], "passes": [3], "visitors": [1]})
    with pytest.raises(ValueError, match="ck_passes"):
        protect_grid(frame, DS, Disclosure("cell_key"))
