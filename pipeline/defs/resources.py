"""Resources built from the settings, so the DuckDB resource and dbt write the same file, and
the run config that sets a run's as-of date."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource
from dagster_dbt.asset_utils import (
    extract_runtime_selection_from_args,
    get_updated_cli_invocation_params_for_context,
)
from dagster_dbt.compat import DBT_PYTHON_VERSION
from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage
from dagster_dbt.dbt_manifest import validate_manifest
from dagster_dbt.errors import DagsterDbtCliRuntimeError
from dagster_duckdb import DuckDBResource
from packaging import version
from pydantic import PrivateAttr

from pipeline import dbt_runner, engine
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
    # PIPELINE_DUCKDB_MEMORY_LIMIT, which profiles.yml's duckdb target reads (validated here)
    duckdb_memory_limit: str = ""
    # PIPELINE_ENGINE=spark: profiles.yml's spark target reads them from the environment
    spark_dir: str = ""
    spark_master: str = ""
    spark_driver_memory: str = ""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        super().setup_for_execution(context)
        os.environ[WAREHOUSE_ENV] = self.warehouse
        if self.duckdb_memory_limit:
            os.environ["PIPELINE_DUCKDB_MEMORY_LIMIT"] = self.duckdb_memory_limit
        if self.spark_dir:
            os.environ["PIPELINE_SPARK_DIR"] = self.spark_dir
            os.environ["PIPELINE_SPARK_MASTER"] = self.spark_master
            os.environ["PIPELINE_SPARK_DRIVER_MEMORY"] = self.spark_driver_memory

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

    def build(
        self, args: list[str], *, target_path: Path, context: dg.OpExecutionContext | None = None
    ) -> DbtBuild:
        """Run a dbt command to its end: the DuckDB target in this process, any other (Spark)
        in a dbt process of its own, dagster-dbt's way. With a context, the command covers the
        step's selection and its results come back as the step's Dagster events."""
        if self.target != dbt_runner.PREPARED_TARGET:
            invocation = self.cli(
                args, context=context, target_path=target_path, raise_on_error=False
            )
            events = list(invocation.stream())
            return DbtBuild(events, invocation.manifest, target_path, invocation.get_error())
        return self._build_in_process(args, target_path, context)

    def _build_in_process(self, args, target_path: Path, context) -> DbtBuild:
        """What ``cli`` and its invocation's ``stream`` do (selection, paths, events), with dbt
        run by ``pipeline.dbt_runner.run_in_process`` instead of a dbt process: the 2-2.5 s of
        CPU a dbt process pays before its first node, twice per refresh."""
        translator = DagsterDbtTranslator()
        # without a context (a plain dbt command) the prepared manifest names the nodes
        prepared = Path(self.project_dir) / "target" / "manifest.json"
        manifest = validate_manifest(prepared) if context is None and prepared.exists() else {}
        cleaned, selects, excludes = extract_runtime_selection_from_args(args)
        params = get_updated_cli_invocation_params_for_context(
            context, manifest, translator, runtime_selects=selects, runtime_excludes=excludes
        )
        project_dir = str(
            params.dbt_project.project_dir if params.dbt_project else self.project_dir
        )
        argv = [
            *self.global_config_flags,
            *cleaned,
            *(["--profile", self.profile] if self.profile else []),
            *(["--target", self.target] if self.target else []),
            *params.selection_args,
            *(["--profiles-dir", self.profiles_dir] if self.profiles_dir else []),
            *("--project-dir", project_dir, "--target-path", str(target_path)),
            # dbt.log beside the run's artifacts, in JSON lines, as dagster-dbt has dbt write it,
            # at info level: dbt's debug events (every query's text, connections) made about a
            # fifth of a refresh's CPU at 1,500 customers; each node's SQL is in run/ and compiled/
            *("--log-path", str(target_path), "--log-format-file", "json"),
            *("--log-level-file", "info"),
            "--no-use-colors",  # its messages end up in logs and error texts
            # no manifest.json, semantic manifest or graph per build (0.3-0.4 s of CPU each):
            # they are the prepared ones; run_results.json is written below
            "--no-write-json",
        ]
        if params.indirect_selection and "--indirect-selection" not in cleaned:
            argv += ["--indirect-selection", params.indirect_selection]
        finished = dbt_runner.run_in_process(argv)
        if hasattr(finished.result, "write"):
            finished.result.write(str(target_path / "run_results.json"))
        events = [
            event
            for raw in finished.results
            for event in DbtCoreCliEventMessage(
                raw_event=raw, event_history_metadata={}
            ).to_default_asset_events(
                manifest=params.manifest,
                dagster_dbt_translator=params.dagster_dbt_translator,
                context=context,
                target_path=target_path,
                project=params.dbt_project,
            )
        ]
        error = None
        if not finished.success:
            # worded as dagster-dbt's, whose "Errors parsed from dbt logs:" the CLI looks for
            found = "\n\n".join(["", "Errors parsed from dbt logs:", *finished.errors])
            error = DagsterDbtCliRuntimeError(
                description=f"`dbt {' '.join(argv)}` failed"
                + (f" ({finished.exception!r})" if finished.exception else "")
                + f"; dbt's log: {target_path / 'dbt.log'}."
                + (found if finished.errors else "")
            )
        return DbtBuild(events, params.manifest, target_path, error)


class WarehouseResource(DuckDBResource):
    """The warehouse file, with DuckDB's memory limit (PIPELINE_DUCKDB_MEMORY_LIMIT) set on every
    connection. DuckDB's default, 80% of the machine, counts only DuckDB: with the refresh's
    pandas frames beside it, a 10M-customer refresh was killed for lack of memory."""

    memory_limit: str  # the setting's value: its default lives in pipeline/settings.py

    @contextmanager
    def get_connection(self):
        with super().get_connection() as conn:
            # a setting of the database, not the connection: set once, it holds for every
            # connection to the file in this process
            conn.execute(f"set memory_limit = '{self.memory_limit}'")
            # on by default even without a terminal: a query over 2 s drew one into the log
            conn.execute("set enable_progress_bar = false")
            yield conn


@dataclass
class DbtBuild:
    """A finished dbt command: its Dagster events and what explains a failure."""

    events: list
    manifest: Mapping[str, Any]
    target_path: Path
    error: Exception | None

    def is_successful(self) -> bool:
        return self.error is None

    def get_artifact(self, name: str) -> dict[str, Any]:
        return json.loads((self.target_path / name).read_bytes())


def build_resources(current: settings_module.Settings | None = None) -> dict[str, object]:
    current = current or settings_module.load()
    warehouse = str(current.paths.warehouse)
    # PIPELINE_ENGINE=spark: dbt builds with profiles.yml's spark target in <data_dir>/spark
    spark = (
        {
            "target": "spark",
            "spark_dir": str(current.paths.spark),
            "spark_master": current.engine.spark_master,
            "spark_driver_memory": current.engine.spark_driver_memory,
        }
        if current.engine.engine == "spark"
        else {}
    )
    return {
        # Run settings (scale, seed, as-of, paths) for the Python assets.
        "settings": PipelineSettings(),
        # The warehouse every Python asset reads and writes. Spark mode has none (the assets
        # open Spark's tables): there it is only the failure sensor's ops.run_failures file.
        "duckdb": WarehouseResource(
            database=str(engine.failures_database(current)),
            memory_limit=current.engine.duckdb_memory_limit,
        ),
        # dbt for the star schema and the customer marts, pointed at the same file.
        "dbt": DbtCli(
            project_dir=dbt_project,
            dbt_executable=dbt_executable(),
            warehouse=warehouse,
            duckdb_memory_limit=current.engine.duckdb_memory_limit,
            **spark,
        ),
    }
