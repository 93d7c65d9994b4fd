"""File-drop publication: ``outbox/<consumer>/<dataset>/<date>/`` with Parquet, CSV (UTF-8 BOM) and a manifest.

The date folder always holds the current version; a changed partition becomes version n+1, marked as a
correction, and the superseded version moves to ``history/v<n>/`` inside the same atomic swap. Re-running
an unchanged partition publishes nothing new.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import duckdb

from exports.contracts import Contract
from kernel.lake import remove_paths, swap_in

BOM = b"\xef\xbb\xbf"


def code_version(override: str = "") -> str:
    """``NEURON_CODE_VERSION`` when the deployment sets it (``override``), else package version + git sha."""
    return override or _installed_version()


@functools.cache
def _installed_version() -> str:
    try:
        version = metadata.version("neuron")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{version}+{sha}" if sha else version


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Publication:
    path: Path
    manifest: dict
    published: bool  # False when the content was unchanged and nothing new was written


def batch_dir(outbox: Path, contract: Contract, day: str) -> Path:
    return outbox / contract.consumer / contract.dataset / day


def leftovers(outbox: Path, consumer: str = "*", dataset: str = "*", day: str = "*") -> list[Path]:
    """Staging folders (``.tmp-<day>-<id>``) a killed export left; runs of one day are serialised by the day
    lease, so an export removes its own day's before it stages a batch."""
    return sorted(outbox.glob(f"{consumer}/{dataset}/.tmp-{day}-*")) if outbox.exists() else []


def publish_filedrop(
    con: duckdb.DuckDBPyConnection,
    relation_sql: str,
    contract: Contract,
    day: str,
    outbox: Path,
    gate: Callable[[list[Path]], None] | None = None,
    code_version_override: str = "",
) -> Publication:
    """Write the batch for ``day`` from ``relation_sql`` (already in contract column order)."""
    final = batch_dir(outbox, contract, day)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_paths(leftovers(outbox, contract.consumer, contract.dataset, day))
    tmp = final.with_name(f".tmp-{day}-{uuid.uuid4().hex[:10]}")
    tmp.mkdir()
    try:
        order = ", ".join(f'"{c}"' for c in contract.key_columns)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE export_rows AS SELECT * FROM ({relation_sql}) ORDER BY {order}"
        )
        rows = con.execute("SELECT count(*) FROM export_rows").fetchall()[0][0]
        con.execute(f"COPY export_rows TO '{tmp / 'data.parquet'}' (FORMAT parquet, COMPRESSION zstd)")
        body = tmp / "body.csv"
        con.execute(
            f"COPY export_rows TO '{body}' (FORMAT csv, HEADER true, TIMESTAMPFORMAT '%Y-%m-%d %H:%M:%S')"
        )
        with open(tmp / "data.csv", "wb") as out, open(body, "rb") as src:
            out.write(BOM)  # Excel on Chinese Windows reads a BOM-less CSV as GBK
            shutil.copyfileobj(src, out)
        content_sha = sha256_file(body)
        body.unlink()

        previous = None
        if (final / "manifest.json").exists():
            previous = json.loads((final / "manifest.json").read_text(encoding="utf-8"))
            if (
                previous.get("content_sha256") == content_sha
                and previous.get("contract_version") == contract.version
            ):
                return Publication(final, previous, published=False)
        version = (previous["version"] + 1) if previous else 1
        if previous:
            hist = tmp / "history" / f"v{previous['version']}"
            if (final / "history").exists():
                shutil.copytree(final / "history", tmp / "history")
            hist.mkdir(parents=True)
            for name in ("data.parquet", "data.csv", "manifest.json"):
                if (final / name).exists():
                    shutil.copy2(final / name, hist / name)
        manifest = {
            "dataset": contract.dataset,
            "consumer": contract.consumer,
            "contract_id": contract.id,
            "contract_version": contract.version,
            "partition": day,
            "version": version,
            "is_correction": previous is not None,
            "supersedes": previous["version"] if previous else None,
            "row_count": rows,
            "content_sha256": content_sha,
            **({"disclosure": contract.disclosure.describe()} if contract.counts_people else {}),
            "files": [
                {
                    "path": name,
                    "sha256": sha256_file(tmp / name),
                    "bytes": (tmp / name).stat().st_size,
                    "rows": rows,
                }
                for name in ("data.parquet", "data.csv")
            ],
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "code_version": code_version(code_version_override),
        }
        (tmp / "manifest.json").write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8"
        )
        if gate is not None:  # e.g. the privacy scan: raising here leaves the outbox untouched
            gate([tmp / "data.parquet", tmp / "data.csv", tmp / "manifest.json"])
        swap_in(tmp, final)
        return Publication(final, manifest, published=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def verify_batch(path: Path) -> list[str]:
    """Problems with a batch folder (empty list = manifest checksums and row counts hold)."""
    problems = []
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    for f in manifest["files"]:
        p = path / f["path"]
        if not p.exists():
            problems.append(f"{f['path']}: missing")
        elif sha256_file(p) != f["sha256"]:
            problems.append(f"{f['path']}: sha256 mismatch")
    return problems
