"""MinuteStore: durable appends, the line rule, minute files closing, recovery of torn leftovers."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from connectors.collector.store import (
    MinuteStore,
    StoreBusy,
    StoreError,
    WriteFailed,
    landed_line,
    raw_line,
)

from .support import parts

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 20, 9, 30, 10, tzinfo=TZ).timestamp()  # minute 202611200930


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


def store_at(landing: Path, clock: Clock, cid: str = "c1") -> MinuteStore:
    return MinuteStore(landing, cid, clock=clock, tick_s=3600)  # the tests close minutes themselves


def test_line_rule() -> None:
    assert landed_line(b'{ "b": 1,\n "a": "\xe6\xb2\xaaA",  "z": [1.5, null] }\n') == \
        '{"b":1,"a":"沪A","z":[1.5,null]}'.encode()
    assert landed_line(b"not json\r\nsecond line") == b"not json  second line"
    assert landed_line(b'{"a": NaN}') == b'{"a": NaN}'  # NaN is not JSON: landed raw
    assert landed_line(b'"\\ud800"') == b'"\\ud800"'  # a lone surrogate stays an escape
    assert landed_line('{"a":"沪"}'.encode("utf-16")) == '{"a":"沪"}'.encode()  # JSON in UTF-16 is still JSON
    # not UTF-8, NUL: one valid UTF-8 line, so the rest of its minute file stays readable
    assert raw_line(b"\xc4\xe3\x00ok\n") == b"\\xc4\\xe3\\x00ok "
    raw_line(b"\xff\xfe\x00bad").decode("utf-8")


def test_append_is_on_disk_before_return_and_minute_closes(tmp_path: Path, clock: Clock) -> None:
    store = store_at(tmp_path, clock)
    minute = store.minute_key()
    assert minute == "202611200930"
    store.append("telemetry", "ctwing", minute, b'{"n":1}')
    store.append("access_events", "310107001001", minute, b'{"n":2}')
    part = tmp_path / "telemetry/2026-11-20/ctwing/.push-202611200930-c1.ndjson.part"
    assert part.read_bytes() == b'{"n":1}\n'  # written (and fsynced) before append returned
    assert store.open_files == 2
    assert store.close_due(T0 + 50) == []  # 09:31:00 + 5 s grace not reached
    closed = store.close_due(T0 + 56)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in closed) == [
        "access_events/2026-11-20/310107001001/push-202611200930-c1.ndjson",
        "telemetry/2026-11-20/ctwing/push-202611200930-c1.ndjson"]
    assert (tmp_path / "telemetry/2026-11-20/ctwing/push-202611200930-c1.ndjson").read_bytes() == b'{"n":1}\n'
    assert parts(tmp_path) == [] and store.open_files == 0
    store.close()
    counters = json.loads((tmp_path / "_wire/collector/c1.json").read_text())
    assert counters["files_closed"] == 2


def test_day_is_the_local_day_of_the_minute(tmp_path: Path, clock: Clock) -> None:
    clock.t = datetime(2026, 11, 19, 16, 0, 30, tzinfo=ZoneInfo("UTC")).timestamp()  # 00:00:30 local, next day
    with store_at(tmp_path, clock) as store:
        store.append("parking", "310107001001", store.minute_key(), b"{}")
    assert (tmp_path / "parking/2026-11-20/310107001001/push-202611200000-c1.ndjson").is_file()


def test_minute_rollover_and_late_lines(tmp_path: Path, clock: Clock) -> None:
    store = store_at(tmp_path, clock)
    first = store.minute_key()
    store.append("telemetry", "iotda", first, b"1")
    clock.t = T0 + 52  # 09:31:02: a new minute, the old one still within its grace
    second = store.minute_key()
    assert second == "202611200931"
    store.append("telemetry", "iotda", second, b"2")
    store.append("telemetry", "iotda", first, b"late but within the grace")
    clock.t = T0 + 60
    assert [p.name for p in store.close_due()] == ["push-202611200930-c1.ndjson"]
    # a push received in 09:30 but held up past the grace lands in the current minute's file
    store.append("telemetry", "iotda", first, b"too late")
    store.close()
    folder = tmp_path / "telemetry/2026-11-20/iotda"
    assert (folder / "push-202611200930-c1.ndjson").read_bytes() == b"1\nlate but within the grace\n"
    assert (folder / "push-202611200931-c1.ndjson").read_bytes() == b"2\ntoo late\n"


def test_group_commit_every_line_once(tmp_path: Path, clock: Clock) -> None:
    store = store_at(tmp_path, clock)
    minute = store.minute_key()

    def sender(t: int) -> None:
        for i in range(50):
            store.append("telemetry", "ctwing", minute, json.dumps({"t": t, "i": i}).encode())

    threads = [threading.Thread(target=sender, args=(t,)) for t in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    lines = (tmp_path / "telemetry/2026-11-20/ctwing/push-202611200930-c1.ndjson").read_bytes().splitlines()
    assert sorted(lines) == sorted(json.dumps({"t": t, "i": i}).encode() for t in range(16) for i in range(50))
    assert store.metrics.fsync.n < len(lines)  # appends shared their fsyncs


def test_recovery_drops_torn_tail_and_renames(tmp_path: Path, clock: Clock) -> None:
    folder = tmp_path / "access_events/2026-11-19/310107001001"
    folder.mkdir(parents=True)
    (folder / ".push-202611192359-c1.ndjson.part").write_bytes(b'{"a":1}\n{"a":2}\n{"a":3,"tor')
    (folder / ".push-202611192358-c1.ndjson.part").write_bytes(b'{"a":0}\n\x00\x00\x00{"x"}\n{"a":9}\n')
    (folder / ".push-202611192357-c1.ndjson.part").write_bytes(b'{"only":"torn')
    (folder / ".push-202611192359-other.ndjson.part").write_bytes(b"another collector's\n")
    vp = tmp_path / "vehicle_passages/2026-11-19/310107001001"
    vp.mkdir(parents=True)
    (vp / ".push-202611192359-c1-000003.json.abc123.tmp").write_bytes(b"{half")
    store = store_at(tmp_path, clock)
    assert sorted(p.name for p in store.recovered) == ["push-202611192358-c1.ndjson", "push-202611192359-c1.ndjson"]
    assert (folder / "push-202611192359-c1.ndjson").read_bytes() == b'{"a":1}\n{"a":2}\n'
    assert (folder / "push-202611192358-c1.ndjson").read_bytes() == b'{"a":0}\n{"a":9}\n'
    assert not (folder / ".push-202611192357-c1.ndjson.part").exists()  # nothing complete in it: removed
    assert (folder / ".push-202611192359-other.ndjson.part").exists()  # not ours
    assert list(vp.iterdir()) == []
    assert store.metrics.torn_bytes_dropped > 0
    # the document sequence goes on after what is on disk
    (vp / "push-202611192359-c1-000007.json").write_bytes(b"{}")
    assert store.write_document("vehicle_passages", "310107001001", "202611192359", b"{}").name == \
        "push-202611192359-c1-000008.json"
    store.close()


def test_recovery_adopts_the_open_minute_and_never_overwrites(tmp_path: Path, clock: Clock) -> None:
    folder = tmp_path / "telemetry/2026-11-20/ctwing"
    folder.mkdir(parents=True)
    (folder / ".push-202611200930-c1.ndjson.part").write_bytes(b"1\n2\n3-torn")
    store = store_at(tmp_path, clock)  # a restart within the same minute
    assert store.recovered == [] and store.open_files == 1
    store.append("telemetry", "ctwing", store.minute_key(), b"4")
    store.close()  # shutdown closes the minute early...
    assert (folder / "push-202611200930-c1.ndjson").read_bytes() == b"1\n2\n4\n"
    store = store_at(tmp_path, clock)  # ...and a restart still in that minute writes beside it
    store.append("telemetry", "ctwing", store.minute_key(), b"5")
    store.close()
    assert (folder / "push-202611200930-c1.ndjson").read_bytes() == b"1\n2\n4\n"
    assert (folder / "push-202611200930-c1-1.ndjson").read_bytes() == b"5\n"


def test_one_process_per_collector_id(tmp_path: Path, clock: Clock) -> None:
    store = store_at(tmp_path, clock)
    with pytest.raises(StoreBusy):
        store_at(tmp_path, clock)
    store_at(tmp_path, clock, "c2").close()
    store.close()
    store_at(tmp_path, clock).close()  # released
    with pytest.raises(StoreError):
        MinuteStore(tmp_path, "bad-id")


def test_a_failed_write_is_not_acknowledged(tmp_path: Path, clock: Clock) -> None:
    (tmp_path / "telemetry").mkdir()
    (tmp_path / "telemetry" / "2026-11-20").write_bytes(b"a file where the day folder should be")
    store = store_at(tmp_path, clock)
    with pytest.raises(WriteFailed):
        store.append("telemetry", "ctwing", store.minute_key(), b"{}")
    assert store.metrics.fsync_errors == 1
    store.close()
