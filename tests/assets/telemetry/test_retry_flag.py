"""The in-file retry flag of bronze_messages.sql (a hash aggregate of repeated messages) against its definition, the
window it replaced: on random batches full of repeats, NULL keys, rejected copies and lines out of order, the same
messages are flagged."""

from __future__ import annotations

import random

import duckdb
import pytest

from assets.telemetry.parse import HERE
from kernel.sqlfile import render, statements

# the definition: the statement bronze_messages.sql used until 2026-12-07
WINDOW = """
SELECT lid, svc_idx,
    msg_reason IS NULL AND row_number() OVER (
        PARTITION BY source_file, svc_idx, device_id, ts_raw, body, msg_reason IS NULL ORDER BY source_line) > 1
        AS dup_in_file
FROM msgs"""


def _retry_statements() -> list[str]:
    """The statements after the one that builds ``msgs``: the retry flag."""
    text = render(HERE / "bronze_messages.sql", day_start="2026-11-19 16:00:00+00", day_end="2026-11-20 16:00:00+00",
                  tz="Asia/Shanghai", subject_expr="NULL")
    return list(statements(text))[1:]


def _batch(rng: random.Random, n: int) -> list[tuple]:
    rows = []
    pick = lambda values: rng.choice(values)  # noqa: E731
    for lid in range(n):
        file = pick(["a.ndjson.gz", "b.ndjson.gz", "c.ndjson"])
        line = rng.randrange(1, 60)
        for svc in range(pick([1, 1, 1, 2, 3])):
            rows.append((lid, svc, file, line, pick(["d1", "d2", None]), pick(["1700000000000", "1700000001000", None]),
                         pick(['{"t":1}', '{"t":2}', '{"t":1} ', None]), pick([None, None, None, "unknown_device"])))
    # a (file, line) holds one line: keep the first draw of each (file, line, svc_idx)
    seen, out = set(), []
    for r in rows:
        if (r[2], r[3], r[1]) not in seen:
            seen.add((r[2], r[3], r[1]))
            out.append(r)
    return out


@pytest.mark.parametrize("seed", range(8))
def test_the_retry_flag_is_the_windows(seed: int):
    rng = random.Random(seed)
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE msgs (lid BIGINT, svc_idx BIGINT, source_file VARCHAR, source_line BIGINT, "
                "device_id VARCHAR, ts_raw VARCHAR, body VARCHAR, msg_reason VARCHAR, dup_in_file BOOLEAN)")
    con.executemany("INSERT INTO msgs VALUES (?, ?, ?, ?, ?, ?, ?, ?, false)", _batch(rng, 400))
    expected = sorted(con.execute(WINDOW).fetchall())
    for stmt in _retry_statements():
        con.execute(stmt)
    got = sorted(con.execute("SELECT lid, svc_idx, dup_in_file FROM msgs").fetchall())
    assert got == expected
    assert sum(r[2] for r in expected) > 10  # the batch holds repeats, NULL keys among them
