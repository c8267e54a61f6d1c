"""dbt models as Dagster assets, in two selections of one dbt project:

- ``star_schema``: staging, the AtliQ star schema, the SQL customer base (summary, category spend)
  and the seeds; everything that scans order lines.
- ``customer_marts``: the marts that join the Python model outputs (``analytics.*``) back in.
"""

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets
from dagster_duckdb import DuckDBResource
from dbt.adapters.duckdb.connections import DuckDBConnectionManager

from pipeline.project import dbt_project
from pipeline.resources import PipelineSettings

CUSTOMER_MARTS = "path:models/marts/customers"

# Folder of a dbt node below the project (its fqn without project and name) -> Dagster group.
# The longest matching prefix wins, so the UI groups read as the layers of DESIGN.md.
GROUPS_BY_FOLDER = {
    (): "reference",  # seeds sit at the top of their folder
    ("staging",): "staging",
    ("marts", "core"): "star_schema",
    ("marts", "customer_base"): "customer_base",
    ("marts", "customers"): "customer_marts",
}


class Translator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        folder = tuple(dbt_resource_props.get("fqn", [])[1:-1])
        for size in range(len(folder), -1, -1):
            if folder[:size] in GROUPS_BY_FOLDER:
                return GROUPS_BY_FOLDER[folder[:size]]
        return super().get_group_name(dbt_resource_props)


def run_dbt_build(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    duckdb: DuckDBResource,
    settings: PipelineSettings,
):
    """``dbt build`` of the step's selection, against this run's warehouse and as-of date."""
    # profiles.yml reads the warehouse path from the environment: hand dbt the very file the
    # DuckDB resource of this run writes.
    os.environ["PIPELINE_WAREHOUSE"] = duckdb.database
    # dbt's run artifacts are runtime files: keep them beside the warehouse, not in the repo.
    target = Path(duckdb.database).parent / "dbt_runs" / f"{context.run.run_id[:8]}-{context.op_def.name}"
    args = ["build", "--vars", json.dumps(settings.current.dbt_vars())]
    try:
        yield from dbt.cli(args, context=context, target_path=target).stream().fetch_row_counts()
    finally:
        release_dbt_duckdb()


def release_dbt_duckdb() -> None:
    """Close the warehouse handle dbt-duckdb keeps open in this process.

    ``fetch_row_counts`` counts rows through dbt's in-process adapter, whose DuckDB connection
    outlives the query; left open, it blocks the next step's connection (DuckDB refuses a second
    connection to a file with another configuration) and other processes (the file stays locked).
    """
    try:
        environment = DuckDBConnectionManager.env()
    except Exception:  # never created: nothing to close
        return
    environment.close()
    DuckDBConnectionManager.close_all_connections()


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=Translator(),
    exclude=CUSTOMER_MARTS,
    name="star_schema",
)
def star_schema(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    duckdb: DuckDBResource,
    settings: PipelineSettings,
):
    """Staging views, the AtliQ star schema and the SQL customer base, with every dbt test as an
    asset check."""
    yield from run_dbt_build(context, dbt, duckdb, settings)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=Translator(),
    select=CUSTOMER_MARTS,
    name="customer_marts",
)
def customer_marts(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    duckdb: DuckDBResource,
    settings: PipelineSettings,
):
    """The single customer view, segment summary, history and migration, built on the Python
    model outputs."""
    yield from run_dbt_build(context, dbt, duckdb, settings)
