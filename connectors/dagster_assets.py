"""Landing as Dagster assets: one step per day pulls every source that has a pull or file channel, reconciles
what was pushed, and reports per source what arrived and how.

Without a vendor config (``NEURON_VENDORS_FILE``, default ``data/connectors/vendors.yaml``) the step pulls
nothing and reports the landing files as delivered (``neuron simulate``, a share mounted by hand), so the
daily job runs the same in every deployment. The ``reconciled`` check (blocking) fails when a record the
platform holds for the day is in no landing file, or when a scope could not be read.
"""

# No ``from __future__ import annotations``: Dagster inspects the context and resource annotations.
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import dagster as dg

from connectors.channels import channels
from connectors.config import VendorConfig, VendorConfigError
from connectors.pull.files import FILE_SOURCES, pull_files
from connectors.pull.run import SOURCES, pull_day
from connectors.reconcile import as_dict, reconcile
from kernel.landing import LandingSource
from kernel.partitions import day_of
from kernel.resource import NeuronResource

RECONCILED_CHECK = "reconciled"
STEP_NAME = "landing_pull"


def _files_and_bytes(root) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")] if root.is_dir() else []
    return len(files), sum(p.stat().st_size for p in files)


def landing_assets(sources: tuple[LandingSource, ...], partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    specs = [dg.AssetSpec(s.key, group_name="landing", kinds={"file"},
                          description=f"{s.description or s.name}: landing/{s.name}/<day>/; channels: "
                                      f"{', '.join(channels(s.name)) or 'files as delivered'} (docs/connectors.md)")
             for s in sources]
    check_specs = [dg.AssetCheckSpec(RECONCILED_CHECK, asset=s.key, blocking=True,
                                     description="Every record the platform holds for the day is in the landing "
                                                 "zone: pushed + reconciled = platform total, per scope")
                   for s in sources if "pull" in channels(s.name)]

    @dg.multi_asset(name=STEP_NAME, specs=specs, check_specs=check_specs, partitions_def=partitions,
                    can_subset=True,
                    description="Pulls the day from the vendor platforms (history by window, file exports) and "
                                "reconciles what the collector received; without a vendor config, reports the "
                                "landing files as delivered.")
    def _landing(context: dg.AssetExecutionContext, neuron: NeuronResource):
        settings = neuron.settings
        day = date.fromisoformat(day_of(context.partition_key))
        try:
            config = VendorConfig.load(settings.vendors_path) if settings.vendors_path.is_file() else None
        except VendorConfigError as exc:
            raise dg.Failure(str(exc)) from None
        selected = {k.path[1] for k in context.selected_asset_keys}

        def fetch(source: LandingSource) -> tuple[dict, list[str], list[dict]]:
            meta: dict = {}
            errors: list[str] = []
            recon: list[dict] = []
            if config is not None and "pull" in channels(source.name) and source.name in SOURCES:
                rate, page_size = config.limits(source.name)
                report = pull_day(source.name, day, settings.landing_dir, config,
                                  cursor_dir=settings.connectors_dir / "cursors", tz=settings.timezone,
                                  window_minutes=settings.pull_window_min,
                                  overlap_minutes=settings.pull_overlap_min, rate_per_s=rate,
                                  **({"page_size": page_size} if page_size else {}))
                meta.update({f"pull_{k}": v for k, v in report.totals().items()})
                meta["pull_elapsed_s"] = report.elapsed_s
                errors += report.errors
                scopes = sorted({w.scope for w in report.windows})
                recon = [as_dict(reconcile(settings.landing_dir, source.name, day.isoformat(), s)) for s in scopes]
            if config is not None and "files" in channels(source.name) and source.name in FILE_SOURCES:
                files = pull_files(source.name, day, settings.landing_dir, config)
                meta.update({"files_listed": files.listed, "files_written": files.written,
                             "files_unchanged": files.unchanged, "files_bytes": files.bytes})
                errors += files.errors
            return meta, errors, recon

        wanted = [s for s in sources if s.name in selected]
        # every source's platform at once (each has its own rate limit; the work is waiting on the network)
        with ThreadPoolExecutor(max_workers=max(1, len(wanted)), thread_name_prefix="landing-pull") as pool:
            fetched = dict(zip([s.name for s in wanted], pool.map(fetch, wanted), strict=True))
        for source in wanted:
            root = settings.landing_dir / source.name / day.isoformat()
            meta, errors, recon = fetched[source.name]
            n, size = _files_and_bytes(root)
            meta.update({"landing_files": n, "landing_bytes": size,
                         "mode": "pulled from the vendor platforms" if config else
                                 "files as delivered (no vendor config: nothing pulled)"})
            if errors:
                meta["errors"] = dg.MetadataValue.md("\n".join(f"- {e}" for e in errors[:50]))
                context.log.warning(f"landing/{source.name} {day}: {len(errors)} scope(s) could not be read")
            yield dg.MaterializeResult(asset_key=source.key, metadata=meta)
            if "pull" in channels(source.name) and dg.AssetCheckKey(source.key, RECONCILED_CHECK) in \
                    context.selected_asset_check_keys:
                unbalanced = [r for r in recon if not r["balanced"]]
                passed = not errors and not unbalanced
                table = "\n".join(f"| {r['scope']} | {r['pushed']} | {r['reconciled']} | {r['platform_total']} | "
                                  f"{r['pushed_not_in_history']} | {'yes' if r['balanced'] else '**no**'} |"
                                  for r in recon)
                yield dg.AssetCheckResult(
                    asset_key=source.key, check_name=RECONCILED_CHECK, passed=passed,
                    metadata={"scopes": len(recon), "unbalanced_scopes": len(unbalanced),
                              "pushed": sum(r["pushed"] for r in recon),
                              "reconciled": sum(r["reconciled"] for r in recon),
                              "platform_total": sum(r["platform_total"] for r in recon),
                              "read_errors": len(errors),
                              "by_scope": dg.MetadataValue.md(
                                  "| scope | pushed | reconciled | platform total | pushed, not in history | "
                                  "balanced |\n|---|---|---|---|---|---|\n" + table) if recon else
                              dg.MetadataValue.md("no vendor platform configured: nothing to reconcile against")})

    return _landing
