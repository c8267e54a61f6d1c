"""Publish: the HTML dashboard beside the BI snapshot, rebuilt after every refresh."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipeline import engine
from pipeline.defs.assets.publish import MART_KEYS, bi_snapshot
from pipeline.defs.freshness import REFRESH_FRESHNESS
from pipeline.defs.resources import PipelineSettings
from pipeline.publish import snapshot
from pipeline.publish.dashboard import write_dashboard

DASHBOARD_FILE = "dashboard.html"


@dg.asset(
    key=["serve", "dashboard"],
    deps=[*MART_KEYS, bi_snapshot],
    group_name="publish",
    kinds={"html", "plotly"},
    freshness_policy=REFRESH_FRESHNESS,
)
def dashboard(
    context: dg.AssetExecutionContext, settings: PipelineSettings, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """A self-contained HTML report (plotly.js inline, opens offline) of the marts, written
    atomically to <data_dir>/serve/dashboard.html. A backfill of an as-of date older than the
    promoted snapshot writes dashboard-<as-of>.html instead, so the main page matches BI."""
    serve_dir = settings.current.paths.serve
    as_of = settings.current.as_of.isoformat()
    current = snapshot.current_manifest(serve_dir)
    name = DASHBOARD_FILE
    if current is not None and current.as_of > as_of:
        name = f"dashboard-{as_of}.html"
        context.log.warning(
            f"As of {as_of} is older than the published {current.as_of}: writing {name}."
        )
    path = serve_dir / name
    with engine.open_tables(settings.current, duckdb) as tables, tables.marts_reader() as conn:
        size = write_dashboard(conn, path)
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(path)), "as_of": as_of, "bytes": size}
    )
