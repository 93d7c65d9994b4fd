"""Point a copied warehouse file at the lake where it now lives: ``python -m warehouse.relink FILE [LAKE_DIR]``.

Lake views hold absolute paths, because DuckDB resolves a relative path against the reader's working directory
(or a ``file_search_path`` each session must set), never against the database file; a relative path would
break every analyst who opens the file from elsewhere. So a copy of the warehouse (and of the lake) is made to
work by re-creating its lake views over the new folder: ``meta.views`` holds each view's definition with the
glob left out, comments are carried over, and ``meta.warehouse`` records the new lake and when. Nothing
changes unless every view finds its files (one transaction).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from warehouse.catalog import LAKE_GLOB


class RelinkError(RuntimeError):
    """The file cannot be relinked (not a Neuron warehouse, not writable, or a view finds no files)."""


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def default_lake(warehouse_path: Path) -> Path:
    """``<data>/lake`` for ``<data>/warehouse/neuron.duckdb``: the layout ``NEURON_DATA_DIR`` gives."""
    return warehouse_path.absolute().parent.parent / "lake"


def relink(warehouse_path: Path, lake_dir: Path) -> dict[str, int]:
    """Re-create every lake view of the warehouse file at ``warehouse_path`` over ``lake_dir``; returns the
    rows each relinked view now reads, by ``layer/name``. Raises ``RelinkError`` (the file unchanged)."""
    warehouse_path, lake_dir = Path(warehouse_path), Path(lake_dir).absolute()
    if not warehouse_path.is_file():
        raise RelinkError(f"{warehouse_path}: no such warehouse file")
    if not lake_dir.is_dir():
        raise RelinkError(f"{lake_dir}: no such lake folder")
    try:
        con = duckdb.connect(str(warehouse_path))
    except duckdb.Error as e:
        raise RelinkError(f"{warehouse_path}: cannot open for writing ({e})") from None
    counts: dict[str, int] = {}
    try:
        try:
            views = con.execute("SELECT schema_name, view_name, lake_glob, definition FROM meta.views "
                                "WHERE source = 'lake' ORDER BY 1, 2").fetchall()
        except duckdb.CatalogException:
            raise RelinkError(f"{warehouse_path}: not a Neuron warehouse (no meta.views)") from None
        con.execute("BEGIN TRANSACTION")
        try:
            for schema, view, glob, definition in views:
                view_comment = con.execute("SELECT comment FROM duckdb_views() WHERE schema_name = ? "
                                           "AND view_name = ?", [schema, view]).fetchall()
                column_comments = con.execute(
                    "SELECT column_name, comment FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? "
                    "AND comment IS NOT NULL", [schema, view]).fetchall()
                target = (lake_dir / glob).as_posix()
                try:
                    con.execute(f"CREATE OR REPLACE VIEW {schema}.{view} AS "
                                f"{definition.replace(LAKE_GLOB, _q(target))}")
                except duckdb.IOException:
                    raise RelinkError(f"{schema}.{view}: no files match {target}; is {lake_dir} the lake folder "
                                      "(the one holding bronze/, silver/, gold/...)?") from None
                if view_comment and view_comment[0][0]:
                    con.execute(f"COMMENT ON VIEW {schema}.{view} IS {_q(view_comment[0][0])}")
                for column, text in column_comments:
                    con.execute(f"COMMENT ON COLUMN {schema}.{view}.{_ident(column)} IS {_q(text)}")
                counts[f"{schema}/{view}"] = con.execute(f"SELECT count(*) FROM {schema}.{view}").fetchall()[0][0]
            con.execute("UPDATE meta.warehouse SET lake_dir = ?, relinked_at = ?", [str(lake_dir), datetime.now(UTC)])
            con.execute("UPDATE meta.warehouse SET relinked_at_local = timezone(time_zone, relinked_at)")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m warehouse.relink", description=(
        "Point a copied Neuron warehouse file at the lake folder where it now lives."))
    parser.add_argument("warehouse", type=Path, help="the .duckdb file (neuron.duckdb or neuron_internal.duckdb)")
    parser.add_argument("lake_dir", type=Path, nargs="?",
                        help="the lake folder (default: ../lake next to the file's folder, as in <data>/warehouse)")
    args = parser.parse_args(argv)
    lake = args.lake_dir or default_lake(args.warehouse)
    try:
        counts = relink(args.warehouse, lake)
    except RelinkError as e:
        print(f"relink: {e}", file=sys.stderr)
        return 1
    print(f"relinked {len(counts)} view(s) of {args.warehouse} to {lake.absolute()} "
          f"({sum(counts.values()):,} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
