"""The outbox on object storage (``NEURON_OUTBOX_URI=s3://bucket/prefix``): every published batch version and every
receipt, replicated from the host's outbox folder in the same layout.

The folder stays the working copy: an export stages and renames a version folder there (``exports/filedrop.py``),
which object storage cannot do atomically. The store gets each *committed* version after the fact, in an order that
keeps it readable at every moment:

1. the version's files, ``manifest.json`` **last**: a version on the store is complete when its manifest is there
   (the manifest lists every file with its SHA-256; ``verify_batch`` checks them);
2. then the day's ``latest`` pointer (one PUT, atomic on S3), so ``latest`` only ever names a complete version;
3. receipts after the push that wrote them.

A writer killed between 1 and 2 leaves files without a manifest, or a complete version that ``latest`` does not
name yet; ``sync`` (run by every export of the day, and idempotent) finishes both. Versions are never rewritten
(a changed day is version N+1), so an object once complete never changes.

Hosts that share no outbox folder (Celery workers, Kubernetes pods without a shared volume) read through the
store: ``fetch`` downloads the current version of a day into the local folder (staged, renamed in) when the
folder does not hold it, and receipts likewise, so a publish step finds what an export step on another host wrote.
The warehouse step ``mirror``s the whole store first (history, pointers and receipts), so its publication
tables are the same on every host. A district consumer can poll the store as it polls a file drop: list
``v<N>/manifest.json``, or read ``latest``.
"""

from __future__ import annotations

import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exports.contracts import Contract
from exports.filedrop import (
    LATEST,
    MANIFEST,
    VERSION_RE,
    batch_dir,
    current_batch,
    latest_version,
    versions,
    write_latest,
)
from exports.publishing.versions import receipts_dir_for
from kernel.settings import Settings


@dataclass(frozen=True)
class SyncReport:
    versions_uploaded: int = 0
    files_uploaded: int = 0
    latest_set: bool = False


RECEIPT_RE = re.compile(r"^v[1-9][0-9]*\.json$")


@dataclass
class MirrorReport:
    """What ``OutboxStore.mirror`` brought into the folder."""

    versions: int = 0
    pointers: int = 0
    receipts: int = 0


@dataclass(frozen=True)
class OutboxStore:
    """``uri`` is ``s3://<bucket>[/<prefix>]`` (a district's outbox is ``<uri>/<district>``); ``fs`` an fsspec
    filesystem for it."""

    uri: str
    fs: Any

    def key(self, outbox: Path, path: Path) -> str:
        """The object of a file of the local outbox."""
        return f"{self.uri}/{Path(path).relative_to(outbox).as_posix()}"

    # -------------------------------------------------------------------------------------------- reading
    def versions(self, outbox: Path, contract: Contract, day: str) -> list[int]:
        """The complete versions of a day on the store (those with their manifest)."""
        prefix = self.key(outbox, batch_dir(outbox, contract, day))
        try:
            manifests = self.fs.glob(f"{prefix}/v*/{MANIFEST}")
        except FileNotFoundError:
            return []
        out = []
        for path in manifests:
            m = VERSION_RE.fullmatch(path.rstrip("/").split("/")[-2])
            if m:
                out.append(int(m.group(1)))
        return sorted(out)

    def days(self, outbox: Path, contract: Contract) -> list[str]:
        """The days the store holds a folder for, of ``contract``."""
        prefix = self.key(outbox, Path(outbox) / contract.consumer / contract.dataset)
        try:
            found = self.fs.glob(f"{prefix}/????-??-??")
        except FileNotFoundError:
            return []
        return sorted(p.rstrip("/").rsplit("/", 1)[1] for p in found)

    def latest(self, outbox: Path, contract: Contract, day: str) -> int | None:
        """The version the store's ``latest`` names (None when it has none)."""
        return self._pointer(f"{self.key(outbox, batch_dir(outbox, contract, day))}/{LATEST}")

    def _pointer(self, key: str) -> int | None:
        """The version a ``latest`` object names (None when it is absent or names none)."""
        try:
            m = VERSION_RE.fullmatch(self.fs.cat_file(key).decode().strip())
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        return int(m.group(1)) if m else None

    # -------------------------------------------------------------------------------------------- writing
    def sync(self, outbox: Path, contract: Contract, day: str) -> SyncReport:
        """Bring the store's copy of a day up to the folder's: every complete local version the store lacks (files
        first, manifest last), then ``latest``. Idempotent; finishes what a killed sync left."""
        partition = batch_dir(outbox, contract, day)
        local = versions(partition)
        on_store = set(self.versions(outbox, contract, day))
        uploaded = files = 0
        for n in sorted(set(local) - on_store):
            folder = local[n]
            names = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != MANIFEST)
            for name in [*names, MANIFEST]:  # the manifest last: it makes the version complete
                self.fs.put_file(str(folder / name), self.key(outbox, folder / name))
                files += 1
            uploaded += 1
        current = current_batch(partition)
        latest_set = False
        if current is not None and current.parent == partition:
            name = current.name
            if self.latest(outbox, contract, day) != int(name[1:]):
                self.fs.pipe_file(self.key(outbox, partition / LATEST), f"{name}\n".encode())
                latest_set = True
        return SyncReport(uploaded, files, latest_set)

    def put_receipts(self, outbox: Path, consumer: str, dataset: str, day: str) -> int:
        """Upload the day's receipts of ``consumer`` the store lacks (a receipt never changes once written)."""
        folder = receipts_dir_for(outbox, consumer) / dataset / day
        if not folder.is_dir():
            return 0
        n = 0
        for path in sorted(folder.glob("v*.json")):
            key = self.key(outbox, path)
            if not self.fs.exists(key):
                self.fs.put_file(str(path), key)
                n += 1
        return n

    def fetch(self, outbox: Path, contract: Contract, day: str) -> Path | None:
        """The day's current batch in the local folder, downloaded from the store when the folder lacks it (staged
        beside the day folder and renamed in, then ``latest`` written), with the consumer's receipts of the day.
        None when neither has one."""
        partition = batch_dir(outbox, contract, day)
        n = self.latest(outbox, contract, day)
        have = current_batch(partition)
        if n is None:
            return have
        self._fetch_receipts(outbox, contract, day)  # pushes from other hosts acknowledge what this one holds too
        if have is not None and have.name == f"v{n}":
            return have
        if n not in self.versions(outbox, contract, day):
            return have  # the pointer names no complete version: never read a half-uploaded one
        final = self._download_version(outbox, partition, n)
        write_latest(partition, n)
        return final

    def _download_version(self, outbox: Path, partition: Path, n: int) -> Path:
        """A complete version of the store into ``partition/v<n>`` unless the folder holds it (staged beside the
        day folder and renamed in: a reader never sees half of it)."""
        final = partition / f"v{n}"
        if not (final / MANIFEST).is_file():
            partition.mkdir(parents=True, exist_ok=True)
            stage = partition.parent / f".tmp-{partition.name}-{uuid.uuid4().hex[:10]}"
            try:
                self.fs.get(f"{self.key(outbox, final)}/", f"{stage}/", recursive=True)
                if final.exists():  # an incomplete folder (no manifest) cannot be a committed version
                    shutil.rmtree(final)
                stage.rename(final)
            finally:
                shutil.rmtree(stage, ignore_errors=True)
        return final

    def mirror(self, outbox: Path) -> MirrorReport:
        """Bring into the folder what the store holds and it lacks: every complete version (all of history, not
        only the current one), each day's ``latest`` where the store's is newer, and every receipt. What the
        warehouse's ``meta.exports`` and ``meta.receipts`` read, on a host whose folder is not the exports' one.

        One listing of the store (a year of a district's outbox is tens of thousands of keys: tens of pages);
        downloads only what is missing, so a host that mirrored yesterday fetches one day's batches. A version the
        folder holds is never replaced (versions are immutable), and a pointer never moves back: the folder may be
        ahead of the store while an export's copy is unfinished."""
        base = self.uri.removeprefix("s3://").rstrip("/")
        try:
            keys = self.fs.find(base)
        except FileNotFoundError:
            keys = []
        complete: set[tuple[str, str, str, int]] = set()
        latest: dict[tuple[str, str, str], str] = {}
        receipts: list[tuple[str, tuple[str, ...]]] = []
        for key in keys:
            parts = tuple(key[len(base) + 1:].split("/"))
            if any(p.startswith(".") for p in parts):
                continue
            if len(parts) == 5 and parts[1] == "_receipts" and RECEIPT_RE.fullmatch(parts[4]):
                receipts.append((key, parts))
            elif len(parts) == 5 and parts[4] == MANIFEST and (m := VERSION_RE.fullmatch(parts[3])):
                complete.add((*parts[:3], int(m.group(1))))
            elif len(parts) == 4 and parts[3] == LATEST:
                latest[parts[:3]] = key
        report = MirrorReport()
        for consumer, dataset, day, n in sorted(complete):
            partition = Path(outbox) / consumer / dataset / day
            if not (partition / f"v{n}" / MANIFEST).is_file():
                self._download_version(outbox, partition, n)
                report.versions += 1
        for (consumer, dataset, day), key in sorted(latest.items()):
            n = self._pointer(key)
            partition = Path(outbox) / consumer / dataset / day
            if n is not None and (consumer, dataset, day, n) in complete and (latest_version(partition) or 0) < n:
                write_latest(partition, n)
                report.pointers += 1
        for key, parts in receipts:
            target = Path(outbox).joinpath(*parts)
            if not target.exists():
                self._get_receipt(key, target)
                report.receipts += 1
        return report

    def _get_receipt(self, key: str, target: Path) -> None:
        """One receipt, written whole or not at all (a receipt never changes once written)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".receipt-{uuid.uuid4().hex[:10]}.tmp")
        try:
            self.fs.get_file(key, str(tmp))
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)

    def _fetch_receipts(self, outbox: Path, contract: Contract, day: str) -> None:
        receipts = receipts_dir_for(outbox, contract.consumer) / contract.dataset / day
        for key in self.fs.glob(f"{self.key(outbox, receipts)}/v*.json"):
            target = receipts / key.rsplit("/", 1)[1]
            if not target.exists():  # a receipt never changes once written
                self._get_receipt(key, target)


def open_outbox_store(settings: Settings) -> OutboxStore | None:
    """The deployment's outbox store, or None when ``NEURON_OUTBOX_URI`` is unset (the folder alone)."""
    if not settings.outbox_uri:
        return None
    from kernel.lake import s3_client

    return OutboxStore(settings.outbox_uri, s3_client(settings))


def mirror_outbox(settings: Settings) -> dict[str, int]:
    """Before the warehouse reads the outbox folder: what the store holds and the folder lacks (``mirror``);
    nothing when the deployment has no store."""
    store = open_outbox_store(settings)
    if store is None:
        return {}
    report = store.mirror(settings.outbox_dir)
    return {"outbox_store_versions_fetched": report.versions, "outbox_store_pointers_set": report.pointers,
            "outbox_store_receipts_fetched": report.receipts}
