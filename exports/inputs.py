"""What a published dataset is built from, recorded in its manifest so a correction can say what changed.

``landing_inputs`` walks the declared lake steps upstream from a gold dataset to the landing sources they read
(and the day each is read for, following ``Read.days_back``); ``landing_fingerprints`` records, per
(source, day), how many files the landing folder holds, their bytes and a fingerprint of their names, sizes and
modification times (never a file name or content). Steps that open other days' partitions themselves (e.g. the
month-to-date governance table) are only followed as far as their declared reads.
"""

from __future__ import annotations

import functools
import hashlib
from datetime import date, timedelta
from pathlib import Path

from assets.registry import domains
from kernel.lake_asset import LakeAsset


@functools.cache
def _producers() -> dict[str, LakeAsset]:
    return {ds.key: step for domain in domains() for step in domain.steps for ds in step.outputs}


def landing_inputs(dataset_key: str, day: str) -> list[tuple[str, str]]:
    """(landing source, day) pairs the partition ``day`` of ``dataset_key`` is built from, sorted."""
    producers = _producers()
    found: set[tuple[str, str]] = set()
    seen: set[tuple[str, int]] = set()
    todo = [(dataset_key, 0)]
    while todo:
        key, back = todo.pop()
        if (key, back) in seen:
            continue
        seen.add((key, back))
        step = producers.get(key)
        if step is None:
            continue
        shifted = (date.fromisoformat(day) - timedelta(days=back)).isoformat()
        found.update((source, shifted) for source in step.landing)
        for read in step.reads.values():
            if read.dataset.key != key:
                todo.append((read.dataset.key, back + read.days_back))
    return sorted(found)


def fingerprint(folder: Path) -> dict[str, object]:
    """Files (``*.part`` uploads in progress excluded), bytes and a sha256 over (relative name, size, mtime)."""
    digest = hashlib.sha256()
    files = size = 0
    if folder.is_dir():
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".part")):
            stat = path.stat()
            digest.update(f"{path.relative_to(folder).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
            files += 1
            size += stat.st_size
    return {"files": files, "bytes": size, "fingerprint": digest.hexdigest()}


def landing_fingerprints(landing: Path, dataset_key: str, day: str) -> dict[str, dict[str, object]]:
    """``{"<source>/<day>": fingerprint}`` for every landing folder the partition is built from."""
    return {f"{source}/{d}": fingerprint(landing / source / d) for source, d in landing_inputs(dataset_key, day)}
