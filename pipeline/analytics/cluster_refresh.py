"""One refresh of the customer clusters over the warehouse: read the features, fit (ids matched
to the previous refresh's centroids), profile and name the clusters, explain them, and write
analytics.customer_clusters and the per-as-of history tables. The pure steps live in
``clusters`` and ``cluster_profiles``; this module only moves their inputs and outputs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from pipeline.analytics import cluster_profiles, clusters

# Typed empty tables for a refresh without clusters, so the marts reading them still build.
EMPTY_HISTORY = {
    "cluster_profiles": {"cluster_id": "int64", "name": "str", "customers": "int64"},
    "cluster_k_curve": {
        "k": "int64",
        "inertia": "float64",
        "silhouette": "float64",
        "silhouette_se": "float64",
        "is_chosen": "bool",
        "is_elbow": "bool",
    },
    "cluster_feature_importance": {
        "cluster_id": "Int64",
        "feature": "str",
        "importance_mean": "float64",
        "importance_std": "float64",
        "rank": "int64",
        "surrogate_score": "float64",
        "cluster_mean_z": "float64",
    },
    "cluster_centroids": {"cluster_id": "int64"},
    "cluster_label_history": {"customer_code": "str", "cluster_id": "int64"},
}


def write_history(tables, table: str, frame: pd.DataFrame, as_of) -> None:
    """This as-of date's rows of an analytics history table, adding columns the table lacks
    (the centroids and profiles carry one column per feature, and a refresh without clusters
    creates the tables with the key columns only)."""
    tables.add_missing_columns("analytics", table, frame)
    tables.replace_as_of_rows("analytics", table, frame, as_of)


@dataclass(frozen=True)
class ClusterRefresh:
    fit: clusters.ClusterFit
    assignments: pd.DataFrame
    profiles: pd.DataFrame
    importance: pd.DataFrame
    evaluation: dict
    history: dict[str, pd.DataFrame]


def refresh_clusters(tables, config: clusters.ClusterConfig, as_of_date: dt.date) -> ClusterRefresh:
    """Cluster the customers of the customer_cluster_features model as of ``as_of_date`` and
    write analytics.customer_clusters and this date's rows of every history table, through
    ``tables``, the run's table store (``pipeline.engine``)."""
    as_of = pd.Timestamp(as_of_date)
    features = tables.query(
        "select f.*, r.segment from intermediate.customer_cluster_features as f "
        "join analytics.customer_rfm as r using (customer_code) "
        # a fixed order: the fit samples rows by position
        "order by customer_code"
    )
    previous = tables.previous_as_of("analytics", "cluster_centroids", as_of_date)
    previous_centroids = previous_labels = None
    if previous is not None:
        previous_centroids = tables.read_as_of_rows("analytics", "cluster_centroids", previous)
        previous_labels = tables.read_as_of_rows(
            "analytics", "cluster_label_history", previous
        ).set_index("customer_code")["cluster_id"]
    fit = clusters.fit_clusters(features, config=config, previous_centroids=previous_centroids)
    clustered = fit.status == clusters.CLUSTERED
    if clustered:
        profiles = cluster_profiles.cluster_profiles(
            features, fit.labels, revenue="total_net_sales", segment="segment"
        )
        importance = cluster_profiles.feature_importance(features, fit.labels, fit.features)
    else:
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
    if clustered and tables.table_exists("truth", "customers"):
        truth = tables.query("select customer_code, persona from truth.customers")
        evaluation["ari_vs_personas"] = clusters.persona_agreement(fit.labels, truth).ari

    history = {
        "cluster_profiles": profiles,
        "cluster_k_curve": fit.curve if clustered else _empty("cluster_k_curve"),
        "cluster_feature_importance": importance,
        "cluster_centroids": fit.centroids if clustered else _empty("cluster_centroids"),
        "cluster_label_history": assignments[["customer_code", "cluster_id"]],
        "cluster_evaluation": pd.DataFrame(
            {
                "metric": list(evaluation),
                "value": [float(v) if v is not None else None for v in evaluation.values()],
            }
        ),
        "cluster_status": pd.DataFrame(
            {
                "status": [fit.status],
                "reason": [fit.reason],
                "customers": [len(features)],
                "k": [fit.k],
            }
        ),
    }
    tables.replace_tables("analytics", {"customer_clusters": assignments})
    for table, frame in history.items():
        frame = frame.copy()
        frame.insert(0, "as_of_date", pd.Series(as_of, index=frame.index, dtype="datetime64[ns]"))
        write_history(tables, table, frame, as_of_date)

    return ClusterRefresh(fit, assignments, profiles, importance, evaluation, history)


def _empty(table: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in EMPTY_HISTORY[table].items()})
