"""Holdout and ground-truth pieces shared by the CLTV model choice (``model_selection``).

Backtest pieces
---------------
- ``calibration_summary``: ``customer_backtest_summary``'s calibration columns (``*_cal``) under
  ``customer_summary``'s names, for the fitters.
- ``baseline_purchases``: the naive baseline, each customer's past repeat rate carried forward:
  ``frequency_cal / t_cal`` repeat purchase days per day, times the holdout duration (0 when
  ``t_cal`` is 0: a customer first seen on the cutoff day has no history to carry).
- ``pct_error`` and ``spearman``.

Ground-truth contract (synthetic data only): ``compare_with_truth`` sets the scores as of the
as-of date beside the simulator's latent truth: P(alive) vs ``alive_at_as_of`` (mean, Brier
score, AUC), 365-day expected purchases vs ``future_orders`` (total % error, MAE, Spearman;
``future_orders`` counts orders, the model purchase days, which differ only on days with two
orders), 365-day value vs ``future_gross_margin`` / ``future_net_sales``, the population
mean purchase rate ``r / alpha`` and (BG/NBD, MBG/NBD) dropout probability ``a / (a + b)`` vs the
truth means; with the customers' ``frequency``, also P(alive) AUC and Brier score on repeat
buyers alone, and expected order value vs next year's spend per order for one-time and repeat
buyers.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

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
METRIC_COLUMNS = ("metric", "model", "value")


# --- small pure pieces ------------------------------------------------------------------------


def pct_error(predicted_total: float, actual_total: float) -> float:
    """100 x (predicted - actual) / actual; NaN when nothing actually happened."""
    return 100.0 * (predicted_total - actual_total) / actual_total if actual_total else math.nan


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (ties get average ranks); NaN when either side is constant."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(a, b).statistic)


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


def _error_metrics(actual: np.ndarray, predicted: np.ndarray, prefix: str) -> dict[str, float]:
    return {
        f"{prefix}_total": float(predicted.sum()),
        f"{prefix}_aggregate_pct_error": pct_error(float(predicted.sum()), float(actual.sum())),
        f"{prefix}_mae": float(np.mean(np.abs(predicted - actual))),
        f"{prefix}_spearman": spearman(predicted, actual),
    }


# --- the backtest -----------------------------------------------------------------------------


def calibration_summary(backtest_summary: pd.DataFrame) -> pd.DataFrame:
    """The calibration columns under ``customer_summary``'s names, for the cltv fitters."""
    needed = ["customer_code", *CALIBRATION_COLUMNS]
    missing = [c for c in needed if c not in backtest_summary.columns]
    if missing:
        raise ValueError(f"backtest summary lacks columns {missing}")
    frame = backtest_summary[needed].rename(columns=CALIBRATION_COLUMNS)
    frame["has_orders"] = True
    return frame.reset_index(drop=True)


# --- ground truth (synthetic data) ------------------------------------------------------------


def compare_with_truth(
    scores: pd.DataFrame,
    truth: pd.DataFrame,
    transaction: base.FitResult,
    spend: str = "margin",
) -> tuple[pd.DataFrame, dict]:
    """Scores as of the as-of date beside the simulator's truth (a 365-day truth horizon).

    Parameters
    ----------
    scores : pd.DataFrame
        ``scoring.score_customers`` output; customers without orders (null scores) are left out.
        With a ``frequency`` column (repeat purchase days as of the as-of date), P(alive) is
        also judged on repeat buyers alone (one-time buyers have P(alive) 1 by construction
        in BG/NBD, which flatters the AUC) and spend per order on one-time and repeat buyers.
    truth : pd.DataFrame
        The simulator's ``truth.customers``: ``customer_code``, ``purchase_rate``,
        ``dropout_prob``, ``alive_at_as_of``, ``future_orders``, ``future_net_sales``,
        ``future_gross_margin``.
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
    needed = [
        "customer_code",
        "purchase_rate",
        "dropout_prob",
        "alive_at_as_of",
        "future_orders",
        TRUTH_SPEND_COLUMNS[spend],
    ]
    missing = [c for c in needed if c not in truth.columns]
    if missing:
        raise ValueError(f"truth table lacks columns {missing}")
    scored = scores[scores["p_alive"].notna()]
    # (pandas' merge(validate=...) costs seconds at 1M customers; is_unique is a hash pass)
    for name, frame in (("scores", scored), ("truth", truth)):
        if not frame["customer_code"].is_unique:
            raise ValueError(f"{name} have duplicated customer_code values")
    joined = scored.merge(truth[needed], on="customer_code", how="inner")
    if joined.empty:
        raise ValueError("no scored customer is in the truth table")

    p_alive = joined["p_alive"].to_numpy(dtype=float)
    alive = joined["alive_at_as_of"].to_numpy(dtype=bool)
    expected = joined["expected_purchases_365d"].to_numpy(dtype=float)
    future = joined["future_orders"].to_numpy(dtype=float)
    value = expected * joined["expected_order_value"].to_numpy(dtype=float)
    future_value = joined[TRUTH_SPEND_COLUMNS[spend]].to_numpy(dtype=float)
    params = transaction.params

    model: dict[str, float] = {
        "alive_share": float(p_alive.mean()),
        "p_alive_brier": float(np.mean((p_alive - alive) ** 2)),
        "p_alive_auc": _auc(alive, p_alive),
        "mean_purchase_rate_per_day": params["r"] / params["alpha"],
    }
    if "a" in params:
        model["mean_dropout_prob"] = params["a"] / (params["a"] + params["b"])
    if "frequency" in joined.columns:
        repeat = joined["frequency"].to_numpy(dtype=float) > 0
        model["p_alive_brier_repeat"] = float(np.mean((p_alive[repeat] - alive[repeat]) ** 2))
        model["p_alive_auc_repeat"] = _auc(alive[repeat], p_alive[repeat])
        model |= _spend_vs_truth(joined, future, future_value, repeat)
    model |= {
        k.replace("purchases", "purchases_365d"): v
        for k, v in _error_metrics(future, expected, "purchases").items()
    }
    model |= {
        k.replace("value", "value_365d"): v
        for k, v in _error_metrics(future_value, value, "value").items()
    }
    actual = {
        "alive_share": float(alive.mean()),
        "mean_purchase_rate_per_day": float(joined["purchase_rate"].mean()),
        "mean_dropout_prob": float(joined["dropout_prob"].mean()),
        "purchases_365d_total": float(future.sum()),
        "value_365d_total": float(future_value.sum()),
    }
    name = transaction.name
    summary = {name: model, TRUTH: actual, "n_customers": len(joined), "spend": spend}
    rows = [(m, who, v) for who in (TRUTH, name) for m, v in summary[who].items()]
    rows.append(("n_customers", TRUTH, float(len(joined))))
    return pd.DataFrame(rows, columns=list(METRIC_COLUMNS)), summary


def _spend_vs_truth(
    joined: pd.DataFrame, future_orders: np.ndarray, future_value: np.ndarray, repeat: np.ndarray
) -> dict[str, float]:
    """Expected order value vs next year's actual spend per order, over customers with future
    orders, weighted by their orders (RMSE, and aggregate % error of orders x expected value vs
    the actual total), for one-time and repeat buyers (as of the as-of date)."""
    out = {}
    predicted = joined["expected_order_value"].to_numpy(dtype=float)
    for suffix, mask in (("one_time", ~repeat), ("repeat", repeat)):
        keep = mask & (future_orders > 0)
        orders = future_orders[keep]
        if orders.sum() == 0:
            continue
        actual = future_value[keep] / orders
        error = predicted[keep] - actual
        out[f"order_value_rmse_{suffix}"] = float(np.sqrt(np.sum(orders * error**2) / orders.sum()))
        out[f"order_value_aggregate_pct_error_{suffix}"] = pct_error(
            float(np.sum(orders * predicted[keep])), float(future_value[keep].sum())
        )
    return out


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of scores for boolean labels; NaN when only one class is present."""
    if labels.all() or not labels.any():
        return math.nan
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))
