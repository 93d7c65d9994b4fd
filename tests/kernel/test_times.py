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
