"""The one Dagster resource every asset, check, sensor and job uses: settings, the lake, the tokenizer, DuckDB."""

from __future__ import annotations

import dagster as dg
import duckdb
from dagster._core.storage.tags import PARTITION_NAME_TAG
from pydantic import PrivateAttr

from kernel.duckdb_io import ASYNC_OFF
from kernel.lake import Lake, open_lake
from kernel.partitions import district_of
from kernel.record_keys import install_record_key
from kernel.settings import Settings, load_settings
from kernel.times import install_time_macros
from kernel.tokens import Tokenizer

# the district of an unpartitioned run that serves one district (the incident feed's runs)
DISTRICT_TAG = "neuron/district"


class NeuronResource(dg.ConfigurableResource):
    """Settings come from ``NEURON_*`` variables (read when a step runs); fields here override them.

    In a run of a district's partition (``NEURON_DISTRICTS`` set; or an unpartitioned run tagged
    ``neuron/district``), the settings are that district's
    (``Settings.for_district``): every step and check reads and writes the district's landing, lake, warehouse and
    outbox without naming it. Outside a run (sensors, the CLI) they are the deployment's root, and code that
    works across districts resolves each one itself."""

    data_dir: str | None = None
    _district: str = PrivateAttr(default="")

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        run = context.dagster_run
        if run is not None:
            self._district = district_of(run.tags.get(PARTITION_NAME_TAG)) or run.tags.get(DISTRICT_TAG, "")

    @property
    def settings(self) -> Settings:
        return load_settings(data_dir=self.data_dir).for_district(self._district)

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
                                     "preserve_insertion_order": False, **ASYNC_OFF})
        s.duckdb_tmp.mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = '{s.duckdb_tmp}'")
        con.execute(f"SET TimeZone = '{s.timezone}'")
        return install_record_key(install_time_macros(con), s)
