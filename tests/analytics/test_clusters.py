"""Clustering, K choice, stable ids, profiles, names and importance with real scikit-learn."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from pipeline.analytics import cluster_profiles as cp
from pipeline.analytics import clusters as cl

# Persona-like groups for synthetic_features: share, mean extra orders, median order value,
# segment mix (SEGMENTS order), days since the last order (exponential mean), units per line.
_GROUPS = (
    (0.25, 1.2, 180.0, (0.45, 0.25, 0.10, 0.05, 0.10, 0.05), 120.0, 1.3),
    (0.20, 1.5, 650.0, (0.15, 0.15, 0.45, 0.15, 0.05, 0.05), 150.0, 2.0),
    (0.05, 6.0, 4000.0, (0.30, 0.30, 0.10, 0.05, 0.15, 0.10), 40.0, 20.0),
    (0.30, 1.4, 60.0, (0.10, 0.55, 0.00, 0.00, 0.25, 0.10), 200.0, 1.5),
    (0.20, 0.2, 900.0, (0.05, 0.10, 0.70, 0.15, 0.00, 0.00), 400.0, 1.1),
)


def synthetic_features(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A customer_cluster_features-shaped frame from five planted groups, and each row's group.

    Vectorised numpy, so it also serves to measure the clustering at 1,000,000 customers.
    """
    rng = np.random.default_rng(seed)
    shares = np.array([g[0] for g in _GROUPS])
    group = rng.choice(len(_GROUPS), size=n, p=shares / shares.sum())
    extra = np.array([g[1] for g in _GROUPS])[group]
    value = np.array([g[2] for g in _GROUPS])[group]
    mix = np.array([g[3] for g in _GROUPS])[group]
    recency_mean = np.array([g[4] for g in _GROUPS])[group]

    orders = 1 + rng.poisson(extra)
    lines = orders * (1 + rng.poisson(1.0, n))
    # Segment shares from the lines' segments: one-line customers get a single segment.
    counts = np.stack([rng.binomial(lines, p) for p in mix.T], axis=1).astype(float)
    empty = counts.sum(axis=1) == 0
    counts[empty, mix[empty].argmax(axis=1)] = 1
    share = counts / counts.sum(axis=1, keepdims=True)
    population = counts.sum(axis=0) / counts.sum()
    lines = counts.sum(axis=1)
    avg_order = value * rng.lognormal(0.0, 0.45, n)
    days_since = np.minimum(rng.exponential(recency_mean), 1000).astype(int)
    tenure = days_since + (orders - 1) * rng.integers(20, 120, n)
    platform_channel = rng.integers(0, 4, n)
    units = 1 + rng.poisson(np.array([g[5] for g in _GROUPS])[group] - 1)
    frame = pd.DataFrame(
        {
            "customer_code": np.char.add("C", np.arange(n).astype(str)),
            "order_count": orders,
            "days_since_last_order": days_since,
            "tenure_days": tenure,
            "total_net_sales": avg_order * orders,
            "avg_order_net_sales": avg_order,
            "units_per_line": units,
            "lines_per_order": lines / orders,
            "margin_rate": np.clip(rng.normal(0.3, 0.05, n), 0, 1),
            "log_frequency": np.log1p(orders),
            "log_avg_order_value": np.log1p(avg_order),
            "log_units_per_line": np.log1p(units),
            "log_lines_per_order": np.log1p(lines / orders),
            **{column: share[:, i] for i, column in enumerate(cl.SEGMENT_SHARES)},
            # the model's mix: shrunk towards everyone's, as customer_cluster_features does
            **{
                f"mix_{segment.lower()}": (counts[:, i] + 2 * population[i]) / (lines + 2)
                for i, segment in enumerate(cl.SEGMENTS)
            },
            "is_e_commerce": (platform_channel >= 2).astype(int),
            "is_direct": (platform_channel == 1).astype(int),
            "is_distributor": (platform_channel == 3).astype(int),
            "is_retailer": np.isin(platform_channel, [0, 2]).astype(int),
        }
    )
    return frame, group


def blob_frame(n: int = 1200, centers: int = 4, features: int = 4, seed: int = 1, std: float = 1.0):
    x, truth = make_blobs(
        n_samples=n, centers=centers, n_features=features, random_state=seed, cluster_std=std
    )
    columns = tuple(f"x{i}" for i in range(features))
    frame = pd.DataFrame(x, columns=list(columns))
    frame.insert(0, "customer_code", [f"C{i:05d}" for i in range(n)])
    return frame, columns, truth


# --- choice of K -----------------------------------------------------------------------------


def test_k_by_silhouette_finds_the_planted_blobs():
    frame, columns, truth = blob_frame(centers=4)
    fit = cl.fit_clusters(frame, columns)
    assert fit.k == 4
    assert fit.elbow_k == 4  # the cross-check agrees on clean blobs
    assert fit.curve["k"].tolist() == list(range(2, 11))
    assert list(fit.curve.columns) == list(cl.CURVE_COLUMNS)
    assert fit.curve.loc[fit.curve["is_chosen"], "k"].tolist() == [4]
    assert adjusted_rand_score(truth, fit.labels.to_numpy()) == pytest.approx(1.0)
    # first numbering by size: id 0 is the largest cluster
    sizes = fit.labels.value_counts()
    assert sizes.idxmax() == 0 or sizes[0] == sizes.max()


def test_a_fixed_k_skips_the_choice_and_a_range_is_honoured():
    frame, columns, _ = blob_frame(centers=4)
    fixed = cl.fit_clusters(frame, columns, cl.ClusterConfig(k=3))
    assert fixed.k == 3 and fixed.curve["k"].tolist() == [3]
    assert sorted(fixed.labels.unique()) == [0, 1, 2]
    ranged = cl.fit_clusters(frame, columns, cl.ClusterConfig(k_range=(5, 7)))
    assert ranged.curve["k"].tolist() == [5, 6, 7] and 5 <= ranged.k <= 7


def test_k_within_one_standard_error_of_the_best_goes_to_the_smaller_k():
    curve = pd.DataFrame(
        {
            "k": [2, 3, 4, 5],
            "silhouette": [0.10, 0.170, 0.150, 0.173],
            "silhouette_se": [0.002, 0.003, 0.003, 0.004],
        }
    )
    assert cl.choose_k(curve) == 3  # 0.170 is within 0.004 of 0.173: a tie, the smaller K wins
    assert cl.choose_k(curve.assign(silhouette_se=0.001)) == 5  # clearly better: the larger K
    assert cl.choose_k(curve.drop(columns="silhouette_se")) == 5  # no error known: exact ties only
    assert cl.choose_k(curve.assign(silhouette=np.nan)) == 2


def test_elbow_is_the_point_farthest_from_the_chord():
    ks = np.arange(2, 9)
    assert cl.elbow_k(ks, np.array([100, 40, 12, 10, 9, 8, 7.5])) == 4
    assert cl.elbow_k(ks[:2], np.array([5.0, 1.0])) is None
    assert cl.elbow_k(ks[:3], np.array([5.0, 5.0, 5.0])) is None


def test_the_same_data_gives_the_same_clusters():
    frame, columns, _ = blob_frame(centers=3, std=2.5)
    first = cl.fit_clusters(frame, columns)
    second = cl.fit_clusters(frame, columns)
    pd.testing.assert_series_equal(first.labels, second.labels)
    pd.testing.assert_frame_equal(first.curve, second.curve)


def test_the_k_curve_fit_side_by_side_is_the_one_fit_alone():
    """The K curve's fits run on several threads (issue 18): each K's k-means, its inertia and
    silhouette, and so the chosen K and everyone's cluster, are the one-thread fit's exactly."""
    frame, columns, _ = blob_frame(n=3000, centers=5, std=2.0)
    alone = cl.fit_clusters(frame, columns, config=cl.ClusterConfig(workers=1))
    together = cl.fit_clusters(frame, columns, config=cl.ClusterConfig(workers=3))
    pd.testing.assert_frame_equal(alone.curve, together.curve, check_exact=True)
    pd.testing.assert_frame_equal(alone.centroids, together.centroids, check_exact=True)
    pd.testing.assert_series_equal(alone.labels, together.labels)
    with pytest.raises(ValueError, match="workers"):
        cl.ClusterConfig(workers=0)


def test_fitting_on_a_sample_barely_changes_the_answer():
    # The large-N rule (fit on a seeded sample, predict everyone) against a fit on all rows.
    frame, _ = synthetic_features(50_000, seed=3)
    config = cl.ClusterConfig(k=5, silhouette_sample_size=1000)  # the silhouette is not under test
    full = cl.fit_clusters(frame, config=replace(config, fit_sample_size=50_000))
    sampled = cl.fit_clusters(frame, config=replace(config, fit_sample_size=10_000))
    assert sampled.fit_rows == 10_000 and full.fit_rows == 50_000
    ari = adjusted_rand_score(full.labels, sampled.labels.reindex(full.labels.index))
    assert ari > 0.9, ari


# --- stable ids ------------------------------------------------------------------------------


def test_a_refit_on_shuffled_data_keeps_the_previous_ids():
    frame, columns, _ = blob_frame(centers=4)
    first = cl.fit_clusters(frame, columns)
    # Shuffled rows and another seed: k-means numbers the clusters differently ...
    shuffled = frame.sample(frac=1, random_state=5).reset_index(drop=True)
    config = cl.ClusterConfig(random_state=11)
    unmatched = cl.fit_clusters(shuffled, columns, config)
    # ... previous ids renamed arbitrarily, to show the match follows them, not the sizes:
    renamed = {0: 7, 1: 3, 2: 5, 3: 1}
    previous = first.centroids.assign(cluster_id=first.centroids["cluster_id"].map(renamed))
    second = cl.fit_clusters(shuffled, columns, config, previous_centroids=previous)
    expected = first.labels.map(renamed)
    pd.testing.assert_series_equal(second.labels.reindex(expected.index), expected)
    assert sorted(second.centroids["cluster_id"]) == [1, 3, 5, 7]
    assert cl.label_changes(expected, second.labels).changed == 0
    # relabel() after the fact agrees
    again = cl.relabel(unmatched, previous)
    pd.testing.assert_series_equal(again.labels.sort_index(), second.labels.sort_index())


def test_new_clusters_get_fresh_ids_and_matched_ones_keep_theirs():
    frame, columns, truth = blob_frame(centers=4)
    three = cl.fit_clusters(frame, columns, cl.ClusterConfig(k=3))
    four = cl.fit_clusters(
        frame, columns, cl.ClusterConfig(k=4), previous_centroids=three.centroids
    )
    assert sorted(four.centroids["cluster_id"]) == [0, 1, 2, 3]
    old, new = three.labels.to_numpy(), four.labels.to_numpy()
    old_id = {blob: int(old[truth == blob][0]) for blob in range(4)}
    merged = [blob for blob in range(4) if list(old_id.values()).count(old_id[blob]) == 2]
    assert len(merged) == 2  # 3 clusters over 4 blobs: two blobs shared one
    for blob in range(4):
        ids = set(new[truth == blob])
        assert len(ids) == 1
        if blob not in merged:  # a blob that was a cluster of its own keeps its id
            assert ids == {old_id[blob]}
    # of the two merged blobs, one keeps the shared id and the other gets the fresh id 3
    assert {int(new[truth == blob][0]) for blob in merged} == {old_id[merged[0]], 3}
    # the previous centroids may carry a column the new fit dropped or lacks: matched on the rest
    extra = three.centroids.assign(unused=1.0)
    cl.fit_clusters(frame, columns, cl.ClusterConfig(k=3), previous_centroids=extra)


def test_label_changes_on_a_hand_made_case():
    previous = pd.Series({"a": 0, "b": 0, "c": 1, "d": 2})
    current = pd.Series({"a": 0, "b": 1, "c": 1, "e": 2})
    changes = cl.label_changes(previous, current)
    assert (changes.customers_compared, changes.changed) == (3, 1)
    assert (changes.only_previous, changes.only_current) == (1, 1)
    assert changes.changed_share == pytest.approx(1 / 3)
    assert changes.transitions["customers"].sum() == 3
    moved = changes.transitions.query("previous_cluster_id != cluster_id")
    assert moved[["previous_cluster_id", "cluster_id", "customers"]].values.tolist() == [[0, 1, 1]]


def test_assign_clusters_matches_the_fit_labels():
    frame, columns, _ = blob_frame(centers=4)
    fit = cl.fit_clusters(frame, columns)
    pd.testing.assert_series_equal(cl.assign_clusters(fit, frame), fit.labels)


# --- degenerate input ------------------------------------------------------------------------


def _assert_no_clusters(fit: cl.ClusterFit, reason: str) -> None:
    """Too little data: a status and a reason, no cluster for anyone, nothing to publish."""
    assert fit.status == cl.NOT_CLUSTERED and fit.k == 0 and fit.pipeline is None
    assert reason in fit.reason and fit.reason in fit.notes
    assert fit.labels.empty and fit.curve.empty and fit.centroids.empty
    with pytest.raises(ValueError, match="no clusters to assign"):
        cl.assign_clusters(fit, pd.DataFrame({"customer_code": ["a"], "x": [0.0]}))


@pytest.mark.parametrize(
    "codes, values, reason",
    [
        # no customer with orders yet
        ([], [], "0 customers with orders have only 0 distinct"),
        # one customer: the IndexError this used to be
        (["a"], [1.0], "1 customers with orders have only 1 distinct"),
        # two customers: two distinct rows, but no silhouette for K = 2
        (["a", "b"], [0.0, 1.0], "2 customers with orders: at least 3 are needed"),
        # many customers, all alike: nothing to tell apart
        (list("abcdef"), [1.0] * 6, "6 customers with orders have only 1 distinct"),
    ],
)
def test_too_few_customers_give_no_clusters_and_say_why(codes, values, reason):
    frame = pd.DataFrame(
        {"customer_code": pd.Series(codes, dtype=object), "x": pd.Series(values, dtype=float)}
    )
    frame["y"] = frame["x"]
    _assert_no_clusters(cl.fit_clusters(frame, ("x", "y")), reason)


def test_fewer_distinct_customers_than_k_min_or_k_give_no_clusters():
    frame = pd.DataFrame({"customer_code": list("abcdefgh"), "x": [0.0, 0, 0, 1, 1, 1, 7, 7]})
    # 3 distinct rows: K from 4 up is impossible, whatever the customer count
    _assert_no_clusters(
        cl.fit_clusters(frame, ("x",), cl.ClusterConfig(k_range=(4, 6))), "at least K = 4 clusters"
    )
    _assert_no_clusters(cl.fit_clusters(frame, ("x",), cl.ClusterConfig(k=4)), "k = 4 clusters")
    # k = 1 is everyone in one cluster, even with a single customer
    one = cl.fit_clusters(frame.head(1), ("x",), cl.ClusterConfig(k=1))
    assert one.status == cl.CLUSTERED and one.k == 1 and one.labels.tolist() == [0]


def test_fewer_customers_than_k_clips_the_range():
    frame = pd.DataFrame({"customer_code": list("abcdef"), "x": [0.0, 0.01, 5.0, 5.01, 9.0, 9.01]})
    fit = cl.fit_clusters(frame, ("x",))
    assert fit.curve["k"].max() == 5  # 6 customers: at most n - 1 for a silhouette
    assert fit.status == cl.CLUSTERED and any("clipped" in note for note in fit.notes)
    assert fit.k == 3  # three tight pairs
    # duplicated rows: no more clusters than distinct rows
    dupes = pd.DataFrame({"customer_code": list("abcdefgh"), "x": [0.0, 0.0, 0.0, 1, 1, 1, 7, 7]})
    assert cl.fit_clusters(dupes, ("x",)).curve["k"].max() == 3


def test_a_bad_k_range_is_a_clear_error():
    with pytest.raises(ValueError, match="k_range"):
        cl.ClusterConfig(k_range=(1, 5))


def test_a_constant_column_is_dropped_and_recorded():
    frame, columns, truth = blob_frame(centers=3)
    frame["one_order"] = np.log1p(1.0)  # e.g. every customer bought once
    fit = cl.fit_clusters(frame, (*columns, "one_order"))
    assert fit.dropped == ("one_order",) and fit.features == columns
    assert fit.k == 3 and adjusted_rand_score(truth, fit.labels) == pytest.approx(1.0)
    assert np.allclose(fit.centroids["one_order"], np.log1p(1.0))
    assert any("one_order" in note for note in fit.notes)


def test_bad_input_names_the_column():
    frame, columns, _ = blob_frame()
    frame.loc[3, "x1"] = np.nan
    with pytest.raises(ValueError, match="'x1' has 1 null"):
        cl.fit_clusters(frame, columns)
    with pytest.raises(ValueError, match="lacks columns"):
        cl.fit_clusters(frame, ("x0", "nope"))
    frame, columns, _ = blob_frame()
    frame.loc[5, "customer_code"] = frame.loc[4, "customer_code"]
    with pytest.raises(ValueError, match="duplicated customer_code"):
        cl.fit_clusters(frame, columns)


# --- profiles and names ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def realistic():
    frame, group = synthetic_features(6000, seed=1)
    segments = np.array(["Champions", "At Risk", "Lost"])
    frame["segment"] = segments[np.random.default_rng(2).integers(0, 3, len(frame))]
    config = cl.ClusterConfig(k_range=(2, 8), silhouette_sample_size=3000)
    fit = cl.fit_clusters(frame, config=config)
    return frame, group, fit


def test_profiles_add_up_and_names_are_unique(realistic):
    frame, _, fit = realistic
    profile = cp.cluster_profiles(frame, fit.labels, revenue="total_net_sales", segment="segment")
    assert len(profile) == fit.k and profile["cluster_id"].tolist() == sorted(fit.labels.unique())
    assert profile["customers"].sum() == len(frame)
    assert profile["customer_share"].sum() == pytest.approx(1.0)
    assert profile["revenue_share"].sum() == pytest.approx(1.0)
    assert profile["revenue"].sum() == pytest.approx(frame["total_net_sales"].sum())
    assert profile["name"].is_unique and profile["name"].str.len().gt(0).all()
    for column in ("order_count_mean", "order_count_median", "share_notebook_mean", "top_segments"):
        assert column in profile.columns
    assert set(profile["dominant_rfm_segment"]) <= {"Champions", "At Risk", "Lost"}
    # means are of the raw, unscaled values
    first = profile.iloc[0]
    members = frame[fit.labels.reindex(frame["customer_code"]).to_numpy() == first["cluster_id"]]
    assert first["avg_order_net_sales_mean"] == pytest.approx(members["avg_order_net_sales"].mean())


def test_naming_rule_on_a_hand_made_profile():
    profile = pd.DataFrame(
        {
            "cluster_id": [0, 1, 2, 3, 4],
            "customers": [50, 40, 30, 20, 10],
            "days_since_last_order_median": [30, 500, 40, 45, 364],
            "avg_order_net_sales_median": [900.0, 50.0, 300.0, 310.0, 99.0],
            "order_count_median": [5, 1, 2, 2, 3],
            "top_segment": ["Notebook", "Accessories", "Storage", "Storage", "Desktop"],
            "top_segment_share": [0.7, 0.5, 0.3, 0.35, 0.4],
        }
    )
    rule = cp.NamingRule(value_cuts=(100.0, 500.0), frequent_orders=3)
    assert cp.name_clusters(profile, rule).tolist() == [
        "high-value frequent Notebook buyers",
        "lapsed low-value one-time Accessories buyers",
        "mid-value occasional mixed-basket buyers",
        "mid-value occasional mixed-basket buyers (2)",  # the smaller of two same names
        "low-value occasional Desktop buyers",  # 3 orders is not above the cut; 364 days not lapsed
    ]


def test_bulk_buyers_are_named_by_their_units_per_line():
    profile = pd.DataFrame(
        {
            "cluster_id": [0, 1],
            "customers": [90, 10],
            "units_per_line_median": [1.3, 14.0],
            "top_segment": ["Accessories", "Accessories"],
            "top_segment_share": [0.6, 0.45],
        }
    )
    assert cp.name_clusters(profile, cp.NamingRule(bulk_units=5)).tolist() == [
        "Accessories buyers",
        "bulk Accessories buyers",
    ]


def test_naming_cuts_come_from_all_customers():
    frame = pd.DataFrame(
        {"avg_order_net_sales": np.arange(1.0, 301.0), "order_count": 1 + np.arange(300) % 6}
    )
    rule = cp.naming_rule(frame)
    assert rule.value_cuts == pytest.approx((100.67, 200.33), abs=0.01)
    assert rule.frequent_orders == pytest.approx(4.33, abs=0.01)


def test_top_segment_and_the_name_follow_the_mix():
    frame = pd.DataFrame(
        {
            "customer_code": list("abcdef"),
            "share_notebook": [1.0, 0.9, 0.8, 0.0, 0.1, 0.0],
            "share_accessories": [0.0, 0.1, 0.2, 1.0, 0.9, 1.0],
        }
    )
    labels = pd.Series([0, 0, 0, 1, 1, 1], index=list("abcdef"))
    profile = cp.cluster_profiles(frame, labels)
    assert profile["top_segment"].tolist() == ["Notebook", "Accessories"]
    assert profile["top_segments"].tolist() == ["Notebook 90% / Accessories 10%", "Accessories 97%"]
    assert profile["name"].tolist() == ["Notebook buyers", "Accessories buyers"]


def test_profiles_refuse_customers_without_a_cluster():
    frame = pd.DataFrame({"customer_code": ["a", "b"], "order_count": [1, 2]})
    with pytest.raises(ValueError, match="1 customers have no cluster"):
        cp.cluster_profiles(frame, pd.Series({"a": 0}))


# --- feature importance ----------------------------------------------------------------------


def test_importance_ranks_the_planted_feature_first():
    rng = np.random.default_rng(4)
    n = 3000
    informative = np.concatenate([rng.normal(-3, 1, n // 2), rng.normal(3, 1, n - n // 2)])
    frame = pd.DataFrame(
        {
            "customer_code": [f"C{i}" for i in range(n)],
            "noise_a": rng.normal(size=n),
            "informative": informative,
            "noise_b": rng.normal(size=n),
        }
    )
    columns = ("noise_a", "informative", "noise_b")
    fit = cl.fit_clusters(frame, columns, cl.ClusterConfig(k=2))
    importance = cp.feature_importance(frame, fit.labels, fit.features, random_state=3)
    assert list(importance.columns) == list(cp.IMPORTANCE_COLUMNS)
    overall = importance[importance["cluster_id"].isna()].set_index("feature")
    assert overall["rank"].idxmin() == "informative"
    assert overall.loc["informative", "importance_mean"] > 0.3
    assert overall["surrogate_score"].iloc[0] > 0.95
    for _, scope in importance.dropna(subset=["cluster_id"]).groupby("cluster_id"):
        top = scope.set_index("feature")
        assert top["rank"].idxmin() == "informative"
        assert abs(top.loc["informative", "cluster_mean_z"]) > 0.8
    again = cp.feature_importance(frame, fit.labels, fit.features, random_state=3)
    pd.testing.assert_frame_equal(importance, again)  # reproducible


def test_importance_has_one_row_per_scope_and_feature(realistic):
    frame, _, fit = realistic
    importance = cp.feature_importance(frame, fit.labels, fit.features, sample_size=3000)
    assert len(importance) == (fit.k + 1) * len(fit.features)
    for _, scope in importance.groupby(importance["cluster_id"].fillna(-1)):
        assert sorted(scope["rank"]) == list(range(1, len(fit.features) + 1))
    # the forest, its predictions and the per-cluster trees on three threads: the same floats
    alone = cp.feature_importance(frame, fit.labels, fit.features, sample_size=3000, workers=1)
    together = cp.feature_importance(frame, fit.labels, fit.features, sample_size=3000, workers=3)
    pd.testing.assert_frame_equal(alone, together, check_exact=True)


# --- quality against the truth ---------------------------------------------------------------


def test_persona_agreement():
    labels = pd.Series([0, 0, 1, 1, 2], index=list("abcde"))
    truth = pd.DataFrame({"customer_code": list("abcdz"), "persona": ["x", "x", "y", "y", "w"]})
    agreement = cl.persona_agreement(labels, truth)
    assert agreement.ari == pytest.approx(1.0) and agreement.customers == 4
    assert agreement.crosstab.loc["x", 0] == 2
    with pytest.raises(ValueError, match="no customer"):
        cl.persona_agreement(labels, truth.assign(customer_code=list("vwxyz")))


def test_planted_groups_are_recovered_on_realistic_features(realistic):
    frame, group, fit = realistic
    truth = pd.DataFrame({"customer_code": frame["customer_code"], "persona": group})
    assert cl.persona_agreement(fit.labels, truth).ari > 0.3


def test_the_curve_silhouettes_from_distances_computed_once_equal_sklearns_exactly(monkeypatch):
    """k_curve computes each block of the silhouette sample's distances once for every K (issue
    18); each silhouette must be sklearn's own to the last bit, or the published curve would
    change. With 8 MB blocks, 1,500 rows make three distance blocks (the pipeline's 128 MB blocks
    need 5,000 rows for two); the labellings include gaps in the label values, a cluster of one
    and an undefined one (a single label)."""
    from sklearn import config_context
    from sklearn.metrics import pairwise_distances_chunked

    x, _ = make_blobs(n_samples=1500, centers=4, n_features=6, random_state=3)
    # one block of every row (sklearn's X-is-Y path), then three blocks of rows
    with config_context(working_memory=cl.SILHOUETTE_WORKING_MEMORY_MB):
        assert len(list(pairwise_distances_chunked(x))) == 1
    thirds = np.arange(len(x)) % 3
    assert cl.silhouettes(x, [thirds]) == [_sklearn_silhouette(x, thirds)]
    monkeypatch.setattr(cl, "SILHOUETTE_WORKING_MEMORY_MB", 8)
    with config_context(working_memory=8):
        assert len(list(pairwise_distances_chunked(x))) == 3
    singleton = np.arange(len(x)) % 3
    singleton[7] = 3
    label_sets = [np.arange(len(x)) % k for k in (2, 3, 5)]
    label_sets += [np.where(np.arange(len(x)) % 4 == 0, 10, 3), singleton]
    label_sets += [np.asarray(KMeans(6, n_init=1, random_state=0).fit(x).labels_)]
    for workers in (1, 3):  # the sums per K side by side on three threads: the same floats
        got = cl.silhouettes(x, [*label_sets, np.zeros(len(x), dtype=int)], workers)
        for labels, result in zip(label_sets, got):
            assert result == _sklearn_silhouette(x, labels)
        assert all(np.isnan(v) for v in got[-1])


def _sklearn_silhouette(x, labels):
    """Mean and standard error of sklearn's silhouette_samples, in the blocks k_curve uses."""
    from sklearn import config_context
    from sklearn.metrics import silhouette_samples

    with config_context(working_memory=cl.SILHOUETTE_WORKING_MEMORY_MB):
        values = silhouette_samples(x, labels)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))


def test_batched_permutation_importances_equal_sklearns_exactly():
    """cluster_profiles scores every shuffled copy in one predict (issue 18); the importances
    must be sklearn's permutation_importance to the last bit, or the published ones would change."""
    import warnings

    from sklearn.ensemble import RandomForestClassifier
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import accuracy_score, balanced_accuracy_score
    from sklearn.tree import DecisionTreeClassifier

    x, y = make_blobs(n_samples=1200, centers=4, n_features=5, cluster_std=3.0, random_state=5)
    forest = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0).fit(
        x[:800], y[:800]
    )
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(x[:800], y[:800] == 2)
    cases = [
        (forest, y[800:], "accuracy", accuracy_score),
        (tree, y[800:] == 2, "balanced_accuracy", balanced_accuracy_score),
    ]
    for model, target, scoring, sklearn_score in cases:
        for seed in (0, 7):
            want = permutation_importance(
                model, x[800:], target, scoring=scoring, n_repeats=3, random_state=seed
            )
            mean, std = cp.permutation_importances(
                model, x[800:], target, cp.QUICK_SCORERS[scoring], 3, seed
            )
            assert mean.tolist() == want.importances_mean.tolist()
            assert std.tolist() == want.importances_std.tolist()
    # the quick scores against sklearn's, also where a class is missing from either side
    rng = np.random.default_rng(1)
    for y_true, y_pred in [
        (rng.integers(0, 4, 300), rng.integers(0, 4, 300)),
        (rng.integers(0, 3, 300), rng.integers(1, 4, 300)),
        (rng.random(301) < 0.1, rng.random(301) < 0.5),
        (np.zeros(50, bool), rng.random(50) < 0.5),
    ]:
        assert cp.QUICK_SCORERS["accuracy"](y_true, y_pred) == accuracy_score(y_true, y_pred)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn warns of the class missing from y_true
            assert cp.QUICK_SCORERS["balanced_accuracy"](y_true, y_pred) == balanced_accuracy_score(
                y_true, y_pred
            )
