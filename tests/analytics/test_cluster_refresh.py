"""The clusters over a real DuckDB table store (``cluster_refresh``): beyond the fit sample size
the fit reads a seeded sample the engine draws, everyone is assigned batch by batch, and the
counts the engine makes (sizes, changes, the ARI) are those of the labels."""

from __future__ import annotations

from dataclasses import replace

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from pipeline import warehouse
from pipeline.analytics import cluster_refresh
from pipeline.analytics import clusters as cl
from pipeline.engine import duckdb_tables
from pipeline.engine.duckdb_tables import DuckDBTables
from tests.analytics.test_clusters import synthetic_features

CUSTOMERS, SAMPLE = 3_000, 1_000
CONFIG = cl.ClusterConfig(k=4, silhouette_sample_size=500, fit_sample_size=SAMPLE)
FIRST, SECOND = pd.Timestamp("2026-11-09").date(), pd.Timestamp("2026-11-24").date()


@pytest.fixture
def tables(tmp_path, monkeypatch):
    monkeypatch.setattr(duckdb_tables, "BATCH_VECTORS", 1)  # 2,048 rows a batch
    features, group = synthetic_features(CUSTOMERS, seed=4)
    rfm = pd.DataFrame({"customer_code": features["customer_code"], "segment": "Champions"})
    truth = pd.DataFrame(
        {"customer_code": features["customer_code"], "persona": [f"p{g}" for g in group]}
    )
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        warehouse.replace_tables(conn, "intermediate", {"customer_cluster_features": features})
        warehouse.replace_tables(conn, "analytics", {"customer_rfm": rfm})
        warehouse.replace_tables(conn, "truth", {"customers": truth})
        yield DuckDBTables(conn)


def _labels(tables, day) -> pd.Series:
    rows = tables.read_as_of_rows("analytics", "cluster_label_history", day)
    return rows.set_index("customer_code")["cluster_id"]


def test_the_fit_sample_is_drawn_by_the_engine_and_reproducible_by_seed(tables):
    first, customers = cluster_refresh.read_features(tables, CONFIG)
    again, _ = cluster_refresh.read_features(tables, CONFIG)
    other, _ = cluster_refresh.read_features(tables, replace(CONFIG, random_state=1))
    assert customers == CUSTOMERS and len(first) == SAMPLE
    pd.testing.assert_frame_equal(first, again)
    assert first["customer_code"].is_monotonic_increasing
    assert set(first["customer_code"]) != set(other["customer_code"])
    everyone, _ = cluster_refresh.read_features(tables, replace(CONFIG, fit_sample_size=CUSTOMERS))
    assert len(everyone) == CUSTOMERS  # up to the sample size: everyone, as before


def test_a_sampled_refresh_assigns_everyone_and_reproduces_itself(tables):
    result = cluster_refresh.refresh_clusters(tables, CONFIG, FIRST)
    assert result.fit.fit_rows == SAMPLE and result.assigned == CUSTOMERS
    labels = _labels(tables, FIRST)
    assert len(labels) == CUSTOMERS and labels.index.is_unique
    # everyone gets the cluster the fitted model predicts for them
    features = tables.read_table("intermediate", "customer_cluster_features")
    expected = cl.assign_clusters(result.fit, features)
    pd.testing.assert_series_equal(labels.sort_index(), expected.sort_index(), check_names=False)
    # sizes are counted over everyone, not the sample
    profiles = result.profiles.set_index("cluster_id")
    assert profiles["customers"].sum() == CUSTOMERS
    assert profiles["customers"].to_dict() == labels.value_counts().to_dict()
    assert profiles["name"].is_unique
    truth = tables.query("select customer_code, persona from truth.customers")
    assert result.evaluation["ari_vs_personas"] == pytest.approx(
        cl.persona_agreement(labels, truth).ari, abs=1e-12
    )
    named = tables.read_table("analytics", "customer_clusters")
    assert len(named) == CUSTOMERS
    assert dict(zip(named["cluster_id"], named["cluster_name"])) == profiles["name"].to_dict()

    # the next refresh on the same data: the same sample, the same clusters, nobody moves
    second = cluster_refresh.refresh_clusters(tables, CONFIG, SECOND)
    pd.testing.assert_series_equal(_labels(tables, SECOND), labels)
    assert second.evaluation["changed_customers"] == 0
    assert second.evaluation["changed_share"] == 0.0


def test_the_ari_from_counts_equals_sklearns_on_labels():
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 5, 5_000)
    clusters = (truth + rng.integers(0, 3, 5_000)) % 6
    counts = pd.crosstab(truth, clusters).to_numpy()
    assert cl.ari_from_contingency(counts) == pytest.approx(
        adjusted_rand_score(truth, clusters), abs=1e-15
    )
    assert cl.ari_from_contingency(np.diag([3, 4, 5])) == 1.0
