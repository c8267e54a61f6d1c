"""The clusters asset on too little data: a real materialization into a temp DuckDB publishes no
clusters and a status that says why, instead of failing the refresh."""

from __future__ import annotations

import dagster as dg
import duckdb
import pandas as pd
import pytest
from dagster_duckdb import DuckDBResource

from pipeline import warehouse
from pipeline.analytics import clusters as cl
from pipeline.defs.assets.clusters import customer_clusters
from pipeline.defs.checks import clusters_were_found
from pipeline.defs.resources import PipelineSettings

AS_OF = "2026-11-24"


def _warehouse(path, n: int) -> None:
    """intermediate.customer_cluster_features and analytics.customer_rfm for n distinct customers."""
    features = pd.DataFrame(
        {
            "customer_code": [f"C{i}" for i in range(n)],
            **{column: [float(i) for i in range(n)] for column in cl.BEHAVIOUR_FEATURES},
            "mix_accessories__mouse": [1.0 / (i + 1) for i in range(n)],
            "total_net_sales": [100.0 * (i + 1) for i in range(n)],
        }
    )
    rfm = pd.DataFrame({"customer_code": features["customer_code"], "segment": "Champions"})
    with duckdb.connect(str(path)) as conn:
        warehouse.replace_tables(conn, "intermediate", {"customer_cluster_features": features})
        warehouse.replace_tables(conn, "analytics", {"customer_rfm": rfm})


@pytest.mark.parametrize("customers", [0, 1, 2])
def test_too_few_customers_publish_no_clusters_and_a_warning(tmp_path, customers):
    database = tmp_path / "warehouse.duckdb"
    _warehouse(database, customers)
    result = dg.materialize(
        [customer_clusters, clusters_were_found],
        resources={
            "settings": PipelineSettings(as_of=AS_OF),
            "duckdb": DuckDBResource(database=str(database)),
        },
        raise_on_error=False,
    )
    assert result.success  # the refresh goes on
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    with duckdb.connect(str(database), read_only=True) as conn:
        status, reason, counted, k = conn.execute(
            "select status, reason, customers, k from analytics.cluster_status"
        ).fetchone()
        assert (status, counted, k) == ("not_clustered", customers, 0)
        assert f"{customers} customers with orders" in reason
        assert check.metadata["reason"].value == reason
        assert conn.execute("select count(*) from analytics.customer_clusters").fetchone() == (0,)
        # the history tables exist (the marts read them) and hold nothing for this date
        for table in ("cluster_profiles", "cluster_k_curve", "cluster_centroids"):
            assert conn.execute(f"select count(*) from analytics.{table}").fetchone() == (0,)
        evaluation = dict(
            conn.execute("select metric, value from analytics.cluster_evaluation").fetchall()
        )
        assert evaluation == {"clustered": 0.0, "customers": float(customers)}


def test_a_refresh_with_clusters_after_one_without_adds_the_columns(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    resources = {"duckdb": DuckDBResource(database=str(database))}
    for as_of, customers in (("2026-11-09", 1), (AS_OF, 40)):
        _warehouse(database, customers)
        result = dg.materialize(
            [customer_clusters], resources={**resources, "settings": PipelineSettings(as_of=as_of)}
        )
        assert result.success
    with duckdb.connect(str(database), read_only=True) as conn:
        statuses = conn.execute(
            "select cast(as_of_date as string), status from analytics.cluster_status order by 1"
        ).fetchall()
        assert statuses == [("2026-11-09", "not_clustered"), (AS_OF, "clustered")]
        k = conn.execute("select count(*) from analytics.cluster_profiles").fetchone()[0]
        assert k >= 2
        centroid_columns = {
            c for c, _ in warehouse.table_columns(conn, "analytics", "cluster_centroids")
        }
        assert set(cl.BEHAVIOUR_FEATURES) <= centroid_columns
        assigned = conn.execute("select count(*) from analytics.customer_clusters").fetchone()[0]
        assert assigned == 40
