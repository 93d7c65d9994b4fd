"""``inputs_complete``: a blocking check per gold table with sources, withholding it when a source is missing.

A source missing for every community that should deliver it (the feed did not arrive at all) fails the check
with ERROR: Dagster skips the table's exports in the run and the check names the source and why. A source
missing or partial for some communities passes: the table is published with those rows flagged and their
measures NULL (``kernel.completeness``), and the check's metadata lists them.
"""

# No ``from __future__ import annotations``: Dagster inspects the context and resource annotations.
import warnings
from collections.abc import Iterator

import dagster as dg
import duckdb

from assets.intake.datasets import COMPLETENESS
from kernel.dataset import Dataset
from kernel.lake import Lake
from kernel.lake_asset import Area
from kernel.metadata import asset_key, md_table
from kernel.resource import NeuronResource
from quality.gx_checks import partition_keys_of

CHECK = "inputs_complete"


def source_status(lake: Lake, day: str, sources: list[str]) -> dict[str, dict[str, object]]:
    """Per source: communities by status, the incomplete ones with reasons, and whether it is missing everywhere."""
    files = lake.files(COMPLETENESS.layer, COMPLETENESS.name, day)
    out: dict[str, dict[str, object]] = {s: {"expected": 0, "missing": [], "partial": []} for s in sources}
    if not files:
        return out
    listed = ", ".join(f"'{f}'" for f in files)
    with duckdb.connect() as con:
        rows = con.execute(f"SELECT source, community_id, status, reason FROM read_parquet([{listed}]) "
                           f"WHERE status <> 'not_expected' ORDER BY 1, 2").fetchall()
    for source, community, status, reason in rows:
        if source not in out:
            continue
        info = out[source]
        info["expected"] = int(info["expected"]) + 1  # type: ignore[arg-type]
        if status in ("missing", "partial"):
            info[status].append((community, reason))  # type: ignore[union-attr]
    return out


def inputs_complete_check(ds: Dataset, area: Area) -> dg.AssetChecksDefinition:
    """The blocking ``inputs_complete`` check of one gold table: its own step, so a table withheld for a missing
    source does not hold back the others (a failed check step skips everything downstream of its assets)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=dg.PreviewWarning)  # partitioned checks: opted in on purpose
        spec = dg.AssetCheckSpec(
            CHECK, asset=asset_key(ds), blocking=True, additional_deps=[asset_key(COMPLETENESS)],
            partitions_def=area.partitions,
            description=f"every source of {ds.name} ({', '.join(ds.sources)}) delivered for at least one community "
                        "that should deliver it; communities missing or partial are flagged in the table "
                        "(completeness column, measures NULL), a source missing everywhere withholds it")

    @dg.multi_asset_check(specs=[spec], name=f"{ds.layer}_{ds.name}_inputs_complete",
                          description=f"Completeness of the sources of {ds.key} (audit/completeness)")
    def _check(context: dg.AssetCheckExecutionContext, neuron: NeuronResource) -> Iterator[dg.AssetCheckResult]:
        lake = neuron.lake
        everywhere: list[str] = []
        rows: list[tuple[object, ...]] = []
        for day in (k for k in partition_keys_of(context) if k):
            for source, info in source_status(lake, day, list(ds.sources)).items():
                missing, partial = info["missing"], info["partial"]
                if info["expected"] and len(missing) == info["expected"]:  # type: ignore[arg-type]
                    everywhere.append(f"{source} ({day})")
                rows += [(day, source, c, status, r) for status, items in (("missing", missing),
                         ("partial", partial)) for c, r in items]  # type: ignore[union-attr]
        if everywhere:
            context.log.error(f"{ds.key} withheld: {', '.join(everywhere)} delivered nothing usable for any "
                              "community that should deliver it (audit/completeness)")
        yield dg.AssetCheckResult(
            asset_key=asset_key(ds), check_name=CHECK, passed=not everywhere,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(f"withheld: {', '.join(everywhere)} delivered nothing usable for any community"
                         if everywhere else f"{len(rows)} source-community pairs flagged" if rows
                         else "every source complete"),
            metadata={
                "sources_missing_everywhere": ", ".join(everywhere) or "none",
                "communities_flagged": len({r[2] for r in rows}),
                "flagged": md_table(rows, ("day", "source", "community", "status", "reason")),
            })

    return _check


def inputs_complete_checks(area: Area) -> list[dg.AssetChecksDefinition]:
    """One ``inputs_complete`` check per gold table that declares sources."""
    from assets.registry import datasets  # the registry imports this domain: resolve at build time

    return [inputs_complete_check(ds, area) for ds in datasets().values() if ds.sources and ds.asset]
