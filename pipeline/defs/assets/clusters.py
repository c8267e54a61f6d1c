"""Customer clusters: k-means with K chosen by silhouette, stable ids across refreshes, profiles,
names and feature importance."""

import dagster as dg
from dagster_dbt import get_asset_key_for_model
from dagster_duckdb import DuckDBResource

from pipeline import engine
from pipeline.analytics import cluster_refresh, clusters
from pipeline.defs import checks
from pipeline.defs.assets.customers import customer_rfm
from pipeline.defs.assets.dbt import star_schema
from pipeline.defs.assets.metadata import markdown_table
from pipeline.defs.assets.raw import TRUTH_CUSTOMERS
from pipeline.defs.resources import PipelineSettings

CLUSTERS_KEY = checks.CLUSTERS_KEY
# History tables written with the assignments: one row set per as-of date each.
HISTORY_TABLES = {
    "cluster_profiles": "One row per as-of date and cluster: size, revenue, feature means and "
    "medians, top segments, dominant RFM segment, name.",
    "cluster_k_curve": "One row per as-of date and K tried: inertia, silhouette (and its standard error), chosen, elbow.",
    "cluster_feature_importance": "One row per as-of date, cluster (null = all) and feature: "
    "permutation importance of a surrogate classifier.",
    "cluster_evaluation": "One row per as-of date and metric: k, elbow_k, silhouette, changed "
    "customers, ARI against the simulator's personas.",
    "cluster_centroids": "One row per as-of date and cluster: the centroid in feature units, "
    "which the next refresh matches its cluster ids to.",
    "cluster_label_history": "One row per as-of date and customer: the cluster id.",
    "cluster_status": "One row per as-of date: clustered or not_clustered, and why (too little "
    "data degrades to no clusters rather than failing the refresh).",
}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            CLUSTERS_KEY,
            deps=[
                get_asset_key_for_model([star_schema], "customer_cluster_features"),
                customer_rfm.key,
                TRUTH_CUSTOMERS,
            ],
            description="One row per customer with orders: cluster id and name.",
            group_name="analytics",
            kinds={"python", "scikit-learn", "duckdb"},
        ),
        *[
            dg.AssetSpec(
                ["analytics", table],
                deps=[CLUSTERS_KEY],
                description=text,
                group_name="analytics",
                kinds={"python", "duckdb"},
            )
            for table, text in HISTORY_TABLES.items()
        ],
    ],
    name="customer_clusters",
)
def customer_clusters(
    context: dg.AssetExecutionContext, settings: PipelineSettings, duckdb: DuckDBResource
):
    """k-means on scaled behaviour and basket features (the shrunk order-line mix per category,
    log units per line, log lines per order, margin rate, log average order value, log frequency,
    tenure). K is chosen by silhouette on a seeded sample over PIPELINE_CLUSTER_K_MIN..MAX (the
    inertia elbow is a cross-check) unless PIPELINE_CLUSTER_K fixes it; fit and profiled on a
    seeded sample of up to PIPELINE_CLUSTER_FIT_SAMPLE customers (200,000), then everyone is
    assigned batch by batch inside the engine (pipeline/analytics/cluster_refresh.py). Cluster ids are matched to the previous
    refresh's centroids so they keep their meaning. Too few customers give no clusters and a
    not_clustered status with the reason, not a failed refresh. Writes
    analytics.customer_clusters and per-as-of history tables (cluster_profiles, cluster_k_curve,
    cluster_feature_importance, cluster_centroids, cluster_evaluation, cluster_status)."""
    current = settings.current
    config = clusters.ClusterConfig(
        k_range=(current.models.cluster_k_min, current.models.cluster_k_max),
        k=current.models.cluster_k,
        fit_sample_size=current.models.cluster_fit_sample,
    )
    with engine.open_tables(current, duckdb) as tables:
        result = cluster_refresh.refresh_clusters(tables, config, current.as_of)
    fit, profiles, importance, evaluation = (
        result.fit,
        result.profiles,
        result.importance,
        result.evaluation,
    )
    if fit.status != clusters.CLUSTERED:
        context.log.warning(f"no clusters this refresh: {fit.reason}")

    yield dg.MaterializeResult(
        asset_key=CLUSTERS_KEY,
        metadata={
            "dagster/row_count": result.assigned,
            "as_of": current.as_of.isoformat(),
            "status": fit.status,
            "reason": fit.reason or "",
            **{key: value for key, value in evaluation.items() if value is not None},
            "features": ", ".join(fit.features),
            "dropped_constant_features": ", ".join(fit.dropped) or "none",
            "k_curve": dg.MetadataValue.md(markdown_table(fit.curve.round(4))),
            "clusters": dg.MetadataValue.md(
                markdown_table(
                    profiles.reindex(
                        columns=["cluster_id", "name", "customers", "revenue_share"]
                    ).round(4)
                )
            ),
            "top_features": dg.MetadataValue.md(
                markdown_table(
                    importance[importance["cluster_id"].isna()]
                    .sort_values("rank")[["feature", "importance_mean"]]
                    .head(8)
                    .round(4)
                )
            ),
        },
    )
    for table, rows in result.history_rows.items():
        yield dg.MaterializeResult(
            asset_key=["analytics", table],
            metadata={"dagster/row_count": rows, "as_of": current.as_of.isoformat()},
        )
