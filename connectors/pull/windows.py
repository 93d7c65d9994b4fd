"""Time windows of a local day, and the cursor that remembers how far each scope was pulled."""

from __future__ import annotations

import fcntl
import json
import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from connectors.landing import write_atomic


@dataclass(frozen=True)
class Window:
    start_ms: int  # what the query asks for: [start_ms, end_ms), the overlap included
    end_ms: int
    own_start_ms: int  # the part of the day this window is responsible for (names the file)

    def name(self, tz: ZoneInfo) -> str:
        if self.own_start_ms >= self.end_ms:  # the closing pass owns nothing new: it only catches late arrivals
            return f"late-{_hhmm(self.start_ms, tz, False)}-{_hhmm(self.end_ms, tz, True)}"
        return f"{_hhmm(self.own_start_ms, tz, False)}-{_hhmm(self.end_ms, tz, True)}"


def _hhmm(ms: int, tz: ZoneInfo, is_end: bool) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz)
    if is_end and moment.hour == 0 and moment.minute == 0:
        return "2400"
    return moment.strftime("%H%M")


def day_bounds(day: date, tz: ZoneInfo) -> tuple[int, int]:
    start = datetime.combine(day, time(0), tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tz)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def day_windows(day: date, tz: ZoneInfo, minutes: int, overlap_minutes: int, until_ms: int | None = None,
                from_ms: int | None = None) -> list[Window]:
    """The day in ``minutes`` windows, each also reaching ``overlap_minutes`` back (late arrivals), and a closing
    window over the day's last ``overlap_minutes`` (what arrived late in the last window). Only windows that end
    by ``until_ms`` (now minus the platform's settling time) and start at or after ``from_ms`` (the cursor)."""
    if minutes <= 0 or overlap_minutes < 0 or 1440 % minutes:
        raise ValueError(f"window of {minutes} min must divide the day; overlap {overlap_minutes} min must be >= 0")
    start, end = day_bounds(day, tz)
    step, back = minutes * 60_000, overlap_minutes * 60_000
    out = [Window(max(start, s - back), s + step, s) for s in range(start, end, step)]
    if back:
        out.append(Window(end - back, end, end))  # closing pass: named <2400>-<2400>
    until = end if until_ms is None else min(end, until_ms)
    return [w for w in out if w.end_ms <= until and (from_ms is None or w.own_start_ms >= from_ms)]


class Cursor:
    """``data/connectors/cursors/<source>.json``: per scope, the end of the last window landed (epoch ms)."""

    def __init__(self, root: Path, source: str) -> None:
        self.path = root / f"{source}.json"
        self._lock = threading.Lock()  # scopes are pulled in threads: read-modify-write under one lock

    def load(self) -> dict[str, int]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError:
            return {}  # a cursor that cannot be read costs a re-pull, never a gap
        return {str(k): int(v) for k, v in raw.items() if isinstance(v, int)}

    def advance(self, scope: str, until_ms: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # and across processes (two pulls of one source)
            state = self.load()
            if until_ms > state.get(scope, 0):
                state[scope] = until_ms
                write_atomic(self.path, json.dumps(state, sort_keys=True, indent=1).encode())
