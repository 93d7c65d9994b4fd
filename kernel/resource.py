"""The one Dagster resource every asset, check, sensor and job uses: settings, the lake, the tokenizer, DuckDB."""

from __future__ import annotations

import dagster as dg
import duckdb

from kernel.lake import Lake, open_lake
from kernel.record_keys import install_record_key
from kernel.settings import Settings, load_settings
from kernel.times import install_time_macros
from kernel.tokens import Tokenizer


class NeuronResource(dg.ConfigurableResource):
    """Settings come from ``NEURON_*`` variables (read when a step runs); fields here override them."""

    data_dir: str | None = None

    @property
    def settings(self) -> Settings:
        return load_settings(data_dir=self.data_dir)

    @property
    def lake(self) -> Lake:
        return open_lake(self.settings)

    def tokenizer(self, domain: str | None = None) -> Tokenizer:
        """Tokens of one data domain (its own derived keys; ``kernel.tokens.Tokenizer``)."""
        return Tokenizer.from_settings(self.settings, domain)

    def duckdb(self, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB for one step's work (the warehouse file is never written by steps), limited to
        ``NEURON_STEP_MEMORY_MB`` unless ``memory_limit`` says otherwise; beyond it DuckDB spills to disk."""
        s = self.settings
        con = duckdb.connect(config={"memory_limit": memory_limit or f"{s.step_memory_mb}MB",
                                     "preserve_insertion_order": False})
        s.duckdb_tmp.mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = '{s.duckdb_tmp}'")
        con.execute(f"SET TimeZone = '{s.timezone}'")
        return install_record_key(install_time_macros(con), s)
