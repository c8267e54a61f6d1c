"""Holdout and ground-truth pieces shared by the CLTV model choice (``model_selection``).

Backtest pieces
---------------
- ``CALIBRATION_COLUMNS``: ``customer_backtest_summary``'s calibration columns (``*_cal``) and
  ``customer_summary``'s names for them, for the fitters.
- ``baseline_purchases``: the naive baseline, each customer's past repeat rate carried forward:
  ``frequency_cal / t_cal`` repeat purchase days per day, times the holdout duration (0 when
  ``t_cal`` is 0: a customer first seen on the cutoff day has no history to carry).
- ``pct_error``; rank metrics as portable SQL the engine runs (``rank_correlations``: Spearman
  with average ranks for ties; ``aucs``: ROC AUC, ties counted half), over compact rows: one per
  distinct value, never one per customer in the driver.

Ground-truth contract (synthetic data only): ``compare_with_truth`` sets the scores as of the
as-of date (``analytics.customer_cltv``) beside the simulator's latent truth
(``truth.customers``), inside the engine: P(alive) vs ``alive_at_as_of`` (mean, Brier score,
AUC), 365-day expected purchases vs ``future_orders`` (total % error, MAE, Spearman;
``future_orders`` counts orders, the model purchase days, which differ only on days with two
orders), 365-day value vs ``future_gross_margin`` / ``future_net_sales``, the population
mean purchase rate ``r / alpha`` and (BG/NBD, MBG/NBD) dropout probability ``a / (a + b)`` vs the
truth means; with the customers' ``frequency`` (``customer_summary``), also P(alive) AUC and
Brier score on repeat buyers alone, and expected order value vs next year's spend per order for
one-time and repeat buyers.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pipeline.analytics.cltv import base

TRUTH = "truth"

CALIBRATION_COLUMNS = {
    "frequency_cal": "frequency",
    "recency_cal": "recency",
    "t_cal": "t",
    "monetary_value_net_sales_cal": "monetary_value_net_sales",
    "monetary_value_gross_margin_cal": "monetary_value_gross_margin",
}
HOLDOUT_SPEND_COLUMNS = {"margin": "gross_margin_holdout", "revenue": "net_sales_holdout"}
TRUTH_SPEND_COLUMNS = {"margin": "future_gross_margin", "revenue": "future_net_sales"}
TRUTH_COLUMNS = (
    "customer_code",
    "purchase_rate",
    "dropout_prob",
    "alive_at_as_of",
    "future_orders",
)
METRIC_COLUMNS = ("metric", "model", "value")
SCORES = "analytics.customer_cltv"
SUMMARY = "intermediate.customer_summary"
TRUTH_TABLE = "truth.customers"


# --- small pure pieces ------------------------------------------------------------------------


def pct_error(predicted_total: float, actual_total: float) -> float:
    """100 x (predicted - actual) / actual; NaN when nothing actually happened."""
    return 100.0 * (predicted_total - actual_total) / actual_total if actual_total else math.nan


def exact_sum(expression: str) -> str:
    """SQL for the sum of a float ``expression`` whose bits do not depend on the order the rows
    are added in (DuckDB's parallel aggregates add them in whatever order its threads finish, so
    a plain float sum changed in its last bits between two runs of the same refresh): each term
    as a decimal of 12 places, added exactly, the total back as a double."""
    return f"cast(sum(cast({expression} as decimal(38, 12))) as double)"


def exact_mean(expression: str) -> str:
    """SQL for the mean of the non-null values of ``expression``, added up as ``exact_sum``."""
    return f"({exact_sum(expression)} / nullif(count({expression}), 0))"


def weighted_error_sums(name: str, keep: str, weight: str, predicted: str, actual: str) -> str:
    """SQL sums, suffixed ``name``, for judging a forecast per unit (``predicted``: spend per
    purchase day, value per order) against ``actual / weight`` over the rows where ``keep``
    holds, each row weighted by its ``weight`` (purchase days, orders): the weights, the
    weighted squared errors, the forecast total and the actual total (``weighted_errors`` turns
    them into an RMSE and an aggregate % error)."""
    error = f"({predicted} - {actual} / {weight})"
    return ", ".join(
        [
            f"sum(case when {keep} then {weight} else 0 end) as weight{name}",
            f"{exact_sum(f'case when {keep} then {weight} * {error} * {error} else 0 end')} "
            f"as squares{name}",
            f"{exact_sum(f'case when {keep} then {weight} * {predicted} else 0 end')} "
            f"as predicted{name}",
            f"{exact_sum(f'case when {keep} then {actual} else 0 end')} as actual{name}",
        ]
    )


def weighted_errors(sums, name: str) -> tuple[float, float] | None:
    """The weighted RMSE and aggregate % error from a row of ``weighted_error_sums(name, ...)``;
    None when no row was kept (zero weight)."""
    weight = float(sums[f"weight{name}"])
    if weight == 0:
        return None
    rmse = float(np.sqrt(sums[f"squares{name}"] / weight))
    return rmse, pct_error(float(sums[f"predicted{name}"]), float(sums[f"actual{name}"]))


def rank_correlations(tables, pairs: str) -> dict[str, float]:
    """Spearman's rank correlation of ``x`` and ``y`` per ``key`` of ``pairs`` (a portable query
    with those columns, one row per customer), ties given their average rank (as scipy's
    ``spearmanr``); NaN where either side is constant. The engine groups the rows by distinct
    (x, y), ranks the distinct values from their counts, and sums the centred products; only
    the sums (one row per key) come back."""
    counted = f"select key, x, y, count(*) as n from ({pairs}) as pairs group by key, x, y"

    def ranks(side: str) -> str:
        # a value's average rank: the rows up to and including it, less half its ties
        return (
            f"select key, {side}, sum(c) over (partition by key order by {side} "
            "rows between unbounded preceding and current row) - cast(c - 1 as double) / 2 "
            f"as r from (select key, {side}, sum(n) as c from counted group by key, {side}) "
            "as distinct_values"
        )

    sums = tables.query(
        f"with counted as ({counted}), x_ranks as ({ranks('x')}), y_ranks as ({ranks('y')}), "
        "centred as (select counted.key, counted.x, counted.y, counted.n, "
        "x_ranks.r - cast(totals.total + 1 as double) / 2 as dx, "
        "y_ranks.r - cast(totals.total + 1 as double) / 2 as dy from counted "
        "join (select key, sum(n) as total from counted group by key) as totals "
        "on counted.key = totals.key "
        "join x_ranks on counted.key = x_ranks.key and counted.x = x_ranks.x "
        "join y_ranks on counted.key = y_ranks.key and counted.y = y_ranks.y) "
        "select key, count(distinct x) as x_values, count(distinct y) as y_values, "
        f"{exact_sum('n * dx * dy')} as sxy, {exact_sum('n * dx * dx')} as sxx, "
        f"{exact_sum('n * dy * dy')} as syy "
        "from centred group by key"
    )
    return {
        row.key: float(row.sxy / np.sqrt(row.sxx * row.syy))
        if row.x_values >= 2 and row.y_values >= 2
        else math.nan
        for row in sums.itertuples(index=False)
    }


def aucs(tables, labelled: str) -> dict[str, float]:
    """ROC AUC of ``score`` for the boolean ``label`` per ``key`` of ``labelled`` (a portable
    query with those columns): the share of (positive, negative) pairs the score orders right,
    ties counting half (as scikit-learn's ``roc_auc_score``); NaN with one class only. The engine
    counts positives and negatives per distinct score; the counts are whole numbers, so the
    ratio is exact."""
    sums = tables.query(
        "with groups as (select key, score, sum(case when label then 1 else 0 end) as pos, "
        "sum(case when label then 0 else 1 end) as neg "
        f"from ({labelled}) as labelled group by key, score), "
        "below as (select key, pos, neg, sum(neg) over (partition by key order by score "
        "rows between unbounded preceding and current row) - neg as neg_below from groups) "
        "select key, sum(pos) as positives, sum(neg) as negatives, "
        "sum(pos * neg_below) as ordered, sum(pos * neg) as tied from below group by key"
    )
    return {
        row.key: (float(row.ordered) + float(row.tied) / 2)
        / (float(row.positives) * float(row.negatives))
        if row.positives and row.negatives
        else math.nan
        for row in sums.itertuples(index=False)
    }


def baseline_purchases(
    frequency_cal: np.ndarray, t_cal: np.ndarray, duration: np.ndarray | float
) -> np.ndarray:
    """The naive forecast: each customer's repeat rate so far, carried over the holdout.

    ``frequency_cal / t_cal * duration``; 0 for customers with ``t_cal == 0`` (first seen on
    the cutoff day, so their frequency is 0 too).
    """
    frequency_cal = np.asarray(frequency_cal, dtype=float)
    t_cal = np.asarray(t_cal, dtype=float)
    rate = np.divide(frequency_cal, t_cal, out=np.zeros_like(frequency_cal), where=t_cal > 0)
    return rate * np.asarray(duration, dtype=float)


# --- ground truth (synthetic data) ------------------------------------------------------------


def compare_with_truth(
    tables,
    transaction: base.FitResult,
    spend: str = "margin",
) -> tuple[pd.DataFrame, dict]:
    """The scores as of the as-of date beside the simulator's truth (a 365-day truth horizon),
    from the engine's sums over the customers in both (only small frames reach the driver).

    Parameters
    ----------
    tables
        The run's table store, with ``analytics.customer_cltv`` (customers without orders, whose
        scores are null, are left out), ``intermediate.customer_summary`` (each customer's
        ``frequency``: P(alive) is also judged on repeat buyers alone, since one-time buyers
        have P(alive) 1 by construction in BG/NBD, which flatters the AUC, and spend per order
        on one-time and repeat buyers) and the simulator's ``truth.customers``
        (``customer_code``, ``purchase_rate``, ``dropout_prob``, ``alive_at_as_of``,
        ``future_orders``, ``future_net_sales``, ``future_gross_margin``).
    transaction : base.FitResult
        The transaction model the scores came from (for the population means; the mean
        dropout probability per purchase only for BG/NBD and MBG/NBD, whose dropout is per
        purchase like the simulator's).
    spend : {"margin", "revenue"}
        Which future spend the 365-day value is compared with.

    Returns
    -------
    (metrics, summary): tidy ``metric``, ``model`` (the transaction model's name or ``truth``),
    ``value`` and the same as a nested dict.
    """
    base.spend_column(spend)  # refuses an unknown spend name
    needed = [*TRUTH_COLUMNS, TRUTH_SPEND_COLUMNS[spend]]
    have = {name for name, _ in tables.table_columns(*TRUTH_TABLE.split("."))}
    missing = [c for c in needed if c not in have]
    if missing:
        raise ValueError(f"truth table lacks columns {missing}")
    duplicated = tables.query(
        "select (select count(*) - count(distinct customer_code) from "
        f"{SCORES} where p_alive is not null) as scores, "
        f"(select count(*) - count(distinct customer_code) from {TRUTH_TABLE}) as truth"
    ).iloc[0]
    for name in ("scores", "truth"):
        if int(duplicated[name]):
            raise ValueError(f"{name} have duplicated customer_code values")
    joined = (
        "select s.customer_code, cast(s.p_alive as double) as p_alive, "
        "cast(case when t.alive_at_as_of then 1 else 0 end as double) as alive, "
        "t.alive_at_as_of as is_alive, s.frequency > 0 as is_repeat, "
        "cast(s.expected_purchases_365d as double) as expected, "
        "cast(s.expected_order_value as double) as order_value, "
        "cast(s.expected_purchases_365d as double) * cast(s.expected_order_value as double) "
        "as value, cast(t.future_orders as double) as future, "
        f"cast(t.{TRUTH_SPEND_COLUMNS[spend]} as double) as future_value, "
        "cast(t.purchase_rate as double) as purchase_rate, "
        "cast(t.dropout_prob as double) as dropout_prob "
        f"from (select c.*, m.frequency from {SCORES} as c join {SUMMARY} as m "
        "on c.customer_code = m.customer_code where c.p_alive is not null) as s "
        f"join {TRUTH_TABLE} as t on s.customer_code = t.customer_code"
    )
    spend_sums = [
        weighted_error_sums(
            f"_{group}", f"{where} and future > 0", "future", "order_value", "future_value"
        )
        for group, where in (("one_time", "not is_repeat"), ("repeat", "is_repeat"))
    ]
    mean, total = exact_mean, exact_sum
    squared = "(p_alive - alive) * (p_alive - alive)"
    sums = tables.query(
        f"select count(*) as customers, {mean('p_alive')} as alive_share, "
        f"{mean(squared)} as p_alive_brier, "
        f"{mean(f'case when is_repeat then {squared} end')} as p_alive_brier_repeat, "
        f"{mean('alive')} as true_alive_share, {mean('purchase_rate')} as purchase_rate, "
        f"{mean('dropout_prob')} as dropout_prob, {total('expected')} as expected, "
        f"{total('future')} as future, {mean('abs(expected - future)')} as purchases_mae, "
        f"{total('value')} as value, {total('future_value')} as future_value, "
        f"{mean('abs(value - future_value)')} as value_mae, {', '.join(spend_sums)} "
        f"from ({joined}) as joined"
    ).iloc[0]
    n = int(sums["customers"])
    if n == 0:
        raise ValueError("no scored customer is in the truth table")
    auc = aucs(
        tables,
        f"select 'all' as key, p_alive as score, is_alive as label from ({joined}) as joined "
        "union all select 'repeat' as key, p_alive as score, is_alive as label "
        f"from ({joined}) as joined where is_repeat",
    )
    spearman = rank_correlations(
        tables,
        f"select 'purchases' as key, expected as x, future as y from ({joined}) as joined "
        f"union all select 'value' as key, value as x, future_value as y from ({joined}) as joined",
    )
    params = transaction.params
    model: dict[str, float] = {
        "alive_share": float(sums["alive_share"]),
        "p_alive_brier": float(sums["p_alive_brier"]),
        "p_alive_auc": auc.get("all", math.nan),
        "mean_purchase_rate_per_day": params["r"] / params["alpha"],
    }
    if "a" in params:
        model["mean_dropout_prob"] = params["a"] / (params["a"] + params["b"])
    model["p_alive_brier_repeat"] = _float(sums["p_alive_brier_repeat"])
    model["p_alive_auc_repeat"] = auc.get("repeat", math.nan)
    for group in ("one_time", "repeat"):
        errors = weighted_errors(sums, f"_{group}")
        if errors is not None:
            rmse, pct = errors
            model[f"order_value_rmse_{group}"] = rmse
            model[f"order_value_aggregate_pct_error_{group}"] = pct
    for name, predicted, actual, mae in (
        ("purchases_365d", "expected", "future", "purchases_mae"),
        ("value_365d", "value", "future_value", "value_mae"),
    ):
        model[f"{name}_total"] = float(sums[predicted])
        model[f"{name}_aggregate_pct_error"] = pct_error(
            float(sums[predicted]), float(sums[actual])
        )
        model[f"{name}_mae"] = float(sums[mae])
        model[f"{name}_spearman"] = spearman.get(name.removesuffix("_365d"), math.nan)
    actual = {
        "alive_share": float(sums["true_alive_share"]),
        "mean_purchase_rate_per_day": float(sums["purchase_rate"]),
        "mean_dropout_prob": float(sums["dropout_prob"]),
        "purchases_365d_total": float(sums["future"]),
        "value_365d_total": float(sums["future_value"]),
    }
    name = transaction.name
    summary = {name: model, TRUTH: actual, "n_customers": n, "spend": spend}
    rows = [(m, who, v) for who in (TRUTH, name) for m, v in summary[who].items()]
    rows.append(("n_customers", TRUTH, float(n)))
    return pd.DataFrame(rows, columns=list(METRIC_COLUMNS)), summary


def _float(value) -> float:
    """A SQL aggregate as a float: NaN for null (an average over no rows)."""
    return math.nan if pd.isna(value) else float(value)
