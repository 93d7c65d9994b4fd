"""The message statement of bronze_messages.sql (the CTWing payload's keys read once, IoTDA's body typed with the
envelope) against its definition, the statement it replaced (messages_reference.sql): on the vendor fixtures and on
random envelopes the simulator never writes (payloads and bodies of every JSON type, keys present with a JSON
null, both transparent encodings at once, status values of every type, duplicate keys), every message row is the
same, every column."""

from __future__ import annotations

import json
import random
from pathlib import Path

import duckdb
import polars as pl
import pytest

from assets.telemetry.parse import HERE, load_vocabulary, subject_expr
from kernel.sqlfile import render, statements
from tests.assets.telemetry.vendor_parse import FIXTURES, PLATFORMS, registry_frame

DAY = "2026-11-20"
PARAMS = dict(day_start="2026-11-19 16:00:00+00", day_end="2026-11-20 16:00:00+00", tz="Asia/Shanghai")
REFERENCE = Path(__file__).with_name("messages_reference.sql")

# JSON values of every type, for any field
ANY = [None, 0, 1, 1.5, -7, True, False, "", "x", "AQAz/p9J/5UA", "0A0B", "zz", [], [1], {}, {"a": 1},
       {"temperature": 21.5, "battery": 90}, "1795104193529", 1795104193529, "20261119T160012Z"]


def _payload(rng: random.Random) -> object:
    pick = rng.choice
    return pick([
        {"serviceData": {"smoke_state": pick([0, 1, "1"]), "battery_value": pick([80, None])}},
        {"serviceData": None}, {"serviceData": pick(ANY)}, {"APPdata": "AQAz/p9J/5UA"}, {"APPdata": None},
        {"APPdata": None, "msg": "0A0B0C"}, {"msg": pick(["0a0b", "zz", None, 12])}, {"APPdata": pick(ANY)},
        {"APPdata": "AQAz", "msg": "0A0B"}, {"serviceData": {"a": 1}, "APPdata": "AQAz/p9J/5UA"},
        {"temperature": 20.5, "humidity": 60}, {}, None, "text", [1, 2], 5, {"msg": {"x": 1}},
        {"serviceData": {"a": 1}, "msg": None},
    ])


def _body(rng: random.Random) -> object:
    pick = rng.choice
    service = lambda: {"service_id": "Meter", "event_time": pick(["20261119T160010Z", 20261119, None, "bad", {}]),  # noqa: E731
                       "properties": pick([{"energy": 9629.37, "power": 121.0}, None, {}, [1], "p", 3])}
    return pick([
        {"services": [service() for _ in range(rng.randrange(0, 4))]}, {"services": []}, {"services": None},
        {"services": "x"}, {"services": [None]}, {"services": [1, service()]}, {"services": service()},
        {"status": pick(["ONLINE", "OFFLINE", 1, 1.5, True, None, {"a": 1}, [1, 2], 'a"b'])},
        {"status": "ONLINE", "services": [service()]}, {}, None, "x", 5, [1],
    ])


def _line(rng: random.Random, devices: list[str]) -> tuple[str, str]:
    """(platform folder, line): a random envelope, sometimes broken."""
    pick = rng.choice
    device = pick([*devices, "", None, "unknown-device", 42])
    kind = rng.randrange(6)
    if kind == 0:  # CTWing
        msg = {"timestamp": pick([1795104193529, "1795104193529", None, "bad", 1795104193529.5]),
               "messageType": pick(["dataReport", "dataReport", "deviceOnlineOfflineReport", "commandResponse", None]),
               "productId": pick(["15002222", "15000000", None, ""]), "deviceId": device,
               "eventType": pick([0, 1, "1", None]), "payload": _payload(rng)}
        folder = "ctwing"
    elif kind == 1:  # IoTDA
        msg = {"resource": pick(["device.property", "device.property", "device.status", "device.message", None]),
               "event_time": pick(["20261119T160012Z", None, "2026-11-19T16:00:12.092Z", 5]),
               "event_time_ms": pick(["2026-11-19T16:00:12.092Z", None]),
               "notify_data": pick([{"header": {"device_id": device}, "body": _body(rng)},
                                    {"header": {"device_id": device}, "body": _body(rng)}, None, 5, {"body": _body(rng)}])}
        folder = "iotda"
    elif kind == 2:  # ThingsBoard device
        msg = {"topic": "v1/devices/me/telemetry", "device": device, "received_ms": 1795104125331,
               "payload": pick([{"ts": 1795104120921, "values": {"temperature": 9.2}}, {"temperature": 9.2},
                                [{"ts": 1795104120921, "values": {"pm10": 3}}], [], None, "x"])}
        folder = "thingsboard"
    elif kind == 3:  # ThingsBoard gateway
        msg = {"topic": "v1/gateway/telemetry", "received_ms": 1795104125331,
               "payload": pick([{str(device): [{"ts": 1795104120921, "values": {"pm2_5": 20.9}}]}, {}, None, [1],
                                {"d": [None]}, {"d": []}])}
        folder = "thingsboard"
    elif kind == 4:  # an envelope of no platform, or an array
        msg = pick([{"foo": 1}, [1, 2], "text", None, {"messageType": None, "payload": None}])
        folder = pick(["ctwing", "iotda"])
    else:
        return pick(["ctwing", "iotda"]), pick(["{not json", "", "   ", '{"deviceId": "a"', "\x00"])
    text = json.dumps(msg, ensure_ascii=False)
    if isinstance(msg, dict) and rng.random() < 0.1:  # a duplicate key, as a careless firmware writes it
        text = text[:-1] + ', "payload": {"serviceData": null}}'
    return folder, text


def _lines(seed: int, devices: list[str]) -> pl.DataFrame:
    rows = []
    for platform in PLATFORMS:  # the vendors' own payloads
        for f in sorted((FIXTURES / platform).glob("*.ndjson")):
            rows += [(platform, f.name, ln) for ln in f.read_text(encoding="utf-8").splitlines()]
    rng = random.Random(seed)
    rows += [(folder, f"random-{seed}.ndjson.gz", line) for folder, line in (_line(rng, devices) for _ in range(3000))]
    return pl.DataFrame({
        "source_file": [f"telemetry/{DAY}/{p}/{name}" for p, name, _ in rows],
        "source_line": list(range(1, len(rows) + 1)),
        "community_id": ["310107001001"] * len(rows),
        "line": [ln for _, _, ln in rows],
        "file_error": [None] * len(rows),
    }, schema={"source_file": pl.String, "source_line": pl.Int64, "community_id": pl.String, "line": pl.String,
               "file_error": pl.String}).with_row_index("lid")


@pytest.mark.parametrize("seed", range(3))
def test_the_message_statement_is_the_reference(seed: int):
    con = duckdb.connect()
    load_vocabulary(con)
    registry = registry_frame(*PLATFORMS)
    con.register("registry_df", registry)
    con.execute("CREATE VIEW registry AS SELECT * FROM registry_df")
    params = dict(PARAMS, subject_expr=subject_expr(con))
    lines = _lines(seed, registry["device_id"].to_list())
    con.register("lines_df", lines)
    run = lambda sql: con.execute(statements(render(sql, **params))[0])  # noqa: E731
    run(REFERENCE)
    con.execute("CREATE TABLE expected AS SELECT * FROM msgs")
    run(HERE / "bronze_messages.sql")
    kinds = dict(con.execute("SELECT coalesce(msg_reason, 'accepted'), count(*) FROM msgs GROUP BY 1").fetchall())
    assert kinds.get("accepted", 0) > 100 and len(kinds) >= 8, kinds  # the corpus reaches most verdicts
    assert con.execute("SELECT count(*) FROM msgs").fetchone() == con.execute("SELECT count(*) FROM expected").fetchone()
    missing = con.execute("SELECT * FROM expected EXCEPT ALL SELECT * FROM msgs ORDER BY lid, svc_idx LIMIT 5").fetchall()
    extra = con.execute("SELECT * FROM msgs EXCEPT ALL SELECT * FROM expected ORDER BY lid, svc_idx LIMIT 5").fetchall()
    assert not missing and not extra, (missing, extra)
