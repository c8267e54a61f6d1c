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
- FM is the mean of F and M rounded half up: ``FM = floor((F + M) / 2 + 0.5)``, so F 4 and M 5
  give FM 5 and F 1 and M 2 give FM 2. (Python's ``round`` rounds halves to even, which would
  send 4.5 to 4 but 3.5 to 4: never used here.)
- Customers without orders are scored 0 on R, F, M and FM.

Segment contract
----------------
Segments sit on the R x FM grid (DESIGN.md, "Customer analytics contracts") and come from a map
kept as data (the dbt seed ``rfm_segment_map``): rows are checked in priority order and a
customer gets the first row that matches. A row matches when R and FM lie in its inclusive ranges
and, if its ``new_customers_only`` flag is set, the customer's first order lies inside the "new"
window: at most ``window - 1`` days before the as-of date (the window's days end on the as-of
day). The default map puts No Orders (R = FM = 0) and New Customers (flagged, any scores) first,
then the ten grid cells of named segments. A map is refused unless every (R, FM) of the grid and
the no-orders cell (0, 0) get a segment without the help of a flagged row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

SCORE_COLUMNS = ("r_score", "f_score", "m_score")
MAP_COLUMNS = ("priority", "segment", "new_customers_only", "r_min", "r_max", "fm_min", "fm_max")
GRID_COLUMNS = ("r_score", "fm_score")


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


def fm_score(f_score: pd.Series, m_score: pd.Series) -> pd.Series:
    """The mean of F and M rounded half up, in integers (0 and 0 stay 0)."""
    total = f_score.astype("int16") + m_score.astype("int16")
    return ((total + 1) // 2).astype("int8").rename("fm_score")


def rfm_scores(summary: pd.DataFrame) -> pd.DataFrame:
    """R, F, M and FM scores per customer.

    Parameters
    ----------
    summary : pd.DataFrame
        Columns ``customer_code``, ``has_orders``, ``days_since_last_order``, ``order_count`` and
        ``total_net_sales``: one row per customer.

    Returns
    -------
    pd.DataFrame with ``customer_code`` and ``r_score``, ``f_score``, ``m_score``, ``fm_score``
    (0 = no orders).
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
    scored = scored.astype({column: "int8" for column in SCORE_COLUMNS})
    scored["fm_score"] = fm_score(scored["f_score"], scored["m_score"])
    return scored


def days_since_first_order(first_order_date: pd.Series, as_of: dt.date) -> pd.Series:
    """Whole days from each first order to the as-of date; null without orders."""
    first = pd.to_datetime(first_order_date)
    return (pd.Timestamp(as_of) - first).dt.days.astype("Int64").rename("days_since_first_order")


def is_new_customer(days_since_first: pd.Series, window_days: int) -> pd.Series:
    """First order inside the last ``window_days`` days, the as-of day included (0 = nobody)."""
    if window_days < 0:
        raise ValueError(f"the new-customer window must be >= 0 days, got {window_days}")
    new = days_since_first.notna() & (days_since_first < window_days)
    return new.fillna(False).astype(bool).rename("is_new_customer")


def validate_segment_map(segment_map: pd.DataFrame) -> pd.DataFrame:
    """Check the map and return it sorted by priority.

    Every (R, FM) cell of the 5 x 5 grid and the no-orders cell (0, 0) must match a row that is
    not limited to new customers, so every customer gets exactly one segment.
    """
    missing = [c for c in MAP_COLUMNS if c not in segment_map.columns]
    if missing:
        raise SegmentMapError(f"segment map lacks columns {missing}")
    ordered = segment_map.sort_values("priority", kind="stable").reset_index(drop=True)
    if ordered["priority"].duplicated().any():
        raise SegmentMapError("segment map has duplicated priorities")
    if ordered["segment"].duplicated().any():
        raise SegmentMapError("segment map names a segment twice")
    for low, high in (("r_min", "r_max"), ("fm_min", "fm_max")):
        bad = ordered[ordered[low] > ordered[high]]
        if not bad.empty:
            raise SegmentMapError(f"segment {bad['segment'].iloc[0]!r} has {low} > {high}")
    grid = all_score_combinations(include_no_orders=True)
    grid["is_new_customer"] = False
    unmatched = grid[assign_segments(grid, ordered, validate=False).isna()]
    if not unmatched.empty:
        example = tuple(int(v) for v in unmatched.iloc[0][list(GRID_COLUMNS)])
        raise SegmentMapError(
            f"segment map leaves {len(unmatched)} (R, FM) cells without a segment, "
            f"e.g. (R, FM) = {example}; every cell of the grid needs a row"
        )
    return ordered


def all_score_combinations(include_no_orders: bool = False) -> pd.DataFrame:
    """Every (R, FM) in 1..5 (25 rows), plus (0, 0) when asked."""
    r, fm = np.meshgrid(np.arange(1, 6), np.arange(1, 6), indexing="ij")
    grid = pd.DataFrame({"r_score": r.ravel(), "fm_score": fm.ravel()})
    if include_no_orders:
        grid = pd.concat([pd.DataFrame({c: [0] for c in GRID_COLUMNS}), grid], ignore_index=True)
    return grid.astype("int8")


def assign_segments(
    scores: pd.DataFrame, segment_map: pd.DataFrame, validate: bool = True
) -> pd.Series:
    """The first segment in priority order whose rule matches each row.

    ``scores`` has ``r_score``, ``fm_score`` and ``is_new_customer``.
    """
    ordered = validate_segment_map(segment_map) if validate else segment_map
    r, fm = (scores[c].to_numpy() for c in GRID_COLUMNS)
    new = scores["is_new_customer"].to_numpy(dtype=bool)
    segment = np.full(len(scores), None, dtype=object)
    unassigned = np.ones(len(scores), dtype=bool)
    for row in ordered.itertuples(index=False):
        match = (
            unassigned
            & (r >= row.r_min)
            & (r <= row.r_max)
            & (fm >= row.fm_min)
            & (fm <= row.fm_max)
        )
        if _flag(row.new_customers_only):
            match &= new
        segment[match] = row.segment
        unassigned &= ~match
    return pd.Series(segment, index=scores.index, name="segment")


def _flag(value) -> bool:
    """A map flag from a CSV or a warehouse: booleans, 1/0 or 'true'/'false'."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value) and not pd.isna(value)


def segment_customers(
    summary: pd.DataFrame, segment_map: pd.DataFrame, as_of: dt.date, new_customer_days: int
) -> pd.DataFrame:
    """Scores, the new-customer flag and the segment of every customer of ``summary``.

    ``summary`` needs the columns of ``rfm_scores`` plus ``first_order_date``.
    """
    scores = rfm_scores(summary)
    scores["days_since_first_order"] = days_since_first_order(
        summary["first_order_date"], as_of
    ).to_numpy()
    scores["is_new_customer"] = is_new_customer(
        scores["days_since_first_order"], new_customer_days
    ).to_numpy()
    scores["segment"] = assign_segments(scores, segment_map)
    return scores


@dataclass(frozen=True)
class ParetoCut:
    """The smallest set of top customers by revenue reaching the threshold share of revenue."""

    flags: pd.Series  # bool per customer, aligned with the input
    customers: int
    customer_share: float
    revenue_share: float


def pareto_cut(customer_codes: pd.Series, revenue: pd.Series, threshold: float = 0.5) -> ParetoCut:
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
