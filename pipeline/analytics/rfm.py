"""RFM scoring, named segments from a data-driven map, and the Pareto cut.

Inputs are per-customer frames (the SQL ``customer_summary``), never order lines.

Scoring contract
----------------
- R, F and M are scored 1-5 by quintile of the customers *with orders*: recency is the number of
  days since the last order (fewer is better, so it is reversed), frequency the number of orders,
  monetary the total net sales.
- Ties get the same score: a customer's score comes from the share of customers strictly worse
  than it, ``score = floor(5 * worse / n) + 1``. So the result does not depend on row order or on
  an arbitrary tie-break, at the price of uneven bins when many customers share a value (most
  customers with one order all get F = 1).
- Customers without orders are scored 0 on all three and fall to the map's 0-0-0 row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SCORE_COLUMNS = ("r_score", "f_score", "m_score")
MAP_COLUMNS = ("priority", "segment", "r_min", "r_max", "f_min", "f_max", "m_min", "m_max")


class SegmentMapError(ValueError):
    """The segment map cannot give every customer exactly one segment."""


def quintile_score(values: pd.Series, higher_is_better: bool = True) -> pd.Series:
    """Score values 1-5 by quintile; equal values always get equal scores.

    Parameters
    ----------
    values : pd.Series
        One value per customer, no nulls.
    higher_is_better : bool
        False for recency in days, where the most recent customers must score 5.

    Returns
    -------
    pd.Series of int8 in 1..5, aligned with ``values``.
    """
    if values.isna().any():
        raise ValueError(f"cannot score {values.name!r}: {int(values.isna().sum())} null values")
    n = len(values)
    if n == 0:
        return pd.Series([], index=values.index, dtype="int8")
    oriented = values if higher_is_better else -values
    worse = oriented.rank(method="min").to_numpy() - 1  # customers strictly worse
    scores = np.floor(5 * worse / n).astype("int8") + 1
    return pd.Series(scores, index=values.index, name=values.name)


def rfm_scores(summary: pd.DataFrame) -> pd.DataFrame:
    """R, F and M scores per customer.

    Parameters
    ----------
    summary : pd.DataFrame
        Columns ``customer_code``, ``has_orders``, ``days_since_last_order``, ``order_count`` and
        ``total_net_sales``: one row per customer.

    Returns
    -------
    pd.DataFrame with ``customer_code`` and ``r_score``, ``f_score``, ``m_score`` (0 = no orders).
    """
    if summary["customer_code"].duplicated().any():
        dupes = summary.loc[summary["customer_code"].duplicated(), "customer_code"].head(5).tolist()
        raise ValueError(f"customer_summary has duplicated customer_code values, e.g. {dupes}")
    scored = summary[["customer_code"]].copy()
    for column in SCORE_COLUMNS:
        scored[column] = np.int8(0)
    active = summary["has_orders"].astype(bool).to_numpy()
    buyers = summary.loc[active]
    scored.loc[active, "r_score"] = quintile_score(buyers["days_since_last_order"], False)
    scored.loc[active, "f_score"] = quintile_score(buyers["order_count"])
    scored.loc[active, "m_score"] = quintile_score(buyers["total_net_sales"])
    return scored.astype({column: "int8" for column in SCORE_COLUMNS})


def validate_segment_map(segment_map: pd.DataFrame) -> pd.DataFrame:
    """Check the map and return it sorted by priority.

    Every combination of scores 1-5 (125) and the no-orders combination 0-0-0 must match at least
    one row, so every customer gets exactly one segment.
    """
    missing = [c for c in MAP_COLUMNS if c not in segment_map.columns]
    if missing:
        raise SegmentMapError(f"segment map lacks columns {missing}")
    ordered = segment_map.sort_values("priority", kind="stable").reset_index(drop=True)
    if ordered["priority"].duplicated().any():
        raise SegmentMapError("segment map has duplicated priorities")
    for low, high in (("r_min", "r_max"), ("f_min", "f_max"), ("m_min", "m_max")):
        bad = ordered[ordered[low] > ordered[high]]
        if not bad.empty:
            raise SegmentMapError(f"segment {bad['segment'].iloc[0]!r} has {low} > {high}")
    grid = all_score_combinations(include_no_orders=True)
    unmatched = grid[assign_segments(grid, ordered, validate=False).isna()]
    if not unmatched.empty:
        example = tuple(int(v) for v in unmatched.iloc[0][list(SCORE_COLUMNS)])
        raise SegmentMapError(
            f"segment map leaves {len(unmatched)} score combinations without a segment, "
            f"e.g. (R, F, M) = {example}; add a catch-all last row"
        )
    return ordered


def all_score_combinations(include_no_orders: bool = False) -> pd.DataFrame:
    """Every (R, F, M) in 1..5 (125 rows), plus (0, 0, 0) when asked."""
    r, f, m = np.meshgrid(np.arange(1, 6), np.arange(1, 6), np.arange(1, 6), indexing="ij")
    grid = pd.DataFrame({"r_score": r.ravel(), "f_score": f.ravel(), "m_score": m.ravel()})
    if include_no_orders:
        grid = pd.concat([pd.DataFrame({c: [0] for c in SCORE_COLUMNS}), grid], ignore_index=True)
    return grid.astype("int8")


def assign_segments(
    scores: pd.DataFrame, segment_map: pd.DataFrame, validate: bool = True
) -> pd.Series:
    """The first segment in priority order whose ranges contain each row's scores."""
    ordered = validate_segment_map(segment_map) if validate else segment_map
    r, f, m = (scores[c].to_numpy() for c in SCORE_COLUMNS)
    segment = np.full(len(scores), None, dtype=object)
    unassigned = np.ones(len(scores), dtype=bool)
    for row in ordered.itertuples(index=False):
        match = (
            unassigned
            & (r >= row.r_min) & (r <= row.r_max)
            & (f >= row.f_min) & (f <= row.f_max)
            & (m >= row.m_min) & (m <= row.m_max)
        )
        segment[match] = row.segment
        unassigned &= ~match
    return pd.Series(segment, index=scores.index, name="segment")


@dataclass(frozen=True)
class ParetoCut:
    """The smallest set of top customers by revenue reaching the threshold share of revenue."""

    flags: pd.Series  # bool per customer, aligned with the input
    customers: int
    customer_share: float
    revenue_share: float


def pareto_cut(
    customer_codes: pd.Series, revenue: pd.Series, threshold: float = 0.5
) -> ParetoCut:
    """Flag the fewest customers whose revenue reaches ``threshold`` of the total.

    Customers are taken by revenue, highest first, ties by customer code, so the cut is
    deterministic. Only positive revenue counts; with no positive revenue nobody is flagged.
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    positive = revenue.clip(lower=0).astype(float)
    total = float(positive.sum())
    flags = pd.Series(False, index=revenue.index, name="is_pareto")
    if total <= 0:
        return ParetoCut(flags, 0, 0.0, 0.0)
    order = np.lexsort((customer_codes.to_numpy(), -positive.to_numpy()))
    ranked = positive.to_numpy()[order]
    before = np.cumsum(ranked) - ranked  # revenue of the customers ahead of this one
    in_cut = (before < threshold * total) & (ranked > 0)
    flags.iloc[order[in_cut]] = True
    n = int(in_cut.sum())
    return ParetoCut(flags, n, n / len(revenue), float(ranked[in_cut].sum()) / total)
