"""The daily job with the lake on object storage (``NEURON_LAKE_URI``), against moto's S3 server on loopback.

The session's end-to-end day (three communities, every fault on) is run again from its landing zone with the lake
on the store: every partition must hash as the session's lake on disk does, nothing may land in a local ``lake/``
folder, the warehouse's views must name the store's current files and answer through ``neuron warehouse sql``, and
the doctor must find what a killed writer and a withdrawal on another worker leave, and nothing else.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from tests.conftest import use_data_root
from tests.lake_hashes import partition_hashes
from tests.services import S3_CREDENTIALS, moto_s3

BUCKET = "neuron-day"


@pytest.fixture(scope="module")
def s3_day(e2e_run, tmp_path_factory: pytest.TempPathFactory):
    from kernel.lake import open_lake
    from kernel.settings import load_settings
    from pipelines.cli import run_day

    with moto_s3(BUCKET) as endpoint, pytest.MonkeyPatch.context() as mp:
        root = use_data_root(mp, tmp_path_factory.mktemp("s3day") / "store")
        shutil.copytree(e2e_run.root / "landing", root / "landing")
        for var, value in {**S3_CREDENTIALS, "NEURON_LAKE_URI": f"s3://{BUCKET}/district",
                           "NEURON_S3_ENDPOINT_URL": endpoint}.items():
            mp.setenv(var, value)
        result = run_day(e2e_run.day)
        yield root, result, open_lake(load_settings()), e2e_run.root, e2e_run.day


def test_the_day_on_object_storage_writes_what_the_day_on_disk_wrote(s3_day):
    from kernel.lake import Lake

    root, result, lake, disk, _ = s3_day
    assert result.success, [e.message for e in result.all_events if e.is_failure][:3]
    assert lake.location == f"s3://{BUCKET}/district"
    assert not (root / "lake").exists()  # nothing of the lake on local disk but the read cache
    on_store, on_disk = partition_hashes(lake), partition_hashes(Lake(disk / "lake"))
    assert len(on_disk) > 80 and sum(n for n, _ in on_disk.values()) > 50_000
    assert sum(n for k, (n, _) in on_disk.items() if k.startswith("quarantine/")) > 0  # the faults were there
    assert on_store == on_disk
    assert lake.withdrawals() == []


def test_the_warehouse_reads_the_current_commits_on_the_store(s3_day, capsys):
    from kernel.settings import load_settings
    from pipelines.cli import main

    root, _, lake, _, day = s3_day
    s = load_settings()
    with duckdb.connect(str(s.warehouse_path), read_only=True) as con:
        views = con.execute("SELECT schema_name, view_name, source, lake_glob FROM meta.views").fetchall()
        sources = {v[2] for v in views}
        assert "object_store" in sources and "lake" not in sources  # no view over a local folder
        definition = con.execute("SELECT sql FROM duckdb_views() WHERE schema_name = 'silver' "
                                 "AND view_name = 'telemetry'").fetchall()[0][0]
        # the view names exactly the current commit's files, by their s3:// URIs
        assert all(uri in definition for uri in lake.uris("silver", "telemetry"))
        assert "/.lake_cache/" not in definition
    rows = lake.partition_rows("silver", "telemetry", day)
    assert main(["warehouse", "sql", "SELECT count(*) AS n FROM silver.telemetry"]) == 0
    assert f"{rows}" in capsys.readouterr().out.replace(",", "")
    # a bad query is one line, not a traceback
    assert main(["warehouse", "sql", "SELECT * FROM silver.no_such_view"]) == 2
    err = capsys.readouterr().err
    assert "query failed" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    # relink is for a folder lake; on the store it refuses with one line
    assert main(["warehouse", "relink"]) == 2
    assert "object storage" in capsys.readouterr().err


def test_the_doctor_finds_nothing_left_on_the_store_then_a_killed_writer_and_a_withdrawn_partitions_copies(s3_day):
    import dagster as dg

    from kernel.object_lake import ORPHAN_AGE_S
    from kernel.settings import load_settings
    from pipelines.doctor import diagnose

    root, _, lake, _, day = s3_day
    s = load_settings()
    with dg.DagsterInstance.get() as instance:
        assert diagnose(instance, s).found == []
        # a writer killed after its upload, an hour ago: an orphaned commit prefix
        stale = f"{lake.commit_uri('silver', 'telemetry', day, '20000101T000000-000000000000')}/part-00000.parquet"
        lake.fs.pipe_file(stale, b"PAR1")
        # a copy in this host's cache of a commit no pointer names (withdrawn on another worker)
        gone = Path(str(lake.cache_dir)) / f"{BUCKET}/district/gold/access_daily/date={day}/20000101T000000-x"
        gone.mkdir(parents=True)
        (gone / "part-00000.parquet").write_bytes(b"PAR1")
        found = diagnose(instance, s).found
        assert len(found) == 2 and any(stale.rsplit("/", 1)[0] in f for f in found) and any(str(gone) in f
                                                                                            for f in found)
        report = diagnose(instance, s, repair=True)
        assert len(report.repaired) >= 2 and not gone.exists() and not lake.fs.exists(stale)
    assert ORPHAN_AGE_S >= 600  # a younger prefix may be a live writer's upload: never removed
