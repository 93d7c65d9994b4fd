"""Datasets of the access-control domain (door registry, ISC door events, gate flows, security events), declared once."""

from __future__ import annotations

from kernel.dataset import (
    LINEAGE,
    PII_TOKEN,
    SUPPRESSION_COLUMNS,
    C,
    Dataset,
    accounting_dataset,
    ingest_dataset,
)
from kernel.expectations import Expect

DOOR_KINDS = ("gate", "unit_door")
CONVENTIONS = ("inout_10", "inout_12")
DIRECTIONS = ("in", "out", "unknown")
VERIFY_MODES = ("face", "card", "qr", "password", "fingerprint", "id_card", "remote", "multi")
EVENT_KINDS = ("pass", "denied", "door_forced")
RESULTS = ("granted", "denied")
USER_TYPES = ("resident", "visitor", "stranger", "blacklist", "staff", "unknown")
TIME_QUALITY = ("ok", "repaired", "receive_time", "clock_skew")
# ISC event statuses this integration knows (0 new; 1/2 and 4/5 the two update steps); bronze quarantines any
# other value (reason bad_status) so one odd vendor status never reaches the blocking silver suite
STATUSES = (0, 1, 2, 4, 5)
SECURITY_EVENT_TYPES = ("anti_passback", "fall", "fence_intrusion", "forced_door", "gas", "manhole_open",
                        "repeated_denied", "smoke", "sos")
SECURITY_SOURCES = ("access_control", "e_fence", "iot_alarm")
TOKEN_RE = r"^{t}_v[0-9]+_[a-z2-7]{{32}}$"

ACCESS_DOORS = Dataset(
    "bronze", "access_doors", "one row per door (community gate or building unit door), snapshot as of the day",
    "Door registry of the access-control platform: where each door is and which ExtEventInOut convention "
    "its integration uses.",
    (
        C("door_id", "VARCHAR", "Platform door index code (ISC srcIndex)", False),
        C("device_gb_code", "VARCHAR", "20-digit GB/T 28181 code of the door controller", False),
        C("community_id", "VARCHAR", "Community code", False),
        C("building_id", "VARCHAR", "Building of a unit door; null for a community gate"),
        C("gate_name", "VARCHAR", "Door name as configured on the platform", False),
        C("kind", "VARCHAR", "gate | unit_door", False),
        C("vendor_convention", "VARCHAR", "inout_10 (1 in, 0 out, -1 unknown) | inout_12 (1 in, 2 out)", False),
    ),
    domain="access", order_by="door_id",
    # informative only: events at a door with another convention are quarantined (unknown_convention) at bronze
    suite=(
        Expect.in_set("vendor_convention", list(CONVENTIONS), severity="WARN",
                      description="the parser reads only these ExtEventInOut conventions"),
        Expect.in_set("kind", list(DOOR_KINDS), severity="WARN"),
    ),
)

_EVENT_COLUMNS = (
    C("event_id", "VARCHAR", "ISC eventId (the dedupe key: re-sends and status updates keep it)", False),
    C("community_id", "VARCHAR", "Community code of the door", False),
    C("door_id", "VARCHAR", "Door index code (srcIndex). Kept beside the person token on purpose (issue 14): a "
      "door is a gate, a building or a unit entrance shared by its households, never a room, and the flow and "
      "security tables need the door; no published table carries it with a person", False),
    C("event_type", "INTEGER", "ISC eventType code", False),
    C("event_kind", "VARCHAR", "pass | denied | door_forced", False),
    C("event_ts", "TIMESTAMPTZ", "Event time (happenTime repaired, or the receive time when unusable)", False),
    C("received_ts", "TIMESTAMPTZ", "Platform receive time (ExtReceiveTime)"),
    C("time_quality", "VARCHAR", "ok | repaired (spaces removed) | receive_time (happenTime missing, unparseable "
      "or sentinel) | clock_skew (device clock off by more than the vendor's max_clock_skew: receive time used)",
      False),
    C("direction", "VARCHAR", "in | out | unknown, normalised through the door's convention", False),
    C("verify_mode", "VARCHAR", "face, card, qr, password, fingerprint, id_card, remote, multi (null for "
      "door_forced)"),
    C("result", "VARCHAR", "granted | denied (null for door_forced)"),
    C("user_type", "VARCHAR", "resident, visitor, stranger, blacklist, staff, unknown", False),
    C("person_token", "VARCHAR", "Keyed token of ExtEventPersonNo", pii=PII_TOKEN),
    C("card_token", "VARCHAR", "Keyed token of ExtEventCardNo", pii=PII_TOKEN),
    C("status", "INTEGER", "ISC event status (0 new; 1/2/4/5 updates)", False),
)

ACCESS_BRONZE = Dataset(
    "bronze", "access_events", "one row per event version (eventId, status) as delivered, deduplicated per file",
    "Typed ISC OnEventNotify door events; identifiers tokenised, names and every face artefact dropped.",
    (
        *_EVENT_COLUMNS,
        C("send_ts", "TIMESTAMPTZ", "Envelope sendTime (orders status updates)"),
        C("event_index", "INTEGER", "0-based position in the envelope's events[]", False),
        *LINEAGE,
    ),
    domain="access",
)

ACCESS_QUARANTINE = Dataset(
    "quarantine", "access_events", "one row per rejected record (an event, a line that yields none, or a whole "
    "file that cannot be read: source_line 0, reason unreadable_file)",
    "Every access record that was not accepted, with exactly one reason and no raw identifier.",
    (
        C("community_id", "VARCHAR", "Community of the feed"),
        C("event_id", "VARCHAR", "ISC eventId, if present"),
        C("door_id", "VARCHAR", "srcIndex, if present"),
        C("event_type", "INTEGER", "ISC eventType, if numeric"),
        C("reason", "VARCHAR", "Machine-readable reason", False),
        C("detail", "VARCHAR", "Human-readable detail (never a value)"),
        C("event_index", "INTEGER", "Position in the envelope's events[] (null for a line-level rejection)"),
        *LINEAGE,
    ),
    domain="access",
)

ACCESS_INGEST = ingest_dataset(
    "ingest_access_events", "access",
    "What the access bronze parser read: files, lines, landed records, in-file duplicates, face artefacts seen.",
    (
        C("face_keys", "BIGINT", "Face fields seen in landing lines (counted, never stored)", False),
        C("face_images", "BIGINT", "Base64 face images seen", False),
        C("face_urls", "BIGINT", "Face picture URLs seen", False),
        C("face_embeddings", "BIGINT", "Face feature vectors seen", False),
        C("names_dropped", "BIGINT", "personName values dropped", False),
        C("duplicates_cross_file", "BIGINT", "Rejected lines repeating, byte for byte, a rejected line of an earlier "
          "file of the community (a re-delivered file): counted once in quarantine, here the copies", False),
        C("files_quarantined", "BIGINT", "Files that could not be read (truncated or corrupt gzip, not UTF-8, "
          "zero bytes...), each one record quarantined as unreadable_file", False),
        C("routed_non_door", "BIGINT", "Events of other abilities or classes (field detection, people counting, "
          "video...) routed to bronze/access_other_events: landed and accepted there, never door events", False),
        C("vocabulary_gaps", "BIGINT", "Door-ability events whose eventType is not in event_types.csv "
          "(quarantined as unknown_event_type, counted per type in audit/access_vocabulary_gaps)", False),
    ),
)

ACCESS_OTHER = Dataset(
    "bronze", "access_other_events",
    "one row per community, ability, event class, eventType, source type, local hour and time quality",
    "Events of other abilities on the same ISC subscription (field detection, people counting, video, IO...), "
    "routed by class from event_types.csv and counted; no identifier, no image, no source code.",
    (
        C("community_id", "VARCHAR", "Community of the feed", False),
        C("vendor", "VARCHAR", "Vendor of the envelope (vendors.csv)", False),
        C("ability", "VARCHAR", "Envelope ability (event_rule, event_pdc, event_vss...; '' when absent)", False),
        C("event_class", "VARCHAR", "Class from event_types.csv (unmapped when neither the eventType nor the "
          "ability has a row)", False),
        C("event_type", "INTEGER", "Vendor eventType code (null when not numeric)"),
        C("src_type", "VARCHAR", "Vendor source type (camera, door, ...; '' when absent)", False),
        C("hour_start", "TIMESTAMP", "Local hour of the event time (null when the event carries no usable time)"),
        C("time_quality", "VARCHAR", "ok | repaired | receive_time | clock_skew | missing", False),
        C("events", "BIGINT", "Events (re-sends of an eventId and status already counted today dropped)", False),
    ),
    domain="access", order_by="community_id, ability, event_class, event_type, hour_start",
)

ACCESS_VOCABULARY_GAPS = Dataset(
    "audit", "access_vocabulary_gaps", "one row per community, vendor, ability and unmapped eventType",
    "Door-ability events whose eventType is not in assets/access/event_types.csv: the vocabulary gap an operator "
    "closes with a CSV row. Each of these events is also quarantined as unknown_event_type.",
    (
        C("community_id", "VARCHAR", "Community of the feed", False),
        C("vendor", "VARCHAR", "Vendor of the envelope", False),
        C("ability", "VARCHAR", "Envelope ability ('' when absent)", False),
        C("event_type", "INTEGER", "The unmapped eventType (null when not numeric)"),
        C("events", "BIGINT", "Events quarantined for it", False),
    ),
    domain="access", order_by="community_id, ability, event_type",
)

ACCESS_SILVER = Dataset(
    "silver", "access_events", "one row per eventId (the latest status wins)",
    "Door events deduplicated across files and status updates, joined to the door registry.",
    (
        *_EVENT_COLUMNS[:3],
        C("building_id", "VARCHAR", "Building of a unit door; null for a community gate"),
        C("door_kind", "VARCHAR", "gate | unit_door", False),
        C("gate_name", "VARCHAR", "Door name", False),
        *_EVENT_COLUMNS[3:],
        C("versions", "INTEGER", "Bronze rows behind the event (re-sends and status updates)", False),
    ),
    domain="access", order_by="community_id, event_ts, event_id",
    suite=(
        *(Expect.not_null(c) for c in ("event_id", "community_id", "door_id", "event_ts", "direction", "user_type")),
        Expect.unique("event_id", name="one_row_per_event_id"),
        Expect.in_set("event_kind", list(EVENT_KINDS)),
        Expect.in_set("direction", list(DIRECTIONS)),
        Expect.in_set("verify_mode", list(VERIFY_MODES)),
        Expect.in_set("result", list(RESULTS)),
        Expect.in_set("user_type", list(USER_TYPES)),
        Expect.in_set("time_quality", list(TIME_QUALITY)),
        Expect.in_set("door_kind", list(DOOR_KINDS)),
        Expect.in_set("status", list(STATUSES)),
        Expect.between("versions", 1, 20),
        Expect.regex("person_token", TOKEN_RE.format(t="person"),
                     description="person numbers are keyed tokens, never raw"),
        Expect.regex("card_token", TOKEN_RE.format(t="card"), description="card numbers are keyed tokens, never raw"),
        Expect.sql("pass_has_mode_and_result",
                   "SELECT * FROM {batch} WHERE event_kind <> 'door_forced' AND (verify_mode IS NULL OR result IS NULL)",
                   description="every pass or denial says how the person verified and whether it was granted"),
        Expect.sql("kind_matches_result",
                   "SELECT * FROM {batch} WHERE (event_kind = 'pass' AND result <> 'granted') "
                   "OR (event_kind = 'denied' AND result <> 'denied')",
                   description="a pass is granted and a denial is denied"),
        Expect.sql("one_local_day", "SELECT * FROM {batch} WHERE CAST(timezone('@tz@', event_ts) AS DATE) "
                   "<> (SELECT min(CAST(timezone('@tz@', event_ts) AS DATE)) FROM {batch})",
                   description="a partition holds events of one local day only (the partition time zone)"),
    ),
)

_FLOW_KEYS = ("community_id", "gate_id", "hour_start", "direction", "verify_mode")
_FLOW_COUNTS = ("passes", "visitors", "strangers", "denied")

GATE_FLOW_HOURLY = Dataset(
    "gold", "gate_flow_hourly", "one row per community gate, local hour, direction and verify mode",
    "Pedestrian flow through community gates per hour: passes, visitor passes, stranger events and denials; "
    "small cells suppressed.",
    (
        C("community_id", "VARCHAR", "Community code", False),
        C("gate_id", "VARCHAR", "Door index code of the community gate", False),
        C("hour_start", "TIMESTAMP", "Start of the hour, Asia/Shanghai local time", False),
        C("direction", "VARCHAR", "in | out | unknown", False),
        C("verify_mode", "VARCHAR", "face, card, qr, password, fingerprint, id_card, remote, multi", False),
        C("passes", "BIGINT", "Granted passes (null when suppressed)"),
        C("visitors", "BIGINT", "Granted passes by visitors (null when suppressed)"),
        C("strangers", "BIGINT", "Events of unrecognised people (null when suppressed)"),
        C("denied", "BIGINT", "Denied attempts (null when suppressed)"),
        *SUPPRESSION_COLUMNS,
    ),
    domain="access", keys=_FLOW_KEYS, counts=_FLOW_COUNTS, subsets=(("visitors", "passes"),),
    order_by=", ".join(_FLOW_KEYS),
    suite=(
        *(Expect.not_null(c) for c in ("community_id", "gate_id", "hour_start", "direction", "verify_mode")),
        Expect.unique("community_id", "gate_id", "hour_start", "direction", "verify_mode", name="one_row_per_cell"),
        Expect.in_set("direction", list(DIRECTIONS)),
        Expect.in_set("verify_mode", list(VERIFY_MODES)),
        *(Expect.between(c, 0, None) for c in _FLOW_COUNTS),
        Expect.sql("visitors_within_passes", "SELECT * FROM {batch} WHERE visitors > passes",
                   description="visitor passes are a subset of passes"),
        Expect.sql("suppressed_rows_are_null",
                   "SELECT * FROM {batch} WHERE suppressed AND (passes IS NOT NULL OR denied IS NOT NULL)",
                   description="a suppressed cell is withheld (null), never published as 0"),
        Expect.sql("complete_grid",
                   "SELECT community_id, gate_id FROM {batch} GROUP BY ALL HAVING count(*) <> 24 * 3 * 8",
                   description="every gate has every hour x direction x verify-mode cell, zeros included"),
    ),
    sources={"access_events": _FLOW_COUNTS},
)

SECURITY_EVENTS = Dataset(
    "gold", "security_events", "one row per event type, community, building and minute",
    "Security events for public security: fence intrusion, forced door, repeated denied access, anti-passback "
    "(one credential granted twice on the same door within 2 s: a double swipe or a credential handed back, an "
    "anti-passback signal; door events cannot see tailgating, a second person following without a credential), and "
    "the episodes of the IoT alarms (smoke, gas, SOS, fall, open manhole cover); location generalised to the "
    "building, time to the minute, no person data. Forced doors, fence intrusions and the IoT alarms are also the "
    "day's incidents, published within a minute (incidents/feed); the two agree exactly (check matches_incidents).",
    (
        C("event_type", "VARCHAR", "anti_passback (same credential granted twice on one door within 2 s) | "
          "fence_intrusion | forced_door | repeated_denied | smoke | gas | sos | fall | manhole_open", False),
        C("community_id", "VARCHAR", "Community code", False),
        C("building_id", "VARCHAR", "Building (null: community perimeter or gate)"),
        C("event_minute", "TIMESTAMP", "Minute of the event, Asia/Shanghai local time", False),
        C("source", "VARCHAR", "access_control | e_fence | iot_alarm", False),
        C("events", "BIGINT", "Events of this type at this place and minute", False),
    ),
    domain="access", order_by="community_id, event_minute, event_type, building_id",
    suite=(
        *(Expect.not_null(c) for c in ("event_type", "community_id", "event_minute", "source", "events")),
        Expect.in_set("event_type", list(SECURITY_EVENT_TYPES)),
        Expect.in_set("source", list(SECURITY_SOURCES)),
        Expect.between("events", 1, None),
        Expect.sql("one_row_per_type_place_minute",
                   "SELECT event_type, community_id, building_id, event_minute FROM {batch} GROUP BY ALL "
                   "HAVING count(*) > 1", description="one row per event type, community, building and minute"),
        Expect.sql("minute_truncated", "SELECT * FROM {batch} WHERE event_minute <> date_trunc('minute', event_minute)",
                   description="times are generalised to the minute"),
        Expect.sql("source_matches_type",
                   "SELECT * FROM {batch} WHERE (event_type = 'fence_intrusion') <> (source = 'e_fence') "
                   "OR (event_type IN ('smoke', 'gas', 'sos', 'fall', 'manhole_open')) <> (source = 'iot_alarm')",
                   description="fence intrusions come from the e-fence alarms, smoke, gas, SOS, fall and open "
                   "manhole covers from the IoT alarms, the rest from access control"),
    ),
    sources={"access_events": (), "telemetry": ()},
)

_DAILY_COUNTS = ("passes", "residents", "visitors", "strangers", "denied", "persons")

ACCESS_DAILY = Dataset(
    "gold", "access_daily", "one row per community per day",
    "Door traffic per community-day for 智联普陀: passes by resident and visitor, stranger events, denials and "
    "distinct people; small cells suppressed.",
    (
        C("community_id", "VARCHAR", "Community code", False),
        C("passes", "BIGINT", "Granted passes through any door"),
        C("residents", "BIGINT", "Granted passes by residents"),
        C("visitors", "BIGINT", "Granted passes by visitors"),
        C("strangers", "BIGINT", "Events of unrecognised people"),
        C("denied", "BIGINT", "Denied attempts"),
        C("persons", "BIGINT", "Distinct people (person tokens) with at least one granted pass"),
        *SUPPRESSION_COLUMNS,
    ),
    domain="access", keys=("community_id",), counts=_DAILY_COUNTS, order_by="community_id",
    subsets=(("residents", "passes"), ("visitors", "passes"), ("persons", "passes")),
    suite=(
        Expect.not_null("community_id"),
        Expect.unique("community_id", name="one_row_per_community"),
        *(Expect.between(c, 0, None) for c in _DAILY_COUNTS),
        Expect.sql("parts_within_passes", "SELECT * FROM {batch} WHERE residents > passes OR visitors > passes "
                   "OR persons > passes", description="resident passes, visitor passes and people never exceed passes "
                   "(each perturbed on its own under the cell key method, so residents + visitors may)"),
        Expect.row_count_between(1, None, description="a day without community rows is a broken door registry"),
    ),
    sources={"access_events": _DAILY_COUNTS},
)

ROW_ACCOUNTING = accounting_dataset("access_events")

DATASETS: tuple[Dataset, ...] = (
    ACCESS_DOORS, ACCESS_BRONZE, ACCESS_QUARANTINE, ACCESS_INGEST, ACCESS_OTHER, ACCESS_VOCABULARY_GAPS,
    ACCESS_SILVER, GATE_FLOW_HOURLY,
    SECURITY_EVENTS, ACCESS_DAILY, ROW_ACCOUNTING,
)
