"""Per-customer CLTV scores from a fitted transaction model and a fitted spend model.

- **Scores** (``score_customers``): P(alive); expected purchase days in the next 90 and 365
  days; expected spend per purchase day; the 12-month CLV, discounted monthly like lifetimes'
  ``customer_lifetime_value(time=12, freq='D')`` (a month is 30 days there, so the CLV covers
  days 1-360); and a value tier. Customers without orders get null scores and the tier
  ``"none"``. As in BG/NBD, P(alive) is 1 for customers without repeat purchases (nobody drops
  out before a repeat purchase). Order value and CLV are in the spend's unit (gross margin by
  default).
- **Tiers** rank customers with orders by CLV: ``high`` = the top 20%, ``medium`` = the next
  30%, ``low`` = the rest. A customer's tier comes from the share of customers with a strictly
  higher CLV (< 20% -> high, < 50% -> medium), so equal CLVs always share a tier and the result
  does not depend on row order.
- **Unavailable models.** ``unavailable_scores`` gives every customer null CLTV columns and a
  null tier (``"none"`` still marks customers without orders), for a refresh whose models could
  not be fit: the marts are published, the status table says why.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.analytics.cltv import transactions
from pipeline.analytics.cltv.base import (
    SUMMARY_COLUMNS,
    FitResult,
    customers_with_orders,
    orders_mask,
)
from pipeline.analytics.cltv.spend import spend_per_day

# lifetimes' customer_lifetime_value with freq='D' counts a month as 30 days.
DAYS_PER_MONTH = 30
CLV_MONTHS = 12
HORIZONS_DAYS = (90, 365)

# (tier, upper bound of the share of customers with a strictly higher CLV), checked in order.
TIER_CUTS: tuple[tuple[str, float], ...] = (("high", 0.20), ("medium", 0.50))
LOW_TIER = "low"
NO_ORDERS_TIER = "none"

SCORE_COLUMNS = (
    "customer_code",
    "p_alive",
    "expected_purchases_90d",
    "expected_purchases_365d",
    "expected_order_value",
    "clv_12m",
    "value_tier",
)


def monthly_discount_rate(annual_rate: float) -> float:
    """The monthly rate that compounds to ``annual_rate`` over 12 months."""
    if not annual_rate > -1:
        raise ValueError(f"annual discount rate must be > -1, got {annual_rate}")
    return (1.0 + annual_rate) ** (1.0 / 12.0) - 1.0


def _unique_histories(buyers: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Unique (frequency, recency, t) rows and each customer's row number among them."""
    keys = buyers[list(SUMMARY_COLUMNS)].astype(float)
    grouped = keys.groupby(list(SUMMARY_COLUMNS), sort=True)
    return grouped.size().reset_index()[list(SUMMARY_COLUMNS)], grouped.ngroup().to_numpy()


def purchase_predictions(
    transaction: FitResult,
    histories: pd.DataFrame,
    horizons_days: Sequence[float] = HORIZONS_DAYS,
    annual_discount_rate: float = 0.10,
    check: bool = True,
) -> pd.DataFrame:
    """P(alive), expected purchases per horizon and discounted purchases over 12 months.

    Computed with the transaction model's lifetimes formulas (``transactions.predictions``)
    on the given (unique) histories.
    ``discounted_purchases_12m`` is the sum over months k = 1..12 of the expected purchases
    in days (30(k-1), 30k] divided by (1 + monthly rate)^k: lifetimes'
    ``customer_lifetime_value(time=12, freq='D')`` without the spend factor.

    Returns
    -------
    pd.DataFrame aligned with ``histories``: ``p_alive``, ``expected_purchases_<h>d`` per
    horizon and ``discounted_purchases_12m``.
    """
    x = histories["frequency"].to_numpy(dtype=float)
    tx = histories["recency"].to_numpy(dtype=float)
    t = histories["t"].to_numpy(dtype=float)
    monthly = monthly_discount_rate(annual_discount_rate)
    months = [float(month * DAYS_PER_MONTH) for month in range(1, CLV_MONTHS + 1)]
    # one pass over every horizon: the monthly ones reuse 90 days = 3 months
    days = sorted(set(months) | {float(h) for h in horizons_days})
    p_alive, cumulative = transactions.predictions(
        transaction.name, transaction.model, x, tx, t, days
    )
    cumulative[0.0] = np.zeros(len(x))
    discounted = np.zeros(len(x))
    for month, day in enumerate(months, start=1):
        discounted += (cumulative[day] - cumulative[day - DAYS_PER_MONTH]) / (
            1.0 + monthly
        ) ** month
    out = pd.DataFrame(index=histories.index)
    out["p_alive"] = p_alive
    for horizon in horizons_days:
        out[f"expected_purchases_{horizon:g}d"] = cumulative[float(horizon)]
    out["discounted_purchases_12m"] = discounted
    bad = ~np.isfinite(out.to_numpy(dtype=float)).all(axis=1)
    if check and bad.any():
        example = histories.loc[bad].iloc[0].to_dict()
        raise FloatingPointError(
            f"{transaction.name} predictions are not finite for {int(bad.sum())} histories, e.g. {example}"
        )
    return out


def value_tiers(clv: pd.Series) -> pd.Series:
    """High / medium / low by CLV rank among the non-null values; null CLV -> ``"none"``.

    A customer's tier comes from the share of customers with a strictly higher CLV: below
    20% -> high, below 50% -> medium, else low (``TIER_CUTS``). Ties share a tier whatever the
    row order.
    """
    tiers = pd.Series(NO_ORDERS_TIER, index=clv.index, name="value_tier", dtype=object)
    known = clv.notna().to_numpy()
    n = int(known.sum())
    if n == 0:
        return tiers
    higher = clv[known].rank(method="min", ascending=False).to_numpy() - 1
    share = higher / n
    labels = np.full(n, LOW_TIER, dtype=object)
    for tier, cut in reversed(TIER_CUTS):
        labels[share < cut] = tier
    tiers.loc[known] = labels
    return tiers


def _check_customer_codes(summary: pd.DataFrame) -> None:
    if "customer_code" not in summary.columns:
        raise ValueError("customer summary lacks column 'customer_code'")
    if summary["customer_code"].duplicated().any():
        dupes = summary.loc[summary["customer_code"].duplicated(), "customer_code"]
        dupes = dupes.head(5).tolist()
        raise ValueError(f"customer summary has duplicated customer_code values, e.g. {dupes}")


def score_customers(
    summary: pd.DataFrame,
    transaction: FitResult,
    spend_model: FitResult,
    annual_discount_rate: float = 0.10,
) -> pd.DataFrame:
    """Per-customer predictions of a whole summary: ``score_batch`` and ``value_tiers``.

    Parameters
    ----------
    summary : pd.DataFrame
        ``customer_summary``: ``customer_code``, ``has_orders``, ``frequency``, ``recency``,
        ``t`` and the spend model's columns (Gamma-Gamma: the spend column; log-normal: the
        log-spend statistics).
    transaction, spend_model : FitResult
        From ``transactions.fit_transaction_model`` and ``spend.fit_spend_model``.
    annual_discount_rate : float
        Converted to the monthly rate lifetimes discounts with.

    Returns
    -------
    pd.DataFrame, one row per input row in input order, columns ``SCORE_COLUMNS``:
    ``p_alive``, ``expected_purchases_90d``, ``expected_purchases_365d`` (purchase days),
    ``expected_order_value`` (spend per purchase day), ``clv_12m`` (discounted spend over
    12 x 30 days) and ``value_tier``. Customers without orders: nulls and tier ``"none"``.

    Raises
    ------
    FloatingPointError
        When a customer with orders gets a non-finite score.
    """
    _check_customer_codes(summary)
    scores = score_batch(summary, transaction, spend_model, annual_discount_rate)
    failed = failed_scores(scores)
    if failed:
        raise FloatingPointError(
            f"{transaction.name} x {spend_model.name} scores are not finite for {failed} customers"
        )
    scores["value_tier"] = value_tiers(scores["clv_12m"])
    return scores


# column -> Spark SQL type of ``score_batch``'s frame (the engines' ``map_batches`` schema)
SCORE_SCHEMA = {
    "customer_code": "string",
    **{name: "double" for name in SCORE_COLUMNS[1:-1]},
    "value_tier": "string",
}


def score_batch(
    batch: pd.DataFrame,
    transaction: FitResult,
    spend_model: FitResult,
    annual_discount_rate: float = 0.10,
) -> pd.DataFrame:
    """The scores of one batch of customers (any rows of ``customer_summary``), vectorized over
    the batch's unique histories: every column of ``score_customers`` but the value tier, which
    ranks everyone (``tier_cuts`` and ``assign_tiers``): ``"none"`` for customers without orders,
    null for the others. A customer with orders whose scores are not finite gets null scores
    (``failed_scores`` counts them), so a failing model never fails the batch: the engine runs
    this inside Spark (``map_batches``) and in process on DuckDB, the same function."""
    if spend_model.spend_column is None:
        raise ValueError(f"{spend_model.name} is not a spend model")
    buyers = customers_with_orders(batch)
    has_orders = orders_mask(batch)
    scores = pd.DataFrame({"customer_code": batch["customer_code"].to_numpy()})
    per_buyer = {}
    if len(buyers):
        order_value = spend_per_day(spend_model, buyers)
        histories, row = _unique_histories(buyers)
        with np.errstate(all="ignore"):
            predicted = purchase_predictions(
                transaction, histories, HORIZONS_DAYS, annual_discount_rate, check=False
            )
        per_buyer = {
            "p_alive": predicted["p_alive"].to_numpy()[row],
            "expected_purchases_90d": predicted["expected_purchases_90d"].to_numpy()[row],
            "expected_purchases_365d": predicted["expected_purchases_365d"].to_numpy()[row],
            "expected_order_value": order_value,
            "clv_12m": order_value * predicted["discounted_purchases_12m"].to_numpy()[row],
        }
    values = np.full((len(batch), len(SCORE_COLUMNS) - 2), np.nan)
    for i, name in enumerate(SCORE_COLUMNS[1:-1]):
        if per_buyer:
            values[has_orders, i] = per_buyer[name]
    values[~np.isfinite(values).all(axis=1)] = np.nan  # one bad score voids the customer's row
    for i, name in enumerate(SCORE_COLUMNS[1:-1]):
        scores[name] = values[:, i]
    scores["value_tier"] = pd.Series(
        np.where(has_orders, None, NO_ORDERS_TIER), dtype="object"
    ).to_numpy()
    return scores


def failed_scores(scores: pd.DataFrame) -> int:
    """Customers with orders (tier not ``"none"``) whose scores ``score_batch`` left null."""
    with_orders = scores["value_tier"].ne(NO_ORDERS_TIER).to_numpy()
    return int((with_orders & scores["clv_12m"].isna().to_numpy()).sum())


def tier_cuts(customers: int) -> dict[str, int]:
    """For each tier of ``TIER_CUTS``, the rank m (1 = the highest CLV) whose CLV is the
    tier's lower bound among ``customers`` customers with a CLV: a customer is in the tier when
    fewer than m customers have a strictly higher CLV, as ``value_tiers`` decides (the same
    float test, ``higher / customers < cut``), i.e. when its CLV is at least the m-th highest.
    0 = nobody is in the tier."""
    cuts = {}
    for tier, cut in TIER_CUTS:
        m = max(int(np.floor(cut * customers)) - 1, 0)
        while m < customers and m / customers < cut:
            m += 1
        cuts[tier] = m
    return cuts


def assign_tiers(batch: pd.DataFrame, bounds: dict[str, float]) -> pd.DataFrame:
    """``batch`` (``score_batch`` rows) with ``value_tier`` set from the tiers' lower bounds
    of CLV (``bounds``: tier -> the CLV of the rank ``tier_cuts`` gives; +inf for an empty
    tier), checked in ``TIER_CUTS`` order; ``"none"`` and rows without a CLV stay as they are."""
    out = batch.copy()
    clv = out["clv_12m"].to_numpy(dtype=float)
    known = ~np.isnan(clv)
    labels = np.full(len(out), LOW_TIER, dtype=object)
    for tier, _ in reversed(TIER_CUTS):
        labels[clv >= bounds[tier]] = tier
    tiers = out["value_tier"].to_numpy(dtype=object).copy()
    tiers[known] = labels[known]
    out["value_tier"] = tiers
    return out


def unavailable_scores(summary: pd.DataFrame) -> pd.DataFrame:
    """``score_customers``' frame when no model could be fit: every CLTV column null, the tier
    null for customers with orders (unknown) and ``"none"`` for customers without."""
    _check_customer_codes(summary)
    scores = pd.DataFrame({"customer_code": summary["customer_code"].to_numpy()})
    for name in SCORE_COLUMNS[1:-1]:
        scores[name] = np.full(len(summary), np.nan)
    tiers = np.where(orders_mask(summary), None, NO_ORDERS_TIER)
    scores["value_tier"] = pd.Series(tiers, dtype="string")
    return scores
