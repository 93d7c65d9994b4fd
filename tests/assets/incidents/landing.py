"""A small landing zone in the real vendor shapes, for the incident engine's tests.

Telemetry is CTWing ``dataReport`` pushes of the LiAn NB smoke detector (the published thing model of
tests/fixtures/vendors/ctwing/lian_smoke_alarm.ndjson: ``Alarm_Status`` 1 alarm, 7 normal, 2 silenced), written
as the collector writes them (``.push-<minute>-<collector>.ndjson.part`` while the minute is open, then renamed);
doors are ISC ``OnEventNotify`` envelopes (tests/fixtures/vendors/hikvision_isc) with a forced-door event.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vendors"
TZ = ZoneInfo("Asia/Shanghai")
DAY = "2026-11-20"
SMOKE = "acf7baaee65e431eadfb8f5fe50e8b81"  # building 310107001001-B01 in the fixture registry
_TEMPLATE = json.loads((FIXTURES / "ctwing" / "lian_smoke_alarm.ndjson").read_text().splitlines()[0])
ON, OFF, SILENCED = 1, 7, 2


def local(hhmm: str, day: str = DAY, second: int = 0) -> datetime:
    h, m = map(int, hhmm.split(":"))
    return datetime.fromisoformat(day).replace(hour=h, minute=m, tzinfo=TZ) + timedelta(seconds=second)


class Landing:
    def __init__(self, root: Path, extra_smoke: int = 0) -> None:
        self.root = root
        self.seq = 0
        reg = root / "device_registry" / "2026-01-01"
        reg.mkdir(parents=True)
        text = (FIXTURES / "ctwing" / "registry.csv").read_text()
        extra = "".join(f"{self.smoke_id(i)},ctwing,310107001001,梅岭新村1,长寿路街道,310107001001-B{i % 9 + 1:02d},"
                        f"smoke,LA-NB-SMOKE,2024-03-01,3600\n" for i in range(extra_smoke))
        (reg / "devices.csv").write_text(text.rstrip("\n") + "\n" + extra)
        sites = root / "sites" / "2026-01-01"
        sites.mkdir(parents=True)
        shutil.copy(FIXTURES / "hikvision_isc" / "doors.csv", sites / "doors.csv")

    @staticmethod
    def smoke_id(i: int) -> str:
        return f"{i:032x}"

    @staticmethod
    def smoke_line(device: str, at: datetime, status: int) -> str:
        msg = json.loads(json.dumps(_TEMPLATE))
        msg["deviceId"] = device
        msg["timestamp"] = int(at.timestamp() * 1000)
        msg["payload"]["serviceData"]["Alarm_Status"] = status
        msg["payload"]["serviceData"]["AlarmLevel"] = 100 if status == ON else 0
        return json.dumps(msg, separators=(",", ":"))

    def push(self, lines: list[str], *, day: str = DAY, minute: str = "202611201000", open_: bool = False,
             source: str = "telemetry", folder: str = "ctwing", collector: str = "c1") -> Path:
        """Append lines to a minute file (open: the hidden .part the collector appends to)."""
        d = self.root / source / day / folder
        d.mkdir(parents=True, exist_ok=True)
        name = f"push-{minute}-{collector}.ndjson"
        path = d / (f".{name}.part" if open_ else name)
        with path.open("a", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in lines))
        return path

    def close(self, part: Path) -> Path:
        final = part.with_name(part.name[1:-5])
        part.rename(final)
        return final

    def pulled(self, lines: list[str], *, day: str = DAY, source: str = "telemetry", folder: str = "ctwing") -> Path:
        """A pulled window file (written whole)."""
        self.seq += 1
        d = self.root / source / day / folder
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"pull-{self.seq:04d}.ndjson"
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return path

    @staticmethod
    def forced_door(event_id: str, at: datetime, door: str = "73fc53c972f64019b04a636c5757489a") -> str:
        return json.dumps({"method": "OnEventNotify", "params": {"ability": "event_acs", "events": [{
            "data": {"ExtEventCardNo": "", "ExtEventDoorID": 1, "ExtEventInOut": 1, "ExtEventPersonNo": "",
                     "ExtEventReaderID": 1, "Seq": 1, "svrIndexCode": ""},
            "eventId": event_id, "eventType": 199428, "happenTime": at.isoformat(timespec="milliseconds"),
            "srcIndex": door, "srcName": "东门", "srcParentIndex": "1c4bedc887954edbade674adfeb4dfcd",
            "srcType": "door", "status": 0, "timeout": 0}],
            "sendTime": (at + timedelta(seconds=1)).isoformat(timespec="milliseconds")}},
            ensure_ascii=False, separators=(",", ":"))
