"""Feed vendor payloads through the real telemetry parser: landing file -> bronze, quarantine, vocabulary gaps.

Used by the conformance fixtures (tests/fixtures/vendors/<platform>/) and the behaviour tests; a small registry
CSV per platform folder stands in for the registry snapshot.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from assets.telemetry.parse import VENDORS, ingest_day
from kernel.accounting import IngestStats
from kernel.lake import Lake
from kernel.sqlfile import render

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vendors"
PLATFORMS = ("ctwing", "iotda", "thingsboard")
TZ = "Asia/Shanghai"
COMMUNITY = "310107001001"
SQL = Path(__file__).resolve().parents[3] / "assets" / "telemetry"


def fake_tokens(values: pl.Series) -> pl.Series:
    return values.hash(3).cast(pl.String).to_frame("h").select(
        pl.concat_str(pl.lit("person_v1_"), pl.col("h")).alias("h"))["h"]


@dataclass
class Parsed:
    con: duckdb.DuckDBPyConnection
    root: Path
    day: str
    stats: IngestStats

    def frame(self, layer: str, name: str) -> pl.DataFrame:
        files = sorted((self.root / "lake" / layer / name / f"date={self.day}").glob("*.parquet"))
        return pl.read_parquet(files, hive_partitioning=False) if files else pl.DataFrame()

    def canonical(self) -> list[dict]:
        """Bronze and quarantine rows as the fixtures state them: local time to the second, values rounded."""
        local = "strftime(timezone('" + TZ + "', event_ts), '%Y-%m-%d %H:%M:%S')"
        b, q = self.lake_sql("bronze", "telemetry"), self.lake_sql("quarantine", "telemetry")
        rows = self.con.sql(f"""
            SELECT device_id, vendor_key, metric, round(value, 6) AS value, unit, {local} AS event_time,
                NULL AS reason FROM {b}
            UNION ALL
            SELECT device_id, vendor_key, NULL, NULL, NULL, {local}, reason FROM {q}""").pl()
        return normalise(rows.to_dicts())

    def lake_sql(self, layer: str, name: str) -> str:
        return f"read_parquet('{self.root / 'lake' / layer / name / f'date={self.day}' / '*.parquet'}')"

    def silver_and_alarms(self) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        """Silver, device alarms and device health of the parsed day, by the domain's own SQL files."""
        from assets.telemetry.parse import alarm_flags_sql
        from kernel.partitions import day_bounds

        start, end = day_bounds(self.day, TZ)
        con = self.con
        con.execute(f"CREATE OR REPLACE VIEW bronze AS SELECT * FROM {self.lake_sql('bronze', 'telemetry')}")
        staged = render(SQL / "silver_telemetry.sql")
        con.execute(f"CREATE OR REPLACE TABLE silver AS SELECT * EXCLUDE (n, registered) FROM ({staged}) "
                    "WHERE registered")
        con.execute("CREATE OR REPLACE TABLE alarms AS " + render(SQL / "device_alarms.sql", day_start=start,
                                                                 day_end=end, alarm_flags=alarm_flags_sql()))
        from assets.telemetry.datasets import ALARM_TYPES, alarm_columns

        health = con.sql(render(SQL / "device_health_daily.sql", **alarm_columns(ALARM_TYPES))).pl()
        return con.sql("SELECT * FROM silver").pl(), con.sql("SELECT * FROM alarms").pl(), health


def normalise(rows: list[dict]) -> list[dict]:
    out = []
    for r in rows:
        v = r.get("value")
        out.append({"device_id": r["device_id"], "vendor_key": r["vendor_key"], "metric": r["metric"],
                    "value": None if v is None else round(float(v), 6), "unit": r["unit"],
                    "event_time": r["event_time"], "reason": r["reason"] or None})
    return sorted(out, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def registry_frame(*platforms: str) -> pl.DataFrame:
    return pl.concat([pl.read_csv(FIXTURES / p / "registry.csv", infer_schema=False) for p in platforms])


def parse_lines(tmp: Path, day: str, lines_by_platform: dict[str, list[str]], registry: pl.DataFrame | None = None,
                vendors: Path = VENDORS) -> Parsed:
    """Write the lines as one landing file per platform and run ``ingest_day`` over them."""
    landing = tmp / "landing"
    for platform, lines in lines_by_platform.items():
        folder = landing / "telemetry" / day / platform
        folder.mkdir(parents=True, exist_ok=True)
        with gzip.open(folder / f"{COMMUNITY}-0001.ndjson.gz", "wt", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    registry = registry if registry is not None else registry_frame(*PLATFORMS)
    con = duckdb.connect()
    con.register("registry_df", registry)
    con.execute("CREATE VIEW registry AS SELECT * EXCLUDE (report_interval_s), "
                "CAST(report_interval_s AS INTEGER) AS report_interval_s FROM registry_df")
    stats = ingest_day(con, Lake(tmp / "lake"), landing, day, TZ, fake_tokens, vendors=vendors)
    return Parsed(con, tmp, day, stats)


def fixture(platform: str, name: str) -> tuple[list[str], dict]:
    lines = (FIXTURES / platform / f"{name}.ndjson").read_text(encoding="utf-8").splitlines()
    expected = json.loads((FIXTURES / platform / f"{name}.expected.json").read_text(encoding="utf-8"))
    return lines, expected


def parse_fixture(tmp: Path, platform: str, name: str, vendors: Path = VENDORS) -> tuple[Parsed, dict]:
    lines, expected = fixture(platform, name)
    return parse_lines(tmp, expected["day"], {platform: lines}, vendors=vendors), expected


def all_fixtures() -> list[tuple[str, str]]:
    return [(p, f.name.removesuffix(".expected.json")) for p in PLATFORMS
            for f in sorted((FIXTURES / p).glob("*.expected.json"))]
