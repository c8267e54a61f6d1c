"""Publish: the BI serving snapshot, built only after every upstream asset and blocking check passed."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipeline import engine
from pipeline.defs.assets.dbt import PII_COLUMNS, PUBLISHED, customer_marts, star_schema
from pipeline.defs.freshness import REFRESH_FRESHNESS
from pipeline.defs.resources import PipelineSettings
from pipeline.publish import snapshot
from pipeline.settings import REPO_ROOT


def _value(metadata, key):
    value = metadata.get(key)
    return getattr(value, "value", value)


# The marts dbt's YAML publishes (meta: {publish: true}), by table, with their PII columns.
PUBLISHED_MARTS = {
    spec.key: {c for c in (_value(spec.metadata, PII_COLUMNS) or "").split(",") if c}
    for spec in [*star_schema.specs, *customer_marts.specs]
    if _value(spec.metadata, PUBLISHED)
}
MART_KEYS = list(PUBLISHED_MARTS)


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
    with engine.open_tables(settings.current, duckdb) as tables:
        for leftover in snapshot.remove_leftovers(serve_dir):
            context.log.info(f"Removed {leftover.name}, left behind by a publish killed part-way.")
        manifest = tables.publish(
            serve_dir,
            as_of=settings.current.as_of,
            run_id=context.run.run_id,
            version=snapshot.code_version(REPO_ROOT),
            marts={key.path[-1]: pii for key, pii in PUBLISHED_MARTS.items()},
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
            "path": dg.MetadataValue.path(
                str(serve_dir / snapshot.CURRENT_LINK / snapshot.SNAPSHOT_FILE)
            ),
            "row_counts": dg.MetadataValue.json(manifest.row_counts),
            "dagster/row_count": sum(manifest.row_counts.values()),
        }
    )
