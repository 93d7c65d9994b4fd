"""The intake domain's dataset: audit/completeness (kernel/completeness.py says how gold tables use it)."""

from kernel.dataset import C, Dataset

COMPLETENESS = Dataset(
    "audit", "completeness", "one row per source, community and day",
    "Completeness per source, community and day: what the registries say should arrive (devices, doors, "
    "tollgates, car parks, communities) against what was received (landing files, records parsed, records "
    "accepted, local hours covered). Gold tables and exports carry the status so that no data never reads as "
    "zero; a gold table whose source is missing for every community is withheld (check inputs_complete).",
    (
        C("source", "VARCHAR", "Landing source (telemetry, access_events, vehicle_passages, parking, "
          "property_services)", False),
        C("community_id", "VARCHAR", "Community code", False),
        C("expected_units", "BIGINT", "What the registry says delivers: devices (telemetry), doors (access), "
          "tollgates (vehicle passages), car parks (parking), 1 per registered community (property services)",
          False),
        C("received_files", "BIGINT", "Landing files of the community for the day", False),
        C("received_records", "BIGINT", "Records parsed from those files (bronze and quarantine)", False),
        C("accepted_records", "BIGINT", "Records accepted into silver", False),
        C("reporting_units", "BIGINT", "Devices with at least one accepted reading (telemetry only)"),
        C("hours_covered", "INTEGER", "Local hours of the day with at least one accepted record", False),
        C("status", "VARCHAR", "complete | partial | missing | not_expected", False),
        C("reason", "VARCHAR", "Why the status is not complete, in words (counts only)"),
        C("computed_at", "TIMESTAMPTZ", "When the completeness was computed", False),
    ),
    domain="intake",
    keys=("source", "community_id"),
    order_by="source, community_id",
)

DATASETS = (COMPLETENESS,)
