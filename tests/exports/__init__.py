"""Builders shared by the publishing tests: a sample contract and file-drop batches shaped like the
lead's, generated column-wise with Polars."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from exports.publishing.batch import sha256_file

CONSUMER = "zhilian_putuo"
DATASET = "device_health_daily"
CONTRACT_ID = f"{CONSUMER}.{DATASET}"
KEYS = {"ak_putuo_test": "sk_putuo_test_secret_0123456789"}
ACCESS_KEY, SECRET_KEY = next(iter(KEYS.items()))

CONTRACT: dict[str, Any] = {
    "id": CONTRACT_ID,
    "consumer": CONSUMER,
    "dataset": DATASET,
    "version": "1.0.0",
    "k_threshold": 5,
    "columns": [
        {
            "name": "stat_date",
            "title_zh": "统计日期",
            "type": "DATE",
            "nullable": False,
            "description_zh": "统计日期",
            "description_en": "Business date",
        },
        {
            "name": "community_code",
            "title_zh": "小区编码",
            "type": "VARCHAR",
            "nullable": False,
            "description_zh": "小区编码",
            "description_en": "Community code",
        },
        {
            "name": "device_type",
            "title_zh": "设备类型",
            "type": "VARCHAR",
            "nullable": False,
            "description_zh": "设备类型",
            "description_en": "Device type",
        },
        {
            "name": "devices_total",
            "title_zh": "设备总数",
            "type": "BIGINT",
            "nullable": False,
            "description_zh": "设备总数",
            "description_en": "Devices",
        },
        {
            "name": "devices_online",
            "title_zh": "在线设备数",
            "type": "BIGINT",
            "nullable": False,
            "description_zh": "在线设备数",
            "description_en": "Devices online",
        },
        {
            "name": "online_rate",
            "title_zh": "在线率",
            "type": "DOUBLE",
            "nullable": True,
            "description_zh": "在线率",
            "description_en": "Online rate",
        },
        {
            "name": "last_report_at",
            "title_zh": "最近上报时间",
            "type": "TIMESTAMP",
            "nullable": True,
            "description_zh": "最近上报时间",
            "description_en": "Last report",
        },
    ],
}

_DEVICE_TYPES = ["smoke_detector", "water_meter", "manhole_cover", "lift_sensor", "door_magnet"]


def write_contracts(root: Path) -> Path:
    """``<root>/<consumer>/<dataset>.yaml`` like ``exports/contracts``; returns ``root``."""
    path = root / CONSUMER / f"{DATASET}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(CONTRACT, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return root


def device_health_frame(partition: str, communities: int = 4, seed: int = 0) -> pl.DataFrame:
    """One row per (community, device type); ``seed`` shifts the counts so a rerun can change content."""
    n = communities * len(_DEVICE_TYPES)
    day = date.fromisoformat(partition)
    idx = pl.int_range(0, n, eager=True)
    total = (idx * 7 + 11 + seed) % 40 + 10
    online = total - (idx + seed) % 5
    return pl.DataFrame(
        {
            "stat_date": pl.repeat(day, n, eager=True),
            "community_code": "PT" + (idx // len(_DEVICE_TYPES) + 1).cast(pl.String).str.zfill(4),
            "device_type": pl.Series(_DEVICE_TYPES * communities),
            "devices_total": total.cast(pl.Int64),
            "devices_online": online.cast(pl.Int64),
            "online_rate": (online / total).round(4),
            "last_report_at": pl.repeat(datetime(day.year, day.month, day.day, 23, 55), n, eager=True),
        }
    )


def write_batch(
    outbox: Path,
    frame: pl.DataFrame,
    *,
    partition: str,
    version: int = 1,
    extra_files: dict[str, bytes] | None = None,
    consumer: str = CONSUMER,
    dataset: str = DATASET,
) -> Path:
    """A batch folder ``<outbox>/<consumer>/<dataset>/<partition>/`` with Parquet, BOM CSV (Chinese header) and
    manifest (the protocol does not care where the folder is; the file drop's layout is ``<partition>/v<n>/``)."""
    folder = outbox / consumer / dataset / partition
    folder.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(folder / "data.parquet")
    header = {c["name"]: c["title_zh"] for c in CONTRACT["columns"]}  # the CSV header is the Chinese titles
    csv_bytes = b"\xef\xbb\xbf" + frame.rename(header, strict=False).write_csv().encode("utf-8")
    (folder / "data.csv").write_bytes(csv_bytes)
    rows = frame.height
    files = [
        {
            "path": "data.parquet",
            "sha256": sha256_file(folder / "data.parquet"),
            "bytes": (folder / "data.parquet").stat().st_size,
            "rows": rows,
        },
        {
            "path": "data.csv",
            "sha256": sha256_file(folder / "data.csv"),
            "bytes": len(csv_bytes),
            "rows": rows,
        },
    ]
    for name, content in (extra_files or {}).items():
        (folder / name).write_bytes(content)
        files.append(
            {"path": name, "sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content), "rows": None}
        )
    manifest = {
        "dataset": dataset,
        "consumer": consumer,
        "contract_id": f"{consumer}.{dataset}",
        "contract_version": CONTRACT["version"],
        "partition": partition,
        "version": version,
        "is_correction": version > 1,
        "supersedes": version - 1 if version > 1 else None,
        "row_count": rows,
        # Stand-in for the lead's canonical content hash: the sorted CSV text, independent of Parquet encoding.
        "content_sha256": hashlib.sha256(frame.sort(frame.columns).write_csv().encode("utf-8")).hexdigest(),
        "files": files,
        "generated_at": "2026-11-22T01:00:00+08:00",
        "code_version": "test",
    }
    (folder / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    return folder
