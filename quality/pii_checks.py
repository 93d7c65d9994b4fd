"""The blocking privacy gate: a PII scan as an asset check on every lake dataset and every export.

Lake datasets (bronze, quarantine, silver, gold, audit; the landing zone is the raw zone and is not
scanned) get ``build_lake_pii_check``: a hit fails the check with ERROR severity, which stops every
downstream asset (exports included) in the same run and, through ``all_deps_blocking_checks_passed``, in
later automated runs, *and* withdraws the offending partition from the lake (``Lake.withdraw_partition``):
no step, warehouse view or export can read it any more, and a JSON finding (kinds, columns, counts,
redacted samples) is left in its place under ``<lake>/_withdrawn/``. Exports get ``build_pii_check`` (the
outbox has its own gate inside the export step). Check metadata and findings carry only redacted samples
and column locations, never an identifier.
"""

# No ``from __future__ import annotations``: Dagster inspects the ``context`` annotation at runtime.
import json
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import dagster as dg
import duckdb

from kernel.dataset import Dataset
from kernel.lake import WITHDRAWN_DIR, Lake
from kernel.resource import NeuronResource
from kernel.runs import claim_day
from quality.gx_checks import partition_keys_of
from quality.pii_scan import Canary, Hit, load_canaries, scan_parquet, scan_text, scan_text_file

PII_CHECK = "no_personal_data"
_DESCRIPTION = ("No ID-card number, phone, plate, face artefact or canary resident in the output "
                "(regex + checksum + exact match); a hit blocks publication.")


def scan_files(paths: Sequence[str | Path], landing: Path, canaries: Sequence[Canary] | None = None) -> list[Hit]:
    """Scan output files: Parquet column by column, CSV/JSON as text (in DuckDB: ``scan_text_file``); canaries from
    the landing zone (``canaries`` when the caller already loaded them)."""
    canaries = load_canaries(landing) if canaries is None else canaries
    parquet = [p for p in paths if str(p).endswith(".parquet")]
    hits = scan_parquet(parquet, canaries) if parquet else []
    texts = [p for p in paths if not str(p).endswith(".parquet")]
    if texts:
        with duckdb.connect() as con:
            for p in texts:
                hits += scan_text_file(p, canaries, con=con)
    return hits


def hit_metadata(hits: list[Hit], files: int) -> dict[str, object]:
    by_kind = Counter(h.kind for h in hits)
    return {
        "hits": len(hits),
        "files_scanned": files,
        "by_kind": dg.MetadataValue.json(dict(sorted(by_kind.items()))),
        # locations are file::column; samples are redacted by the scanner (prefix, *** and length)
        "locations": dg.MetadataValue.json(sorted({h.location.rsplit("/", 1)[-1] for h in hits})[:20]),
        "samples": dg.MetadataValue.json([f"{h.kind}: {h.sample}" for h in hits[:10]]),
    }


def _spec(asset_key: dg.AssetKey, partitions_def: dg.PartitionsDefinition | None, description: str
          ) -> dg.AssetCheckSpec:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=dg.PreviewWarning)
        return dg.AssetCheckSpec(PII_CHECK, asset=asset_key, blocking=True, partitions_def=partitions_def,
                                 description=description)


def build_pii_check(
    asset_key: dg.AssetKey,
    paths_for_partition: Callable[[NeuronResource, str | None], list[str]],
    partitions_def: dg.PartitionsDefinition | None = None,
) -> dg.AssetChecksDefinition:
    spec = _spec(asset_key, partitions_def, _DESCRIPTION)

    @dg.multi_asset_check(
        specs=[spec], name=f"{asset_key.to_python_identifier()}_pii_scan", compute_kind="privacy"
    )
    def _pii_check(context: dg.AssetCheckExecutionContext, neuron: NeuronResource) -> Iterator[dg.AssetCheckResult]:
        paths = [p for key in partition_keys_of(context) for p in paths_for_partition(neuron, key)]
        hits = scan_files(paths, neuron.settings.landing_dir)
        if hits:
            context.log.error(
                f"privacy scan of {asset_key.to_user_string()}: {len(hits)} hits (see check metadata)"
            )
        yield dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=PII_CHECK,
            passed=not hits,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata=hit_metadata(hits, len(paths)),
        )

    return _pii_check


# ---------------------------------------------------------------------------------------------------------
# Lake datasets: scan, and withdraw what leaks
def _column(hit: Hit) -> str:
    """The column of a Parquet hit (``file::column``); text hits have none."""
    return hit.location.split("::", 1)[1] if "::" in hit.location else "(text)"


def finding(hits: Sequence[Hit], asset_key: dg.AssetKey, run_id: str, canaries: Sequence[Canary] = ()
            ) -> dict[str, object]:
    """What a withdrawal records: kinds, columns and counts, redacted samples; never a value or a location
    inside the data (row, offset). The record is scanned itself, and its samples dropped if it is not clean."""
    record: dict[str, object] = {
        "check": PII_CHECK,
        "asset": asset_key.to_user_string(),
        "run_id": run_id,
        "hits": len(hits),
        "by_kind": dict(sorted(Counter(h.kind for h in hits).items())),
        "by_column": dict(sorted(Counter(_column(h) for h in hits).items())),
        "by_column_kind": sorted({f"{_column(h)}: {h.kind}" for h in hits}),
        # redacted by the scanner: a short prefix, *** and the length
        "samples": [f"{_column(h)}: {h.kind}: {h.sample}" for h in hits[:20]],
        "restore": "fix the source (parser, vendor export) and re-materialise the partition: a clean write "
                   "makes it readable again",
    }
    if scan_text(json.dumps(record, ensure_ascii=False), canaries):  # a sample that still looks like one
        record["samples"] = ["withheld: the redacted samples still matched the scanner"]
    return record


def scan_units(lake: Lake, ds: Dataset, partition_key: str | None) -> list[tuple[str, list[str]]]:
    """(day, files) of each partition of ``ds`` the check covers: the run's partition, or every partition the
    dataset holds when the run has no partition key or the dataset is not partitioned by day."""
    if partition_key and ds.partitioned:
        return [(partition_key, lake.files(ds.layer, ds.name, partition_key))]
    return [(day, lake.files(ds.layer, ds.name, day)) for day in lake.partition_dates(ds.layer, ds.name)]


def build_lake_pii_check(
    asset_key: dg.AssetKey,
    datasets: Sequence[Dataset],
    partitions_def: dg.PartitionsDefinition | None = None,
    op_tags: Mapping[str, str] | None = None,
) -> dg.AssetChecksDefinition:
    """``no_personal_data`` on a lake asset: scan each of ``datasets`` (the asset's own, then the side datasets
    its step writes, e.g. row accounting) and withdraw every partition with a hit.

    The check claims the day lease first (a withdrawal is a write: no other run of the day may be writing
    it). It fails on hits, and on a partition withdrawn earlier and not re-written since (an absent
    partition must not pass as an empty one); a re-materialisation that writes a clean partition passes.
    Metadata: the scanner's counts and redacted samples, ``withdrawn`` (dataset, partition, finding file)
    and ``withdrawn_to`` (the first finding's folder). ``op_tags``: the step's (its run priority).
    """
    if not datasets:
        raise ValueError(f"{asset_key.to_user_string()}: a lake PII check scans at least one dataset")
    scanned = ", ".join(ds.key for ds in datasets)
    spec = _spec(asset_key, partitions_def, f"{_DESCRIPTION} Scans {scanned}; a partition with a hit is "
                 "withdrawn from the lake (only a redacted finding is kept under _withdrawn/).")

    @dg.multi_asset_check(
        specs=[spec], name=f"{asset_key.to_python_identifier()}_pii_scan", compute_kind="privacy",
        op_tags=op_tags,
    )
    def _pii_check(context: dg.AssetCheckExecutionContext, neuron: NeuronResource) -> Iterator[dg.AssetCheckResult]:
        settings = neuron.settings
        lake = neuron.lake
        run_id = context.run.run_id
        keys = partition_keys_of(context)
        for key in keys:
            if key:
                claim_day(context.instance, run_id, key, settings.leases_dir, settings.district)
        canaries = load_canaries(settings.landing_dir)
        hits: list[Hit] = []
        files = 0
        withdrawn: list[dict[str, str]] = []
        earlier: list[dict[str, str]] = []
        for key in keys:
            for ds in datasets:
                for day, paths in scan_units(lake, ds, key):
                    if not paths and lake.is_withdrawn(ds.layer, ds.name, day):
                        last = lake.withdrawals(ds.layer, ds.name, day)[-1]
                        earlier.append({"dataset": ds.key, "partition": day, "finding": str(last)})
                        continue
                    found = scan_files(paths, settings.landing_dir, canaries) if paths else []
                    files += len(paths)
                    if found:
                        record = lake.withdraw_partition(ds.layer, ds.name, day,
                                                         finding(found, asset_key, run_id, canaries))
                        if record is not None:  # None: gone already (the day lease rules that out)
                            withdrawn.append({"dataset": ds.key, "partition": day, "finding": str(record)})
                    hits += found
        metadata = hit_metadata(hits, files)
        metadata["withdrawn"] = dg.MetadataValue.json(withdrawn)
        if withdrawn:
            metadata["withdrawn_to"] = dg.MetadataValue.path(withdrawn[0]["finding"].rsplit("/", 1)[0])
            context.log.error(
                f"privacy scan of {asset_key.to_user_string()}: {len(hits)} hits; withdrew "
                + ", ".join(f"{w['dataset']} {w['partition']}" for w in withdrawn)
                + f" from the lake (findings under {lake.location}/{WITHDRAWN_DIR})"
            )
        if earlier:
            metadata["previously_withdrawn"] = dg.MetadataValue.json(earlier)
            context.log.error(
                f"{asset_key.to_user_string()}: "
                + ", ".join(f"{w['dataset']} {w['partition']}" for w in earlier)
                + " withdrawn by an earlier check and not re-written since: re-materialise"
            )
        yield dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=PII_CHECK,
            passed=not hits and not earlier,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata=metadata,
        )

    return _pii_check
