"""The access simulator generates a district a chunk of communities at a time (so memory stays flat at 600):
each chunk stays small, event ids run on across chunks, the truth adds up over chunks and runs repeat exactly."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from assets.access.parse import landing_files, load_vocabulary, parse_batch
from kernel.ndjson import read_lines
from kernel.tokens import Tokenizer
from simulator import access
from tests.assets.access.helpers import read_truth, simulate_access_day, truth_dir

DAY = "2026-11-22"
SEED = 13
CHUNK = 2
N = 5  # three chunks: {0, 1}, {2, 3}, {4}


def _simulate(landing: Path, monkeypatch: pytest.MonkeyPatch, n: int = N, faults: bool = True) -> tuple[dict, list]:
    """Simulate with CHUNK communities a chunk; returns the summary and the communities of every chunk."""
    chunks: list[list[int]] = []
    deliver = access._deliver

    def spy(rng, landing, day, communities, d, ev, *args):
        chunks.append(sorted(ev["cidx"].unique().to_list()))
        return deliver(rng, landing, day, communities, d, ev, *args)

    monkeypatch.setattr(access, "CHUNK_COMMUNITIES", CHUNK)
    monkeypatch.setattr(access, "_deliver", spy)
    summary = simulate_access_day(landing, date.fromisoformat(DAY), n, SEED, faults=faults, telemetry=False)
    return summary, chunks


def _contents(landing: Path) -> dict[str, bytes]:
    """Every landed and truth file's content (NDJSON decompressed: gzip headers carry the write time)."""
    return {str(p.relative_to(landing)): gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
            for p in sorted(landing.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def chunked(tmp_path_factory: pytest.TempPathFactory):
    """Five communities in chunks of two, with every fault on, parsed by the pipeline's parser."""
    landing = tmp_path_factory.mktemp("access_chunks") / "landing"
    with pytest.MonkeyPatch.context() as mp:
        summary, chunks = _simulate(landing, mp)
    con = duckdb.connect()
    con.execute(f"CREATE TEMP TABLE doors AS SELECT * FROM read_csv('{landing / 'sites' / DAY / 'doors.csv'}', "
                "header=true, all_varchar=true)")
    load_vocabulary(con)
    tok = Tokenizer("access-test-key-0123456789", 1)
    parse_batch(con, read_lines(landing_files(landing, DAY), landing), DAY, "Asia/Shanghai", tok.tokenize_series)
    return con, summary, chunks, landing


def test_each_chunk_holds_at_most_the_chunk_size_of_communities(chunked):
    _, _, chunks, _ = chunked
    assert chunks == [[0, 1], [2, 3], [4]]


def test_event_ids_stay_unique_across_chunks_and_the_truth_adds_up(chunked):
    con, summary, _, _ = chunked
    landed, quarantined, final, communities = con.execute("""
        SELECT count(*), count(*) FILTER (WHERE reason IS NOT NULL),
            count(DISTINCT event_id) FILTER (WHERE reason IS NULL),
            count(DISTINCT split_part(source_file, '/', -2)) FROM records""").fetchall()[0]
    assert (landed, quarantined) == (summary["landed"], summary["quarantined"])
    # ids repeated across chunks would merge events of different communities into one
    assert final == summary["accepted"] == sum(summary["final_status"].values()) + summary["routed_non_door"]
    assert communities == N
    shared = con.execute("""
        SELECT count(*) FROM (SELECT event_id FROM records WHERE reason IS NULL GROUP BY event_id
                              HAVING count(DISTINCT split_part(source_file, '/', -2)) > 1)""").fetchall()[0][0]
    assert shared == 0


def test_every_community_of_every_chunk_is_in_the_truth_tables(chunked):
    _, summary, _, landing = chunked
    daily = read_truth(landing, DAY, "access_daily")
    gate_hour = read_truth(landing, DAY, "gate_hour")
    assert daily.height == N and daily["community_id"].is_sorted()
    assert gate_hour["community_id"].n_unique() == N
    assert gate_hour.equals(gate_hour.sort(pl.all()))
    assert daily["passes"].sum() == gate_hour["passes"].sum() > 0
    assert summary["files"] == len(list((landing / "access_events" / DAY).rglob("*.ndjson.gz")))


def test_a_chunked_run_repeats_exactly_for_the_same_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    first, _ = _simulate(tmp_path / "a", monkeypatch, n=3)
    second, _ = _simulate(tmp_path / "b", monkeypatch, n=3)
    assert first == second
    a, b = _contents(tmp_path / "a"), _contents(tmp_path / "b")
    assert a.keys() == b.keys() and len(a) > 10
    assert [k for k in a if a[k] != b[k]] == []
    assert (truth_dir(tmp_path / "a", DAY) / "summary.json").exists()


def test_a_clean_chunked_day_has_nothing_to_quarantine_or_deduplicate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    summary, chunks = _simulate(tmp_path / "landing", monkeypatch, n=3, faults=False)
    assert len(chunks) == 2
    assert summary["landed"] == summary["accepted"] > 0
    assert summary["quarantined"] == summary["duplicates_in_file"] == summary["duplicates_cross_file"] == 0
