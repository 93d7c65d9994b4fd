"""The daily job with the lake and the outbox on object storage (``NEURON_LAKE_URI``, ``NEURON_OUTBOX_URI``),
against moto's S3 server on loopback.

The session's end-to-end day (three communities, every fault on) is run again from its landing zone with the lake
on the store and the batches pushed to a reference receiver: every partition must hash as the session's lake on
disk does, nothing may land in a local ``lake/`` folder, the warehouse's views must name the store's current files
and answer through ``neuron warehouse sql``, and the doctor must find what a killed writer and a withdrawal on
another worker leave, and nothing else. The outbox's versions and receipts must be on the store byte for byte, a
host without the folder must read them from it, and a sync killed before a manifest must leave nothing readable.
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
KEYS = {"neuron-s3": "s3-day-secret-s3-day-secret"}


@pytest.fixture(scope="module")
def s3_day(e2e_run, tmp_path_factory: pytest.TempPathFactory):
    from exports.contracts import CONTRACTS_DIR
    from exports.receiver import run_in_thread
    from kernel.lake import open_lake
    from kernel.settings import load_settings
    from pipelines.cli import run_day

    tmp = tmp_path_factory.mktemp("s3day")
    with moto_s3(BUCKET) as endpoint, pytest.MonkeyPatch.context() as mp, \
            run_in_thread(tmp / "receiver", CONTRACTS_DIR, KEYS) as rx:
        root = use_data_root(mp, tmp / "store")
        shutil.copytree(e2e_run.root / "landing", root / "landing")
        for var, value in {**S3_CREDENTIALS, "NEURON_LAKE_URI": f"s3://{BUCKET}/district",
                           "NEURON_OUTBOX_URI": f"s3://{BUCKET}/outbox", "NEURON_S3_ENDPOINT_URL": endpoint}.items():
            mp.setenv(var, value)
        for consumer in ("zhilian_putuo", "public_security"):
            mp.setenv(f"NEURON_PUBLISHER_{consumer.upper()}", "https_push")
            mp.setenv(f"NEURON_{consumer.upper()}_URL", rx.base_url)
            mp.setenv(f"NEURON_{consumer.upper()}_ACCESS_KEY", "neuron-s3")
            mp.setenv(f"NEURON_{consumer.upper()}_SECRET_KEY", KEYS["neuron-s3"])
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


def _outbox_files(outbox: Path) -> dict[str, bytes]:
    """Every committed file of an outbox folder (not a staging folder or pointer temp file), by relative path."""
    return {p.relative_to(outbox).as_posix(): p.read_bytes() for p in sorted(outbox.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(outbox).parts)}


def test_every_committed_batch_version_and_receipt_is_on_the_store_byte_for_byte(s3_day):
    from exports.outbox_store import open_outbox_store
    from kernel.settings import load_settings

    root, result, _, disk, day = s3_day
    s = load_settings()
    store = open_outbox_store(s)
    local = _outbox_files(s.outbox_dir)
    assert any(k.endswith("/latest") for k in local) and any("/_receipts/" in k for k in local)
    assert sum(k.endswith("/manifest.json") for k in local) >= 5
    on_store = {k[len(f"{BUCKET}/outbox/"):]: store.fs.cat_file(k) for k in store.fs.find(f"{BUCKET}/outbox")}
    assert on_store == local
    # the export steps say where their version went
    exported = [e for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"
                and e.asset_key.path[0] == "export"]
    assert exported and all(str(e.materialization.metadata["outbox_store"].value).startswith(f"s3://{BUCKET}/outbox/")
                            for e in exported if "outbox_store" in e.materialization.metadata)


def test_a_host_without_the_outbox_folder_reads_each_current_batch_from_the_store(s3_day, tmp_path):
    from exports.contracts import batch_contracts, load_contracts
    from exports.filedrop import current_batch, verify_batch
    from exports.outbox_store import open_outbox_store
    from kernel.settings import load_settings

    root, _, _, _, day = s3_day
    s = load_settings()
    store = open_outbox_store(s)
    other = tmp_path / "outbox"  # another host's empty folder
    fetched = 0
    for contract in batch_contracts(load_contracts()):
        mine = current_batch(s.outbox_dir / contract.consumer / contract.dataset / day)
        got = store.fetch(other, contract, day)
        if mine is None:
            assert got is None
            continue
        fetched += 1
        assert got.relative_to(other) == mine.relative_to(s.outbox_dir) and verify_batch(got) == []
        assert {p.name: p.read_bytes() for p in got.iterdir()} == {p.name: p.read_bytes() for p in mine.iterdir()}
        assert store.fetch(other, contract, day) == got  # already there: nothing downloaded again
    assert fetched >= 5
    receipts = sorted(p.relative_to(other).as_posix() for p in other.rglob("_receipts/**/*.json"))
    assert receipts == sorted(p.relative_to(s.outbox_dir).as_posix() for p in s.outbox_dir.rglob("_receipts/**/*.json"))


def test_a_sync_killed_before_the_manifest_leaves_nothing_readable_and_the_next_sync_finishes_it(s3_day, tmp_path):
    from exports.contracts import batch_contracts, load_contracts
    from exports.filedrop import current_batch
    from exports.outbox_store import open_outbox_store
    from kernel.settings import load_settings

    root, _, _, _, day = s3_day
    s = load_settings()
    store = open_outbox_store(s)
    contract = next(c for c in batch_contracts(load_contracts())
                    if current_batch(s.outbox_dir / c.consumer / c.dataset / day) is not None)
    version = current_batch(s.outbox_dir / contract.consumer / contract.dataset / day)
    prefix = store.key(s.outbox_dir, version.parent)
    # killed after the data files went up, before the manifest and the pointer
    store.fs.rm(f"{prefix}/{version.name}/manifest.json")
    store.fs.rm(f"{prefix}/latest")
    assert store.fs.exists(f"{prefix}/{version.name}/data.parquet")
    assert store.versions(s.outbox_dir, contract, day) == [] and store.latest(s.outbox_dir, contract, day) is None
    assert store.fetch(tmp_path / "a", contract, day) is None  # nothing half-uploaded is ever read
    # a pointer that names a version without its manifest is not followed either
    store.fs.pipe_file(f"{prefix}/latest", f"{version.name}\n".encode())
    assert store.fetch(tmp_path / "b", contract, day) is None
    report = store.sync(s.outbox_dir, contract, day)
    assert report.versions_uploaded == 1 and report.files_uploaded == len(list(version.iterdir()))
    assert store.versions(s.outbox_dir, contract, day) == [int(version.name[1:])]
    assert store.fetch(tmp_path / "c", contract, day) is not None
    assert store.sync(s.outbox_dir, contract, day).files_uploaded == 0  # idempotent
    # the order of a sync from nothing: every file, the manifest last, then the pointer
    store.fs.rm(prefix, recursive=True)
    calls: list[str] = []

    class Recording:
        def __getattr__(self, name):
            attr = getattr(store.fs, name)
            if name in ("put_file", "pipe_file"):
                return lambda src, dst=None, *a, **k: (calls.append(str(dst if name == "put_file" else src)),
                                                       attr(src, dst, *a, **k))[1]
            return attr

    type(store)(store.uri, Recording()).sync(s.outbox_dir, contract, day)
    assert calls[-2].endswith(f"/{version.name}/manifest.json") and calls[-1].endswith("/latest")
    assert len(calls) == len(list(version.iterdir())) + 1


def test_the_retry_schedule_on_a_host_without_the_folder_finds_what_is_unacknowledged_through_the_store(
        s3_day, tmp_path, monkeypatch):
    from dataclasses import replace

    from exports.contracts import load_contracts
    from exports.definitions import pending_days
    from exports.outbox_store import open_outbox_store
    from kernel.settings import load_settings

    root, _, _, _, day = s3_day
    s = load_settings()
    store = open_outbox_store(s)
    other = replace(s, outbox_dir=tmp_path / "outbox")  # another host: an empty folder, the same store
    # every pushed batch was acknowledged, and the receipts are on the store: nothing to retry
    assert pending_days(load_contracts(), other) == []
    assert list((tmp_path / "outbox").rglob("_receipts/**/*.json"))
    # a receipt lost (never uploaded after its push): that day is pending again, from any host
    receipt = next(k for k in store.fs.find(f"{BUCKET}/outbox") if "/_receipts/" in k)
    store.fs.rm(receipt)
    third = replace(s, outbox_dir=tmp_path / "third")
    assert pending_days(load_contracts(), third) == [day]


def test_the_warehouse_on_a_host_without_the_folder_reads_every_version_and_receipt_through_the_store(s3_day,
                                                                                                    tmp_path):
    """meta.exports lists every version (history too) and meta.receipts every receipt: a warehouse step on a host
    that shares no outbox folder first mirrors the store, and then reads what the exporting host's folder holds."""
    from dataclasses import replace

    from exports.contracts import batch_contracts, load_contracts
    from exports.filedrop import latest_version, write_latest
    from exports.outbox_store import mirror_outbox, open_outbox_store
    from kernel.settings import load_settings
    from warehouse.outbox import export_versions, receipt_files

    root, result, _, _, day = s3_day
    s = load_settings()
    store = open_outbox_store(s)
    # the day's own warehouse step caught up first, and found nothing missing on the host that exported
    built = [e.materialization.metadata for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"
             and e.asset_key.path[0] == "warehouse"]
    assert built and built[0]["outbox_store_versions_fetched"].value == 0
    # the store as the exporting host's copies leave it (tests before this one take pieces of it away)
    for contract in batch_contracts(load_contracts()):
        store.sync(s.outbox_dir, contract, day)
        store.put_receipts(s.outbox_dir, contract.consumer, contract.dataset, day)
    other = tmp_path / "outbox"  # another host's empty folder
    caught_up = mirror_outbox(replace(s, outbox_dir=other))
    assert caught_up["outbox_store_versions_fetched"] >= 5 and caught_up["outbox_store_receipts_fetched"] >= 5
    assert caught_up["outbox_store_pointers_set"] == caught_up["outbox_store_versions_fetched"]  # one version a day

    def versions(outbox: Path) -> list[tuple]:
        return [(v.path.relative_to(outbox).as_posix(), v.version, v.is_latest, v.layout, v.manifest)
                for v in export_versions(outbox)]

    def receipts(outbox: Path) -> list[tuple]:
        return [(r.path.relative_to(outbox).as_posix(), r.is_latest, r.receipt) for r in receipt_files(outbox)]

    assert versions(other) == versions(s.outbox_dir) and len(versions(other)) >= 5
    assert receipts(other) == receipts(s.outbox_dir) and len(receipts(other)) >= 5
    assert _outbox_files(other) == _outbox_files(s.outbox_dir)  # byte for byte
    again = store.mirror(other)
    assert (again.versions, again.pointers, again.receipts) == (0, 0, 0)
    # the folder ahead of the store (an export whose copy to the store was killed): its pointer never moves back
    partition = Path(versions(other)[0][0]).parent
    ahead = other / partition / "v99"
    shutil.copytree(other / versions(other)[0][0], ahead)
    write_latest(other / partition, 99)
    assert store.mirror(other).pointers == 0 and latest_version(other / partition) == 99
