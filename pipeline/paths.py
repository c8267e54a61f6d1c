"""Where the runtime files live: every folder is derived from one data folder (PIPELINE_DATA_DIR),
here and nowhere else."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# dbt-duckdb names the database after the file's stem and bakes it into the manifest, so the
# file name is fixed; only its folder may move.
WAREHOUSE_FILE_NAME = "warehouse.duckdb"
# The variable dbt's profiles.yml reads the warehouse path from; the dbt resource sets it from
# these paths when a run starts (pipeline.defs.resources.DbtCli).
WAREHOUSE_ENV = "PIPELINE_WAREHOUSE"


@dataclass(frozen=True)
class Paths:
    data_dir: Path

    @property
    def warehouse(self) -> Path:
        """The working DuckDB file every step reads and writes."""
        return self.data_dir / WAREHOUSE_FILE_NAME

    @property
    def spark(self) -> Path:
        """PIPELINE_ENGINE=spark: dbt-spark's warehouse (``warehouse/<schema>.db/<table>``) and
        catalog, and the Parquet tables the Python steps write (``tables/<schema>/<table>``)."""
        return self.data_dir / "spark"

    @property
    def spark_tables(self) -> Path:
        return self.spark / "tables"

    @property
    def serve(self) -> Path:
        """What BI, the API and the dashboard read: published snapshots and the HTML report."""
        return self.data_dir / "serve"

    @property
    def models(self) -> Path:
        """Fitted CLTV models, one folder per as-of date (see ``models_for``)."""
        return self.data_dir / "models"

    def models_for(self, as_of: dt.date) -> Path:
        """Kept per as-of date, so a past refresh can be explained."""
        return self.models / as_of.isoformat()

    @property
    def dbt_runs(self) -> Path:
        """dbt's run artifacts (one target folder per dbt step) and its saved parse."""
        return self.data_dir / "dbt_runs"

    @property
    def logs(self) -> Path:
        """The CLI's full refresh logs."""
        return self.data_dir / "logs"

    def dagster_home(self, environ: Mapping[str, str] | None = None) -> Path:
        """DAGSTER_HOME if set, else ``<data_dir>/dagster_home``: runs live beside the warehouse
        they built, and ``make ui`` finds the CLI's runs by the same rule."""
        env = os.environ if environ is None else environ
        explicit = env.get("DAGSTER_HOME", "").strip()
        return Path(explicit).expanduser().resolve() if explicit else self.data_dir / "dagster_home"
