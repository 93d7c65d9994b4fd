"""The exports area: per contract, an export asset (gold partition -> contract check -> file-drop batch in the
outbox) and a publish asset (the batch pushed to the consumer's receiver, when it is served over HTTPS).

Publication is a step of its own, downstream of the export and its blocking privacy check, so a receiver that
is down fails only the publish steps: the warehouse (built from the exports) is still rebuilt, and the failed
pushes are visible and retried by ``publish_retry_schedule``. ``definitions(area, datasets, contracts)``
returns all of it; the root merges it with the domains.

A contract publishes on its cycle only (``cycle`` in the YAML): on a day that is not a publication day of a
monthly contract the export and publish steps write nothing and say so in their metadata (``published: false``
with the reason and the next publication day); they do not fail and no empty batch is sent.
"""

# No ``from __future__ import annotations``: Dagster inspects the context and resource annotations.
import time
from pathlib import Path

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from exports.contracts import Contract, batch_contracts
from exports.filedrop import batch_dir, current_batch, publish_filedrop
from exports.inputs import landing_fingerprints
from exports.outbox_store import open_outbox_store
from exports.publishers import http_publisher_for
from exports.publishing import Batch
from exports.publishing.versions import decide_for_batch, latest_receipt
from kernel.dataset import Dataset
from kernel.io import scan_sql
from kernel.lake_asset import Area
from kernel.partitions import day_of, partition_key
from kernel.resource import NeuronResource
from kernel.runs import claim_day
from kernel.settings import Settings
from quality.pii_checks import hit_metadata, scan_files


class ContractViolation(dg.Failure):
    pass


def contract_problems(con, relation_sql: str, contract: Contract) -> list[str]:
    """Column names, types and nullability of the relation against the contract."""
    described = con.execute(f"DESCRIBE SELECT * FROM ({relation_sql})").fetchall()
    got = [(r[0], r[1]) for r in described]
    want = [(c["name"], c["type"]) for c in contract.columns]
    problems = []
    if got != want:
        problems.append(f"columns/types {got} differ from contract {want}")
        return problems
    not_null = [c["name"] for c in contract.columns if not c["nullable"]]
    if not_null:
        counts = con.execute(
            "SELECT "
            + ", ".join(f'count(*) FILTER (WHERE "{c}" IS NULL)' for c in not_null)
            + f" FROM ({relation_sql})"
        ).fetchall()[0]
        problems += [
            f"{c}: {n} nulls in a non-nullable column" for c, n in zip(not_null, counts, strict=True) if n
        ]
    return problems


def small_cell_problems(con, relation_sql: str, contract: Contract) -> list[str]:
    """A people count between 1 and k-1 on a row that is not suppressed must never leave Neuron (suppression);
    under the cell key method every count is perturbed, and no positive count up to js may appear."""
    if not contract.counts_people:
        return []
    disclosure = contract.disclosure
    if disclosure.is_cell_key:
        if not disclosure.js:
            return []
        cols = contract.count_columns
        counts = con.execute("SELECT " + ", ".join(f'count(*) FILTER (WHERE "{c}" BETWEEN 1 AND {disclosure.js})'
                                                   for c in cols) + f" FROM ({relation_sql})").fetchall()[0]
        return [f"{c}: {n} cells between 1 and js={disclosure.js}" for c, n in zip(cols, counts, strict=True) if n]
    k = contract.k_threshold
    cols = contract.count_columns
    counts = con.execute(
        "SELECT " + ", ".join(f'count(*) FILTER (WHERE NOT suppressed AND "{c}" > 0 AND "{c}" < {k})' for c in cols)
        + f" FROM ({relation_sql})").fetchall()[0]
    return [f"{c}: {n} unsuppressed cells below k={k}" for c, n in zip(cols, counts, strict=True) if n]


class PrivacyGateFailure(dg.Failure):
    pass


def privacy_gate(landing: Path):
    """Scan the staged batch before it is swapped into the outbox: a hit publishes nothing."""

    def gate(staged: list[Path]) -> None:
        hits = scan_files([str(p) for p in staged], landing)
        if hits:
            raise PrivacyGateFailure(description="personal data found in a staged export batch; nothing published",
                                     metadata=hit_metadata(hits, len(staged)))

    return gate


RETRY_DAYS = 7  # how far back the retry schedule looks for batches a consumer has not acknowledged


def push_batch(contract: Contract, batch_path: Path, settings: Settings) -> dict[str, object]:
    """Push the outbox's current version to the consumer's receiver if it is configured and not yet there.

    Raises (failing the step) when the receiver rejects the batch or stays unreachable after retries; no
    receipt is written then, so the next run tries again.
    """
    publisher = http_publisher_for(contract.consumer, settings)
    if publisher is None:
        return {"publisher": "filedrop"}
    batch = Batch.from_dir(batch_path)
    if decide_for_batch(publisher.receipts_dir, batch) is None:
        latest = latest_receipt(publisher.receipts_dir, batch.dataset, batch.partition)
        return {"publisher": publisher.name, "pushed": False, "receipt_id": latest.receipt_id if latest else ""}
    receipt = publisher.publish(batch)
    # the consumer's version (its own chain, from its receipts) can differ from the outbox's
    return {"publisher": publisher.name, "pushed": True, "receipt_id": receipt.receipt_id,
            "receipt_status": receipt.status, "pushed_version": receipt.version, "outbox_version": batch.version}


def off_cycle(contract: Contract, day: str) -> dict[str, object] | None:
    """The metadata of a step that has nothing to do on ``day`` (not a publication day of ``contract``), else None."""
    if contract.is_publication_day(day):
        return None
    reason = (f"{contract.id} publishes {contract.cycle} on day {contract.publish_day} of the month (the batch "
              f"covers the closed previous month); {day} is not a publication day, so nothing is written")
    return {"published": False, "publication_day": False, "skipped": reason, "cycle": contract.cycle,
            "next_publication_day": contract.next_publication_day(day)}


def export_key(contract: Contract) -> dg.AssetKey:
    return dg.AssetKey(["export", contract.consumer, contract.dataset])


def publish_key(contract: Contract) -> dg.AssetKey:
    return dg.AssetKey(["publish", contract.consumer, contract.dataset])


def build_export_asset(contract: Contract, source: Dataset, area: Area) -> dg.AssetsDefinition:
    source_key = dg.AssetKey([source.layer, source.name])

    @dg.asset(
        key=export_key(contract),
        deps=[source_key],
        partitions_def=area.partitions,
        group_name=f"export_{contract.consumer}",
        kinds={"parquet", "csv"},
        description=f"{contract.raw['title_zh']} / {contract.raw['title_en']} (contract {contract.id} "
        f"v{contract.version})",
        metadata={
            "contract_id": contract.id,
            "contract_version": contract.version,
            "contract_path": str(contract.path.name),
            "cycle": contract.cycle if contract.cycle == "daily" else
            f"{contract.cycle}, on day {contract.publish_day} (covers the closed previous month)",
        },
        automation_condition=dg.AutomationCondition.eager()
        & dg.AutomationCondition.all_deps_blocking_checks_passed(),
    )
    def _export(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
        t0 = time.monotonic()
        day = day_of(context.partition_key)
        if (skipped := off_cycle(contract, day)) is not None:
            context.log.info(skipped["skipped"])
            return dg.MaterializeResult(metadata={**skipped, "elapsed_s": round(time.monotonic() - t0, 3)})
        settings = neuron.settings
        claim_day(context.instance, context.run_id, day, settings.leases_dir, settings.district)
        if not neuron.lake.files(source.layer, source.name, day):
            raise dg.Failure(description=f"{contract.id}: {source.key} has no partition for {day}; "
                                         "materialise it before publishing (an absent day is not an empty day)")
        con = neuron.duckdb()
        relation = f"SELECT DATE '{day}' AS stat_date, * FROM ({scan_sql(neuron.lake, source, day)})"
        problems = contract_problems(con, relation, contract)
        problems = problems or small_cell_problems(con, relation, contract)
        if problems:
            raise ContractViolation(
                description=f"{contract.id}: output does not match its contract",
                metadata={"problems": dg.MetadataValue.json(problems)},
            )
        if contract.cycle != "daily" and not con.execute(f"SELECT count(*) FROM ({relation})").fetchall()[0][0]:
            period = contract.covered_period(day)
            reason = (f"{contract.id}: {source.key} holds no rows for {period['start']}..{period['end']} on its "
                      f"publication day {day} (the closed period's final partition is missing): withheld, "
                      "nothing written; rebuild the period's last day, then this day")
            context.log.warning(reason)
            return dg.MaterializeResult(metadata={"published": False, "publication_day": True, "withheld": reason,
                                                  "elapsed_s": round(time.monotonic() - t0, 3)})
        inputs = {"landing": landing_fingerprints(settings.landing_dir, source.key, day)}
        pub = publish_filedrop(con, relation, contract, day, settings.outbox_dir, gate=privacy_gate(settings.landing_dir),
                               code_version_override=settings.code_version, inputs=inputs)
        stored = {}
        if (store := open_outbox_store(settings)) is not None:  # the committed version to object storage
            sync = store.sync(settings.outbox_dir, contract, day)
            stored = {"outbox_store": store.key(settings.outbox_dir, pub.path),
                      "store_versions_uploaded": sync.versions_uploaded}
        m = pub.manifest
        correction = m.get("correction") or {}
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": m["row_count"],
                "published": pub.published,
                "publication_day": True,
                "version": m["version"],
                "is_correction": m["is_correction"],
                **({"correction_reason": correction["reason_en"], "correction_reason_zh": correction["reason_zh"]}
                   if correction.get("reason_en") else {}),
                "content_sha256": m["content_sha256"],
                "period": f"{m['period']['start']}..{m['period']['end']}",
                "batch_path": dg.MetadataValue.path(str(pub.path)),
                **stored,
                "elapsed_s": round(time.monotonic() - t0, 3),
            }
        )

    return _export


def build_publish_asset(contract: Contract, area: Area) -> dg.AssetsDefinition:
    @dg.asset(
        key=publish_key(contract),
        deps=[export_key(contract)],
        partitions_def=area.partitions,
        group_name=f"publish_{contract.consumer}",
        kinds={"https"},
        description=f"{contract.id}: the outbox batch pushed to the {contract.consumer} receiver (signed HTTPS, "
                    "idempotent, with a stored receipt) when the consumer is served by https_push; a no-op for "
                    "the file drop alone. Retried by publish_retry_schedule when it fails.",
    )
    def _publish(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
        t0 = time.monotonic()
        day = day_of(context.partition_key)
        if (skipped := off_cycle(contract, day)) is not None:
            return dg.MaterializeResult(metadata={**skipped, "elapsed_s": round(time.monotonic() - t0, 3)})
        settings = neuron.settings
        claim_day(context.instance, context.run_id, day, settings.leases_dir, settings.district)
        store = open_outbox_store(settings)
        # on a host that shares no outbox folder with the export's, the batch comes from the store
        path = (store.fetch(settings.outbox_dir, contract, day) if store is not None
                else current_batch(batch_dir(settings.outbox_dir, contract, day)))
        if path is None:
            if http_publisher_for(contract.consumer, settings) is None:  # nothing to push; the export said why
                return dg.MaterializeResult(metadata={"publisher": "filedrop", "published": False,
                                                      "elapsed_s": round(time.monotonic() - t0, 3)})
            raise dg.Failure(description=f"{contract.id}: no outbox batch for {day}; materialise its export first "
                                         "(or see its metadata: a batch whose period is missing is withheld)")
        push = push_batch(contract, path, settings)
        if store is not None:
            push["store_receipts_uploaded"] = store.put_receipts(settings.outbox_dir, contract.consumer,
                                                                 contract.dataset, day)
        return dg.MaterializeResult(metadata={**push, "elapsed_s": round(time.monotonic() - t0, 3)})

    return _publish


def pending_days(contracts: list[Contract], settings: Settings, days: int = RETRY_DAYS) -> list[str]:
    """Days among the last ``days`` outbox days whose current batch (the version ``latest`` names) a push consumer
    has not acknowledged. With the outbox on the store, its days count too: a day this host's folder lacks is
    fetched first (its current version and receipts), so the schedule is right on any host."""
    pending = set()
    store = open_outbox_store(settings)
    for contract in contracts:
        publisher = http_publisher_for(contract.consumer, settings)
        if publisher is None:
            continue
        root = settings.outbox_dir / contract.consumer / contract.dataset
        names = {p.name for p in root.glob("????-??-??") if p.is_dir()}
        if store is not None:
            names |= set(store.days(settings.outbox_dir, contract))
        for name in sorted(names)[-days:]:
            partition = root / name
            if store is not None:
                store.fetch(settings.outbox_dir, contract, name)
            folder = current_batch(partition)  # the version `latest` names
            if folder is not None and decide_for_batch(publisher.receipts_dir, Batch.from_dir(folder)) is not None:
                pending.add(partition.name)
    return sorted(pending)


def publish_retry(job: UnresolvedAssetJobDefinition, contracts: list[Contract],
                  timezone: str) -> dg.ScheduleDefinition:
    @dg.schedule(name="publish_retry_schedule", job=job, cron_schedule="*/30 * * * *", execution_timezone=timezone,
                 default_status=dg.DefaultScheduleStatus.STOPPED,
                 description=f"Every 30 minutes: re-push the batches of the last {RETRY_DAYS} days that a consumer "
                             "served over HTTPS has not acknowledged (pushes are idempotent).")
    def _retry(context: dg.ScheduleEvaluationContext, neuron: NeuronResource):
        root = neuron.settings
        keys = [partition_key(s, day, s.district) for s in root.each_district() for day in pending_days(contracts, s)]
        if not keys:
            return dg.SkipReason("every batch is acknowledged")
        return [dg.RunRequest(partition_key=key, tags={"neuron/retry": "publish"}) for key in keys]

    return _retry


def export_files(contract: Contract):
    """Files of a published batch, for the post-publication privacy check."""

    def paths(neuron: NeuronResource, day: str | None) -> list[str]:
        if not day:
            return []
        folder = current_batch(batch_dir(neuron.settings.outbox_dir, contract, day))
        if folder is None:  # off cycle or withheld: nothing was published
            return []
        return sorted(str(p) for p in folder.iterdir() if p.is_file())

    return paths


def definitions(area: Area, datasets: dict[str, Dataset], contracts: list[Contract]) -> dg.Definitions:
    """Per contract an export asset (reading the gold dataset it publishes) and a publish asset; the publish
    job and its retry schedule. Continuous feeds have no daily batch: they get neither."""
    contracts = batch_contracts(contracts)
    publish = [build_publish_asset(c, area) for c in contracts]
    job = dg.define_asset_job("publish_job", selection=dg.AssetSelection.assets(*publish),
                              partitions_def=area.partitions,
                              description="Push the day's outbox batches to the consumers served over HTTPS.")
    return dg.Definitions(assets=[*(build_export_asset(c, datasets[c.source], area) for c in contracts), *publish],
                          jobs=[job], schedules=[publish_retry(job, contracts, area.timezone)])
