"""The lake on object storage (``kernel.object_lake``), against an S3 server on loopback (moto's, in a thread).

What must hold on a store without rename: a reader sees a partition's old commit or its new one, never half or a
mix; a writer killed during its upload or just before its pointer PUT leaves nothing a reader resolves; two writers
of one partition cannot both win; a correction keeps the earlier commit readable; a withdrawal leaves no data.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import duckdb
import pytest

from kernel.object_lake import CommitConflict, ObjectLake, s3_filesystem

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "neuron-lake-test"
CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def endpoint():
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    s3_filesystem(url, "testing", "testing").call_s3("create_bucket", Bucket=BUCKET)
    yield url
    server.stop()


@pytest.fixture
def lake(endpoint, request) -> ObjectLake:
    # a prefix of its own per test (parametrised tests included)
    return ObjectLake(f"s3://{BUCKET}/{request.node.name[:30]}-{uuid.uuid4().hex[:8]}",
                      s3_filesystem(endpoint, "testing", "testing"))


def rows_sql(n: int, v: int = 1) -> str:
    return f"SELECT i AS id, {v} AS version, 'c' || (i % 7) AS community_id FROM range({n}) t(i)"


def read(lake: ObjectLake, files: list[str]) -> tuple[int, set[int]]:
    con = lake.attach(duckdb.connect())
    listed = ", ".join(f"'{f}'" for f in files)
    n, versions = con.execute(f"SELECT count(*), list(DISTINCT version) FROM read_parquet([{listed}])").fetchone()
    return n, set(versions)


def test_a_partition_is_committed_by_its_pointer_and_read_through_duckdb(lake):
    con = duckdb.connect()
    with lake.write_partition("silver", "readings", "2026-11-20") as w:
        w.copy(con, rows_sql(1000))
        w.copy(con, rows_sql(500))
    files = lake.files("silver", "readings", "2026-11-20")
    assert len(files) == 2 and all(f.startswith(f"{lake.uri}/silver/readings/date=2026-11-20/") for f in files)
    assert read(lake, files) == (1500, {1})
    p = lake.pointer("silver", "readings", "2026-11-20")
    assert p["rows"] == 1500 and [f["rows"] for f in p["files"]] == [1000, 500] and p["history"] == []
    assert lake.partition_dates("silver", "readings") == ["2026-11-20"]
    assert lake.files("silver", "readings") == files and lake.files("silver", "other", "2026-11-20") == []
    # hive-style reading of the whole dataset, as the warehouse's views read it
    con = lake.attach(duckdb.connect())
    listed = ", ".join(f"'{f}'" for f in lake.files("silver", "readings"))
    assert con.execute(f"SELECT DISTINCT date FROM read_parquet([{listed}], hive_partitioning = true, "
                       "hive_types = {'date': DATE})").fetchone()[0].isoformat() == "2026-11-20"


def test_a_correction_is_a_new_commit_and_the_earlier_one_stays_readable(lake):
    con = duckdb.connect()
    lake.write_query(con, rows_sql(300, v=1), "gold", "daily", "2026-11-20")
    first = lake.pointer("gold", "daily", "2026-11-20")["commit"]
    lake.write_query(con, rows_sql(200, v=2), "gold", "daily", "2026-11-20")
    history = lake.history("gold", "daily", "2026-11-20")
    assert [h["commit"] for h in history][1:] == [first] and [h["rows"] for h in history] == [200, 300]
    assert read(lake, lake.files("gold", "daily", "2026-11-20")) == (200, {2})
    assert read(lake, lake.files_of("gold", "daily", "2026-11-20", first)) == (300, {1})
    with pytest.raises(KeyError):
        lake.files_of("gold", "daily", "2026-11-20", "nope")
    lake.write_query(con, rows_sql(100, v=3), "gold", "daily", "2026-11-20")
    assert lake.gc("gold", "daily", keep=2) == 1  # the first commit's prefix and its history entry go
    assert [h["rows"] for h in lake.history("gold", "daily", "2026-11-20")] == [100, 200]
    with pytest.raises(KeyError):
        lake.files_of("gold", "daily", "2026-11-20", first)
    assert lake.orphans("gold", "daily", min_age_s=0) == []


def race(lake: ObjectLake, day: str, winner: int, loser: int) -> None:
    """Two writers of one partition open before either commits; the first to finish wins, the other conflicts."""
    con = duckdb.connect()
    first, second = (lake.write_partition("bronze", "events", day) for _ in range(2))
    a, b = first.__enter__(), second.__enter__()
    a.copy(con, rows_sql(winner, v=winner))
    b.copy(con, rows_sql(loser, v=loser))
    first.__exit__(None, None, None)
    with pytest.raises(CommitConflict):
        second.__exit__(None, None, None)


def test_two_writers_of_one_partition_cannot_both_win(lake):
    race(lake, "2026-11-20", 10, 20)  # the partition's first commit: both start with no pointer (If-None-Match)
    assert read(lake, lake.files("bronze", "events", "2026-11-20")) == (10, {10})
    race(lake, "2026-11-20", 30, 40)  # later commits: both read the same pointer (If-Match on its ETag)
    assert read(lake, lake.files("bronze", "events", "2026-11-20")) == (30, {30})
    assert [h["rows"] for h in lake.history("bronze", "events", "2026-11-20")] == [30, 10]
    # the loser's upload is an orphan, removable once old enough
    assert len(lake.orphans("bronze", "events", min_age_s=0)) == 2
    assert lake.orphans("bronze", "events") == []  # younger than an hour: may be a live writer's
    assert lake.clean_orphans("bronze", "events", min_age_s=0) == 2
    assert read(lake, lake.files("bronze", "events", "2026-11-20")) == (30, {30})


WRITER = """
import os, sys, time
import duckdb
from kernel.object_lake import ObjectLake, s3_filesystem
STAGE = sys.argv[1]
fs = s3_filesystem(os.environ["ENDPOINT"], "testing", "testing")
class Held(ObjectLake):
    def _put_pointer(self, path, body, etag):
        if STAGE == "before_pointer":
            print("uploaded", flush=True); time.sleep(600)
        return super()._put_pointer(path, body, etag)
if STAGE == "during_upload":
    put = fs.put_file
    def slow_put(lpath, rpath, **kw):
        put(lpath, rpath, **kw)
        print("one part uploaded", flush=True); time.sleep(600)
    fs.put_file = slow_put
lake = Held(os.environ["LAKE"], fs)
con = duckdb.connect()
with lake.write_partition("silver", "readings", "2026-11-21") as w:
    w.copy(con, "SELECT i AS id, 2 AS version FROM range(7000) t(i)")
    w.copy(con, "SELECT i AS id, 2 AS version FROM range(3000) t(i)")
"""


@pytest.mark.parametrize("stage", ["during_upload", "before_pointer"])
def test_a_writer_killed_mid_commit_leaves_nothing_a_reader_resolves(lake, endpoint, stage):
    con = duckdb.connect()
    lake.write_query(con, "SELECT i AS id, 1 AS version FROM range(5000) t(i)", "silver", "readings", "2026-11-21")
    env = {**os.environ, **CREDS, "ENDPOINT": endpoint, "LAKE": lake.uri, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER), stage], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        assert line.strip() in ("uploaded", "one part uploaded"), proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # the reader still sees the whole earlier commit, and only it
    assert read(lake, lake.files("silver", "readings", "2026-11-21")) == (5000, {1})
    orphans = lake.orphans("silver", "readings", min_age_s=0)
    assert len(orphans) == 1 and lake.fs.glob(f"{orphans[0]}/*.parquet")  # the dead writer's upload
    # the next writer commits over it normally, and the orphan can be cleaned
    lake.write_query(con, "SELECT i AS id, 3 AS version FROM range(4000) t(i)", "silver", "readings", "2026-11-21")
    assert read(lake, lake.files("silver", "readings", "2026-11-21")) == (4000, {3})
    assert lake.clean_orphans("silver", "readings", min_age_s=0) == 1
    assert [h["rows"] for h in lake.history("silver", "readings", "2026-11-21")] == [4000, 5000]


def test_a_reader_racing_a_writer_never_sees_half_a_partition(lake):
    con = duckdb.connect()
    sizes = {v: 1000 + 100 * v for v in range(1, 7)}
    lake.write_query(con, rows_sql(sizes[1], v=1), "gold", "hourly", "2026-11-22")
    seen: list[tuple[int, set[int]]] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            seen.append(read(lake, lake.files("gold", "hourly", "2026-11-22")))

    t = threading.Thread(target=reader)
    t.start()
    try:
        for v in range(2, 7):
            with lake.write_partition("gold", "hourly", "2026-11-22") as w:  # each commit in two parts
                w.copy(con, rows_sql(sizes[v] // 2, v=v))
                before = len(seen)  # reads while this commit's parts are uploaded
                w.copy(con, f"SELECT i + {sizes[v] // 2} AS id, {v} AS version, 'c' AS community_id "
                            f"FROM range({sizes[v] - sizes[v] // 2}) t(i)")
                deadline = time.monotonic() + 10
                while len(seen) < before + 2 and time.monotonic() < deadline:
                    time.sleep(0.01)
    finally:
        done.set()
        t.join()
    assert len({next(iter(v)) for _, v in seen}) >= 4, seen  # reads fell before, during and after commits
    for n, versions in seen:
        assert len(versions) == 1 and n == sizes[next(iter(versions))], (n, versions)


def test_a_withdrawn_partition_leaves_a_finding_and_no_data(lake):
    con = duckdb.connect()
    lake.write_query(con, rows_sql(50, v=1), "silver", "work_orders", "2026-11-20")
    lake.write_query(con, rows_sql(60, v=2), "silver", "work_orders", "2026-11-20")
    finding = lake.withdraw_partition("silver", "work_orders", "2026-11-20", {"check": "no_personal_data",
                                                                             "kinds": {"phone": 1}})
    assert finding and lake.fs.exists(finding)
    assert lake.files("silver", "work_orders", "2026-11-20") == [] and lake.is_withdrawn("silver", "work_orders",
                                                                                          "2026-11-20")
    assert lake.fs.glob(f"{lake.dataset_uri('silver', 'work_orders')}/date=2026-11-20/**") == []  # every commit
    assert lake.withdraw_partition("silver", "work_orders", "2026-11-20", {}) is None
    lake.write_query(con, rows_sql(70, v=3), "silver", "work_orders", "2026-11-20")  # a re-write: readable again
    assert not lake.is_withdrawn("silver", "work_orders", "2026-11-20")
    assert read(lake, lake.files("silver", "work_orders", "2026-11-20")) == (70, {3})


@pytest.mark.parametrize("uri", ["/var/lib/neuron/lake", "s3://", "gs://bucket/lake"])
def test_an_object_lake_needs_an_s3_uri(uri):
    with pytest.raises(ValueError, match="s3://"):
        ObjectLake(uri, object())


def test_the_read_cache_never_serves_half_a_download_and_duckdb_reads_through_it(lake, tmp_path):
    """A download killed midway leaves only a ``.part`` file, which no reader opens: the next read fetches the file
    again. DuckDB's ``s3://`` reads of committed parts come from the cache, and a pointer is never cached."""
    from dataclasses import replace

    cached = replace(lake, cache_dir=tmp_path / "cache")
    with lake.write_partition("silver", "readings", "2026-11-21") as w:
        w.copy(duckdb.connect(), rows_sql(300))
    [uri] = lake.uris("silver", "readings", "2026-11-21")
    target = tmp_path / "cache" / uri.removeprefix("s3://")
    target.parent.mkdir(parents=True)
    (target.parent / f"{target.name}.123-dead.part").write_bytes(b"PAR1 half")  # a killed download
    [path] = cached.files("silver", "readings", "2026-11-21")
    assert path == str(target) and target.read_bytes()[:4] == b"PAR1" and target.stat().st_size > 100
    con = cached.attach(duckdb.connect())
    assert con.execute(f"SELECT count(*) FROM read_parquet('{uri}')").fetchone()[0] == 300
    target.write_bytes(b"not parquet")  # a cached copy is what DuckDB reads: proof the store was not asked
    with pytest.raises(duckdb.Error):
        con.execute(f"SELECT count(*) FROM read_parquet('{uri}')").fetchall()
    # the pointer is mutable: read from the store, never from the cache
    assert cached.pointer("silver", "readings", "2026-11-21")["rows"] == 300
    assert not any(p.name.endswith(".json") for p in (tmp_path / "cache").rglob("*"))


def test_the_read_cache_keeps_to_its_bound_evicting_the_least_recently_used_parts(lake, tmp_path):
    """Past the bound the parts read longest ago go first; one read in the grace period stays whatever the bound;
    downloads in progress are never touched; an evicted part is fetched again, the same bytes, on its next read."""
    from dataclasses import replace

    days = [f"2026-12-{d:02d}" for d in range(1, 7)]
    for i, day in enumerate(days):
        with lake.write_partition("silver", "readings", day) as w:
            w.copy(duckdb.connect(), rows_sql(2000, v=i))
    probe = replace(lake, cache_dir=tmp_path / "probe")
    size = os.path.getsize(probe.files("silver", "readings", days[0])[0])
    # room for three of the six parts; the bound is checked once a tenth of it has come in
    cached = replace(lake, cache_dir=tmp_path / "cache", cache_max_bytes=3 * size + size // 2)
    before = {d: Path(cached.files("silver", "readings", d)[0]).read_bytes() for d in days}
    paths = {d: Path(cached.files("silver", "readings", d)[0]) for d in days}
    # nothing was evicted yet: every part was used in the grace period
    assert all(p.exists() for p in paths.values())
    hour = time.time() - 3600
    for i, d in enumerate(days):  # read an hour ago, the first day longest ago
        os.utime(paths[d], (hour + i, hour + i))
    os.utime(paths[days[0]])  # ... but the first day's part was read just now
    partial = paths[days[1]].parent / f"{paths[days[1]].name}.77-dead.part"
    partial.write_bytes(b"PAR1 half")
    removed, freed = cached.trim_cache()
    assert removed == 3 and freed >= 3 * size * 0.9
    assert [d for d in days if paths[d].exists()] == [days[0], days[4], days[5]]
    assert partial.exists()  # a download in progress is not a part file
    total = sum(p.stat().st_size for p in (tmp_path / "cache").rglob("part-*.parquet"))
    assert total <= cached.cache_max_bytes
    # an evicted part is fetched again on its next read: the same bytes
    assert Path(cached.files("silver", "readings", days[1])[0]).read_bytes() == before[days[1]]
    assert read(cached, cached.files("silver", "readings", days[2]))[0] == 2000
    # an unbounded cache is never trimmed
    assert replace(cached, cache_max_bytes=None).trim_cache() == (0, 0)


def test_the_cache_bound_is_a_setting_with_a_one_line_error(monkeypatch, tmp_path):
    from kernel.lake import open_lake
    from kernel.settings import SettingsError, load_settings

    monkeypatch.setenv("NEURON_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("NEURON_LAKE_URI", "s3://bucket/district")
    monkeypatch.setenv("NEURON_LAKE_CACHE_MB", "128")
    assert open_lake(load_settings()).cache_max_bytes == 128 * 2**20
    monkeypatch.setenv("NEURON_LAKE_CACHE_MB", "8")
    with pytest.raises(SettingsError, match="NEURON_LAKE_CACHE_MB must be at least 64"):
        load_settings()
