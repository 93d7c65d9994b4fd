"""The one Dagster resource every asset uses: resolved settings, the lake and the tokenizer."""

from __future__ import annotations

import dagster as dg
import duckdb

from pipelines.settings import SUBROOT_VARIABLES, Settings, load_settings
from warehouse.lake import Lake


class NeuronResource(dg.ConfigurableResource):
    """Settings come from ``NEURON_*`` variables; fields here override them (tests, ad-hoc runs)."""

    data_dir: str | None = None

    @property
    def settings(self) -> Settings:
        env = None
        if self.data_dir:
            import os

            env = {**os.environ, "NEURON_DATA_DIR": self.data_dir}
            for var in SUBROOT_VARIABLES:
                env.pop(var, None)
        return load_settings(env)

    @property
    def lake(self) -> Lake:
        return Lake(self.settings.lake_dir)

    def tokenizer(self):
        from assets.privacy.tokens import Tokenizer

        return Tokenizer.from_env()

    def duckdb(self, memory_limit: str = "3GB") -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB for one step's work (the warehouse file is never written by steps)."""
        con = duckdb.connect(config={"memory_limit": memory_limit, "preserve_insertion_order": False})
        tmp = self.settings.data_dir / ".duckdb_tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = '{tmp}'")
        con.execute(f"SET TimeZone = '{self.settings.timezone}'")
        return con
