"""What the clusters are: profiles, readable names and the features that explain them.

Naming rule (``name_clusters``)
-------------------------------
A name is built from the profile, word by word, each word from one documented test:

1. ``lapsed`` when the cluster's median days since the last order is at least ``lapsed_days``
   (365): an absolute test, since "lapsed" means the same whatever the other clusters do.
2. Value level: the cluster's median net sales per order against the terciles of that value over
   *all customers* (``NamingRule.value_cuts``): ``low-value`` below the 1/3 quantile,
   ``high-value`` above the 2/3 quantile, else ``mid-value``.
3. Frequency: ``one-time`` when the cluster's median customer has one order; ``frequent`` when
   that median is above the 2/3 quantile of all customers' order counts
   (``NamingRule.frequent_orders``); else ``occasional``.
4. Basket: ``<Segment> buyers`` for the segment with the largest mean share of order lines when
   that share is at least ``segment_share`` (0.4), else ``mixed-basket buyers``.
5. Bulk: ``bulk`` before the basket word when the cluster's median units per line is at least
   ``bulk_units`` (5): resellers buy by the box, people one or two at a time.

Cuts come from the customer distribution rather than from ranking the clusters, so a word means
the same whatever K is, and a cluster of $40 orders is never "mid-value" because the others are
cheaper still. E.g. "high-value frequent mixed-basket buyers", "lapsed low-value one-time
Accessories buyers". Words whose inputs are missing are left out. Names are unique: when
clusters share a name, the largest keeps it and the others get " (2)", " (3)"... by size, then
cluster id. Names describe this refresh's profile, so a cluster id can be renamed next refresh.

Importance method (``feature_importance``)
------------------------------------------
Permutation importance of surrogate classifiers trained to predict the cluster from the model
features, on a seeded sample (8,000 customers) split 70/30 (seeded, stratified when it can be),
importances measured on the held-out 30% with ``n_repeats`` (3) seeded shuffles. Sample and
shuffles are kept small because the cost grows with features x clusters x shuffles, and the
category mix made the features about twice as many:

- all clusters (``cluster_id`` <NA>): a seeded random forest (50 trees, depth 8), scored by
  accuracy: the drop in accuracy when a feature is shuffled;
- each cluster: a seeded depth-4 decision tree for "this cluster vs the rest", class-weighted
  and scored by balanced accuracy, so small clusters are explained too.

``surrogate_score`` is the surrogate's held-out score (how faithfully it mimics the clusters).
``cluster_mean_z`` is the direction: the cluster's mean minus everyone's, in standard deviations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier

from .clusters import (
    CHANNEL_FEATURES,
    CLUSTER_ID,
    SEGMENT_SHARES,
    SEGMENTS,
    available_cpus,
    sample_rows,
    side_by_side,
)

# Readable (unlogged) columns of customer_cluster_features, profiled when present.
PROFILE_COLUMNS = (
    "order_count",
    "days_since_last_order",
    "tenure_days",
    "avg_order_net_sales",
    "total_net_sales",
    "margin_rate",
    "units_per_line",
    "lines_per_order",
    *SEGMENT_SHARES,
    *CHANNEL_FEATURES,
)
IMPORTANCE_COLUMNS = (
    CLUSTER_ID,
    "feature",
    "importance_mean",
    "importance_std",
    "rank",
    "surrogate_score",
    "cluster_mean_z",
)


def _aligned_labels(features: pd.DataFrame, labels: pd.Series) -> np.ndarray:
    """The cluster id of each row of ``features``; every customer must have one."""
    aligned = labels.reindex(features["customer_code"].to_numpy())
    if aligned.isna().any():
        missing = features["customer_code"][aligned.isna().to_numpy()].head(5).tolist()
        raise ValueError(f"{int(aligned.isna().sum())} customers have no cluster, e.g. {missing}")
    return aligned.to_numpy(dtype=np.int64)


# --- profiles --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NamingRule:
    """Thresholds of the naming rule (see the module docstring)."""

    lapsed_days: float = 365
    segment_share: float = 0.4
    bulk_units: float = 5
    value_cuts: tuple[float, float] | None = None  # 1/3 and 2/3 quantiles of avg order value
    frequent_orders: float | None = None  # 2/3 quantile of order count


def naming_rule(
    features: pd.DataFrame, lapsed_days: float = 365, segment_share: float = 0.4
) -> NamingRule:
    """The naming thresholds, with the value and frequency cuts taken from all customers."""
    value_cuts = frequent = None
    if "avg_order_net_sales" in features.columns:
        low, high = features["avg_order_net_sales"].astype(float).quantile([1 / 3, 2 / 3])
        value_cuts = (float(low), float(high))
    if "order_count" in features.columns:
        frequent = float(features["order_count"].astype(float).quantile(2 / 3))
    return NamingRule(lapsed_days, segment_share, value_cuts=value_cuts, frequent_orders=frequent)


def cluster_profiles(
    features: pd.DataFrame,
    labels: pd.Series,
    columns: tuple[str, ...] | None = None,
    revenue: str | None = None,
    segment: str | None = None,
    rule: NamingRule | None = None,
) -> pd.DataFrame:
    """One row per cluster: size, revenue, feature means and medians, basket, RFM mix and name.

    Parameters
    ----------
    features : pd.DataFrame
        ``customer_code`` and the columns to profile (raw, unscaled), one row per customer.
    labels : pd.Series
        Cluster id per customer, indexed by customer_code (``ClusterFit.labels``).
    columns : tuple of str, optional
        Columns to profile; default the ``PROFILE_COLUMNS`` present in ``features``.
    revenue : str, optional
        Column with each customer's revenue (e.g. ``total_net_sales``), for revenue shares.
    segment : str, optional
        Column with each customer's RFM segment, for the dominant segment.
    rule : NamingRule, optional
        Naming thresholds; default ``naming_rule(features)``.

    Returns
    -------
    pd.DataFrame with ``cluster_id``, ``name``, ``customers``, ``customer_share``, then
    ``revenue`` and ``revenue_share`` (with ``revenue``), ``<column>_mean`` and ``<column>_median``
    per profiled column, ``top_segment``, ``top_segment_share`` and ``top_segments`` (with the
    segment share columns), ``dominant_rfm_segment`` and ``dominant_rfm_segment_share`` (with
    ``segment``). Sorted by cluster id.
    """
    if columns is None:
        columns = tuple(c for c in PROFILE_COLUMNS if c in features.columns)
    wanted = [c for c in (*columns, revenue, segment) if c is not None]
    missing = [c for c in wanted if c not in features.columns]
    if missing:
        raise ValueError(f"the feature frame lacks columns {missing}")
    ids = _aligned_labels(features, labels)
    frame = features[list(columns)].astype(float)
    frame[CLUSTER_ID] = ids
    grouped = frame.groupby(CLUSTER_ID, sort=True)

    profile = pd.DataFrame({"customers": grouped.size()})
    profile["customer_share"] = profile["customers"] / len(frame)
    if revenue is not None:
        by_cluster = features[revenue].astype(float).groupby(ids).sum()
        total = float(by_cluster.sum())
        profile["revenue"] = by_cluster
        profile["revenue_share"] = by_cluster / total if total else 0.0
    if columns:
        stats = grouped[list(columns)].agg(["mean", "median"])
        stats.columns = [f"{column}_{stat}" for column, stat in stats.columns]
        profile = profile.join(stats)

    mix = [c for c in SEGMENT_SHARES if f"{c}_mean" in profile.columns]
    if mix:
        shares = profile[[f"{c}_mean" for c in mix]].to_numpy()
        names = np.array([SEGMENTS[SEGMENT_SHARES.index(c)] for c in mix])
        profile["top_segment"] = names[shares.argmax(axis=1)]
        profile["top_segment_share"] = shares.max(axis=1)
        profile["top_segments"] = [_top_segments(row, names) for row in shares]
    if segment is not None:
        counts = pd.crosstab(ids, features[segment].to_numpy())
        # Ties go to the alphabetically first segment (crosstab's column order), deterministically.
        profile["dominant_rfm_segment"] = counts.idxmax(axis=1)
        profile["dominant_rfm_segment_share"] = counts.max(axis=1) / counts.sum(axis=1)

    profile.index.name = CLUSTER_ID
    profile = profile.reset_index()
    profile.insert(1, "name", name_clusters(profile, rule or naming_rule(features)))
    return profile


def with_exact_sizes(
    profile: pd.DataFrame, sizes: pd.DataFrame, rule: NamingRule | None = None
) -> pd.DataFrame:
    """A profile computed on a sample, with each cluster's ``customers`` and ``revenue`` (and
    their shares) replaced by ``sizes`` (``cluster_id``, ``customers``, ``revenue``: counted over
    everyone), and the names deduplicated again by those sizes."""
    out = profile.copy()
    exact = sizes.set_index(CLUSTER_ID).reindex(out[CLUSTER_ID].to_numpy())
    out["customers"] = exact["customers"].fillna(0).to_numpy(dtype=np.int64)
    out["customer_share"] = out["customers"] / max(int(sizes["customers"].sum()), 1)
    if "revenue" in out.columns:
        revenue = exact["revenue"].fillna(0.0).to_numpy(dtype=float)
        total = float(sizes["revenue"].sum())
        out["revenue"] = revenue
        out["revenue_share"] = revenue / total if total else 0.0
    out["name"] = name_clusters(out, rule or NamingRule())
    return out


def _top_segments(shares: np.ndarray, names: np.ndarray, n: int = 3, floor: float = 0.1) -> str:
    """'Notebook 62% / Accessories 21%': up to ``n`` segments with a mean share >= ``floor``."""
    order = np.argsort(-shares, kind="stable")[:n]
    parts = [f"{names[i]} {shares[i]:.0%}" for i in order if shares[i] >= floor]
    return " / ".join(parts) if parts else "none"


def name_clusters(profile: pd.DataFrame, rule: NamingRule = NamingRule()) -> pd.Series:
    """Readable, unique cluster names from a profile (the rule is in the module docstring)."""
    words = pd.DataFrame(index=profile.index)
    if "days_since_last_order_median" in profile.columns:
        lapsed = profile["days_since_last_order_median"] >= rule.lapsed_days
        words["lapsed"] = np.where(lapsed, "lapsed", "")
    if "avg_order_net_sales_median" in profile.columns and rule.value_cuts is not None:
        value, (low, high) = profile["avg_order_net_sales_median"], rule.value_cuts
        words["value"] = np.select(
            [value > high, value < low], ["high-value", "low-value"], "mid-value"
        )
    if "order_count_median" in profile.columns:
        orders = profile["order_count_median"]
        frequent = orders > rule.frequent_orders if rule.frequent_orders is not None else False
        words["frequency"] = np.select(
            [orders <= 1, frequent], ["one-time", "frequent"], "occasional"
        )
    if "units_per_line_median" in profile.columns:
        words["bulk"] = np.where(profile["units_per_line_median"] >= rule.bulk_units, "bulk", "")
    if "top_segment" in profile.columns:
        words["basket"] = np.where(
            profile["top_segment_share"] >= rule.segment_share,
            profile["top_segment"] + " buyers",
            "mixed-basket buyers",
        )
    names = pd.Series("", index=profile.index)
    for column in words.columns:
        names = (names + " " + words[column]).str.strip()
    names = names.where(names != "", "cluster " + profile[CLUSTER_ID].astype(str))
    return _deduplicate(names, profile)


def _deduplicate(names: pd.Series, profile: pd.DataFrame) -> pd.Series:
    """Suffix repeated names " (2)", " (3)"... by size (largest keeps the name), then cluster id."""
    order = profile.assign(_name=names).sort_values(
        ["customers", CLUSTER_ID], ascending=[False, True], kind="stable"
    )
    seen: dict[str, int] = {}
    taken = set(names)
    result = names.copy()
    for i, name in zip(order.index, order["_name"]):
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            n = seen[name]
            while f"{name} ({n})" in taken:  # never collide with another real name
                n += 1
            result.loc[i] = f"{name} ({n})"
            taken.add(result.loc[i])
    return result.rename("name")


# --- feature importance ----------------------------------------------------------------------


def feature_importance(
    features: pd.DataFrame,
    labels: pd.Series,
    columns: tuple[str, ...],
    sample_size: int = 8_000,
    n_repeats: int = 3,
    random_state: int = 0,
    per_cluster: bool = True,
    workers: int | None = None,
) -> pd.DataFrame:
    """Permutation importance of surrogate classifiers of the clusters (see the module docstring).

    Parameters
    ----------
    features : pd.DataFrame
        ``customer_code`` and ``columns``.
    labels : pd.Series
        Cluster id per customer, indexed by customer_code.
    columns : tuple of str
        The model features (``ClusterFit.features``).
    sample_size, n_repeats, random_state
        Sample the surrogates see, shuffles per feature, and the one seed of everything.
    per_cluster : bool
        Also one-vs-rest importances per cluster.
    workers : int, optional
        Threads for the forest's trees, its shuffled predictions and the per-cluster trees;
        None = the CPUs this process may use. The result does not depend on it: each tree and
        each row's prediction is computed as on one thread.

    Returns
    -------
    Tidy pd.DataFrame, one row per (scope, feature): ``cluster_id`` (<NA> = all clusters),
    ``feature``, ``importance_mean``, ``importance_std``, ``rank`` (1 = most important within the
    scope), ``surrogate_score``, ``cluster_mean_z``. Empty with one cluster or no feature.
    """
    ids = _aligned_labels(features, labels)
    clusters = np.unique(ids)
    if len(clusters) < 2 or not columns:
        return pd.DataFrame(columns=list(IMPORTANCE_COLUMNS))
    values = features[list(columns)].to_numpy(dtype=np.float64)
    mean, std = values.mean(axis=0), values.std(axis=0)
    std[std == 0] = 1.0

    rows = sample_rows(len(values), sample_size, random_state)
    x, y = values[rows], ids[rows]
    counts = np.bincount(np.searchsorted(clusters, y))
    stratify = y if counts.min() >= 2 else None
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.3, random_state=random_state, stratify=stratify
    )

    workers = workers or available_cpus()
    # the trees are seeded one by one before they are built: the same forest on any n_jobs
    forest = RandomForestClassifier(
        n_estimators=50, max_depth=8, min_samples_leaf=5, random_state=random_state, n_jobs=workers
    ).fit(x_train, y_train)
    # but its predict adds the trees' votes in the order threads finish: one thread predicts
    forest.set_params(n_jobs=1)
    frames = [
        _permutation_frame(
            forest, x_test, y_test, columns, "accuracy", n_repeats, random_state, workers
        ).assign(**{CLUSTER_ID: pd.NA, "cluster_mean_z": np.nan})
    ]

    def one_vs_rest(cluster) -> pd.DataFrame | None:
        target_train, target_test = y_train == cluster, y_test == cluster
        if target_test.all() or not target_test.any() or not target_train.any():
            return None  # the split holds too few of this cluster to score it
        tree = DecisionTreeClassifier(
            max_depth=4, class_weight="balanced", random_state=random_state
        ).fit(x_train, target_train)
        z = (values[ids == cluster].mean(axis=0) - mean) / std
        return _permutation_frame(
            tree, x_test, target_test, columns, "balanced_accuracy", n_repeats, random_state
        ).assign(**{CLUSTER_ID: int(cluster), "cluster_mean_z": z})

    if per_cluster:
        frames += [f for f in side_by_side(one_vs_rest, list(clusters), workers) if f is not None]
    result = pd.concat(frames, ignore_index=True)
    result[CLUSTER_ID] = result[CLUSTER_ID].astype("Int64")
    return result[list(IMPORTANCE_COLUMNS)]


SCORERS = {"accuracy": accuracy_score, "balanced_accuracy": balanced_accuracy_score}


def _accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """accuracy_score's float, without its input checks (20 ms a call, called 60 times a model)."""
    return float(np.average(y_true == y_pred))


def _balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """balanced_accuracy_score's float, the same arithmetic: recall per class of the confusion
    matrix over the labels of both, classes absent from y_true left out."""
    labels = np.unique(np.concatenate([y_true, y_pred]))
    n = len(labels)
    cells = np.searchsorted(labels, y_true) * n + np.searchsorted(labels, y_pred)
    confusion = np.bincount(cells, minlength=n * n).reshape(n, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_class = np.diag(confusion) / confusion.sum(axis=1)
    return float(np.mean(per_class[~np.isnan(per_class)]))


# The same scores, for the permutation loop (a test holds them equal to sklearn's).
QUICK_SCORERS = {"accuracy": _accuracy, "balanced_accuracy": _balanced_accuracy}


def _permutation_frame(
    model, x, y, columns, scoring, n_repeats, random_state, workers: int = 1
) -> pd.DataFrame:
    """Permutation importances of one fitted surrogate, ranked (ties by column order)."""
    importances_mean, importances_std = permutation_importances(
        model, x, y, QUICK_SCORERS[scoring], n_repeats, random_state, workers
    )
    frame = pd.DataFrame(
        {
            "feature": list(columns),
            "importance_mean": importances_mean,
            "importance_std": importances_std,
            "surrogate_score": float(SCORERS[scoring](y, model.predict(x))),
        }
    )
    rank = np.empty(len(columns), dtype=np.int64)
    order = np.lexsort((np.arange(len(columns)), -importances_mean))
    rank[order] = np.arange(1, len(columns) + 1)
    frame["rank"] = rank
    return frame


def permutation_importances(
    model, x, y, score, n_repeats, random_state, workers: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per column of ``sklearn.inspection.permutation_importance``
    with the ``score(y_true, y_pred)`` of ``model.predict``: the same shuffles and the same
    floats (a test compares them), but one ``predict`` over every shuffled copy of ``x``
    instead of one per column and repeat. A forest's predict has a fixed cost per tree and
    call, which made the 50-tree surrogate most of the importance's time. That predict runs
    on ``workers`` threads, each on its share of the rows (a row's prediction does not depend
    on the others)."""
    seed = np.random.RandomState(random_state).randint(np.iinfo(np.int32).max + 1)
    rows, width = x.shape
    # every shuffled copy written in place, in the order predict reads them
    shuffled = np.empty((width, n_repeats, rows, width), dtype=x.dtype)
    for column in range(width):
        # as sklearn: each column's shuffles restart from the seed and build on each other
        generator = np.random.RandomState(seed)
        permuted = x.copy()
        order = np.arange(rows)
        for repeat in range(n_repeats):
            generator.shuffle(order)
            permuted[:, column] = permuted[order, column]
            shuffled[column, repeat] = permuted
    chunks = np.array_split(shuffled.reshape(-1, width), max(workers, 1))
    predicted = np.concatenate(side_by_side(model.predict, chunks, workers))
    predicted = predicted.reshape(width, n_repeats, rows)
    scores = np.array([[score(y, predicted[c, r]) for r in range(n_repeats)] for c in range(width)])
    importances = score(y, model.predict(x)) - scores
    return np.mean(importances, axis=1), np.std(importances, axis=1)
