"""Resources built from the settings, so the DuckDB resource and dbt write the same file, and
the run config that sets a run's as-of date."""

from __future__ import annotations

import datetime as dt
import os
import sys
from functools import cached_property
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource
from dagster_dbt.compat import DBT_PYTHON_VERSION
from dagster_duckdb import DuckDBResource
from packaging import version
from pydantic import PrivateAttr

from pipeline import settings as settings_module
from pipeline.paths import WAREHOUSE_ENV
from pipeline.project import dbt_project


def refresh_run_config(as_of: dt.date) -> dict:
    """Run config that makes a run refresh as of the given date: the one shape the CLI, the
    schedule and the launchpad give ``PipelineSettings``."""
    return {"resources": {"settings": {"config": {"as_of": as_of.isoformat()}}}}


def run_config_as_of(run_config: dict) -> str | None:
    """The as-of date ``refresh_run_config`` put in a run's config, if any."""
    return run_config.get("resources", {}).get("settings", {}).get("config", {}).get("as_of")


class PipelineSettings(dg.ConfigurableResource):
    """The settings of one run: read from the environment when the run starts.

    ``as_of`` can be set in run config (launchpad, CLI, schedule) and wins over PIPELINE_AS_OF.
    Resolved once per run, so a run that crosses midnight keeps one as-of date.
    """

    as_of: str = ""
    _settings: settings_module.Settings | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        try:
            overrides = {"as_of": dt.date.fromisoformat(self.as_of)} if self.as_of else {}
        except ValueError:
            raise settings_module.SettingsError(
                f"run config resources.settings.config.as_of={self.as_of!r} is not a date (YYYY-MM-DD)"
            ) from None
        self._settings = settings_module.load(**overrides)

    @property
    def current(self) -> settings_module.Settings:
        if self._settings is None:  # used outside a run, e.g. in a unit test
            self.setup_for_execution(dg.build_init_resource_context())
        assert self._settings is not None
        return self._settings


# Commands that run the dbt-core imported in this Python (make setup installs both).
BESIDE_PYTHON = ("pipeline-dbt", "dbt")


def dbt_executable() -> str:
    """``pipeline-dbt`` (dbt started from the prepared parse, see pipeline/dbt_runner.py) or else
    dbt, installed beside this Python, so `.venv/bin/python ...` works without the venv on PATH
    (DbtCliResource otherwise insists on finding `dbt` on PATH)."""
    for name in BESIDE_PYTHON:
        beside = Path(sys.executable).parent / name
        if beside.exists():
            return str(beside)
    return "dbt"


class DbtCli(DbtCliResource):
    """dagster-dbt's dbt resource, without two costs it pays before each build for features this
    pipeline does not use (both private hooks of dagster-dbt 0.29; tests/test_dbt_overhead.py
    fails if they move):

    - ``dbt --version`` in a subprocess, a whole dbt start-up (2 s of CPU), to learn the version
      of dbt: when the executable is installed beside this Python (``pipeline-dbt`` or ``dbt``),
      it runs the dbt-core imported here;
    - a dbt adapter built in this process (profile, every macro), which dagster-dbt needs only
      for its column metadata and row counts; ``pipeline.defs.assets.dbt`` counts rows itself.

    ``warehouse`` is the DuckDB resource's file: profiles.yml reads it from PIPELINE_WAREHOUSE,
    which this resource sets once when the run starts.
    """

    warehouse: str
    # PIPELINE_ENGINE=spark: profiles.yml's spark target reads both from the environment
    spark_dir: str = ""
    spark_master: str = ""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        super().setup_for_execution(context)
        os.environ[WAREHOUSE_ENV] = self.warehouse
        if self.spark_dir:
            os.environ["PIPELINE_SPARK_DIR"] = self.spark_dir
            os.environ["PIPELINE_SPARK_MASTER"] = self.spark_master

    @cached_property
    def _cli_version(self) -> version.Version:
        if (
            DBT_PYTHON_VERSION is not None
            and Path(self.dbt_executable).parent == Path(sys.executable).parent
            and Path(self.dbt_executable).name in BESIDE_PYTHON
        ):
            return DBT_PYTHON_VERSION
        return super()._cli_version

    def _initialize_dbt_core_adapter(self, args):
        return None


def build_resources(current: settings_module.Settings | None = None) -> dict[str, object]:
    current = current or settings_module.load()
    warehouse = str(current.paths.warehouse)
    # PIPELINE_ENGINE=spark: dbt builds with profiles.yml's spark target in <data_dir>/spark
    spark = (
        {
            "target": "spark",
            "spark_dir": str(current.paths.spark),
            "spark_master": current.engine.spark_master,
        }
        if current.engine.engine == "spark"
        else {}
    )
    return {
        # Run settings (scale, seed, as-of, paths) for the Python assets.
        "settings": PipelineSettings(),
        # The warehouse every Python asset reads and writes.
        "duckdb": DuckDBResource(database=warehouse),
        # dbt for the star schema and the customer marts, pointed at the same file.
        "dbt": DbtCli(
            project_dir=dbt_project, dbt_executable=dbt_executable(), warehouse=warehouse, **spark
        ),
    }
