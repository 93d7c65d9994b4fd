"""Row conservation, one mechanism for every source: landed = accepted + quarantined + duplicates.

A bronze step counts what it read in an ``IngestStats`` and writes it to its ``audit/ingest*`` dataset; the
silver step calls ``account`` once per source, which writes ``audit/row_accounting_<source>`` and returns
the blocking ``row_accounting`` check result.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import dagster as dg
import duckdb

from kernel.dataset import Dataset
from kernel.io import write_dataset
from kernel.lake import Lake
from kernel.metadata import reasons_metadata

ACCOUNTING_CHECK = "row_accounting"
# columns every ingest dataset starts with (kernel.dataset.ingest_dataset); the rest come from ``counters``
_CORE = ("source", "files", "lines", "landed", "bronze_rows", "quarantined", "duplicates_in_file")


@dataclass
class IngestStats:
    """What a bronze parser read for one source and partition (counts only, never values).

    ``counters`` holds a domain's own numbers (face artefacts dropped, encodings seen...); those named like a
    column of the ingest dataset are persisted there, all of them reach the asset metadata.
    """

    source: str
    files: int = 0
    lines: int = 0
    landed: int = 0
    bronze_rows: int = 0
    quarantined: int = 0
    duplicates_in_file: int = 0
    duplicates_cross_file: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    counters: Counter[str] = field(default_factory=Counter)

    def add(self, other: IngestStats) -> None:
        """Fold one batch's counts into the source's total (``files`` is counted once, by the caller)."""
        for name in ("lines", "landed", "bronze_rows", "quarantined", "duplicates_in_file", "duplicates_cross_file"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.reasons.update(other.reasons)
        self.counters.update(other.counters)

    def value(self, column: str) -> int:
        return int(getattr(self, column) if hasattr(self, column) and column != "source" else self.counters[column])

    def bronze_metadata(self) -> dict[str, object]:
        return {"files": self.files, "lines": self.lines, "landed": self.landed,
                "duplicates_in_file": self.duplicates_in_file,
                **({"duplicates_cross_file": self.duplicates_cross_file} if self.duplicates_cross_file else {}),
                **{k: int(v) for k, v in sorted(self.counters.items())}}

    def quarantine_metadata(self) -> dict[str, object]:
        return reasons_metadata(dict(self.reasons))


def write_ingest(con: duckdb.DuckDBPyConnection, lake: Lake, ds: Dataset, day: str,
                 stats: Iterable[IngestStats]) -> int:
    """One row per source into the ingest dataset ``ds``; its extra columns are taken from each source's counters."""
    columns = [c for c in ds.column_names if c != "computed_at"]
    rows = [f"('{st.source}', " + ", ".join(str(st.value(c)) for c in columns[1:]) + ", now())" for st in stats]
    if not rows:
        return write_dataset(con, lake, ds, day, ds.empty_sql())
    return write_dataset(con, lake, ds, day, f"SELECT * FROM (VALUES {', '.join(rows)}) AS t({', '.join(columns)}, "
                                             "computed_at)")


def accounting_check_spec(asset_key: dg.AssetKey, source: str = "") -> dg.AssetCheckSpec:
    """The blocking check a silver asset declares and fills with ``account``."""
    name = ACCOUNTING_CHECK if not source else f"{ACCOUNTING_CHECK}_{source}"
    return dg.AssetCheckSpec(name, asset=asset_key, blocking=True,
                             description=f"{source or 'records'}: landed = accepted + quarantined + duplicates, "
                                         "per partition")


def ingest_counts(con: duckdb.DuckDBPyConnection, view: str = "ingest", source: str | None = None) -> dict[str, int]:
    """The parser's row for a source from an open ingest view (zeros when the parser read nothing)."""
    cols = [d[0] for d in con.sql(f"SELECT * FROM {view} LIMIT 0").description]
    wanted = [c for c in ("files", "lines", "landed", "duplicates_in_file", "duplicates_cross_file") if c in cols]
    where = f" WHERE source = '{source}'" if source else ""
    rows = con.execute(f"SELECT {', '.join(wanted)} FROM {view}{where}").fetchall()
    values = dict(zip(wanted, rows[0], strict=True)) if rows else {}
    return {c: int(values.get(c) or 0) for c in ("files", "lines", "landed", "duplicates_in_file",
                                                  "duplicates_cross_file")}


def record_accounting(con: duckdb.DuckDBPyConnection, lake: Lake, ds: Dataset, day: str, *, files: int,
                      lines: int, landed: int, accepted: int, quarantined: int, duplicates_in_file: int,
                      duplicates_cross_file: int, asset_key: dg.AssetKey | None = None, check_name: str = "",
                      **extra: object) -> dg.AssetCheckResult:
    """Write the partition's accounting row to ``ds`` (an ``accounting_dataset``) and return the check result.

    ``extra`` goes into the check metadata (e.g. ``unregistered_in_bronze``). Counts only, never values.
    """
    source = ds.name.removeprefix("row_accounting_")
    counted = accepted + quarantined + duplicates_in_file + duplicates_cross_file
    balanced = landed == counted
    write_dataset(con, lake, ds, day, f"""
        SELECT '{source}' AS source, {int(files)} AS files, {int(lines)} AS lines, {int(landed)} AS landed,
            {int(accepted)} AS accepted, {int(quarantined)} AS quarantined,
            {int(duplicates_in_file)} AS duplicates_in_file, {int(duplicates_cross_file)} AS duplicates_cross_file,
            {str(balanced).lower()} AS balanced, now() AS computed_at""")
    metadata = {"landed": int(landed), "accepted": int(accepted), "quarantined": int(quarantined),
                "duplicates_in_file": int(duplicates_in_file), "duplicates_cross_file": int(duplicates_cross_file),
                "difference": int(landed - counted), **extra}
    return dg.AssetCheckResult(check_name=check_name or ACCOUNTING_CHECK, asset_key=asset_key, passed=balanced,
                               severity=dg.AssetCheckSeverity.ERROR, metadata=metadata)


def account(con: duckdb.DuckDBPyConnection, lake: Lake, ds: Dataset, day: str, *, accepted: int, quarantined: int,
            duplicates_cross_file: int, ingest_view: str = "ingest", source: str | None = None,
            bronze_rows: int | None = None, behind: int | None = None, asset_key: dg.AssetKey | None = None,
            check_name: str = "", **extra: object) -> dg.AssetCheckResult:
    """The silver side of row accounting, the same for every source.

    Reads the parser's counts from ``ingest_view`` (the row of ``source`` when the view holds several),
    adds duplicates the parser already collapsed across files, writes ``ds`` and returns the check. When
    ``behind`` is given (bronze rows standing behind the accepted rows) it must equal ``bronze_rows``: a
    bronze row behind nothing (its device or door left the registry since bronze ran) fails the check.
    """
    got = ingest_counts(con, ingest_view, source)
    check = record_accounting(con, lake, ds, day, files=got["files"], lines=got["lines"], landed=got["landed"],
                              accepted=accepted, quarantined=quarantined,
                              duplicates_in_file=got["duplicates_in_file"],
                              duplicates_cross_file=got["duplicates_cross_file"] + duplicates_cross_file,
                              asset_key=asset_key, check_name=check_name, **extra)
    if behind is not None and bronze_rows is not None and behind != bronze_rows:
        check = dg.AssetCheckResult(check_name=check.check_name, asset_key=asset_key, passed=False,
                                    severity=dg.AssetCheckSeverity.ERROR,
                                    metadata={**check.metadata, "bronze_rows": int(bronze_rows),
                                              "behind_accepted": int(behind)})
    return check
