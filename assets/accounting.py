"""Row conservation, one mechanism for every source: landed = accepted + quarantined + duplicates.

A domain's silver asset calls ``record_accounting`` once per source and partition; it writes
``audit/row_accounting_<source>`` and returns the blocking ``row_accounting`` check result.
"""

import dagster as dg
import duckdb

from warehouse.dataset import Dataset
from warehouse.io import write_dataset
from warehouse.lake import Lake

ACCOUNTING_CHECK = "row_accounting"


def accounting_check_spec(asset_key: dg.AssetKey, source: str = "") -> dg.AssetCheckSpec:
    """The blocking check a silver asset declares (``check_specs=[...]``) and fills with record_accounting."""
    name = ACCOUNTING_CHECK if not source else f"{ACCOUNTING_CHECK}_{source}"
    return dg.AssetCheckSpec(name, asset=asset_key, blocking=True,
                             description=f"{source or 'records'}: landed = accepted + quarantined + duplicates, "
                                         "per partition")


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
