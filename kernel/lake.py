"""The Parquet lake: one folder per dataset partition, written aside and swapped in atomically.

Readers never see half a partition: a partition is built in a hidden temporary folder next to its final
place and exchanged with the old one in one ``renameat2(RENAME_EXCHANGE)`` call where the kernel offers it
(Linux), or with two renames otherwise (then a reader may briefly see no partition, never a mixed one).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from kernel.duckdb_io import no_async_io

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
# Partitions a blocking check took out of the lake: ``<root>/_withdrawn/<layer>/<dataset>/date=<day>/<id>.json``.
# No reader's glob (``<root>/<layer>/<dataset>/date=*/*.parquet``) can reach it.
WITHDRAWN_DIR = "_withdrawn"


def _load_renameat2():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_renameat2 = _load_renameat2()


def swap_in(tmp_dir: Path, final_dir: Path) -> None:
    """Make ``tmp_dir`` the content of ``final_dir`` atomically and remove the old content."""
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    if not final_dir.exists():
        os.rename(tmp_dir, final_dir)
        return
    if _renameat2 is not None:
        rc = _renameat2(_AT_FDCWD, os.fsencode(tmp_dir), _AT_FDCWD, os.fsencode(final_dir), _RENAME_EXCHANGE)
        if rc == 0:
            shutil.rmtree(tmp_dir)  # now holds the previous partition
            return
    trash = final_dir.with_name(f".trash-{final_dir.name}-{uuid.uuid4().hex[:8]}")
    os.rename(final_dir, trash)
    os.rename(tmp_dir, final_dir)
    shutil.rmtree(trash, ignore_errors=True)


def remove_paths(paths: Iterable[Path]) -> int:
    """Remove what a killed writer left (files or folders); returns how many were removed."""
    removed = 0
    for p in paths:
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        removed += 1
    return removed


@dataclass(frozen=True)
class Lake:
    """Hive-style layout ``<root>/<layer>/<dataset>/date=YYYY-MM-DD/part-*.parquet``."""

    root: Path

    # ---- what every lake offers (this one and kernel.object_lake.ObjectLake); callers never touch the root
    @property
    def location(self) -> str:
        """Where the lake is, for messages and the warehouse's catalog."""
        return str(self.root)

    def has_partition(self, layer: str, dataset: str, date: str) -> bool:
        """The partition was written (perhaps with no rows) and not withdrawn."""
        return self.partition_dir(layer, dataset, date).is_dir()

    def read_source(self, layer: str, dataset: str) -> str:
        """What ``read_parquet`` reads for every partition of ``dataset`` now: a SQL string literal (a glob)."""
        return "'" + self.glob(layer, dataset).replace("'", "''") + "'"

    def attach(self, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        """Let ``con`` read the lake's paths (nothing to do on local disk)."""
        return con

    def leftovers(self) -> list[str]:
        """What killed writers left (temporary folders), for ``neuron doctor``."""
        return [str(p) for p in self.stale_temp()]

    def remove_leftovers(self, found: Iterable[str]) -> int:
        return remove_paths(Path(p) for p in found)

    def partition_rows(self, layer: str, dataset: str, date: str) -> int | None:
        """Rows of a written partition from its Parquet footers (None when the partition does not exist)."""
        if not self.has_partition(layer, dataset, date):
            return None
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(f).metadata.num_rows for f in self.files(layer, dataset, date))

    def private_layer(self, layer: str) -> None:
        """Make ``layer`` readable by its owner only (the exact figures of the ``internal`` layer)."""
        path = self.root / layer
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)

    def dataset_dir(self, layer: str, dataset: str) -> Path:
        return self.root / layer / dataset

    def partition_dir(self, layer: str, dataset: str, date: str) -> Path:
        return self.dataset_dir(layer, dataset) / f"date={date}"

    def files(self, layer: str, dataset: str, date: str | None = None) -> list[str]:
        base = self.partition_dir(layer, dataset, date) if date else self.dataset_dir(layer, dataset)
        pattern = "*.parquet" if date else "date=*/*.parquet"
        return sorted(str(p) for p in base.glob(pattern))

    def glob(self, layer: str, dataset: str) -> str:
        return str(self.dataset_dir(layer, dataset) / "date=*" / "*.parquet")

    def exists(self, layer: str, dataset: str, date: str) -> bool:
        return bool(self.files(layer, dataset, date))

    @contextmanager
    def write_partition(self, layer: str, dataset: str, date: str) -> Iterator[PartitionWrite]:
        """Collect part files in a temporary folder; swap it in only if the block completes.

        A partition has one writer at a time (runs of one day are serialised by the day lease), so temporary
        folders of the same partition found here were left by a killed writer and are removed first.
        """
        final = self.partition_dir(layer, dataset, date)
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_paths(self.stale_temp(date, layer, dataset))
        tmp = final.with_name(f".tmp-{final.name}-{uuid.uuid4().hex[:12]}")
        tmp.mkdir()
        writer = PartitionWrite(tmp)
        try:
            yield writer
            for f in tmp.iterdir():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
            swap_in(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def write_query(self, con: duckdb.DuckDBPyConnection, sql: str, layer: str, dataset: str, date: str) -> int:
        """Write one query's result as the whole partition; returns the row count."""
        with self.write_partition(layer, dataset, date) as w:
            return w.copy(con, sql)

    def stale_temp(self, date: str | None = None, layer: str = "*", dataset: str = "*") -> list[Path]:
        """Temporary folders a killed writer left (of one partition, one day, or all)."""
        day = f"date={date}-" if date else "date="
        where = f"{layer}/{dataset}"
        return sorted([*self.root.glob(f"{where}/.tmp-{day}*"), *self.root.glob(f"{where}/.trash-{day}*")])

    def clean_stale_temp(self, date: str | None = None) -> int:
        """Remove temporary folders left by a killed writer; returns how many were removed."""
        return remove_paths(self.stale_temp(date))

    def partition_dates(self, layer: str, dataset: str) -> list[str]:
        """Days of the partitions ``dataset`` holds now (folders ``date=<day>``; temporary ones excluded)."""
        base = self.dataset_dir(layer, dataset)
        return sorted(p.name.removeprefix("date=") for p in base.glob("date=*") if p.is_dir())

    def withdrawn_dir(self, layer: str, dataset: str, date: str) -> Path:
        """Where the findings of a partition's withdrawals are kept (outside every reader's glob)."""
        return self.root / WITHDRAWN_DIR / layer / dataset / f"date={date}"

    def withdrawals(self, layer: str = "*", dataset: str = "*", date: str | None = None) -> list[Path]:
        """Finding files of withdrawn partitions (of one partition, one dataset, or all), oldest first."""
        day = f"date={date}" if date else "date=*"
        return sorted(self.root.glob(f"{WITHDRAWN_DIR}/{layer}/{dataset}/{day}/*.json"),
                      key=lambda p: (p.name, str(p)))

    def is_withdrawn(self, layer: str, dataset: str, date: str) -> bool:
        """The partition was withdrawn and nothing was written since (a re-write makes it readable again)."""
        return not self.partition_dir(layer, dataset, date).exists() and bool(self.withdrawals(layer, dataset, date))

    def withdraw_partition(self, layer: str, dataset: str, date: str, finding: Mapping[str, object]) -> Path | None:
        """Take a partition out of the readable lake; returns its finding file (None when there is no partition).

        ``finding`` (with the partition's file names, sizes and the time added) is written first, as
        ``withdrawn_dir(...)/<utc time>-<id>.json``; then the partition folder is renamed to a ``.trash-``
        sibling in one ``rename`` (readers see the whole partition or none of it, as with ``swap_in``) and
        deleted. The data are not kept: a partition is derived from the landing zone, the one place raw
        personal data may live, and is rebuilt by re-materialising it. A process killed before the delete
        leaves a ``.trash-`` folder that ``stale_temp`` lists (the next writer and the doctor remove it).
        The caller guarantees ``finding`` holds no identifier; the partition's writers must be stopped (day
        lease), as for a write.
        """
        src = self.partition_dir(layer, dataset, date)
        if not src.is_dir():
            return None
        now = datetime.now(UTC)
        files = [{"name": p.name, "bytes": p.stat().st_size} for p in sorted(src.iterdir()) if p.is_file()]
        record = {"layer": layer, "dataset": dataset, "partition": date,
                  "withdrawn_at": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
                  **finding, "files": files}
        target = self.withdrawn_dir(layer, dataset, date)
        target.mkdir(parents=True, exist_ok=True)
        path = target / f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}.json"
        tmp = target / f".{path.name}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(record, fh, ensure_ascii=False, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        trash = src.with_name(f".trash-{src.name}-{uuid.uuid4().hex[:8]}")
        os.rename(src, trash)
        shutil.rmtree(trash, ignore_errors=True)
        return path


class PartitionWrite:
    """A partition being written: add part files with ``copy``; nothing is visible until the block ends."""

    def __init__(self, tmp_dir: Path) -> None:
        self.dir = tmp_dir
        self._n = 0
        self.rows = 0
        self.parts: list[tuple[Path, int]] = []  # each part file written, with its rows

    def next_path(self) -> Path:
        path = self.dir / f"part-{self._n:05d}.parquet"
        self._n += 1
        return path

    def copy(self, con: duckdb.DuckDBPyConnection, sql: str) -> int:
        path = self.next_path()
        no_async_io(con)  # a failed write must fail, not hang (kernel.duckdb_io)
        con.execute(
            # DuckDB writes row groups in parallel: 122,880 rows (its default) let both cores write one part
            # file (1,000,000 wrote a 16 MB telemetry batch on one core: 2.2-3.0 s against 1.35 s; the files are 8 % larger)
            f"COPY ({sql}) TO '{path}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)"
        )
        n = con.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()[0][0]
        self.rows += n
        self.parts.append((path, n))
        return n


_FILESYSTEMS: dict[tuple, object] = {}


def open_lake(settings) -> Lake:
    """The deployment's lake: on object storage when ``NEURON_LAKE_URI`` is set (``kernel.object_lake``), else the
    folder ``NEURON_LAKE_DIR``. One filesystem client per process and endpoint (a forked step makes its own)."""
    if not settings.lake_uri:
        return Lake(settings.lake_dir)
    from kernel.object_lake import ObjectLake

    return ObjectLake(settings.lake_uri, s3_client(settings), settings.lake_cache_dir,  # type: ignore[return-value]
                      settings.lake_cache_mb * 2**20)


def s3_client(settings):
    """This process's fsspec filesystem for the deployment's S3-compatible store (endpoint and region from
    settings, credentials from the AWS_* variables): one per process and endpoint (a forked step makes its own)."""
    from kernel.object_lake import s3_filesystem

    key = (os.getpid(), settings.s3_endpoint_url, settings.s3_region)
    if key not in _FILESYSTEMS:
        _FILESYSTEMS[key] = s3_filesystem(settings.s3_endpoint_url or None, region=settings.s3_region or None)
    return _FILESYSTEMS[key]
