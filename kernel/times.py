"""The one parser of vendor times: DuckDB macros (``times.sql``) installed on every step connection.

``neuron_time(raw, tz)`` gives the instant (TIMESTAMPTZ) of any time form the vendors send, local forms read in
``tz``; ``neuron_time_form(raw)`` names the form; ``neuron_event_time(raw, received, tz, max_skew)`` gives the
event time with its quality (``ok``, ``repaired``, ``receive_time``, ``clock_skew``, ``missing``), falling back to
the receive time when the device's time is missing, a sentinel or years off. The forms and why each exists are
listed in ``times.sql``; ``tests/kernel/test_times.py`` has one case per form.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from kernel.sqlfile import run_script

TIMES_SQL = Path(__file__).with_name("times.sql")
QUALITIES = ("ok", "repaired", "receive_time", "clock_skew")
"""Values of a ``time_quality`` column for an accepted record (``missing`` is always a rejection)."""


def install_time_macros(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Create (or replace) the time macros on ``con``; idempotent, cheap. Returns ``con``."""
    run_script(con, TIMES_SQL)
    return con


__all__ = ["QUALITIES", "TIMES_SQL", "install_time_macros"]
