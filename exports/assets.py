"""One export asset per contract: gold partition -> contract check -> file-drop batch in the outbox."""

import time
from pathlib import Path

import dagster as dg

from exports.contracts import Contract, load_contracts
from exports.filedrop import batch_dir, publish_filedrop
from exports.publishers import http_publisher_for
from exports.publishing import Batch
from exports.publishing.versions import decide_for_batch, latest_receipt
from pipelines.partitions import daily
from pipelines.resources import NeuronResource
from pipelines.settings import load_settings
from quality.pii_checks import hit_metadata, scan_files
from warehouse.io import scan_sql
from warehouse.schemas import DATASETS


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
    """A people count between 1 and k-1 on a row that is not suppressed must never leave Neuron."""
    if not contract.counts_people:
        return []
    k = contract.k_threshold
    cols = contract.count_columns
    counts = con.execute(
        "SELECT " + ", ".join(f'count(*) FILTER (WHERE NOT suppressed AND "{c}" > 0 AND "{c}" < {k})' for c in cols)
        + f" FROM ({relation_sql})").fetchall()[0]
    return [f"{c}: {n} unsuppressed cells below k={k}" for c, n in zip(cols, counts, strict=True) if n]


class PrivacyGateFailure(dg.Failure):
    pass


def _privacy_gate(staged: list[Path]) -> None:
    """Scan the staged batch before it is swapped into the outbox: a hit publishes nothing."""
    hits = scan_files([str(p) for p in staged])
    if hits:
        raise PrivacyGateFailure(description="personal data found in a staged export batch; nothing published",
                                 metadata=hit_metadata(hits, len(staged)))


def push_batch(contract: Contract, batch_path: Path, outbox: Path) -> dict[str, object]:
    """Push the outbox's current version to the consumer's receiver if it is configured and not yet there.

    Raises (failing the step) when the receiver rejects the batch or stays unreachable after retries; no
    receipt is written then, so the next run tries again.
    """
    publisher = http_publisher_for(contract.consumer, outbox)
    if publisher is None:
        return {"publisher": "filedrop"}
    batch = Batch.from_dir(batch_path)
    if decide_for_batch(publisher.receipts_dir, batch) is None:
        latest = latest_receipt(publisher.receipts_dir, batch.dataset, batch.partition)
        return {"publisher": publisher.name, "pushed": False, "receipt_id": latest.receipt_id if latest else ""}
    receipt = publisher.publish(batch)
    return {"publisher": publisher.name, "pushed": True, "receipt_id": receipt.receipt_id,
            "receipt_status": receipt.status}


def build_export_asset(contract: Contract) -> dg.AssetsDefinition:
    source = DATASETS[contract.source]
    source_key = dg.AssetKey([source.layer, source.name])

    @dg.asset(
        key=dg.AssetKey(["export", contract.consumer, contract.dataset]),
        deps=[source_key],
        partitions_def=daily,
        group_name=f"export_{contract.consumer}",
        kinds={"parquet", "csv"},
        description=f"{contract.raw['title_zh']} / {contract.raw['title_en']} (contract {contract.id} "
        f"v{contract.version})",
        metadata={
            "contract_id": contract.id,
            "contract_version": contract.version,
            "contract_path": str(contract.path.name),
        },
        automation_condition=dg.AutomationCondition.eager()
        & dg.AutomationCondition.all_deps_blocking_checks_passed(),
    )
    def _export(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
        t0 = time.monotonic()
        day = context.partition_key
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
        pub = publish_filedrop(con, relation, contract, day, neuron.settings.outbox_dir, gate=_privacy_gate)
        m = pub.manifest
        push = push_batch(contract, pub.path, neuron.settings.outbox_dir)
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": m["row_count"],
                "published": pub.published,
                "version": m["version"],
                "is_correction": m["is_correction"],
                "content_sha256": m["content_sha256"],
                "batch_path": dg.MetadataValue.path(str(pub.path)),
                **push,
                "elapsed_s": round(time.monotonic() - t0, 3),
            }
        )

    return _export


def export_files(contract: Contract):
    """Files of a published batch, for the post-publication privacy check."""

    def paths(partition_key: str | None) -> list[str]:
        if not partition_key:
            return []
        folder = batch_dir(load_settings().outbox_dir, contract, partition_key)
        return [str(folder / n) for n in ("data.parquet", "data.csv", "manifest.json") if (folder / n).exists()]

    return paths


CONTRACTS = load_contracts()
EXPORT_ASSETS = [build_export_asset(c) for c in CONTRACTS]
