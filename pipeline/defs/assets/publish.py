"""Publish: the BI serving snapshot, built only after every upstream asset and blocking check passed."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipeline.publish import snapshot
from pipeline.defs.assets.dbt import customer_marts, star_schema
from pipeline.defs.freshness import REFRESH_FRESHNESS
from pipeline.defs.resources import PipelineSettings
from pipeline.retry import retry_on_duckdb_lock
from pipeline.settings import REPO_ROOT

MART_KEYS = [key for key in [*star_schema.keys, *customer_marts.keys] if key.path[0] == "marts"]


@dg.asset(
    key=["serve", "bi_snapshot"],
    deps=MART_KEYS,
    group_name="publish",
    kinds={"duckdb", "parquet"},
    freshness_policy=REFRESH_FRESHNESS,
)
def bi_snapshot(
    context: dg.AssetExecutionContext, settings: PipelineSettings, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """A read-only copy of every mart (PII columns left out) as one DuckDB file plus one Parquet
    file per mart, swapped in atomically at <data_dir>/serve/current. BI connects there, never to
    the working warehouse. A backfill of a past as-of date is built but not promoted."""
    serve_dir = settings.current.paths.serve
    with retry_on_duckdb_lock(), duckdb.get_connection() as conn:
        for leftover in snapshot.remove_leftovers(serve_dir):
            context.log.info(f"Removed {leftover.name}, left behind by a publish killed part-way.")
        manifest = snapshot.publish(
            conn,
            serve_dir,
            as_of=settings.current.as_of,
            run_id=context.run.run_id,
            version=snapshot.code_version(REPO_ROOT),
        )
    if not manifest.promoted:
        context.log.warning(
            f"Snapshot {manifest.build_id} is older than the current one; built, not promoted."
        )
    return dg.MaterializeResult(
        metadata={
            "build_id": manifest.build_id,
            "as_of": manifest.as_of,
            "promoted": manifest.promoted,
            "code_version": manifest.code_version,
            "path": dg.MetadataValue.path(str(serve_dir / snapshot.CURRENT_LINK / snapshot.SNAPSHOT_FILE)),
            "row_counts": dg.MetadataValue.json(manifest.row_counts),
            "dagster/row_count": sum(manifest.row_counts.values()),
        }
    )
