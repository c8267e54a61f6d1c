"""RFM scoring, named segments from a data-driven map, and the Pareto cut, as one SQL query
over the per-customer summary (``intermediate.customer_summary``), never over order lines.

The query is portable (reference/sql-portability.md): DuckDB runs it in the warehouse and Spark
inside the cluster, so the customer table never comes to a Python process on either engine. Only
the segment map (a dozen rows) is read here, to check it and to write its rules into the query.

Scoring contract
----------------
- R, F and M are scored 1-5 by quintile of the customers *with orders*: recency is the number of
  days since the last order (fewer is better, so it is reversed), frequency the number of orders,
  monetary the total net sales.
- Ties get the same score: a customer's score comes from the share of customers strictly worse
  than it, ``score = floor(5 * worse / n) + 1`` (``worse`` is SQL's ``rank() - 1``). So the result
  does not depend on row order or on an arbitrary tie-break, at the price of uneven bins when many
  customers share a value (most customers with one order all get F = 1).
- FM is the mean of F and M rounded half up: ``FM = floor((F + M + 1) / 2)``, so F 4 and M 5
  give FM 5 and F 1 and M 2 give FM 2 (never Python's ``round``, which sends halves to even).
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

Pareto contract
---------------
``is_pareto`` flags the fewest customers whose net sales make at least half of all positive net
sales: customers by net sales, highest first, ties by customer code, while the sales of those
ahead are below half. Refunds count as 0; with no positive sales nobody is flagged. Amounts stay
decimals, so the cut is exact.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import pandas as pd

MAP_COLUMNS = ("priority", "segment", "new_customers_only", "r_min", "r_max", "fm_min", "fm_max")
SCORE_COLUMNS = ("r_score", "f_score", "m_score", "fm_score")
# analytics.customer_rfm, one row per customer of the summary
COLUMNS = (
    "as_of_date",
    "customer_code",
    *SCORE_COLUMNS,
    "days_since_first_order",
    "is_new_customer",
    "segment",
    "is_pareto",
)
# (score column, summary column, the better end of the summary column)
_QUINTILES = (
    ("r_score", "days_since_last_order", "desc"),  # fewer days since the last order is better
    ("f_score", "order_count", "asc"),
    ("m_score", "total_net_sales", "asc"),
)


class SegmentMapError(ValueError):
    """The segment map cannot give every customer exactly one segment."""


def validate_segment_map(segment_map: pd.DataFrame) -> pd.DataFrame:
    """Check the map and return it sorted by priority.

    Every (R, FM) cell of the 5 x 5 grid and the no-orders cell (0, 0) must lie in the ranges of
    a row that is not limited to new customers, so every customer gets exactly one segment.
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
    for column in ("priority", "r_min", "r_max", "fm_min", "fm_max"):
        if not pd.api.types.is_integer_dtype(ordered[column]):
            raise SegmentMapError(f"segment map column {column!r} must hold whole numbers")
    for_everyone = [
        row for row in ordered.itertuples(index=False) if not _flag(row.new_customers_only)
    ]
    unmatched = [
        (r, fm)
        for r, fm in grid_cells()
        if not any(
            row.r_min <= r <= row.r_max and row.fm_min <= fm <= row.fm_max for row in for_everyone
        )
    ]
    if unmatched:
        raise SegmentMapError(
            f"segment map leaves {len(unmatched)} (R, FM) cells without a segment, "
            f"e.g. (R, FM) = {unmatched[0]}; every cell of the grid needs a row"
        )
    return ordered


def grid_cells() -> list[tuple[int, int]]:
    """The no-orders cell (0, 0), then every (R, FM) in 1..5."""
    return [(0, 0)] + [(r, fm) for r in range(1, 6) for fm in range(1, 6)]


def _flag(value) -> bool:
    """A map flag from a CSV or a warehouse: booleans, 1/0 or 'true'/'false'."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value) and not pd.isna(value)


def segment_rule(ordered_map: pd.DataFrame) -> str:
    """A SQL expression giving the priority of the first map row that matches ``r_score``,
    ``fm_score`` and ``is_new_customer`` (the map from ``validate_segment_map``). Only integers
    from the map go into the SQL; segment names are joined on the priority, so no text from a
    user's map is ever spliced into a query."""
    cases = []
    for row in ordered_map.itertuples(index=False):
        condition = (
            f"r_score between {int(row.r_min)} and {int(row.r_max)} "
            f"and fm_score between {int(row.fm_min)} and {int(row.fm_max)}"
        )
        if _flag(row.new_customers_only):
            condition += " and is_new_customer"
        cases.append(f"when {condition} then {int(row.priority)}")
    return "case " + " ".join(cases) + " end"


def customer_rfm_query(
    summary: str,
    segment_map: str,
    ordered_map: pd.DataFrame,
    as_of: dt.date,
    new_customer_days: int,
) -> str:
    """The rows of ``analytics.customer_rfm`` (``COLUMNS``), one per customer of ``summary``.

    Parameters
    ----------
    summary : str
        The customer summary relation: ``customer_code``, ``has_orders``,
        ``days_since_last_order``, ``order_count``, ``total_net_sales`` and ``t`` (days from the
        first order to the as-of date, null without orders).
    segment_map : str
        The relation holding the map (``priority``, ``segment``).
    ordered_map : pd.DataFrame
        The same map, checked by ``validate_segment_map``.
    new_customer_days : int
        The new-customer window in days (0 switches the New Customers row off).
    """
    if new_customer_days < 0:
        raise ValueError(f"the new-customer window must be >= 0 days, got {new_customer_days}")
    ranks = ",\n            ".join(
        f"rank() over (partition by has_orders order by {column} {direction}) - 1 as {score}_worse"
        for score, column, direction in _QUINTILES
    )
    scores = ",\n            ".join(
        f"case when has_orders then cast(floor(5 * {score}_worse / buyers) + 1 as tinyint) "
        f"else cast(0 as tinyint) end as {score}"
        for score, _, _ in _QUINTILES
    )
    return f"""
    with ranked as (
        select
            customer_code,
            has_orders,
            t as days_since_first_order,
            case when total_net_sales > 0 then total_net_sales else 0 end as revenue,
            count(*) over (partition by has_orders) as buyers,
            {ranks}
        from {summary}
    ),

    scored as (
        select
            customer_code,
            days_since_first_order,
            revenue,
            {scores}
        from ranked
    ),

    flagged as (
        select
            customer_code,
            r_score,
            f_score,
            m_score,
            cast(floor((f_score + m_score + 1) / 2) as tinyint) as fm_score,
            cast(days_since_first_order as bigint) as days_since_first_order,
            coalesce(days_since_first_order < {int(new_customer_days)}, false) as is_new_customer,
            revenue > 0 and 2 * coalesce(sum(revenue) over (
                order by revenue desc, customer_code
                rows between unbounded preceding and 1 preceding
            ), 0) < sum(revenue) over () as is_pareto
        from scored
    ),

    segmented as (
        select *, {segment_rule(ordered_map)} as segment_priority
        from flagged
    )

    select
        cast('{as_of.isoformat()}' as date) as as_of_date,
        segmented.customer_code,
        segmented.r_score,
        segmented.f_score,
        segmented.m_score,
        segmented.fm_score,
        segmented.days_since_first_order,
        segmented.is_new_customer,
        segment_map.segment,
        segmented.is_pareto
    from segmented
    left join {segment_map} as segment_map
        on segmented.segment_priority = segment_map.priority
    """


def summary_problems_query(summary: str) -> str:
    """One row: the summary's duplicated customers and the customers with orders that lack a
    value to score, which the scores would hide (a rank puts nulls at one end)."""
    values = " or ".join(f"{column} is null" for _, column, _ in _QUINTILES)
    return f"""
    select
        count(*) - count(distinct customer_code) as duplicated,
        sum(case when has_orders and ({values}) then 1 else 0 end) as unscorable
    from {summary}
    """


def check_summary(problems: pd.DataFrame, summary: str) -> None:
    """Refuse a summary with duplicated customers or customers with orders but no value."""
    duplicated, unscorable = (
        int(problems[c].fillna(0).iloc[0]) for c in ("duplicated", "unscorable")
    )
    if duplicated:
        raise ValueError(f"{summary} has {duplicated} duplicated customer_code values")
    if unscorable:
        columns = ", ".join(column for _, column, _ in _QUINTILES)
        raise ValueError(
            f"cannot score {unscorable} customers with orders in {summary}: "
            f"a null in one of {columns}"
        )


class ParetoCut(NamedTuple):
    """The Pareto flags' summary: how many customers, their share of all and of net sales."""

    customers: int
    customer_share: float
    revenue_share: float


def pareto_query(scored: str, summary: str) -> str:
    """One row: the flagged customers, all customers, and the positive net sales of each."""
    return f"""
    select
        count(*) as customers,
        sum(case when scored.is_pareto then 1 else 0 end) as pareto_customers,
        sum(case when scored.is_pareto then summary.total_net_sales else 0 end) as pareto_sales,
        sum(case when summary.total_net_sales > 0 then summary.total_net_sales else 0 end)
            as positive_sales
    from {scored} as scored
    join {summary} as summary
        on scored.customer_code = summary.customer_code
    """


def pareto_cut(totals: pd.DataFrame) -> ParetoCut:
    """``ParetoCut`` from the row of ``pareto_query``."""
    row = totals.iloc[0]
    customers, flagged = int(row["customers"]), int(row["pareto_customers"] or 0)
    positive = float(row["positive_sales"] or 0)
    return ParetoCut(
        flagged,
        flagged / customers if customers else 0.0,
        float(row["pareto_sales"] or 0) / positive if positive > 0 else 0.0,
    )
