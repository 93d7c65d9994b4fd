"""The lake writer: a partition is replaced whole or not at all, even when the writer dies mid-write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from kernel.lake import Lake


def _write(lake: Lake, day: str, n: int, tag: str) -> None:
    con = duckdb.connect()
    lake.write_query(con, f"SELECT range AS i, '{tag}' AS tag FROM range({n})", "silver", "t", day)


def _read(lake: Lake, day: str) -> tuple[int, set[str]]:
    con = duckdb.connect()
    files = lake.files("silver", "t", day)
    rows = con.execute(f"SELECT count(*), list(DISTINCT tag) FROM read_parquet({files})").fetchall()[0]
    return rows[0], set(rows[1])


def test_rewrite_replaces_the_partition(tmp_path: Path):
    lake = Lake(tmp_path)
    _write(lake, "2026-11-01", 10, "v1")
    _write(lake, "2026-11-01", 7, "v2")
    assert _read(lake, "2026-11-01") == (7, {"v2"})
    assert not list((tmp_path / "silver" / "t").glob(".tmp-*"))


def test_error_mid_write_leaves_previous_partition_intact(tmp_path: Path):
    lake = Lake(tmp_path)
    _write(lake, "2026-11-01", 1000, "v1")
    con = duckdb.connect()
    with pytest.raises(duckdb.Error), lake.write_partition("silver", "t", "2026-11-01") as w:
        w.copy(con, "SELECT range AS i, 'v2' AS tag FROM range(10)")  # a first part succeeds
        w.copy(con, "SELECT CASE WHEN range = 500000 THEN error('disk gone') ELSE range END AS i, 'v2' AS tag "
                    "FROM range(1000000)")
    assert _read(lake, "2026-11-01") == (1000, {"v1"})
    assert not list((tmp_path / "silver" / "t").glob(".tmp-*"))


def test_a_write_failing_part_way_fails_every_time_and_never_hangs(tmp_path: Path):
    """DuckDB 2.0.0's async file writer could hang for ever aborting a failed COPY (kernel.duckdb_io): with its
    async threads on, this loop hung within ten tries. A hang is a timeout here, not a stuck suite."""
    script = textwrap.dedent(f"""
        import duckdb
        from pathlib import Path
        from kernel.lake import Lake
        lake = Lake(Path({str(tmp_path)!r}))
        con = duckdb.connect()
        for i in range(40):
            try:
                with lake.write_partition("silver", "t", "2026-11-01") as w:
                    w.copy(con, "SELECT range AS i FROM range(10)")
                    w.copy(con, "SELECT CASE WHEN range = 500000 THEN error('disk gone') ELSE range END AS i "
                                "FROM range(1000000)")
            except duckdb.Error:
                continue
            raise SystemExit("the failing write succeeded")
        print("ALL_FAILED", flush=True)
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and "ALL_FAILED" in out.stdout, out.stderr[-2000:]
    assert not list((tmp_path / "silver" / "t").glob(".tmp-*"))


def test_killed_writer_leaves_previous_partition_readable(tmp_path: Path):
    lake = Lake(tmp_path)
    _write(lake, "2026-11-01", 1000, "v1")
    script = textwrap.dedent(f"""
        import duckdb, sys, time
        from pathlib import Path
        from kernel.lake import Lake
        lake = Lake(Path({str(tmp_path)!r}))
        con = duckdb.connect()
        with lake.write_partition("silver", "t", "2026-11-01") as w:
            w.copy(con, "SELECT range AS i, 'v2' AS tag FROM range(100000)")
            print("PART_WRITTEN", flush=True)
            time.sleep(60)
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "PART_WRITTEN"
        assert _read(lake, "2026-11-01") == (1000, {"v1"}), "half-written partition visible to a reader"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _read(lake, "2026-11-01") == (1000, {"v1"})
    # the orphaned temporary folder is invisible to readers and removed by the cleaner
    assert lake.clean_stale_temp() == 1
    _write(lake, "2026-11-01", 5, "v3")
    assert _read(lake, "2026-11-01") == (5, {"v3"})


def test_concurrent_reader_never_sees_a_mix(tmp_path: Path):
    lake = Lake(tmp_path)
    _write(lake, "2026-11-01", 50_000, "v0")
    deadline = time.monotonic() + 3
    i = 0
    seen = set()
    import threading

    stop = threading.Event()

    def writer():
        nonlocal i
        while not stop.is_set():
            i += 1
            _write(lake, "2026-11-01", 50_000, f"v{i}")

    t = threading.Thread(target=writer)
    t.start()
    try:
        while time.monotonic() < deadline:
            try:
                n, tags = _read(lake, "2026-11-01")
            except duckdb.IOException:
                continue  # the file listed a moment ago was swapped out: retry, never a mix
            assert n == 50_000 and len(tags) == 1
            seen |= tags
    finally:
        stop.set()
        t.join()
    assert len(seen) > 1
