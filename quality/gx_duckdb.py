"""Make great-expectations 1.x usable on DuckDB: put DuckDB on GX's persisted-connection path.

GX has no DuckDB dialect; without this every expectation fails with ``IndexError`` (see
shared/reference/gx.md §1b). GX is imported lazily so the Dagster code location never pays its ~2 s import.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from kernel.settings import quiet_third_parties

if TYPE_CHECKING:
    from great_expectations.data_context import AbstractDataContext

# The private module attribute this shim extends; GX reads it at query time to decide whether to keep
# one connection open. If it disappears, GX changed its internals and the shim must be revisited.
PATCHED_MODULE = "great_expectations.execution_engine.sqlalchemy_execution_engine"
PATCHED_ATTRIBUTE = "_PERSISTED_CONNECTION_DIALECTS"
DUCKDB_MEMORY_URL = "duckdb:///:memory:"

_lock = threading.Lock()


class GXShimError(RuntimeError):
    """GX's private internals no longer look like what the DuckDB shim was written against."""


class _DuckDBDialectName(str):
    # GX compares entries with the engine's dialect name (a str) and also calls ``.value`` on them,
    # as they are normally ``GXSqlDialect`` enum members.
    @property
    def value(self) -> str:
        return str(self)


def ensure_duckdb_support() -> None:
    """Register DuckDB as a persisted-connection dialect in GX (idempotent, thread-safe).

    Raises ``GXShimError`` if the private name the shim relies on no longer exists.
    """
    quiet_third_parties()  # analytics left the wheel in 1.8; the variable stays as a harmless opt-out
    import importlib

    module = importlib.import_module(PATCHED_MODULE)
    with _lock:
        current = getattr(module, PATCHED_ATTRIBUTE, None)
        if current is None or not isinstance(current, tuple):
            raise GXShimError(
                f"{PATCHED_MODULE}.{PATCHED_ATTRIBUTE} is missing or no longer a tuple "
                f"(found {type(current).__name__}); the DuckDB shim in quality/gx_duckdb.py must be "
                "revisited for this great-expectations version."
            )
        if any(getattr(entry, "value", entry) == "duckdb" for entry in current):
            return
        setattr(module, PATCHED_ATTRIBUTE, (*current, _DuckDBDialectName("duckdb")))


def duckdb_support_applied() -> bool:
    """True when GX's persisted-connection dialects include DuckDB (imports GX)."""
    import importlib

    module = importlib.import_module(PATCHED_MODULE)
    current: Any = getattr(module, PATCHED_ATTRIBUTE, ())
    return any(getattr(entry, "value", entry) == "duckdb" for entry in current)


def new_context() -> AbstractDataContext:
    """An ephemeral GX context with the DuckDB shim applied, analytics and progress bars off."""
    ensure_duckdb_support()
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    return context
