"""Load the .sql files that sit next to the assets and run them statement by statement."""

from __future__ import annotations

from pathlib import Path

import duckdb


def render(path: Path, **params: object) -> str:
    sql = path.read_text(encoding="utf-8")
    for name, value in params.items():
        sql = sql.replace(f"@{name}@", str(value))
    return sql


def statements(sql: str) -> list[str]:
    """Split on ';' at line ends (our .sql files never put ';' inside a literal at a line end)."""
    out, buf = [], []
    for line in sql.splitlines():
        if line.strip().startswith("--") and not buf:
            continue
        buf.append(line)
        if line.rstrip().endswith(";"):
            stmt = "\n".join(buf).strip()
            if stmt.strip(";").strip():
                out.append(stmt)
            buf = []
    tail = "\n".join(buf).strip()
    if tail:
        out.append(tail)
    return out


def run_script(con: duckdb.DuckDBPyConnection, path: Path, **params: object) -> None:
    for stmt in statements(render(path, **params)):
        con.execute(stmt)
