"""DuckDB's asynchronous file I/O switched off wherever Neuron writes files.

DuckDB 2.0.0 (the newest release) can hang forever when a ``COPY ... TO`` file fails part-way (an ``error()``
in the query, a full disk): ``AsyncFileWriter::AbortWrite`` drains its write tasks and waits on one that never
runs (gdb on a hung pytest worker, 2026-12-08; duckdb/duckdb#23885 reports the same for failed async reads, and
#24352 fixed a related wait when no async thread is free). A step that should fail would hang its run instead.
``tests/kernel/test_lake.py`` reproduces it: the same failing write hung within ten tries with the default 8
async threads, and with 1, and never in 300 tries with 0. With 0 threads the writes run on the query's own
threads; reading and writing a 600-community lake partition took the same time either way.

Every connection that writes lake parts, exports or spill files gets ``ASYNC_OFF`` (at ``connect``), or
``no_async_io`` when it comes from elsewhere (a lake writer is handed any connection).
"""

from __future__ import annotations

import duckdb

ASYNC_OFF = {"async_threads": 0}


def no_async_io(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """``con`` with DuckDB's async I/O threads off (an instance-wide setting, idempotent)."""
    con.execute("SET async_threads = 0")
    return con
