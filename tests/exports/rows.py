"""Rows for any contract, generated from its column list (never a hard-coded column set): keys from the row
number, values that a correction can change row by row, people counts >= k so the export gates pass."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import duckdb

from exports.contracts import Contract


def _value(col: dict, day: str, key: bool, delta: str) -> str:
    t = str(col["type"]).upper()
    if col["name"] == "stat_date":
        return f"DATE '{day}'"
    if t == "DATE":
        return f"(DATE '{day}' - CAST(i AS INTEGER))"
    if t.startswith("TIMESTAMP"):
        return f"(TIMESTAMP '{day} 00:00:00' + to_minutes(i))"
    if t in ("VARCHAR", "TEXT"):
        return "('v' || i)" if key else f"('v' || (i + {delta}))"
    if t == "BOOLEAN":
        return "false"
    if t in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT") or t.startswith("DECIMAL"):
        return f"CAST(10 + i + {'0' if key else delta} AS {t})"
    if t in ("DOUBLE", "FLOAT", "REAL"):
        return f"CAST(i * 0.5 + {'0' if key else delta} AS {t})"
    raise AssertionError(f"no generator for {t}")


def relation(contract: Contract, day: str, n: int = 6, changed: Iterable[int] = (), start: int = 0) -> str:
    """SQL of ``n`` rows (row numbers ``start..start+n-1``) in contract column order; rows in ``changed`` get
    every non-key value shifted, so a correction changes exactly those rows."""
    changed = sorted(set(changed))
    delta = f"(CASE WHEN i IN ({', '.join(map(str, changed))}) THEN 1 ELSE 0 END)" if changed else "0"
    keys = set(contract.key_columns)
    exprs = ", ".join(f'{_value(c, day, c["name"] in keys, delta)} AS "{c["name"]}"' for c in contract.columns)
    return f"SELECT {exprs} FROM range({start}, {start + n}) t(i)"


def write_gold(lake_root: Path, contract: Contract, day: str, n: int = 6) -> Path:
    """The gold partition ``contract`` publishes (its columns without ``stat_date``), ``n`` rows."""
    layer, name = contract.source.split("/")
    folder = lake_root / layer / name / f"date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    cols = ", ".join(f'"{c["name"]}"' for c in contract.columns if c["name"] != "stat_date")
    duckdb.connect().execute(f"COPY (SELECT {cols} FROM ({relation(contract, day, n)})) "
                             f"TO '{folder / 'part-0.parquet'}' (FORMAT parquet)")
    return folder
