"""Customer clusters: k-means with K chosen by silhouette, stable ids across refreshes, profiles,
names and feature importance."""

import dagster as dg
import pandas as pd
from dagster_dbt import get_asset_key_for_model
from dagster_duckdb import DuckDBResource

from pipeline import warehouse
from pipeline.analytics import cluster_profiles, clusters
from pipeline.defs.assets.customers import customer_rfm
from pipeline.defs.assets.dbt import star_schema
from pipeline.defs.assets.metadata import markdown_table
from pipeline.defs.assets.raw import TRUTH_CUSTOMERS
from pipeline.defs.resources import PipelineSettings
from pipeline.retry import retry_on_duckdb_lock

CLUSTERS_KEY = dg.AssetKey(["analytics", "customer_clusters"])
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
# Typed empty tables for a refresh without clusters, so the marts reading them still build.
EMPTY_HISTORY = {
    "cluster_profiles": {"cluster_id": "int64", "name": "str", "customers": "int64"},
    "cluster_k_curve": {
        "k": "int64", "inertia": "float64", "silhouette": "float64", "silhouette_se": "float64",
        "is_chosen": "bool",
        "is_elbow": "bool",
    },
    "cluster_feature_importance": {
        "cluster_id": "Int64", "feature": "str", "importance_mean": "float64",
        "importance_std": "float64", "rank": "int64", "surrogate_score": "float64",
        "cluster_mean_z": "float64",
    },
    "cluster_centroids": {"cluster_id": "int64"},
    "cluster_label_history": {"customer_code": "str", "cluster_id": "int64"},
}


def write_history(conn, table: str, frame: pd.DataFrame, as_of) -> None:
    """This as-of date's rows of an analytics history table, adding columns the table lacks
    (the centroids and profiles carry one column per feature, and a refresh without clusters
    creates the tables with the key columns only)."""
    if warehouse.table_exists(conn, "analytics", table):
        have = {name for name, _ in warehouse.table_columns(conn, "analytics", table)}
        missing = [c for c in frame.columns if c not in have]
        if missing:
            conn.register("_new_columns", frame)
            types = dict(conn.execute("select column_name, column_type from (describe _new_columns)").fetchall())
            conn.unregister("_new_columns")
            for column in missing:
                conn.execute(
                    f"alter table {warehouse.qualified('analytics', table)} "
                    f"add column {warehouse.quote_ident(column)} {types[column]}"
                )
    warehouse.replace_as_of_rows(conn, "analytics", table, frame, as_of)


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
            group_name="customer_analytics",
            kinds={"python", "scikit-learn", "duckdb"},
        ),
        *[
            dg.AssetSpec(
                ["analytics", table],
                deps=[CLUSTERS_KEY],
                description=text,
                group_name="customer_analytics",
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
    inertia elbow is a cross-check) unless PIPELINE_CLUSTER_K fixes it; fit on a seeded sample of
    up to 200,000 customers, then everyone is assigned. Cluster ids are matched to the previous
    refresh's centroids so they keep their meaning. Too few customers give no clusters and a
    not_clustered status with the reason, not a failed refresh. Writes
    analytics.customer_clusters and per-as-of history tables (cluster_profiles, cluster_k_curve,
    cluster_feature_importance, cluster_centroids, cluster_evaluation, cluster_status)."""
    current = settings.current
    config = clusters.ClusterConfig(
        k_range=(current.models.cluster_k_min, current.models.cluster_k_max), k=current.models.cluster_k
    )
    as_of = pd.Timestamp(current.as_of)
    with retry_on_duckdb_lock(), duckdb.get_connection() as conn:
        features = conn.execute(
            "select f.*, r.segment from marts.customer_cluster_features as f "
            "join analytics.customer_rfm as r using (customer_code) "
            # a fixed order: the fit samples rows by position
            "order by customer_code"
        ).df()
        previous = warehouse.previous_as_of(conn, "analytics", "cluster_centroids", current.as_of)
        previous_centroids = previous_labels = None
        if previous is not None:
            previous_centroids = warehouse.read_as_of_rows(conn, "analytics", "cluster_centroids", previous)
            previous_labels = warehouse.read_as_of_rows(
                conn, "analytics", "cluster_label_history", previous
            ).set_index("customer_code")["cluster_id"]
        fit = clusters.fit_clusters(features, config=config, previous_centroids=previous_centroids)
        clustered = fit.status == clusters.CLUSTERED
        if clustered:
            profiles = cluster_profiles.cluster_profiles(
                features, fit.labels, revenue="total_net_sales", segment="segment"
            )
            importance = cluster_profiles.feature_importance(features, fit.labels, fit.features)
        else:
            context.log.warning(f"no clusters this refresh: {fit.reason}")
            profiles = _empty("cluster_profiles")
            importance = _empty("cluster_feature_importance")
        names = profiles.set_index("cluster_id")["name"]
        assignments = pd.DataFrame(
            {
                "customer_code": fit.labels.index.astype(str),
                "as_of_date": pd.Series(as_of, index=range(len(fit.labels))),
                "cluster_id": fit.labels.to_numpy(),
                "cluster_name": names.reindex(fit.labels.to_numpy()).to_numpy().astype(str),
            }
        )
        evaluation = {"clustered": float(clustered), "customers": len(features)}
        if clustered:
            chosen = fit.curve.loc[fit.curve["is_chosen"], "silhouette"]
            evaluation |= {
                "k": fit.k,
                "elbow_k": fit.elbow_k,
                "silhouette": float(chosen.iloc[0]) if len(chosen) else None,
            }
        if clustered and previous_labels is not None:
            changes = clusters.label_changes(previous_labels, fit.labels)
            evaluation |= {"changed_customers": changes.changed, "changed_share": changes.changed_share}
        if clustered and warehouse.table_exists(conn, "truth", "customers"):
            truth = conn.execute("select customer_code, persona from truth.customers").df()
            evaluation["ari_vs_personas"] = clusters.persona_agreement(fit.labels, truth).ari

        history = {
            "cluster_profiles": profiles,
            "cluster_k_curve": fit.curve if clustered else _empty("cluster_k_curve"),
            "cluster_feature_importance": importance,
            "cluster_centroids": fit.centroids if clustered else _empty("cluster_centroids"),
            "cluster_label_history": assignments[["customer_code", "cluster_id"]],
            "cluster_evaluation": pd.DataFrame(
                {"metric": list(evaluation), "value": [float(v) if v is not None else None for v in evaluation.values()]}
            ),
            "cluster_status": pd.DataFrame(
                {"status": [fit.status], "reason": [fit.reason], "customers": [len(features)], "k": [fit.k]}
            ),
        }
        warehouse.replace_tables(conn, "analytics", {"customer_clusters": assignments})
        for table, frame in history.items():
            frame = frame.copy()
            frame.insert(0, "as_of_date", pd.Series(as_of, index=frame.index, dtype="datetime64[ns]"))
            write_history(conn, table, frame, current.as_of)

    yield dg.MaterializeResult(
        asset_key=CLUSTERS_KEY,
        metadata={
            "dagster/row_count": len(assignments),
            "as_of": current.as_of.isoformat(),
            "status": fit.status,
            "reason": fit.reason or "",
            **{key: value for key, value in evaluation.items() if value is not None},
            "features": ", ".join(fit.features),
            "dropped_constant_features": ", ".join(fit.dropped) or "none",
            "k_curve": dg.MetadataValue.md(markdown_table(fit.curve.round(4))),
            "clusters": dg.MetadataValue.md(
                markdown_table(
                    profiles.reindex(columns=["cluster_id", "name", "customers", "revenue_share"]).round(4)
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
        }
    )
    for table, frame in history.items():
        yield dg.MaterializeResult(
            asset_key=["analytics", table],
            metadata={"dagster/row_count": len(frame), "as_of": current.as_of.isoformat()},
        )


def _empty(table: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in EMPTY_HISTORY[table].items()})
