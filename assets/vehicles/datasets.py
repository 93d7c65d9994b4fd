"""Datasets of the vehicles domain (gate passages, parking sessions and payments), declared once.

Plates never appear here: only keyed plate tokens and non-identifying attributes (province group, colour,
new-energy, validity, resident or visitor).
"""

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

DIRECTIONS = ("in", "out")
PLATE_GROUPS = ("local", "out_of_town", "unknown", "no_plate")
PLATE_TYPES = ("new_energy", "fuel", "other")
RESIDENCY = ("resident", "visitor")
SESSION_STATUSES = ("open", "closed", "exit_only", "auto_closed")
PLATE_COLOURS = ("blue", "yellow", "green", "white", "black", "yellow_green", "grey", "red", "orange", "brown",
                 "purple", "cyan", "pink", "transparent", "other", "unknown")
TOKEN_RE = r"^plate_v[0-9]+_[a-z2-7]{32}$"

_PLATE_ATTRS = (
    C("plate_token", "VARCHAR", "Keyed token of the normalised plate (null for no plate)", pii=PII_TOKEN),
    C("plate_group", "VARCHAR", "local (沪) | out_of_town (another province) | unknown (a plate without a "
      "province: army, embassy, unreadable serial) | no_plate", False),
    C("plate_type", "VARCHAR", "new_energy | fuel | other", False),
    C("plate_colour", "VARCHAR", "Canonical plate colour", False),
    C("plate_valid", "BOOLEAN", "Plate passes the strict GA 36 grammar after OCR repair", False),
)

TOLLGATES = Dataset(
    "bronze", "tollgates", "one row per vehicle gate (tollgate), snapshot as of the partition day",
    "Vehicle gates of every community: GA/T 1400 TollgateID and camera DeviceID, car park served.",
    (
        C("community_id", "VARCHAR", "Community code", False),
        C("gate_id", "VARCHAR", "Gate id within the community", False),
        C("gate_name", "VARCHAR", "Gate name"),
        C("tollgate_id", "VARCHAR", "GA/T 1400 TollgateID (20 digits, GB/T 28181)", False),
        C("device_id", "VARCHAR", "Plate camera DeviceID (20 digits)", False),
        C("lanes", "INTEGER", "Lanes"),
        C("park_id", "VARCHAR", "Car park the gate serves (parking-cloud park_uuid)", False),
        C("tollgate_alias", "VARCHAR", "Short TollgateID a deployment sends instead of the 20 digits (resolved "
          "within the community)"),
        C("in_out", "VARCHAR", "in (entry-only gate) | out (exit-only gate) | both (lanes decide)"),
        C("lane_in_out", "VARCHAR", "Per lane whether it is an entry or an exit, e.g. '1:in;2:out' (GA/T 1400 "
          "Direction is the lane's travel direction and never says in or out)"),
    ),
    domain="vehicles", order_by="gate_id",
)

CAR_PARKS = Dataset(
    "bronze", "car_parks", "one row per car park, snapshot as of the partition day",
    "Car parks of every community with capacity and gates.",
    (
        C("park_id", "VARCHAR", "Parking-cloud park_uuid", False),
        C("community_id", "VARCHAR", "Community code", False),
        C("park_name", "VARCHAR", "Car park name"),
        C("capacity", "INTEGER", "Parking spaces", False),
        C("gates", "VARCHAR", "Comma-separated gate ids"),
        C("vendor", "VARCHAR", "Parking cloud that pushes this car park's sessions (parking_vendors.csv)"),
        C("vendor_park_id", "VARCHAR", "The car park's id in that cloud when it is not the park_uuid (e.g. '001')"),
    ),
    domain="vehicles", order_by="park_id",
)

REGISTERED_VEHICLES = Dataset(
    "bronze", "registered_vehicles", "one row per registered vehicle per community (latest list on or before the day)",
    "The property's resident-vehicle register, tokenised: decides resident vs visitor.",
    (
        C("community_id", "VARCHAR", "Community code", False),
        *_PLATE_ATTRS,
        C("car_type", "INTEGER", "Parking-cloud car_type (2 monthly, 4 stored value, ...)"),
        *LINEAGE,
    ),
    domain="vehicles", order_by="community_id, plate_token",
)

PASSAGES_BRONZE = Dataset(
    "bronze", "vehicle_passages", "one row per GA/T 1400 MotorVehicle object, deduplicated per day on passage_key",
    "Typed plate-camera passages; plates tokenised, images and image URLs dropped (counted only).",
    (
        C("community_id", "VARCHAR", "Community of the feed folder", False),
        C("passage_key", "VARCHAR", "The 48-digit MotorVehicleID, else k + md5(gate, lane, pass second, plate "
          "token) (or the 48-digit ID of the passage with that composite): the identity a re-send keeps", False),
        C("motor_vehicle_id", "VARCHAR", "MotorVehicleID as sent when it is a digit string (48 in the standard, "
          "10 in practice); null when empty"),
        C("tollgate_id", "VARCHAR", "Registered TollgateID of the gate (resolved from TollgateID, its alias or "
          "the DeviceID)", False),
        C("gate_match", "VARCHAR", "How the gate was found: tollgate_id | alias | device_id", False),
        C("device_id", "VARCHAR", "DeviceID (or the DeviceId variant), if 20 digits"),
        C("lane_no", "INTEGER", "Lane number"),
        C("info_kind", "INTEGER", "InfoKind (1 automatic), whether sent as number or string"),
        C("has_plate", "BOOLEAN", "HasPlate (true/false or 1/0)"),
        C("is_decked", "BOOLEAN", "IsDecked (false or \"0\" both read as false)"),
        *_PLATE_ATTRS,
        C("plate_reliability", "DOUBLE", "PlateReliability (0-100)"),
        C("vehicle_class", "VARCHAR", "VehicleClass code"),
        C("vehicle_color", "VARCHAR", "VehicleColor code"),
        C("direction", "VARCHAR", "in | out: an explicit InOut/ParkingInOutType, else the registered lane or gate",
          False),
        C("direction_source", "VARCHAR", "explicit | lane | gate", False),
        C("travel_direction", "VARCHAR", "GA/T 1400 Direction: the lane's travel direction code (1-9), not in/out"),
        C("pass_ts", "TIMESTAMPTZ", "PassTime to the second (YYYYMMDDhhmmss local, epoch s/ms or ISO)", False),
        C("pass_time_form", "VARCHAR", "Form PassTime arrived in (compact_local, epoch_ms, ...)", False),
        C("images_dropped", "INTEGER", "SubImage objects and storage URLs dropped from the record", False),
        *LINEAGE,
    ),
    domain="vehicles",
)

PASSAGES_QUARANTINE = Dataset(
    "quarantine", "vehicle_passages", "one row per rejected MotorVehicle object (a document that yields none, or "
    "a file that cannot be read, is one row with source_line 0)",
    "Passages not accepted, with one reason each (never a plate).",
    (
        C("community_id", "VARCHAR", "Community of the feed folder"),
        C("motor_vehicle_id", "VARCHAR", "MotorVehicleID, if a digit string (6-48 digits)"),
        C("tollgate_id", "VARCHAR", "TollgateID as sent, if a digit string"),
        C("reason", "VARCHAR", "unreadable_file | bad_json | unknown_envelope (no vehicle list under a known "
          "wrapper, or not an object) | bad_pass_time | pass_time_outside_day | unknown_tollgate | "
          "unknown_direction", False),
        C("detail", "VARCHAR", "Human-readable detail"),
        *LINEAGE,
    ),
    domain="vehicles",
)

PASSAGES_SILVER = Dataset(
    "silver", "vehicle_passages", "one row per distinct passage (passage_key)",
    "Passages joined to gate and community, direction normalised, resident or visitor by token.",
    (
        C("passage_key", "VARCHAR", "MotorVehicleID when 48 digits, else the composite key", False),
        C("motor_vehicle_id", "VARCHAR", "MotorVehicleID as sent (digits), null when empty"),
        C("community_id", "VARCHAR", "Community code", False),
        C("gate_id", "VARCHAR", "Gate id", False),
        C("park_id", "VARCHAR", "Car park behind the gate", False),
        C("lane_no", "INTEGER", "Lane"),
        C("direction", "VARCHAR", "in | out", False),
        C("direction_source", "VARCHAR", "explicit | lane | gate", False),
        C("travel_direction", "VARCHAR", "GA/T 1400 travel direction code of the lane"),
        C("pass_ts", "TIMESTAMPTZ", "Passage time", False),
        C("hour_start", "TIMESTAMP", "Local hour of the passage", False),
        *_PLATE_ATTRS,
        C("residency", "VARCHAR", "resident (registered in this community) | visitor", False),
        C("plate_reliability", "DOUBLE", "PlateReliability"),
        C("vehicle_class", "VARCHAR", "VehicleClass"),
    ),
    domain="vehicles", order_by="community_id, pass_ts, motor_vehicle_id",
    suite=(
        *(Expect.not_null(c) for c in ("passage_key", "community_id", "gate_id", "direction", "pass_ts")),
        Expect.unique("passage_key", description="a re-sent MotorVehicle object is kept once"),
        Expect.regex("passage_key", r"^([0-9]{48}|k[0-9a-f]{32})$",
                     description="the 48-digit MotorVehicleID or the composite key"),
        Expect.in_set("direction_source", ["explicit", "lane", "gate"]),
        Expect.in_set("direction", list(DIRECTIONS)),
        Expect.in_set("plate_group", list(PLATE_GROUPS)),
        Expect.in_set("plate_type", list(PLATE_TYPES)),
        Expect.in_set("residency", list(RESIDENCY)),
        Expect.regex("plate_token", TOKEN_RE, description="plates are keyed tokens, never raw"),
        Expect.sql("no_plate_has_no_token", "SELECT * FROM {batch} WHERE plate_group = 'no_plate' "
                   "AND (plate_token IS NOT NULL OR residency = 'resident')",
                   description="a car without a readable plate has no token and cannot be a resident"),
        Expect.sql("one_local_day", "SELECT * FROM {batch} WHERE CAST(hour_start AS DATE) "
                   "<> (SELECT min(CAST(hour_start AS DATE)) FROM {batch})",
                   description="a partition holds passages of one Asia/Shanghai day"),
        Expect.between("plate_reliability", 0, 100, severity="WARN"),
    ),
)

SESSIONS_BRONZE = Dataset(
    "bronze", "parking_sessions", "one row per accepted parking-cloud push (entry or exit), deduplicated per day",
    "Parking-cloud entry and exit pushes, typed; money in fen; plates tokenised.",
    (
        C("community_id", "VARCHAR", "Community of the feed folder", False),
        C("vendor", "VARCHAR", "Parking cloud whose shape the push had (parking_vendors.csv)", False),
        C("park_id", "VARCHAR", "park_uuid (resolved from the vendor's car-park id)", False),
        C("parking_serial", "VARCHAR", "parking_serial (unique per car park); for a cloud without one, the entry's "
          "time digits (an exit takes its paired entry's)", False),
        C("event", "VARCHAR", "enter | leave", False),
        *_PLATE_ATTRS,
        C("car_type", "INTEGER", "1 temporary, 2 monthly, 3 VIP/free, 4 stored value"),
        C("enter_ts", "TIMESTAMPTZ", "enter_time", False),
        C("leave_ts", "TIMESTAMPTZ", "leave_time (exit pushes)"),
        C("enter_gate", "VARCHAR", "Entry gate"),
        C("leave_gate", "VARCHAR", "Exit gate"),
        C("total_fen", "BIGINT", "total_value, fen"),
        C("free_fen", "BIGINT", "free_value, fen"),
        C("online_fen", "BIGINT", "online_value, fen"),
        C("cash_fen", "BIGINT", "cash_value, fen"),
        C("duration_s", "BIGINT", "Parking duration as pushed, in seconds (a cloud sending hours)"),
        C("total_spaces", "INTEGER", "total_parking_space as pushed"),
        C("remain_spaces", "INTEGER", "remain_parking_space as pushed (drifts after outages)"),
        C("is_sync", "BOOLEAN", "Offline backfill (is_sync=1)", False),
        C("payments", "INTEGER", "Items in payment_list", False),
        *LINEAGE,
    ),
    domain="vehicles",
)

SESSIONS_QUARANTINE = Dataset(
    "quarantine", "parking_sessions", "one row per rejected parking push (a file that cannot be read is one row "
    "with source_line 0)",
    "Parking pushes not accepted, with one reason each (never a plate).",
    (
        C("community_id", "VARCHAR", "Community of the feed folder"),
        C("park_id", "VARCHAR", "park_uuid, if it is a UUID (free text could carry a plate)"),
        C("parking_serial", "VARCHAR", "parking_serial, if it is a digit string"),
        C("event", "VARCHAR", "enter | leave, if recognised"),
        C("vendor", "VARCHAR", "Parking cloud shape recognised, if any"),
        C("reason", "VARCHAR", "unreadable_file | bad_json | unknown_vendor | missing_key | unknown_park | bad_time "
          "| bad_money", False),
        C("detail", "VARCHAR", "Human-readable detail (field names, never values)"),
        *LINEAGE,
    ),
    domain="vehicles",
)

PAYMENTS_BRONZE = Dataset(
    "bronze", "parking_payments", "one row per payment_list item of an accepted exit push",
    "Parking payments, money in fen.",
    (
        C("community_id", "VARCHAR", "Community", False),
        C("park_id", "VARCHAR", "park_uuid", False),
        C("parking_serial", "VARCHAR", "Session serial", False),
        C("item", "INTEGER", "1-based position in payment_list", False),
        C("pay_type", "VARCHAR", "Payment channel as sent", False),
        C("pay_ts", "TIMESTAMPTZ", "pay_time"),
        C("value_fen", "BIGINT", "value, fen", False),
        C("free_fen", "BIGINT", "free_value, fen", False),
        C("change_fen", "BIGINT", "change_value, fen", False),
        C("parking_order", "VARCHAR", "parking_order"),
        *LINEAGE,
    ),
    domain="vehicles",
)

SESSIONS_SILVER = Dataset(
    "silver", "parking_sessions", "one row per parking session (car park + parking_serial)",
    "Entry and exit pushes paired on park and parking_serial. Status: closed (both), open (entry, no exit by "
    "midnight), exit_only (exit with no entry today, incl. cars that entered on an earlier day), auto_closed "
    "(no exit, but the same plate entered the same car park again: closed at that re-entry). Each partition "
    "stands alone (no look-back): a car parked over midnight is open on day D and exit_only (entered_before_day) on "
    "D+1, joinable on park_id + parking_serial; the exit push carries the enter_time, so duration is exact.",
    (
        C("community_id", "VARCHAR", "Community", False),
        C("park_id", "VARCHAR", "park_uuid", False),
        C("parking_serial", "VARCHAR", "parking_serial", False),
        C("plate_token", "VARCHAR", "Keyed plate token", pii=PII_TOKEN),
        C("plate_group", "VARCHAR", "local | out_of_town | unknown | no_plate", False),
        C("plate_type", "VARCHAR", "new_energy | fuel | other", False),
        C("residency", "VARCHAR", "resident | visitor", False),
        C("car_type", "INTEGER", "car_type"),
        C("status", "VARCHAR", "open | closed | exit_only | auto_closed", False),
        C("enter_ts", "TIMESTAMPTZ", "Entry time (the exit push's enter_time wins when they differ)", False),
        C("leave_ts", "TIMESTAMPTZ", "Exit time (re-entry time for auto_closed; null when open)"),
        C("duration_min", "DOUBLE", "Minutes parked (null when open)"),
        C("entered_before_day", "BOOLEAN", "Entry on an earlier day (overnight)", False),
        C("enter_time_corrected", "BOOLEAN", "Exit push carried a different enter_time than the entry push", False),
        C("enter_gate", "VARCHAR", "Entry gate"),
        C("leave_gate", "VARCHAR", "Exit gate"),
        C("total_fen", "BIGINT", "Fee, fen", False),
        C("free_fen", "BIGINT", "Discount, fen", False),
        C("online_fen", "BIGINT", "Paid online, fen", False),
        C("cash_fen", "BIGINT", "Paid cash, fen", False),
        C("backfilled", "BOOLEAN", "A push of the session came through offline backfill", False),
    ),
    domain="vehicles", order_by="community_id, park_id, parking_serial",
    suite=(
        *(Expect.not_null(c) for c in ("park_id", "parking_serial", "status", "enter_ts")),
        Expect.unique("park_id", "parking_serial", name="one_row_per_session"),
        Expect.in_set("status", list(SESSION_STATUSES)),
        Expect.regex("plate_token", TOKEN_RE, description="plates are keyed tokens, never raw"),
        Expect.sql("leave_after_enter", "SELECT * FROM {batch} WHERE leave_ts < enter_ts",
                   description="a car leaves after it entered"),
        Expect.sql("open_has_no_exit", "SELECT * FROM {batch} WHERE (status = 'open') <> (leave_ts IS NULL)",
                   description="exactly the open sessions have no exit time"),
        Expect.sql("money_adds_up", "SELECT * FROM {batch} WHERE free_fen > total_fen OR online_fen < 0 "
                   "OR cash_fen < 0", description="discounts never exceed the fee and payments are not negative"),
        Expect.between("duration_min", 0, 60 * 24 * 31, severity="WARN"),
    ),
)

PAYMENTS_SILVER = Dataset(
    "silver", "parking_payments", "one row per payment (car park, serial, item)",
    "Parking payments of accepted exit pushes, joined to their session.",
    (
        C("community_id", "VARCHAR", "Community", False),
        C("park_id", "VARCHAR", "park_uuid", False),
        C("parking_serial", "VARCHAR", "Session serial", False),
        C("item", "INTEGER", "Position in payment_list", False),
        C("pay_type", "VARCHAR", "online | cash | other", False),
        C("pay_ts", "TIMESTAMPTZ", "Payment time"),
        C("value_fen", "BIGINT", "Amount, fen", False),
        C("free_fen", "BIGINT", "Discount, fen", False),
        C("change_fen", "BIGINT", "Change given, fen", False),
    ),
    domain="vehicles", order_by="community_id, park_id, parking_serial, item",
    suite=(
        Expect.unique("park_id", "parking_serial", "item", name="one_row_per_payment"),
        Expect.in_set("pay_type", ["online", "cash", "other"]),
        Expect.between("value_fen", 0, 10_000_000, description="fen amounts are non-negative and plausible"),
        Expect.sql("payment_has_session", "SELECT * FROM {batch} WHERE parking_serial IS NULL",
                   description="every payment names its session"),
    ),
)

def _ingest(source: str) -> Dataset:
    return ingest_dataset(
        f"ingest_{source}", "vehicles",
        f"What the {source} parser read: files, records, rows written, duplicates dropped in and across files.",
        (C("duplicates_cross_file", "BIGINT", "Re-sent records dropped across the day's files (and rejected records "
           "repeating, byte for byte, a rejected line or document of an earlier file)", False),
         C("files_quarantined", "BIGINT", "Files that could not be read (zero bytes, not UTF-8, UTF-16...), each "
           "one record quarantined as unreadable_file", False)),
    )


INGEST_PASSAGES = _ingest("vehicle_passages")
INGEST_PARKING = _ingest("parking")

_FLOW_KEYS = ("community_id", "gate_id", "hour_start", "direction", "plate_group", "plate_type", "residency")

VEHICLE_FLOW_HOURLY = Dataset(
    "gold", "vehicle_flow_hourly", "one row per community, gate, local hour, direction, plate group, plate type "
    "and residency (complete grid)",
    "Vehicle passages per gate and hour by plate origin, plate type and resident/visitor; small cells suppressed.",
    (
        C("community_id", "VARCHAR", "Community code", False),
        C("gate_id", "VARCHAR", "Gate id", False),
        C("hour_start", "TIMESTAMP", "Start of the local hour (Asia/Shanghai)", False),
        C("direction", "VARCHAR", "in | out", False),
        C("plate_group", "VARCHAR", "local | out_of_town | unknown | no_plate", False),
        C("plate_type", "VARCHAR", "new_energy | fuel | other", False),
        C("residency", "VARCHAR", "resident | visitor", False),
        C("vehicles", "BIGINT", "Vehicle passages (null when suppressed)"),
        *SUPPRESSION_COLUMNS,
    ),
    domain="vehicles", keys=_FLOW_KEYS, counts=("vehicles",), order_by=", ".join(_FLOW_KEYS),
    suite=(
        *(Expect.not_null(c) for c in ("community_id", "gate_id", "hour_start", "direction")),
        Expect.unique("community_id", "gate_id", "hour_start", "direction", "plate_group", "plate_type", "residency",
                      name="one_row_per_cell"),
        Expect.in_set("direction", list(DIRECTIONS)),
        Expect.in_set("plate_group", list(PLATE_GROUPS)),
        Expect.in_set("plate_type", list(PLATE_TYPES)),
        Expect.in_set("residency", list(RESIDENCY)),
        Expect.sql("complete_grid", "SELECT community_id, gate_id FROM {batch} GROUP BY 1, 2 HAVING count(*) <> "
                   f"{24 * len(DIRECTIONS) * len(PLATE_GROUPS) * len(PLATE_TYPES) * len(RESIDENCY)}",
                   description="every gate has the full 24-hour grid, zeros included"),
        Expect.sql("suppressed_is_null", "SELECT * FROM {batch} WHERE suppressed AND vehicles IS NOT NULL",
                   description="suppressed cells carry no count"),
    ),
    sources={"vehicle_passages": ("vehicles",)},
)

PARKING_OCCUPANCY_15MIN = Dataset(
    "gold", "parking_occupancy_15min", "one row per car park and 15-minute slot (96 per day)",
    "Car-park occupancy at each slot end from the day's sessions, with entries and exits in the slot. A handful "
    "of movements in 15 minutes can single out a resident, so the counts are protected as the contract says: "
    "under the cell key method entries, exits and occupied are each perturbed (at most +-D, zeros stay zero; a "
    "slot where nobody moved keeps its stock's value) and available is capacity - published occupied; the "
    "stock identity occupied(t) = occupied(t-1) + entries(t) - exits(t) then holds only within the "
    "perturbation. Under suppression, occupied and available are null on suppressed rows too and every run of "
    "consecutive suppressed slots hides at least two non-zero movement cells (assets/vehicles/occupancy.py). A "
    "car with no push on the day (parked throughout) is not seen, so occupied is a lower bound.",
    (
        C("community_id", "VARCHAR", "Community code", False),
        C("park_id", "VARCHAR", "Car park id", False),
        C("slot_start", "TIMESTAMP", "Start of the 15-minute slot, local time", False),
        C("capacity", "INTEGER", "Parking spaces", False),
        C("occupied", "BIGINT", "Cars parked at the slot end (sessions seen that day); perturbed (cell key) or "
          "null when suppressed"),
        C("available", "BIGINT", "capacity - occupied as published (never below 0); null when suppressed"),
        C("entries", "BIGINT", "Entries in the slot; perturbed (cell key) or null when suppressed"),
        C("exits", "BIGINT", "Exits in the slot; perturbed (cell key) or null when suppressed"),
        *SUPPRESSION_COLUMNS,
    ),
    domain="vehicles", keys=("community_id", "park_id", "slot_start"), counts=("entries", "exits", "occupied"), derived=("available",), order_by="community_id, park_id, slot_start",
    suite=(
        *(Expect.not_null(c) for c in ("park_id", "slot_start", "capacity")),
        Expect.unique("park_id", "slot_start", name="one_row_per_park_slot"),
        Expect.sql("96_slots_per_park", "SELECT park_id FROM {batch} GROUP BY 1 HAVING count(*) <> 96",
                   description="every car park has all 96 slots of the day"),
        Expect.sql("available_consistent", "SELECT * FROM {batch} WHERE available <> greatest(capacity - occupied, 0)",
                   description="available = capacity - occupied"),
        Expect.sql("suppressed_rows_hide_the_stock", "SELECT * FROM {batch} WHERE suppressed AND (occupied IS NOT "
                   "NULL OR available IS NOT NULL OR entries IS NOT NULL OR exits IS NOT NULL) OR NOT suppressed "
                   "AND completeness <> 'missing' AND (occupied IS NULL OR available IS NULL OR entries IS NULL OR exits IS NULL)",
                   description="a suppressed slot publishes neither movements nor the stock that would reveal them "
                               "(a slot whose feed is missing publishes none either: NULL, never zero)"),
        Expect.sql("occupancy_within_capacity", "SELECT * FROM {batch} WHERE occupied > capacity", severity="WARN",
                   description="more cars than spaces means a drifting feed or a wrong capacity"),
    ),
    sources={"parking": ("occupied", "available", "entries", "exits")},
)

ACCOUNTING_PASSAGES = accounting_dataset("vehicle_passages")
ACCOUNTING_PARKING = accounting_dataset("parking")

DATASETS: tuple[Dataset, ...] = (
    TOLLGATES, CAR_PARKS, REGISTERED_VEHICLES, PASSAGES_BRONZE, PASSAGES_QUARANTINE, PASSAGES_SILVER,
    SESSIONS_BRONZE, SESSIONS_QUARANTINE, PAYMENTS_BRONZE, SESSIONS_SILVER, PAYMENTS_SILVER, INGEST_PASSAGES,
    INGEST_PARKING,
    VEHICLE_FLOW_HOURLY, PARKING_OCCUPANCY_15MIN, ACCOUNTING_PASSAGES, ACCOUNTING_PARKING,
)
