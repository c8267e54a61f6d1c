"""dbt models as Dagster assets, in two selections of one dbt project:

- ``star_schema``: staging, the AtliQ star schema, the SQL customer base (summary, category spend)
  and the seeds; everything that scans order lines.
- ``customer_marts``: the marts that join the Python model outputs (``analytics.*``) back in.
"""

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, dbt_assets
from dagster_duckdb import DuckDBResource

from pipeline import engine
from pipeline.defs.freshness import REFRESH_FRESHNESS
from pipeline.defs.resources import DbtCli, PipelineSettings
from pipeline.project import dbt_project
from pipeline.retry import retry_on_duckdb_lock

CUSTOMER_MARTS = "path:models/marts/customers"

# Folder of a dbt node below the project (its fqn without project and name) -> Dagster group.
# One name per layer: the top folder is also the group and the schema (dbt_project.yml).
GROUPS_BY_FOLDER = {
    (): "reference",  # seeds sit at the top of their folder; schema reference
    ("staging",): "staging",
    ("intermediate",): "intermediate",
    ("marts",): "marts",
}


# Asset metadata of a model whose YAML says ``meta: {publish: true}``: the BI snapshot copies it,
# leaving out the columns whose YAML says ``meta: {pii: true}`` (comma-separated here).
PUBLISHED = "pipeline/published"
PII_COLUMNS = "pipeline/pii_columns"


def _meta(props: Mapping[str, Any]) -> Mapping[str, Any]:
    """A node's or column's ``meta`` (dbt keeps it under ``config`` too)."""
    return {**(props.get("meta") or {}), **((props.get("config") or {}).get("meta") or {})}


def is_published(props: Mapping[str, Any]) -> bool:
    return props["resource_type"] == "model" and bool(_meta(props).get("publish"))


def pii_columns(props: Mapping[str, Any]) -> list[str]:
    return sorted(
        name for name, column in (props.get("columns") or {}).items() if _meta(column).get("pii")
    )


class Translator(DagsterDbtTranslator):
    def get_asset_spec(self, manifest, unique_id, project) -> dg.AssetSpec:
        """What BI reads (published marts) must be refreshed every 15 days: a missed refresh shows
        in the UI. Published models carry what the BI snapshot needs in their metadata."""
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if is_published(props):
            spec = spec.replace_attributes(
                freshness_policy=REFRESH_FRESHNESS,
                metadata={
                    **spec.metadata,
                    PUBLISHED: True,
                    PII_COLUMNS: ",".join(pii_columns(props)),
                },
            )
        return spec

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        folder = tuple(dbt_resource_props.get("fqn", [])[1:-1])
        for size in range(len(folder), -1, -1):
            if folder[:size] in GROUPS_BY_FOLDER:
                return GROUPS_BY_FOLDER[folder[:size]]
        return super().get_group_name(dbt_resource_props)


def run_dbt_build(
    context: dg.AssetExecutionContext,
    dbt: DbtCli,
    duckdb: DuckDBResource,
    settings: PipelineSettings,
):
    """``dbt build`` of the step's selection, against this run's warehouse and as-of date."""
    # dbt's run artifacts are runtime files: keep them beside the warehouse, not in the repo.
    runs = settings.current.paths.dbt_runs
    target = runs / f"{context.run.run_id[:8]}-{context.op_def.name}"
    args = ["build", "--vars", json.dumps(settings.current.dbt_vars())]
    with retry_on_duckdb_lock():
        reuse_parse(runs / PARSE_CACHE, target)
        # Row counts (dagster-dbt's fetch_row_counts would query while dbt holds the
        # warehouse) are taken after the build; the events reach the UI when it ends.
        build = dbt.build(args, context=context, target_path=target)
        keep_parse(target, runs / PARSE_CACHE)
        with engine.open_tables(settings.current, duckdb) as tables:
            events = with_failed_rules(build.events, build, tables)
            yield from with_row_counts(events, build.manifest, tables)
        if build.error:
            raise build.error


# dbt's parse of the project (4-5 s of its start-up, every model and test rendered) is saved
# as partial_parse.msgpack in each build's target folder. dbt reuses it when nothing it
# depends on changed (files, --vars, profile, dbt version; dbt checks) and parses again
# otherwise. The prepared one in dbt_project/target never qualifies at run time (other --vars
# and warehouse path), so the latest one is kept beside the runs: the second dbt step of a
# refresh, and every step of a refresh repeated with the same settings, skip the parse.
PARSE_CACHE = "partial_parse.msgpack"


def reuse_parse(cache: Path, target: Path) -> None:
    if cache.exists():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cache, target / PARSE_CACHE)


def keep_parse(target: Path, cache: Path) -> None:
    """Keep the parse of a build that got as far as writing it (atomically: never half a file)."""
    saved = target / PARSE_CACHE
    if saved.exists():
        partial = cache.with_suffix(".tmp")
        shutil.copyfile(saved, partial)
        os.replace(partial, cache)


def with_failed_rules(events, build, tables):
    """Name the broken rules of a failed ``row_rules`` test (several column tests run in one
    scan, see dbt_project/tests/generic/row_rules.sql): its query, run again, lists each failing
    rule under the name of the single dbt test it stands for, with its failing rows. Only
    failures pay for this second run."""
    results = None
    for event in events:
        unique_id = _metadata_value(event, "unique_id")
        node = build.manifest["nodes"].get(unique_id) if unique_id else None
        if (
            isinstance(event, dg.AssetCheckResult)
            and not event.passed
            and node
            and (node.get("test_metadata") or {}).get("name") == "row_rules"
        ):
            if results is None:
                results = {
                    r["unique_id"]: r for r in build.get_artifact("run_results.json")["results"]
                }
            code = results.get(unique_id, {}).get("compiled_code")
            if code:
                failed = tables.query(f"select * from ({code}) order by 1").itertuples(index=False)
                # int(): the counts reach pandas as doubles (DuckDB sums them into HUGEINTs)
                named = ", ".join(f"{name} ({int(rows)} rows)" for name, rows in failed)
                event = event.with_metadata({**event.metadata, "failed_tests": named})
        yield event


def _metadata_value(event, key: str):
    value = getattr(event, "metadata", {}).get(key)
    return getattr(value, "value", value)


def with_row_counts(events, manifest: Mapping[str, Any], tables):
    """Attach ``dagster/row_count`` to the events of table models."""
    for event in events:
        unique_id = getattr(event, "metadata", {}).get("unique_id")
        node = manifest["nodes"].get(getattr(unique_id, "value", unique_id)) if unique_id else None
        if (
            isinstance(event, (dg.Output, dg.AssetMaterialization))
            and node
            and node["config"].get("materialized") in ("table", "incremental", "seed")
        ):
            rows = tables.row_count(node["relation_name"])
            event = event.with_metadata({**event.metadata, "dagster/row_count": rows})
        yield event


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=Translator(),
    exclude=CUSTOMER_MARTS,
    name="star_schema",
)
def star_schema(
    context: dg.AssetExecutionContext,
    dbt: DbtCli,
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
    dbt: DbtCli,
    duckdb: DuckDBResource,
    settings: PipelineSettings,
):
    """The single customer view, segment summary, history and migration, built on the Python
    model outputs."""
    yield from run_dbt_build(context, dbt, duckdb, settings)
