"""The one vendor-time parser (kernel/times.sql): one case per form seen in vendor documents and payloads.

Expected instants are written by hand in Asia/Shanghai; a valid time must never be broken by a repair.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb
import pytest

from kernel.times import install_time_macros

CST = timezone(timedelta(hours=8))
TZ = "Asia/Shanghai"


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")  # the session zone must not matter: local forms are read in the given tz
    return install_time_macros(c)


CASES = [
    # raw, form, expected local wall time (Asia/Shanghai) or None
    ("2019-03-13T17:38:34.000+08:00", "offset", datetime(2019, 3, 13, 17, 38, 34)),  # ISC happenTime
    ("2019-03-13T09:38:34Z", "offset", datetime(2019, 3, 13, 17, 38, 34)),
    ("2019-03-13T17:38:34+0800", "offset", datetime(2019, 3, 13, 17, 38, 34)),
    ("2019-03-13 17:38:34", "local", datetime(2019, 3, 13, 17, 38, 34)),  # ISC, no offset: local
    ("2019-03-13T17:38:34", "local", datetime(2019, 3, 13, 17, 38, 34)),
    ("2025-08-16 17:20:53.953", "local", datetime(2025, 8, 16, 17, 20, 53, 953000)),  # Alibaba status topic
    ("20190313173834", "compact_local", datetime(2019, 3, 13, 17, 38, 34)),  # GA/T 1400 PassTime
    ("20191204T012345Z", "offset", datetime(2019, 12, 4, 9, 23, 45)),  # IoTDA event_time (UTC)
    ("1554185521", "epoch_s", datetime(2019, 4, 2, 14, 12, 1)),
    ("1554185521.83", "epoch_s", datetime(2019, 4, 2, 14, 12, 1, 830000)),  # a parking cloud's float seconds
    ("1554185521830", "epoch_ms", datetime(2019, 4, 2, 14, 12, 1, 830000)),  # CTWing timestamp, 4pyun
    ("1554185521830123", "epoch_us", datetime(2019, 4, 2, 14, 12, 1, 830123)),  # ISC ExtReceiveTime
    ("2018-08-14T07: 20: 51.531+08: 00", "repaired_offset", datetime(2018, 8, 14, 7, 20, 51, 531000)),
    ("2018-08-15T 15:53:47.000+08:00", "repaired_offset", datetime(2018, 8, 15, 15, 53, 47)),
    ("2017-12-2823: 00: 03.000", "repaired_local", datetime(2017, 12, 28, 23, 0, 3)),  # date and hour glued
    ("  2019-03-13 17:38:34 ", "local", datetime(2019, 3, 13, 17, 38, 34)),
    ("1900-01-00T00:00:00.000+08:00", "offset", None),  # ISC sentinel: not a date
    ("2019-13-01 00:00:00", "local", None),
    ("20191399999999", "epoch_ms", datetime(2609, 11, 4, 2, 13, 19, 999000)),  # not a calendar: 14 digits of ms
    ("garbage", None, None),
    ("", None, None),
    (None, None, None),
]


@pytest.mark.parametrize(("raw", "form", "local"), CASES)
def test_every_vendor_form(con, raw, form, local) -> None:
    got_form, got = con.execute("SELECT neuron_time_form($1), neuron_time($1, $2)", [raw, TZ]).fetchone()
    assert got_form == form
    if local is None:
        assert got is None
    else:
        assert got.astimezone(CST).replace(tzinfo=None) == local


def test_local_forms_follow_the_given_zone(con) -> None:
    got = con.execute("SELECT neuron_time('2019-03-13 17:38:34', 'UTC')").fetchone()[0]
    assert got.astimezone(CST).replace(tzinfo=None) == datetime(2019, 3, 14, 1, 38, 34)


@pytest.mark.parametrize(("raw", "quality", "expect_received"), [
    ("2026-12-01 09:59:00", "ok", False),
    ("2026-12-01T09: 59: 00+08: 00", "repaired", False),
    ("2009-01-01 00:00:00", "clock_skew", True),  # a device clock years off: flagged, receive time used
    ("1900-01-00T00:00:00.000+08:00", "receive_time", True),
    (None, "receive_time", True),
    ("not a time", "receive_time", True),
])
def test_event_time_falls_back_to_receive_time(con, raw, quality, expect_received) -> None:
    received = datetime(2026, 12, 1, 10, 0, tzinfo=CST)
    got = con.execute("SELECT neuron_event_time($1, $2, $3, INTERVAL 1 DAY)", [raw, received, TZ]).fetchone()[0]
    assert got["quality"] == quality
    assert (got["ts"] == received) is expect_received


def test_no_receive_time_and_no_device_time_is_missing(con) -> None:
    got = con.execute("SELECT neuron_event_time(NULL, NULL::TIMESTAMPTZ, $1, INTERVAL 1 DAY)", [TZ]).fetchone()[0]
    assert got == {"ts": None, "quality": "missing"}


def test_vectorised_over_a_column(con) -> None:
    n = con.execute("""SELECT count(neuron_time(raw, 'Asia/Shanghai')) FROM (
        SELECT CAST(1554185521830 + i AS VARCHAR) AS raw FROM range(10000) r(i))""").fetchone()[0]
    assert n == 10000


def _corpus() -> list[str | None]:
    """Every form, each broken in the ways vendors break them, and random text: about 15,000 values."""
    import random

    rng = random.Random(20261207)
    out: list[str | None] = [raw for raw, _, _ in CASES]
    out += ["0", "-5", "1e308", "1E5", "9" * 20, "0000000000000", "0554185521830", "1554185521830.5",
            "99999999999999999", "1" * 17, "1554185521830123456", "Z", "+08:00", "T", " ", "\t1554185521830\n",
            "2019-02-30T10:00:00+08:00", "2019-03-13T23:59:60Z", "2019-03-13T24:00:00", "20191304T012345Z",
            "2019-03-13T17:38:34.123456789+08:00", "2019-03-13T17:38:34.1234567891+08:00", "2019-03-13T17:38:34+08",
            "2019-03-13T17:38:34+8:00", "2019-03-13T17:38:34-0330", "2019-03-13T17:38:34 +08:00", "20190313T173834",
            "2019031317383", "201903131738345", "00000000000000", "19700101000000", "2019-03-13", "17:38:34",
            # the fast paths' edges: ten-digit fractions, year 1 and 9999, extreme offsets, 16 digits
            "2019-03-13T17:38:34.1234567890Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999+14:00",
            "2019-03-13T17:38:34-23:59", "2019-03-13 17:38:34.999999999", "0000-00-00 00:00:00", "1554185521830123",
            "0554185521830123", "2019-03-13T17:38:34+08:00\n", "2019-03-13T17:38:34+08:00 ", "２０１９-03-13 17:38:34"]
    digits = "0123456789"
    for _ in range(3000):
        y, mo, d = rng.randint(1890, 2110), rng.randint(0, 13), rng.randint(0, 32)
        h, mi, se = rng.randint(0, 25), rng.randint(0, 61), rng.randint(0, 61)
        frac = rng.choice(["", "", f".{rng.randint(0, 999)}", f".{rng.randint(0, 10**9 - 1):09d}"])
        zone = rng.choice(["", "", "Z", "+08:00", "+0800", "-05:30", "+08", "z"])
        dsep, tsep, csep = rng.choice(["-", ""]), rng.choice(["T", " ", "", "  "]), rng.choice([":", ""])
        text = f"{y:04d}{dsep}{mo:02d}{dsep}{d:02d}{tsep}{h:02d}{csep}{mi:02d}{csep}{se:02d}{frac}{zone}"
        if rng.random() < 0.2:  # spaces where a device firmware puts them
            i = rng.randrange(len(text) + 1)
            text = text[:i] + " " + text[i:]
        out.append(text)
        out.append(f"{y:04d}{mo:02d}{d:02d}T{h:02d}{mi:02d}{se:02d}Z")  # IoTDA
        out.append(f"{y:04d}{mo:02d}{d:02d}{h:02d}{mi:02d}{se:02d}")  # GA/T 1400
        n = rng.choice([9, 10, 11, 12, 13, 14, 16, 17, 18])  # epochs of every length, floats, exponents
        num = "".join(rng.choice(digits) for _ in range(n))
        out.append(num + rng.choice(["", "", f".{rng.randint(0, 99)}", "e3", "E+2"]))
        out.append("".join(rng.choice(digits + "-:T Z+.eE") for _ in range(rng.randint(1, 30))))
    return out


@pytest.mark.parametrize("session_zone", ["UTC", "Asia/Shanghai"])
def test_the_expression_macros_agree_with_the_earlier_subquery_macros(session_zone: str) -> None:
    """The macros are plain expressions for speed (kernel/times.sql); the subquery macros they replaced
    (times_reference.sql, as they were) must give the same form, instant and event time for every value."""
    from pathlib import Path

    c = duckdb.connect()
    c.execute(f"SET TimeZone = '{session_zone}'")
    install_time_macros(c)
    reference = (Path(__file__).with_name("times_reference.sql").read_text(encoding="utf-8")
                 .replace("neuron_time", "ref_neuron_time").replace("neuron_event_time", "ref_neuron_event_time"))
    for stmt in reference.split(";\n"):
        if stmt.strip() and not all(line.strip().startswith("--") or not line.strip() for line in stmt.splitlines()):
            c.execute(stmt)
    values = _corpus()
    import pyarrow as pa

    c.register("corpus", pa.table({"i": pa.array(range(len(values)), pa.int32()), "raw": pa.array(values, pa.string())}))
    c.execute("CREATE TABLE v AS SELECT * FROM corpus")
    assert c.execute("SELECT count(*) FROM v").fetchone()[0] == len(values) > 12_000
    for tz in ("Asia/Shanghai", "UTC"):
        differ = c.execute(f"""
            SELECT i, raw, neuron_time_form(raw), ref_neuron_time_form(raw), neuron_time(raw, '{tz}'),
                   ref_neuron_time(raw, '{tz}')
            FROM v WHERE neuron_time_form(raw) IS DISTINCT FROM ref_neuron_time_form(raw)
                      OR neuron_time(raw, '{tz}') IS DISTINCT FROM ref_neuron_time(raw, '{tz}')
            ORDER BY i LIMIT 5""").fetchall()
        assert not differ, differ
        parsed = c.execute(f"SELECT count(neuron_time(raw, '{tz}')) FROM v").fetchone()[0]
        assert parsed > 8_000  # the corpus is not mostly garbage
        for received in ("NULL::TIMESTAMPTZ", "TIMESTAMPTZ '2026-12-01 10:00:00+08'",
                         "neuron_time(raw, 'UTC') + INTERVAL 3 HOUR"):
            differ = c.execute(f"""
                SELECT i, raw FROM (SELECT i, raw, {received} AS rcv FROM v)
                WHERE neuron_event_time(raw, rcv, '{tz}', INTERVAL 1 DAY)
                      IS DISTINCT FROM ref_neuron_event_time(raw, rcv, '{tz}', INTERVAL 1 DAY)
                ORDER BY i LIMIT 5""").fetchall()
            assert not differ, (received, differ)
