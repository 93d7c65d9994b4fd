"""The incident engine: alarm episodes and forced doors, detected as the landing zone grows, as versions to publish.

Each ``advance`` reads what landed since its cursor (new bytes of the collector's open minute files, whole files
otherwise), parses them with the domains' own parsers (``assets.telemetry.parse.parse_batch``,
``assets.access.parse.parse_batch``: the daily path's adapters, no second parser), keeps the alarm readings and
forced-door events, and re-derives the episodes of the device groups it touched with the daily path's rule
(``assets/telemetry/alarm_flags.sql``). Comparing them with what it knew gives the state changes:

* a new episode opens an incident (version 1, ``opened``, or ``cleared`` when it is first seen already over);
* a clear closes it (``cleared``); while it stays on, an ``updated`` version at most every ``update_every_s``
  of event time (a smoke alarm repeating every 30 s is one incident with a few updates, not 120 incidents);
* late data that shows an episode did not exist as published (a late "off" reading splitting it, a late "on"
  moving its start) withdraws it (``withdrawn``) and opens the episodes that did exist;
* a forced door is one incident per door event (opened, never cleared).

Incidents are **day-local episodes**, as the daily ``silver/device_alarms`` counts them: an alarm still on at
midnight opens the next day's incident, which names the one it ``continues``. So the day's
``gold/security_events`` equals the union of the day's incidents, which the blocking check
``matches_incidents`` proves.

State (cursors, readings, incidents, versions) is one DuckDB file under ``<data>/incidents/`` written in one
transaction per advance, under an exclusive ``flock``: a process killed mid-advance leaves the previous state and
the same bytes are read again; a restart mid-episode continues it. Versions carry only the contract's columns
(``exports/contracts/public_security/incidents.yaml``): building, minute, no device id, no token, no person.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from assets.access import parse as access_parse
from assets.access.datasets import SECURITY_EVENTS  # the daily table the incidents must equal
from assets.telemetry import parse as telemetry_parse
from assets.telemetry.datasets import SECURITY_ALARM_TYPES
from kernel.duckdb_io import ASYNC_OFF
from kernel.ndjson import LINE_SCHEMA, community_of, read_lines
from kernel.settings import Settings
from kernel.sqlfile import render
from kernel.tokens import Tokenizer, encode_digest

HERE = Path(__file__).parent
SOURCES = ("telemetry", "access_events")
# the silver metrics whose episodes are security alarms (alarm_flags.sql maps them to alarm types)
ALARM_METRICS = {"smoke_alarm": "smoke", "gas_alarm": "gas", "sos": "sos", "fall": "fall",
                 "intrusion": "fence_intrusion", "cover_open": "manhole_open"}
assert set(ALARM_METRICS.values()) == set(SECURITY_ALARM_TYPES)
INCIDENT_TYPES = (*SECURITY_ALARM_TYPES, "forced_door")
STATUSES = ("opened", "updated", "cleared", "withdrawn")
LATE_AFTER_S = 600  # first detected this long after its start: counted as late
UPDATE_EVERY_S = 300  # at most one `updated` version per incident per 5 minutes of event time
# landing bytes (compressed, for a .gz file) read per advance; a backlog is worked off over several. Reading a
# 60-community day cold: 64 MB took 38.7 s in 2 advances at 2.7 GB peak RSS; 16 MB 35.8 s in 6 at 1.5 GB; 8 MB 44.1 s
# in 12 at 1.0 GB (docs/benchmarks.md)
MAX_BYTES = 16 * 1024 * 1024
KEEP_DAYS = 7  # alarm readings kept this many days before the newest day seen (incidents and versions stay)
RECORD_COLUMNS = ("incident_id", "version", "status", "event_type", "source", "community_id", "building_id",
                  "stat_date", "started_minute", "last_seen_minute", "cleared_minute", "reports", "late", "continues",
                  "detected_at")

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (path VARCHAR PRIMARY KEY, source VARCHAR, day DATE, offset_bytes BIGINT,
    lines BIGINT, done BOOLEAN);
CREATE TABLE IF NOT EXISTS readings (day DATE, device_id VARCHAR, metric VARCHAR, value DOUBLE, event_ts TIMESTAMPTZ,
    community_id VARCHAR, building_id VARCHAR, device_type VARCHAR, first_seen TIMESTAMPTZ,
    PRIMARY KEY (day, device_id, metric, event_ts, value));
CREATE TABLE IF NOT EXISTS doors_forced (day DATE, event_id VARCHAR, status INTEGER, event_ts TIMESTAMPTZ,
    community_id VARCHAR, building_id VARCHAR, first_seen TIMESTAMPTZ, PRIMARY KEY (day, event_id, status));
CREATE TABLE IF NOT EXISTS incidents (incident_id VARCHAR PRIMARY KEY, day DATE, grp VARCHAR, start_ts TIMESTAMPTZ,
    event_type VARCHAR, source VARCHAR, community_id VARCHAR, building_id VARCHAR, last_seen_ts TIMESTAMPTZ,
    cleared_ts TIMESTAMPTZ, reports BIGINT, late BOOLEAN, continues VARCHAR, status VARCHAR, version INTEGER,
    published_seen_ts TIMESTAMPTZ, first_seen TIMESTAMPTZ);
CREATE SEQUENCE IF NOT EXISTS version_seq;
CREATE TABLE IF NOT EXISTS versions (seq BIGINT PRIMARY KEY, incident_id VARCHAR, version INTEGER, status VARCHAR,
    day DATE, record VARCHAR, detected_at TIMESTAMPTZ, published_at TIMESTAMPTZ, receipt VARCHAR);
"""


@dataclass
class Advance:
    """What one ``advance`` did."""

    files: int = 0
    lines: int = 0
    bytes: int = 0
    readings: int = 0
    doors: int = 0
    versions: dict[str, int] = field(default_factory=dict)
    late: int = 0
    stale: int = 0  # lines of days older than KEEP_DAYS (their readings are pruned): not re-evaluated
    backlog: bool = False  # stopped at MAX_BYTES with more to read
    seconds: float = 0.0

    @property
    def new_versions(self) -> int:
        return sum(self.versions.values())


def _minute(ts: Any) -> str | None:
    return None if ts is None else ts.strftime("%Y-%m-%dT%H:%M:00")


class IncidentEngine:
    def __init__(self, settings: Settings, *, late_after_s: float = LATE_AFTER_S,
                 update_every_s: float = UPDATE_EVERY_S, max_bytes: int = MAX_BYTES,
                 keep_days: int = KEEP_DAYS) -> None:
        self.settings = settings
        self.landing = settings.landing_dir
        self.tz = settings.timezone
        self.dir = settings.incidents_dir
        self.path = self.dir / "state.duckdb"
        self.late_after_s, self.update_every_s, self.max_bytes = late_after_s, update_every_s, max_bytes
        self.keep_days = keep_days
        tokens = Tokenizer.from_settings(settings, "incidents")
        # an opaque, keyed id: not reversible to the device or door it came from
        self._id_key = hashlib.sha256(b"neuron/incident-id/" + tokens.token("incident-key", "location").encode()
                                      ).digest()
        self._tokenizers = {d: Tokenizer.from_settings(settings, d) for d in ("telemetry", "access")}

    # --- state ---------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def state(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The state database, exclusively (one process at a time: the sensor, a run, the daily check)."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.dir / "engine.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            con = duckdb.connect(str(self.path), config={"threads": 2, "memory_limit": "1GB", **ASYNC_OFF})
            try:
                con.execute(f"SET TimeZone = '{self.tz}'")
                for stmt in SCHEMA.strip().split(";"):
                    if stmt.strip():
                        con.execute(stmt)
                yield con
            finally:
                con.close()
        finally:
            os.close(fd)

    def incident_id(self, grp: str, start_ms: int) -> str:
        """32 characters of base32 (a-z, 2-7) with digit runs broken, as tokens are: never phone- or ID-shaped."""
        return encode_digest(hmac.new(self._id_key, f"{grp}|{start_ms}".encode(), hashlib.sha256).digest())

    # --- reading the landing zone --------------------------------------------------------------------------------

    def _candidates(self) -> list[tuple[str, str, Path, str]]:
        """(source, day, path, key) of every landing file of the two sources; key = the name a closed file has
        (an open ``.push-…ndjson.part`` and the ``push-…ndjson`` it is renamed to are one file)."""
        out = []
        for source in SOURCES:
            root = self.landing / source
            if not root.is_dir():
                continue
            for day_dir in sorted(p for p in root.iterdir() if p.is_dir() and len(p.name) == 10):
                for f in sorted(day_dir.glob("*/*")):
                    name = f.name
                    if name.startswith(".push-") and name.endswith(".ndjson.part"):
                        key = f"{f.parent.relative_to(self.landing)}/{name[1:-5]}"
                    elif name.endswith((".ndjson", ".ndjson.gz")) and not name.startswith("."):
                        key = str(f.relative_to(self.landing))
                    else:
                        continue
                    out.append((source, day_dir.name, f, key))
        return out

    def _new_lines(self, con: duckdb.DuckDBPyConnection, result: Advance
                   ) -> tuple[dict[tuple[str, str], list[pl.DataFrame]], list[tuple]]:
        """New complete lines per (source, day), and the cursor rows to write once they are processed."""
        known = {p: (o, n, d) for p, o, n, d in con.execute(
            "SELECT path, offset_bytes, lines, done FROM files").fetchall()}
        frames: dict[tuple[str, str], list[pl.DataFrame]] = {}
        cursors: list[tuple] = []
        budget = self.max_bytes
        for source, day, f, key in self._candidates():
            offset, lines, done = known.get(key, (0, 0, False))
            if done:
                continue
            if budget <= 0:
                result.backlog = True
                break
            part = f.name.endswith(".part")
            if f.name.endswith(".gz"):
                # written whole (atomic rename): read once, quarantined as unreadable by the daily path if bad
                frame = read_lines([f], self.landing)
                frame = frame.with_columns(pl.lit(key).alias("source_file"))
                frames.setdefault((source, day), []).append(frame.filter(pl.col("line").is_not_null()))
                cursors.append((key, source, day, 0, frame.height, True))
                budget -= f.stat().st_size
                result.files += 1
                continue
            try:
                with f.open("rb") as fh:
                    fh.seek(offset)
                    data = fh.read(budget)
                    limited = len(data) == budget  # the budget, not the file, ended this read
                    if limited and b"\n" not in data:
                        data += fh.readline()  # one line longer than what is left of the budget: read it whole
                        limited = bool(fh.read(1))
            except FileNotFoundError:  # renamed between the listing and the read: the next advance reads it
                continue
            if limited:
                result.backlog = True  # the rest of this file (and the files after it) wait for the next advance
                budget = 0
            end = data.rfind(b"\n") + 1
            if not part and end < len(data) and not limited:
                end = len(data)  # a closed file's last line without its newline
            chunk = data[:end]
            if chunk:
                text = chunk.decode("utf-8", "backslashreplace").removeprefix("\ufeff" if offset == 0 else "")
                raw = text.split("\n")
                if raw and raw[-1] == "":
                    raw.pop()
                numbers = range(lines + 1, lines + 1 + len(raw))
                frame = pl.DataFrame({"source_file": key, "source_line": list(numbers),
                                      "community_id": community_of(self.landing / key), "line": raw,
                                      "file_error": None}, schema=LINE_SCHEMA)
                frame = frame.with_columns(pl.col("line").str.strip_suffix("\r")).filter(
                    pl.col("line").str.strip_chars() != "")
                frames.setdefault((source, day), []).append(frame)
                result.files += 1
                budget -= len(chunk)
                result.bytes += len(chunk)
                lines += len(raw)
            cursors.append((key, source, day, offset + len(chunk), lines, not part and offset + len(chunk) >= (
                f.stat().st_size if f.exists() else 0)))
        return frames, cursors

    def _registry(self, con: duckdb.DuckDBPyConnection, source: str, filename: str, day: str, view: str) -> bool:
        snaps = sorted(p for p in (self.landing / source).glob(f"*/{filename}") if p.parent.name <= day)
        if not snaps:
            return False
        con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM read_csv('{snaps[-1]}', header=true, "
                    "all_varchar=true)")
        return True

    def _parse(self, con: duckdb.DuckDBPyConnection, source: str, day: str, lines: pl.DataFrame,
               now: datetime) -> tuple[int, list[tuple]]:
        """Parse one (source, day) batch; store its alarm readings or forced doors; returns (rows, touched groups)."""
        if source == "telemetry":
            if not self._registry(con, "device_registry", "devices.csv", day, "registry"):
                return 0, []
            telemetry_parse.load_vocabulary(con)
            tok = self._tokenizers["telemetry"]
            telemetry_parse.parse_batch(con, lines, day, self.tz, lambda v: tok.tokenize_series(v, "person"))
            metrics = ", ".join(f"'{m}'" for m in ALARM_METRICS)
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE new_readings AS
                SELECT DISTINCT DATE '{day}' AS day, r.device_id, r.metric, r.value, r.event_ts, g.community_id,
                    g.building_id, g.device_type, TIMESTAMPTZ '{now.isoformat()}' AS first_seen
                FROM records r JOIN (SELECT DISTINCT ON (device_id) * FROM registry) g USING (device_id)
                WHERE r.reason IS NULL AND NOT r.dup_in_file AND r.metric IN ({metrics})
                    AND NOT EXISTS (SELECT 1 FROM readings x WHERE x.day = DATE '{day}' AND x.device_id = r.device_id
                        AND x.metric = r.metric AND x.event_ts = r.event_ts AND x.value = r.value)""")
            con.execute("INSERT INTO readings BY NAME SELECT * FROM new_readings")
            touched = con.execute("SELECT DISTINCT day, device_id || '|' || metric FROM new_readings").fetchall()
            return con.execute("SELECT count(*) FROM new_readings").fetchall()[0][0], touched
        if not self._registry(con, "sites", "doors.csv", day, "doors"):
            return 0, []
        access_parse.load_vocabulary(con)
        tok = self._tokenizers["access"]
        access_parse.parse_batch(con, lines, day, self.tz, lambda v, t: tok.tokenize_series(v, t))
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE new_doors AS
            SELECT DISTINCT ON (b.event_id, b.status) DATE '{day}' AS day, b.event_id, b.status, b.event_ts,
                d.community_id, d.building_id, TIMESTAMPTZ '{now.isoformat()}' AS first_seen
            FROM batch_bronze b JOIN (SELECT DISTINCT ON (door_id) * FROM doors) d ON d.door_id = b.door_id
            WHERE b.event_kind = 'door_forced'
                AND NOT EXISTS (SELECT 1 FROM doors_forced x WHERE x.day = DATE '{day}' AND x.event_id = b.event_id
                    AND x.status = b.status)""")
        con.execute("INSERT INTO doors_forced BY NAME SELECT * FROM new_doors")
        touched = con.execute("SELECT DISTINCT day, 'door|' || event_id FROM new_doors").fetchall()
        return con.execute("SELECT count(*) FROM new_doors").fetchall()[0][0], touched

    # --- episodes and versions -----------------------------------------------------------------------------------

    def _episodes(self, con: duckdb.DuckDBPyConnection, touched: list[tuple]) -> list[dict]:
        """The current episodes (and forced doors) of the touched groups."""
        frame = pl.DataFrame({"day": [d for d, _ in touched], "grp": [g for _, g in touched]},
                             schema={"day": pl.Date, "grp": pl.String})
        con.register("touched_df", frame)
        try:
            con.execute("CREATE OR REPLACE TEMP TABLE touched AS SELECT DISTINCT * FROM touched_df")
        finally:
            con.unregister("touched_df")
        con.execute("""CREATE OR REPLACE TEMP VIEW silver AS
            SELECT r.* REPLACE (CAST(r.day AS VARCHAR) || '/' || r.device_id AS device_id), t.grp
            FROM readings r JOIN touched t ON t.day = r.day AND t.grp = r.device_id || '|' || r.metric""")
        episodes = con.sql(render(HERE / "episodes.sql", alarm_flags=telemetry_parse.alarm_flags_sql())).pl()
        doors = con.sql("""
            SELECT f.day, 'door|' || f.event_id AS grp, arg_max(f.event_ts, f.status) AS start_ts,
                arg_max(f.community_id, f.status) AS community_id, arg_max(f.building_id, f.status) AS building_id,
                min(f.first_seen) AS first_seen
            FROM doors_forced f JOIN touched t ON t.day = f.day AND t.grp = 'door|' || f.event_id
            GROUP BY ALL""").pl()
        out = []
        for e in episodes.iter_rows(named=True):
            out.append({"day": e["day"], "grp": e["grp"], "start_ts": e["start_ts"],
                        "event_type": e["alarm_type"],
                        "source": "e_fence" if e["alarm_type"] == "fence_intrusion" else "iot_alarm",
                        "community_id": e["community_id"], "building_id": e["building_id"],
                        "last_seen_ts": e["last_on_ts"], "cleared_ts": e["cleared_ts"], "reports": e["reports"],
                        "first_of_day": e["first_of_day"], "first_seen": e["first_seen"]})
        for d in doors.iter_rows(named=True):
            out.append({**d, "event_type": "forced_door", "source": "access_control", "last_seen_ts": d["start_ts"],
                        "cleared_ts": None, "reports": 1, "first_of_day": False})
        return out

    def _continues(self, con: duckdb.DuckDBPyConnection, ep: dict) -> str | None:
        """The previous day's incident of this device and metric, when it was still open at midnight."""
        if not ep["first_of_day"] or ep["event_type"] == "forced_door":
            return None
        row = con.execute("""SELECT incident_id FROM incidents WHERE grp = ? AND day = ?::DATE - 1
            AND status <> 'withdrawn' ORDER BY start_ts DESC LIMIT 1""", [ep["grp"], ep["day"]]).fetchall()
        if not row:
            return None
        still_on = con.execute("SELECT cleared_ts IS NULL FROM incidents WHERE incident_id = ?", [row[0][0]]
                               ).fetchall()[0][0]
        return row[0][0] if still_on else None

    def _emit(self, con: duckdb.DuckDBPyConnection, inc: dict, status: str, now: datetime, result: Advance) -> None:
        inc["version"] = int(inc.get("version") or 0) + 1
        inc["status"] = status
        local = {k: (None if inc[k] is None else inc[k].astimezone(self._zone)) for k in
                 ("start_ts", "last_seen_ts", "cleared_ts")}
        record = {
            "incident_id": inc["incident_id"], "version": inc["version"], "status": status,
            "event_type": inc["event_type"], "source": inc["source"], "community_id": inc["community_id"],
            "building_id": inc["building_id"], "stat_date": inc["day"].isoformat(),
            "started_minute": _minute(local["start_ts"]), "last_seen_minute": _minute(local["last_seen_ts"]),
            "cleared_minute": _minute(local["cleared_ts"]), "reports": int(inc["reports"]), "late": bool(inc["late"]),
            "continues": inc["continues"], "detected_at": now.isoformat(timespec="milliseconds"),
        }
        con.execute("INSERT INTO versions VALUES (nextval('version_seq'), ?, ?, ?, ?, ?, ?, NULL, NULL)",
                    [inc["incident_id"], inc["version"], status, inc["day"], json.dumps(record, ensure_ascii=False),
                     now])
        inc["published_seen_ts"] = inc["last_seen_ts"]
        result.versions[status] = result.versions.get(status, 0) + 1

    _INC_COLS = ("incident_id", "day", "grp", "start_ts", "event_type", "source", "community_id", "building_id",
                 "last_seen_ts", "cleared_ts", "reports", "late", "continues", "status", "version",
                 "published_seen_ts", "first_seen")

    def _save(self, con: duckdb.DuckDBPyConnection, inc: dict) -> None:
        cols = self._INC_COLS
        con.execute(f"INSERT OR REPLACE INTO incidents ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    [inc[c] for c in cols])

    def _diff(self, con: duckdb.DuckDBPyConnection, touched: list[tuple], now: datetime, result: Advance) -> None:
        if not touched:
            return
        current = self._episodes(con, touched)
        known = con.execute(f"""SELECT {', '.join('i.' + c for c in self._INC_COLS)} FROM incidents i
            JOIN touched t ON t.day = i.day AND t.grp = i.grp ORDER BY i.start_ts""").fetchall()
        by_key = {(r[1], r[2], r[3]): dict(zip(self._INC_COLS, r, strict=True)) for r in known}
        seen = set()
        for ep in sorted(current, key=lambda e: (e["start_ts"], e["grp"])):
            key = (ep["day"], ep["grp"], ep["start_ts"])
            seen.add(key)
            inc = by_key.get(key)
            if inc is None:
                start_ms = int(ep["start_ts"].timestamp() * 1000)
                inc = {**{c: None for c in self._INC_COLS}, **{k: ep[k] for k in (
                    "day", "grp", "start_ts", "event_type", "source", "community_id", "building_id", "last_seen_ts",
                    "cleared_ts", "reports")}, "incident_id": self.incident_id(ep["grp"], start_ms),
                    "first_seen": now, "version": 0}
                inc["late"] = (now - ep["start_ts"]).total_seconds() > self.late_after_s
                inc["continues"] = self._continues(con, ep)
                result.late += int(inc["late"])
                self._emit(con, inc, "cleared" if ep["cleared_ts"] is not None else "opened", now, result)
                self._save(con, inc)
                continue
            if inc["status"] == "withdrawn":
                # later data brought the episode back (an "off" that split it was followed by a reading that joins
                # it again, in any arrival order): the same incident is reinstated by its next version
                inc.update({k: ep[k] for k in ("community_id", "building_id", "last_seen_ts", "cleared_ts",
                                               "reports")})
                self._emit(con, inc, "cleared" if ep["cleared_ts"] is not None else "opened", now, result)
                self._save(con, inc)
                continue
            changed_place = (ep["community_id"], ep["building_id"]) != (inc["community_id"], inc["building_id"])
            was_cleared = inc["cleared_ts"]
            inc.update({k: ep[k] for k in ("community_id", "building_id", "last_seen_ts", "cleared_ts", "reports")})
            if ep["cleared_ts"] is not None and ep["cleared_ts"] != was_cleared:
                self._emit(con, inc, "cleared", now, result)
            elif ep["cleared_ts"] is None and was_cleared is not None:
                self._emit(con, inc, "updated", now, result)  # its clear was not one (not expected)
            elif changed_place or (ep["cleared_ts"] is None and inc["published_seen_ts"] is not None and (
                    ep["last_seen_ts"] - inc["published_seen_ts"]).total_seconds() >= self.update_every_s):
                self._emit(con, inc, "updated", now, result)
            self._save(con, inc)
        for key, inc in by_key.items():
            if key not in seen and inc["status"] != "withdrawn":
                self._emit(con, inc, "withdrawn", now, result)
                self._save(con, inc)

    # --- the public verbs ----------------------------------------------------------------------------------------

    @property
    def _zone(self):  # noqa: ANN202
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.tz)

    def advance(self, now: datetime | None = None) -> Advance:
        """Read what landed since the cursor and record the incidents' new versions (one transaction)."""
        started = time.monotonic()
        result = Advance()
        with self.state() as con:
            now = now or datetime.now(UTC)
            frames, cursors = self._new_lines(con, result)
            con.execute("BEGIN")
            try:
                touched: list[tuple] = []
                # days are kept relative to the newest day seen, not the wall clock: a replay of a past day works
                newest = max([d for _, d in frames] + [str(d) for (d,) in con.execute(
                    "SELECT max(day) FROM readings").fetchall() if d is not None] or ["0000-00-00"])
                cutoff = (date.fromisoformat(newest) - timedelta(days=self.keep_days)).isoformat() \
                    if newest != "0000-00-00" else newest
                for (source, day), parts in sorted(frames.items()):
                    lines = pl.concat(parts)
                    result.lines += lines.height
                    if lines.height == 0:
                        continue
                    if day < cutoff:  # its readings are pruned: re-deriving its episodes would withdraw them
                        result.stale += lines.height
                        continue
                    n, groups = self._parse(con, source, day, lines, now)
                    if source == "telemetry":
                        result.readings += n
                    else:
                        result.doors += n
                    touched.extend(groups)
                self._diff(con, touched, now, result)
                for row in cursors:
                    con.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)", list(row))
                for table in ("readings", "doors_forced"):  # file cursors stay: an old file is never re-read
                    con.execute(f"DELETE FROM {table} WHERE day < DATE '{cutoff}'")
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        result.seconds = time.monotonic() - started
        return result

    def catch_up(self) -> list[Advance]:
        """Advance until nothing that has landed is left unread (a backlog takes several advances); returns each
        advance, in order."""
        done = [self.advance()]
        while done[-1].backlog:
            done.append(self.advance())
        return done

    def unread(self, day: str) -> tuple[int, int]:
        """(files, bytes) of the day's closed landing files the engine has not read to their end: (0, 0) once it
        has caught up with the day (an open ``.part`` minute file is still being written and is not counted)."""
        files = [(key, f) for _, d, f, key in self._candidates() if d == day and not f.name.endswith(".part")]
        if not files:
            return 0, 0
        with self.state() as con:
            done = {p for (p,) in con.execute("SELECT path FROM files WHERE done AND day = ?", [day]).fetchall()}
        left = [f for key, f in files if key not in done]
        return len(left), sum(f.stat().st_size for f in left if f.exists())

    def pending(self, limit: int = 1000) -> list[tuple[int, dict]]:
        """Versions not yet published, in the order they were detected (seq)."""
        with self.state() as con:
            rows = con.execute("SELECT seq, record FROM versions WHERE published_at IS NULL ORDER BY seq LIMIT ?",
                               [limit]).fetchall()
        return [(seq, json.loads(record)) for seq, record in rows]

    def mark_published(self, seq: int, receipt: dict) -> None:
        with self.state() as con:
            con.execute("UPDATE versions SET published_at = now(), receipt = ? WHERE seq = ?",
                        [json.dumps(receipt), seq])

    def versions(self, day: str | None = None) -> pl.DataFrame:
        """Every version (with seq, published_at and receipt), optionally of one stat_date."""
        with self.state() as con:
            where = f"WHERE day = DATE '{day}'" if day else ""
            return con.sql(f"SELECT seq, incident_id, version, status, day, record, detected_at, published_at, "
                               f"receipt FROM versions {where} ORDER BY seq").pl()

    def day_incidents(self, day: str) -> pl.DataFrame:
        """The day's incidents as they stand (latest version of each, withdrawn ones excluded): what the day's
        ``security_events`` must equal."""
        with self.state() as con:
            return con.sql(f"""SELECT incident_id, event_type, source, community_id, building_id, status,
                    date_trunc('minute', timezone('{self.tz}', start_ts)) AS event_minute, late, version
                FROM incidents WHERE day = DATE '{day}' AND status <> 'withdrawn'
                ORDER BY start_ts, incident_id""").pl()


__all__ = ["SECURITY_EVENTS", "Advance", "INCIDENT_TYPES", "IncidentEngine", "RECORD_COLUMNS"]
