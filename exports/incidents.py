"""Incidents to 智能公安 within a minute: the feed asset, its publisher, its sensor, and the daily reconciliation.

The engine (``assets.incidents.engine``) turns what lands into incident versions; this module sends them:

* ``publish_pending`` scans the pending versions (the blocking PII scan, canaries included) and pushes them one
  by one, in the order they were detected, by the signed push with the idempotency key ``<incident>:<version>``
  (``exports.publishing.incident_push``). The first failure stops the batch: later versions wait so the district
  receives every incident's versions in order; a retried version already held is answered with its first
  receipt, never stored twice.
* ``incidents/feed`` is an **unpartitioned** asset whose materialisations are the micro-batches sent (an append;
  why not hourly partitions: docs/incidents.md). ``incident_sensor`` runs the engine every few seconds inside
  the sensor (cheap: only new bytes are parsed) and requests a run only when versions are waiting, so the run
  history holds one run per batch of state changes, not one per tick; while the receiver is down it backs off.
* ``matches_incidents``: a blocking check on ``gold/security_events``: after the engine has read every landing
  file of the day, the day's incident rows equal the union of the day's incidents.
* ``incidents_read``: a check on the day's landing that has the engine read the day right after landing, beside
  the bronze parses, so ``matches_incidents`` at the end of the run only compares (docs/incidents.md).
"""

# No ``from __future__ import annotations``: Dagster inspects the context and resource annotations.
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import dagster as dg
import duckdb
import polars as pl
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from assets.incidents.engine import INCIDENT_TYPES, RECORD_COLUMNS, SECURITY_EVENTS, IncidentEngine
from assets.incidents.engine import SOURCES as ENGINE_SOURCES
from exports.publishing.http_push import PublishFailed, PublishRejected
from exports.publishing.incident_push import push_incident_version
from kernel.io import scan_sql
from kernel.lake import Lake
from kernel.metadata import md_table
from kernel.resource import DISTRICT_TAG, NeuronResource
from kernel.settings import Settings
from quality.gx_checks import partition_keys_of
from quality.pii_scan import load_canaries, scan_duckdb_relation

CONSUMER = "public_security"
FEED_KEY = dg.AssetKey(["incidents", "feed"])
JOB = "incident_job"
SENSOR = "incident_sensor"
CHECK = "matches_incidents"
READ_AHEAD_CHECK = "incidents_read"
MAX_BATCH = 500  # versions per run
RETRY_MIN_S, RETRY_MAX_S = 10.0, 300.0


class IncidentPrivacyError(RuntimeError):
    """The PII scan found something in a micro-batch: nothing of it leaves."""


@dataclass
class Published:
    sent: int = 0
    replayed: int = 0
    pending: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)  # detected -> receipt
    error: str | None = None


def pii_hits(records: list[dict], settings: Settings) -> list[str]:
    """The blocking PII scan over one micro-batch (every column, canaries planted in landing included)."""
    if not records:
        return []
    frame = pl.DataFrame([{c: r.get(c) for c in RECORD_COLUMNS} for r in records],
                         schema={c: pl.String for c in RECORD_COLUMNS}, strict=False)
    con = duckdb.connect()
    con.register("batch", frame)
    hits = scan_duckdb_relation(con, "batch", load_canaries(settings.landing_dir), location="incidents/feed")
    return [f"{h.kind} in {h.location}" for h in hits]


def publish_pending(engine: IncidentEngine, settings: Settings, *, limit: int = MAX_BATCH) -> Published:
    """Push the pending versions in detection order; stop at the first failure (ordering is kept)."""
    endpoint = settings.endpoint(CONSUMER)
    if endpoint.missing():
        raise dg.Failure(f"no receiver configured for {CONSUMER}: set {', '.join(endpoint.missing())}")
    pending = engine.pending(limit)
    out = Published()
    hits = pii_hits([r for _, r in pending], settings)
    if hits:
        raise IncidentPrivacyError(f"PII scan blocked the incident batch: {'; '.join(sorted(set(hits)))}")
    for seq, record in pending:
        try:
            receipt = push_incident_version(endpoint.url, record, access_key=endpoint.access_key,
                                            secret_key=endpoint.secret_key, timeout=settings.publish_timeout_s,
                                            attempts=settings.publish_max_retries + 1,
                                            backoff_s=settings.publish_backoff_s)
        except (PublishFailed, PublishRejected) as exc:
            out.error = f"{type(exc).__name__}: {str(exc)[:300]}"
            break
        engine.mark_published(seq, receipt)
        out.sent += 1
        out.by_status[record["status"]] = out.by_status.get(record["status"], 0) + 1
        received = receipt.get("received_at")
        if received:
            detected = datetime.fromisoformat(record["detected_at"])
            out.latencies_s.append((datetime.fromisoformat(received.replace("Z", "+00:00")) - detected
                                    ).total_seconds())
    out.pending = len(engine.pending(limit))
    return out


@dg.asset(key=FEED_KEY, group_name="incidents", kinds={"python", "duckdb"},
          description="Incidents for 智能公安 (fire/smoke, gas, SOS, fall, fence intrusion, open manhole, forced door): "
                      "each state change pushed within a minute of arrival, building and minute only, no person "
                      "data (contract public_security.incidents). Unpartitioned: each materialisation is one "
                      "micro-batch of versions sent, in order.",
          owners=["team:neuron-data"])
def incidents_feed(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
    settings = neuron.settings
    engine = IncidentEngine(settings)
    detected = engine.advance()  # the sensor ran it a moment ago: usually nothing new
    out = publish_pending(engine, settings)
    lat = sorted(out.latencies_s)
    metadata: dict[str, object] = {
        "sent": out.sent, "still_pending": out.pending, **{f"sent/{k}": v for k, v in sorted(out.by_status.items())},
        "detected_in_run": detected.new_versions,
        "latency_p50_s": round(lat[len(lat) // 2], 3) if lat else 0.0,
        "latency_max_s": round(lat[-1], 3) if lat else 0.0,
    }
    if out.error:
        context.log.warning(f"incident push stopped, {out.pending} version(s) wait for the receiver: {out.error}")
        if not out.sent:
            raise dg.Failure(f"the incident receiver took nothing: {out.error}", metadata=metadata)
    return dg.MaterializeResult(metadata=metadata)


def incident_job() -> UnresolvedAssetJobDefinition:
    return dg.define_asset_job(JOB, selection=dg.AssetSelection.assets(FEED_KEY),
                               executor_def=dg.in_process_executor,
                               description="Publish the waiting incident versions (started by incident_sensor).",
                               tags={"neuron/kind": "incidents"})


def incident_sensor(job: UnresolvedAssetJobDefinition) -> dg.SensorDefinition:
    @dg.sensor(name=SENSOR, job=job, minimum_interval_seconds=5, default_status=dg.DefaultSensorStatus.RUNNING,
               description="Every few seconds: reads what landed (the incident engine), and starts incident_job when "
                           "incident versions wait to be published; backs off while the receiver fails.")
    def _sensor(context: dg.SensorEvaluationContext, neuron: NeuronResource) -> dg.SensorResult | dg.SkipReason:
        root = neuron.settings
        if all(s.endpoint(CONSUMER).missing() for s in root.each_district()):
            return dg.SkipReason(f"no receiver configured for {CONSUMER}")
        # the cursor: the queue's head at the last request, the tries and when; with districts, one per district
        cursors = json.loads(context.cursor) if context.cursor else {}
        cursors = cursors if root.districts else {"": cursors}
        requests, skipped = [], []
        for settings in root.each_district():
            district = settings.district
            request, skip, cursors[district] = _district_request(context, settings, cursors.get(district, {}))
            if request is not None:
                requests.append(request)
            else:
                skipped.append(f"{district}: {skip}" if district else skip)
        kept = {k: v for k, v in cursors.items() if v and k in (root.districts or ("",))}
        # one district: the cursor is that district's, as before districts existed
        cursor = json.dumps(kept if root.districts else kept.get("", {}), sort_keys=True)
        if not requests:
            return dg.SensorResult(skip_reason=dg.SkipReason("; ".join(skipped)), cursor=cursor)
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return _sensor


def _district_request(context: dg.SensorEvaluationContext, settings: Settings,
                      cursor: dict) -> tuple[dg.RunRequest | None, str, dict]:
    """One district's incident run to start, or why not, and its cursor. A district's run carries
    ``neuron/district`` (``NeuronResource`` resolves the run's settings to it)."""
    if missing := settings.endpoint(CONSUMER).missing():
        return None, f"no receiver configured ({', '.join(missing)})", cursor
    engine = IncidentEngine(settings)
    adv = engine.advance()
    pending = engine.pending(MAX_BATCH)
    if not pending:
        return None, f"no incident waiting ({adv.lines} new lines read)", {}
    district = settings.district
    tags = {DISTRICT_TAG: district} if district else {}
    active = context.instance.get_run_records(dg.RunsFilter(job_name=JOB, tags=tags, statuses=[
        dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED]), limit=1)
    if active:
        return None, "an incident run is in progress", cursor
    head = pending[0][0]
    now = time.time()
    if cursor.get("head") == head:  # the last run did not move the queue: the receiver is failing
        wait = min(RETRY_MAX_S, RETRY_MIN_S * 2 ** int(cursor.get("tries", 0)))
        if now - float(cursor.get("at", 0)) < wait:
            return None, f"receiver failing; retry in {wait:.0f} s", cursor
        tries = int(cursor.get("tries", 0)) + 1
    else:
        tries = 0
    key = f"incidents-{district}-{head}" if district else f"incidents-{head}"
    return (dg.RunRequest(run_key=f"{key}-{len(pending)}-{tries}",
                          tags={"neuron/incident_versions": str(len(pending)), **tags}),
            "", {"head": head, "tries": tries, "at": now})


@dataclass
class DayComparison:
    incidents: int = 0
    late: int = 0
    missing: list[tuple] = field(default_factory=list)  # place-minutes with more daily events than incidents
    extra: list[tuple] = field(default_factory=list)  # with more incidents than daily events

    @property
    def equal(self) -> bool:
        return not self.missing and not self.extra


def compare_day(engine: IncidentEngine, lake: Lake, day: str) -> DayComparison:
    """The day's ``gold/security_events`` rows of the incident types against the day's incidents (latest version
    of each, withdrawn ones out), per event type, community, building and minute."""
    incidents = engine.day_incidents(day)
    out = DayComparison(incidents=incidents.height, late=int(incidents["late"].sum() or 0))
    types = ", ".join(f"'{t}'" for t in INCIDENT_TYPES)
    con = duckdb.connect()
    con.register("inc", incidents)
    daily = f"(SELECT * FROM ({scan_sql(lake, SECURITY_EVENTS, day)}) WHERE event_type IN ({types}))" \
        if lake.files(SECURITY_EVENTS.layer, SECURITY_EVENTS.name, day) else \
        "(SELECT NULL::VARCHAR AS event_type, NULL::VARCHAR AS community_id, NULL::VARCHAR AS building_id, " \
        "NULL::TIMESTAMP AS event_minute, 0::BIGINT AS events WHERE false)"
    # building NULL (a gate or the perimeter) is a place too: compare on a non-null key
    diff = con.execute(f"""
        WITH d AS (SELECT event_type, community_id, coalesce(building_id, '') AS b, event_minute,
                       sum(events) AS n FROM {daily} GROUP BY ALL),
             i AS (SELECT event_type, community_id, coalesce(building_id, '') AS b, event_minute,
                       count(*) AS n FROM inc GROUP BY ALL)
        SELECT event_type, community_id, nullif(b, ''), strftime(event_minute, '%H:%M'),
            coalesce(d.n, 0) AS daily, coalesce(i.n, 0) AS incidents
        FROM d FULL JOIN i USING (event_type, community_id, b, event_minute)
        WHERE coalesce(d.n, 0) <> coalesce(i.n, 0) ORDER BY ALL""").fetchall()
    for row in diff:
        (out.missing if row[4] > row[5] else out.extra).append((day, *row))
    return out


def matches_incidents_check(partitions: dg.PartitionsDefinition) -> dg.AssetChecksDefinition:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=dg.PreviewWarning)
        spec = dg.AssetCheckSpec(
            CHECK, asset=dg.AssetKey(["gold", "security_events"]), blocking=True, partitions_def=partitions,
            description="the day's forced doors, fence intrusions and IoT alarm episodes equal the union of the "
                        "day's incidents (incidents/feed), place and minute by place and minute; the incident "
                        "engine first reads every landing file of the day")

    @dg.multi_asset_check(specs=[spec], name="gold_security_events_matches_incidents",
                          description="Daily batch and near-real-time incidents agree (assets/incidents)")
    def _check(context: dg.AssetCheckExecutionContext, neuron: NeuronResource) -> Iterator[dg.AssetCheckResult]:
        settings = neuron.settings
        engine = IncidentEngine(settings)
        engine.catch_up()
        missing: list[tuple] = []
        extra: list[tuple] = []
        late = total = 0
        for day in (k for k in partition_keys_of(context) if k):
            cmp = compare_day(engine, neuron.lake, day)
            missing += cmp.missing
            extra += cmp.extra
            total += cmp.incidents
            late += cmp.late
        ok = not missing and not extra
        yield dg.AssetCheckResult(
            asset_key=dg.AssetKey(["gold", "security_events"]), check_name=CHECK, passed=ok,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(f"{total} incidents, {late} late: the daily batch equals them" if ok else
                         f"{len(missing)} place-minutes have more events than incidents, {len(extra)} fewer"),
            metadata={"incidents": total, "late_incidents": late, "place_minutes_differing": len(missing) + len(extra),
                      "differences": md_table((missing + extra)[:50], ("day", "event_type", "community",
                                                                       "building", "minute", "daily",
                                                                       "incidents"))})

    return _check


def read_ahead_check(partitions: dg.PartitionsDefinition) -> dg.AssetChecksDefinition:
    """The incident engine reads the day right after landing, beside the bronze parses.

    Where the incident sensor runs all day this finds nothing new; where it did not (a first deployment, the sensor
    stopped, a day landed by hand) the engine's read of the whole day overlaps the parses instead of running alone
    after ``gold/security_events`` in ``matches_incidents`` (at 600 communities: 446 s). The engine's lock makes
    the two (and the sensor) take turns, so their order does not matter for the result."""
    # the check sits on the last of the engine's landing sources and depends on the others
    *others, primary = (dg.AssetKey(["landing", s]) for s in ENGINE_SOURCES)
    spec = dg.AssetCheckSpec(
        READ_AHEAD_CHECK, asset=primary, additional_deps=others,
        blocking=False, partitions_def=partitions,
        description="the incident engine has read every closed landing file of the day (telemetry and access "
                    "events): matches_incidents then only compares")

    @dg.multi_asset_check(specs=[spec], name="landing_incidents_read",
                          description="The incident engine catches up with the day's landing (exports/incidents)")
    def _check(context: dg.AssetCheckExecutionContext, neuron: NeuronResource) -> Iterator[dg.AssetCheckResult]:
        engine = IncidentEngine(neuron.settings)
        started = time.monotonic()
        read = engine.catch_up()
        files, lines = sum(a.files for a in read), sum(a.lines for a in read)
        unread = {day: engine.unread(day) for day in partition_keys_of(context) if day}
        left = sum(f for f, _ in unread.values())
        yield dg.AssetCheckResult(
            asset_key=primary, check_name=READ_AHEAD_CHECK, passed=left == 0,
            severity=dg.AssetCheckSeverity.WARN,
            description=(f"read {files} file(s), {lines} line(s) in {len(read)} advance(s)" if not left else
                         f"{left} closed landing file(s) of the day not read to their end"),
            metadata={"advances": len(read), "files_read": files, "lines_read": lines,
                      "bytes_read": sum(a.bytes for a in read), "new_versions": sum(a.new_versions for a in read),
                      "seconds": round(time.monotonic() - started, 2), "files_unread": left,
                      "bytes_unread": sum(b for _, b in unread.values())})

    return _check


def definitions(partitions: dg.PartitionsDefinition) -> dg.Definitions:
    job = incident_job()
    return dg.Definitions(assets=[incidents_feed], jobs=[job], sensors=[incident_sensor(job)],
                          asset_checks=[matches_incidents_check(partitions), read_ahead_check(partitions)])


__all__ = ["CHECK", "READ_AHEAD_CHECK", "FEED_KEY", "JOB", "SENSOR", "DayComparison", "Published", "compare_day", "definitions", "pii_hits", "publish_pending"]
