"""The blocking privacy gate: a PII scan as an asset check on every silver, gold and export asset.

A hit fails the check with ERROR severity, which stops every downstream asset (exports included) in the
same run and, through ``all_deps_blocking_checks_passed``, in later automated runs. Check metadata carries
only redacted samples and column locations, never an identifier.
"""

# No ``from __future__ import annotations``: Dagster inspects the ``context`` annotation at runtime.
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import dagster as dg

from kernel.resource import NeuronResource
from quality.gx_checks import partition_keys_of
from quality.pii_scan import Hit, load_canaries, scan_parquet, scan_text

PII_CHECK = "no_personal_data"


def scan_files(paths: Sequence[str | Path], landing: Path) -> list[Hit]:
    """Scan output files: Parquet column by column, CSV/JSON as text; canaries from the landing zone."""
    canaries = load_canaries(landing)
    parquet = [p for p in paths if str(p).endswith(".parquet")]
    hits = scan_parquet(parquet, canaries) if parquet else []
    for p in paths:
        if not str(p).endswith(".parquet"):
            hits += scan_text(
                Path(p).read_text(encoding="utf-8-sig", errors="replace"), canaries, location=str(p)
            )
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


def build_pii_check(
    asset_key: dg.AssetKey,
    paths_for_partition: Callable[[NeuronResource, str | None], list[str]],
    partitions_def: dg.PartitionsDefinition | None = None,
) -> dg.AssetChecksDefinition:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=dg.PreviewWarning)
        spec = dg.AssetCheckSpec(
            PII_CHECK,
            asset=asset_key,
            blocking=True,
            partitions_def=partitions_def,
            description="No ID-card number, phone, plate, face artefact or canary resident in the output "
            "(regex + checksum + exact match); a hit blocks publication.",
        )

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
