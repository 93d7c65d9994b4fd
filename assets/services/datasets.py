"""Datasets of the property-services domain (work orders, their status history, fee bills, payments),
declared once (see warehouse/dataset.py)."""

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

D = "services"
SOURCES = ("work_orders", "work_order_events", "fee_bills", "payments")
CATEGORIES = ["repair", "complaint", "inquiry", "suggestion", "delivery", "alarm"]
CHANNELS = ["app", "wechat", "phone", "12345", "grid", "device"]
STATUSES = ["pending", "dispatched", "in_progress", "completed", "closed", "reopened", "merged"]
PAY_CHANNELS = ["wechat", "alipay", "bank", "cash", "counter"]
TOKEN_RX = r"^phone_v[0-9]+_[a-z2-7]+$"

_WO = (
    C("order_id", "VARCHAR", "Vendor work-order number (工单编号)", False),
    C("community_id", "VARCHAR", "Community code", False),
    C("category", "VARCHAR", "repair, complaint, inquiry, suggestion, delivery, alarm", False),
    C("channel", "VARCHAR", "app, wechat, phone, 12345, grid, device", False),
    C("location", "VARCHAR", "Where the problem is: building and entrance (3号楼2单元) or a public place; "
      "a room number is generalised away"),
    C("location_token", "VARCHAR", "Keyed token of the location as written (room included): the dedup key",
      pii=PII_TOKEN),
    C("description", "VARCHAR", "Problem description, personal identifiers redacted"),
    C("reporter_token", "VARCHAR", "Keyed token of the reporter's phone number", pii=PII_TOKEN),
    C("created_ts", "TIMESTAMPTZ", "Filed at", False),
    C("appointment_ts", "TIMESTAMPTZ", "Appointment agreed with the resident"),
    C("dispatched_ts", "TIMESTAMPTZ", "Dispatched to a worker"),
    C("completed_ts", "TIMESTAMPTZ", "Last completion"),
    C("closed_ts", "TIMESTAMPTZ", "Last close (or merge) as of the export"),
    C("status", "VARCHAR", "Status at the end of the day", False),
    C("satisfaction", "TINYINT", "Resident rating 1-5 at the last close"),
    C("reopened_count", "INTEGER", "Times the order was re-opened", False),
    C("sla_due_ts", "TIMESTAMPTZ", "created_ts + the category's SLA hours", False),
    C("source_alarm_id", "VARCHAR", "silver/device_alarms alarm_id the order was dispatched from"),
)

WORK_ORDERS_BRONZE = Dataset(
    "bronze", "work_orders", "one row per work order per export file (snapshot at the end of the day)",
    "Typed work-order snapshots from the property systems' CSV exports; names/phones/IDs removed from text.",
    (*_WO, *LINEAGE), domain=D)

_EV = (
    C("order_id", "VARCHAR", "Work-order number", False),
    C("seq", "INTEGER", "Position in the order's history", False),
    C("status", "VARCHAR", "Status entered", False),
    C("actor_role", "VARCHAR", "Who acted (业主, 客服, 维修工, 网格员, 12345平台, 系统)"),
    C("event_ts", "TIMESTAMPTZ", "When", False),
    C("note", "VARCHAR", "Remark, personal identifiers redacted"),
)
WORK_ORDER_EVENTS_BRONZE = Dataset(
    "bronze", "work_order_events", "one row per status change as exported",
    "Work-order status history (工单流转记录), typed, remarks redacted.", (*_EV, *LINEAGE), domain=D)

_FB = (
    C("bill_id", "VARCHAR", "Bill number", False),
    C("community_id", "VARCHAR", "Community code", False),
    C("room_token", "VARCHAR", "Keyed token of the room (building-unit-room) as written: the billing unit; the "
      "room itself is a home address and never kept", pii=PII_TOKEN),
    C("fee_item", "VARCHAR", "Fee item (物业管理费, 停车管理费, ...)", False),
    C("period_start", "DATE", "Billing period start"),
    C("period_end", "DATE", "Billing period end"),
    C("due_fen", "BIGINT", "Amount due, fen", False),
    C("due_date", "DATE", "Due date", False),
)
FEE_BILLS_BRONZE = Dataset("bronze", "fee_bills", "one row per bill as exported",
                           "Fee bills falling due on the day; money parsed from yuan text to fen.",
                           (*_FB, *LINEAGE), domain=D)

_PAY = (
    C("payment_id", "VARCHAR", "Payment serial number", False),
    C("bill_id", "VARCHAR", "Bill paid", False),
    C("community_id", "VARCHAR", "Community code", False),
    C("room_token", "VARCHAR", "Keyed token of the room paid for (as in fee_bills)", pii=PII_TOKEN),
    C("amount_fen", "BIGINT", "Amount received, fen", False),
    C("channel", "VARCHAR", "wechat, alipay, bank, cash, counter", False),
    C("paid_ts", "TIMESTAMPTZ", "Paid at", False),
    C("payer_token", "VARCHAR", "Keyed token of the payer's phone number", pii=PII_TOKEN),
)
PAYMENTS_BRONZE = Dataset("bronze", "payments", "one row per payment as exported (in-file duplicates dropped)",
                          "Fee payments; money in fen, payer tokenised.", (*_PAY, *LINEAGE), domain=D)


def _quarantine(source: str, id_col: str) -> Dataset:
    return Dataset(
        "quarantine", source, "one row per rejected record (a CSV row, or a whole refused file)",
        f"Every {source} record that was not accepted, with exactly one reason (never a raw identifier).",
        (C(id_col, "VARCHAR", "Record id, if present"), C("community_id", "VARCHAR", "Community code, if present"),
         C("reason", "VARCHAR", "Machine-readable reason", False), C("detail", "VARCHAR", "Human-readable detail"),
         *LINEAGE),
        domain=D)


WORK_ORDERS_QUARANTINE = _quarantine("work_orders", "order_id")
WORK_ORDER_EVENTS_QUARANTINE = _quarantine("work_order_events", "order_id")
FEE_BILLS_QUARANTINE = _quarantine("fee_bills", "bill_id")
PAYMENTS_QUARANTINE = _quarantine("payments", "payment_id")

WORK_ORDERS = Dataset(
    "silver", "work_orders", "one row per work order active on the day (latest snapshot)",
    "Work orders: one row per order, cross-channel duplicates flagged (duplicate_of), never dropped.",
    (*_WO, C("duplicate_of", "VARCHAR", "The order this one duplicates (same community, category and "
             "location, filed within 2 h on the same day), else null")),
    domain=D, order_by=_WO[0].name,
    suite=(
        *(Expect.not_null(c) for c in ("order_id", "community_id", "category", "channel", "created_ts", "status")),
        Expect.unique("order_id"),
        Expect.in_set("category", CATEGORIES), Expect.in_set("channel", CHANNELS), Expect.in_set("status", STATUSES),
        Expect.between("satisfaction", 1, 5),
        Expect.regex("reporter_token", TOKEN_RX, description="reporters are keyed phone tokens, never raw numbers"),
        Expect.regex("source_alarm_id", r"^[0-9a-f]{32}$",
                     description="alarm ids have the silver/device_alarms form (md5 hex)"),
        Expect.sql("closed_after_created", "SELECT * FROM {batch} WHERE closed_ts < created_ts",
                   description="an order is never closed before it was filed"),
        Expect.sql("duplicate_not_self", "SELECT * FROM {batch} WHERE duplicate_of = order_id",
                   description="an order is never its own duplicate"),
        Expect.sql("alarm_orders_from_devices", "SELECT * FROM {batch} WHERE (category = 'alarm') <> "
                   "(channel = 'device')", description="alarm orders, and only they, come from devices"),
        Expect.sql("no_raw_phone_in_text", "SELECT * FROM {batch} WHERE regexp_matches(description, '(^|[^0-9])1[3-9][0-9]{9}([^0-9]|$)')",
                   description="free text holds no mobile number after redaction"),
    ),
)

WORK_ORDER_EVENTS = Dataset(
    "silver", "work_order_events", "one row per status change (order, seq)",
    "Work-order status history, deduplicated across files.", (*_EV, C("community_id", "VARCHAR", "Community code")),
    domain=D, order_by=_EV[0].name,
    suite=(
        *(Expect.not_null(c) for c in ("order_id", "seq", "status", "event_ts")),
        Expect.unique("order_id", "seq", name="one_row_per_order_seq"),
        Expect.in_set("status", STATUSES),
        Expect.between("seq", 1, 50),
    ),
)

FEE_BILLS = Dataset(
    "silver", "fee_bills", "one row per bill", "Fee bills falling due on the day.", _FB, domain=D, order_by=_FB[0].name,
    suite=(
        *(Expect.not_null(c) for c in ("bill_id", "community_id", "due_fen", "fee_item")),
        Expect.unique("bill_id"),
        Expect.between("due_fen", 1, 10_000_000),
        Expect.sql("period_ordered", "SELECT * FROM {batch} WHERE period_end < period_start",
                   description="a billing period ends after it starts"),
    ),
)

PAYMENTS = Dataset(
    "silver", "payments", "one row per payment", "Fee payments received on the day.", _PAY, domain=D, order_by=_PAY[0].name,
    suite=(
        *(Expect.not_null(c) for c in ("payment_id", "bill_id", "amount_fen", "channel", "paid_ts")),
        Expect.unique("payment_id"),
        Expect.in_set("channel", PAY_CHANNELS),
        Expect.between("amount_fen", 1, 10_000_000),
        Expect.regex("payer_token", TOKEN_RX, description="payers are keyed phone tokens"),
    ),
)

# derived from the people behind a row: withheld with its counts
_ORDER_STATS = ("on_time_rate", "median_hours_to_close", "p90_hours_to_close", "satisfaction_avg")

WORK_ORDERS_DAILY = Dataset(
    "gold", "work_orders_daily", "one row per community and category per day (complete grid)",
    "Work orders opened and closed, on-time rate and hours to close, satisfaction; small cells suppressed.",
    (
        C("community_id", "VARCHAR", "Community code", False),
        C("category", "VARCHAR", "Work-order category", False),
        C("opened", "BIGINT", "Orders filed on the day (cross-channel duplicates counted once)"),
        C("closed", "BIGINT", "Orders finally closed on the day"),
        C("on_time_rate", "DOUBLE", "Share of the day's closed orders closed by their SLA deadline"),
        C("median_hours_to_close", "DOUBLE", "Median hours from filing to final close"),
        C("p90_hours_to_close", "DOUBLE", "90th percentile hours from filing to final close"),
        C("satisfaction_avg", "DOUBLE", "Mean rating (1-5) of the day's closed orders"),
        *SUPPRESSION_COLUMNS,
    ),
    domain=D, keys=("community_id", "category"), counts=("opened", "closed"), margins=(("community_id",),), derived=_ORDER_STATS, order_by="community_id, category",
    suite=(
        Expect.not_null("community_id"), Expect.not_null("category"), Expect.not_null("suppressed"),
        Expect.unique("community_id", "category", name="one_row_per_community_category"),
        Expect.in_set("category", CATEGORIES),
        Expect.between("on_time_rate", 0, 1), Expect.between("satisfaction_avg", 1, 5),
        Expect.sql("p90_not_below_median", "SELECT * FROM {batch} WHERE p90_hours_to_close < median_hours_to_close",
                   description="the 90th percentile is never below the median"),
        Expect.sql("complete_grid", "SELECT community_id FROM {batch} GROUP BY 1 HAVING count(*) <> "
                   f"{len(CATEGORIES)}", description="every community has a row for every category"),
    ),
    sources={"property_services": ("opened", "closed", *_ORDER_STATS)},
)

ALARM_COLUMNS = ("smoke", "gas", "fence_intrusion", "manhole_open", "low_battery", "offline")
COMMUNITY_DAILY = Dataset(
    "gold", "community_daily", "one row per community per day",
    "The community at a glance: devices, alarms, work orders, fee collection, elderly care, environment.",
    (
        C("community_id", "VARCHAR", "Community code", False),
        C("devices", "BIGINT", "Devices registered", False),
        C("devices_reporting", "BIGINT", "Devices with at least one accepted reading", False),
        C("device_online_rate", "DOUBLE", "devices_reporting / devices"),
        *(C(f"alarms_{t}", "BIGINT", f"Alarm episodes of type {t}", False) for t in ALARM_COLUMNS),
        C("work_orders_opened", "BIGINT", "Work orders filed (duplicates counted once)"),
        C("work_orders_closed", "BIGINT", "Work orders finally closed"),
        C("on_time_rate", "DOUBLE", "Share closed by the SLA deadline"),
        C("median_hours_to_close", "DOUBLE", "Median hours to close"),
        C("p90_hours_to_close", "DOUBLE", "90th percentile hours to close"),
        C("satisfaction_avg", "DOUBLE", "Mean rating of closed orders"),
        C("fee_due_fen", "BIGINT", "Fees falling due on the day, fen", False),
        C("fee_paid_fen", "BIGINT", "Paid on the day against those bills, fen", False),
        C("fee_collection_rate", "DOUBLE", "fee_paid_fen / fee_due_fen"),
        C("elderly_care_events", "BIGINT", "SOS and fall episodes plus wearers with no reading for >= 4 h"),
        C("pm25_avg", "DOUBLE", "Daily mean of the hourly PM2.5 averages, µg/m³"),
        C("noise_max", "DOUBLE", "Daily maximum noise, dB(A)"),
        *SUPPRESSION_COLUMNS,
    ),
    domain=D, keys=("community_id",), counts=("work_orders_opened", "work_orders_closed", "elderly_care_events"), derived=_ORDER_STATS, order_by="community_id",
    suite=(
        Expect.not_null("community_id"), Expect.not_null("suppressed"),
        Expect.unique("community_id", name="one_row_per_community"),
        Expect.between("device_online_rate", 0, 1), Expect.between("on_time_rate", 0, 1),
        Expect.between("fee_collection_rate", 0, 1), Expect.between("satisfaction_avg", 1, 5),
        Expect.sql("paid_within_due", "SELECT * FROM {batch} WHERE fee_paid_fen > fee_due_fen",
                   description="payments against the day's bills never exceed what was due"),
        Expect.sql("reporting_within_fleet", "SELECT * FROM {batch} WHERE devices_reporting > devices",
                   description="reporting devices never exceed the fleet"),
        Expect.row_count_between(1, None, description="a day without community rows is a broken feed"),
    ),
    sources={"telemetry": ("devices_reporting", "device_online_rate", *(f"alarms_{a}" for a in ALARM_COLUMNS), "elderly_care_events", "pm25_avg", "noise_max"), "property_services": ("work_orders_opened", "work_orders_closed", *_ORDER_STATS, "fee_due_fen", "fee_paid_fen", "fee_collection_rate")},
)

INGEST = ingest_dataset(
    "ingest_property_services", D,
    "What the property-services parser read per source: files, rows, landed, bronze, quarantined, duplicates.",
    (
        C("duplicates_cross_file", "BIGINT", "Rejected rows re-delivered in a later file of the community "
          "(counted once; accepted copies are deduplicated in silver)", False),
        C("undecodable_files", "BIGINT", "Files neither UTF-8 nor GB18030 (quarantined whole)", False),
        C("files_quarantined", "BIGINT", "Files quarantined whole (undecodable, unparseable, unknown header "
          "or unknown name); each is one landed record", False),
    ),
)

ACCOUNTING = {s: accounting_dataset(s) for s in SOURCES}
BRONZE = {"work_orders": WORK_ORDERS_BRONZE, "work_order_events": WORK_ORDER_EVENTS_BRONZE,
          "fee_bills": FEE_BILLS_BRONZE, "payments": PAYMENTS_BRONZE}
QUARANTINE = {"work_orders": WORK_ORDERS_QUARANTINE, "work_order_events": WORK_ORDER_EVENTS_QUARANTINE,
              "fee_bills": FEE_BILLS_QUARANTINE, "payments": PAYMENTS_QUARANTINE}
SILVER = {"work_orders": WORK_ORDERS, "work_order_events": WORK_ORDER_EVENTS, "fee_bills": FEE_BILLS,
          "payments": PAYMENTS}

DATASETS: tuple[Dataset, ...] = (
    *BRONZE.values(), *QUARANTINE.values(), *SILVER.values(), WORK_ORDERS_DAILY, COMMUNITY_DAILY, INGEST,
    *ACCOUNTING.values(),
)
