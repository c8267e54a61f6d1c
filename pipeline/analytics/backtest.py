"""How good is the CLTV model? A holdout backtest every refresh, and the simulator's truth.

Backtest contract
-----------------
- Input: ``customer_backtest_summary`` (dbt), one row per customer first seen on or before the
  cutoff = as-of date - holdout days, with the calibration summary (``*_cal``) and what the
  customer did in the holdout (``frequency_holdout`` purchase days, ``net_sales_holdout``,
  ``gross_margin_holdout`` over ``duration_holdout`` days).
- The model (``cltv.fit_bgnbd`` + ``cltv.fit_gamma_gamma``, same ladder and spend) is fit on the
  calibration columns only, then predicts each customer's purchase days in the holdout and their
  value = predicted purchases x Gamma-Gamma expected spend per purchase day.
- The naive baseline carries each customer's past repeat rate forward: ``frequency_cal / t_cal``
  repeat purchase days per day, times ``duration_holdout`` (0 when ``t_cal`` is 0: a customer
  first seen on the cutoff day has no history to carry); its value is that times the customer's
  calibration mean spend per repeat day.
- Metrics per model (``bgnbd``, ``baseline``): total predicted purchases and their % error
  against the actual total, per-customer MAE of purchases, Spearman rank correlation of
  predicted vs actual purchases and of predicted vs actual holdout spend, and the same total /
  % error / MAE for value.
- ``beats_baseline``: the model's purchase MAE is lower than the baseline's *and* its absolute
  aggregate purchase % error is lower. Rank correlations are reported, not voted.

Ground-truth contract (synthetic data only): ``compare_with_truth`` sets the scores as of the
as-of date beside the simulator's latent truth: P(alive) vs ``alive_at_as_of`` (mean, Brier
score, AUC), 365-day expected purchases vs ``future_orders`` (total % error, MAE, Spearman;
``future_orders`` counts orders, the model purchase days, which differ only on days with two
orders), 365-day value vs ``future_gross_margin`` / ``future_net_sales``, and the population
mean purchase rate ``r / alpha`` and dropout probability ``a / (a + b)`` vs the truth means.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from pipeline.analytics import cltv

BASELINE = "baseline"
ACTUAL = "actual"
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


@dataclass(frozen=True)
class BacktestResult:
    """Tidy metrics, the same as a dict, per-customer predictions and the calibration fits.

    ``predictions`` columns: ``customer_code``, ``actual_purchases``, ``bgnbd_purchases``,
    ``baseline_purchases``, ``actual_value``, ``bgnbd_value``, ``baseline_value``.
    """

    metrics: pd.DataFrame
    summary: dict
    predictions: pd.DataFrame
    bgnbd: cltv.FitResult
    gamma_gamma: cltv.FitResult


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


def backtest_metrics(predictions: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Metrics of the model and the baseline against the actuals.

    Parameters
    ----------
    predictions : pd.DataFrame
        ``actual_purchases``, ``actual_value`` and ``<model>_purchases``, ``<model>_value`` for
        the models ``bgnbd`` and ``baseline``.

    Returns
    -------
    (metrics, summary): a tidy frame (``metric``, ``model``, ``value``) and
    ``{"bgnbd": {...}, "baseline": {...}, "actual": {...}, "beats_baseline": bool,
    "n_customers": int}``.
    """
    if predictions.empty:
        raise ValueError("cannot backtest: no calibration customers")
    actual_purchases = predictions["actual_purchases"].to_numpy(dtype=float)
    actual_value = predictions["actual_value"].to_numpy(dtype=float)
    summary: dict = {
        ACTUAL: {
            "purchases_total": float(actual_purchases.sum()),
            "value_total": float(actual_value.sum()),
        }
    }
    for model in (cltv.BGNBD, BASELINE):
        purchases = predictions[f"{model}_purchases"].to_numpy(dtype=float)
        value = predictions[f"{model}_value"].to_numpy(dtype=float)
        summary[model] = _error_metrics(actual_purchases, purchases, "purchases") | _error_metrics(
            actual_value, value, "value"
        )
    ours, naive = summary[cltv.BGNBD], summary[BASELINE]
    summary["beats_baseline"] = bool(
        ours["purchases_mae"] < naive["purchases_mae"]
        and abs(ours["purchases_aggregate_pct_error"])
        < abs(naive["purchases_aggregate_pct_error"])
    )
    summary["n_customers"] = len(predictions)
    rows = [
        (metric, model, value)
        for model in (ACTUAL, cltv.BGNBD, BASELINE)
        for metric, value in summary[model].items()
    ]
    rows.append(("beats_baseline", cltv.BGNBD, float(summary["beats_baseline"])))
    rows.append(("n_customers", ACTUAL, float(len(predictions))))
    return pd.DataFrame(rows, columns=list(METRIC_COLUMNS)), summary


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


def run_backtest(
    backtest_summary: pd.DataFrame,
    spend: str = "margin",
    penalizers: Sequence[float] = cltv.DEFAULT_PENALIZERS,
) -> BacktestResult:
    """Fit on the calibration period, predict the holdout, compare with what happened.

    Parameters
    ----------
    backtest_summary : pd.DataFrame
        ``customer_backtest_summary``.
    spend : {"margin", "revenue"}
        What the value metrics measure (and what Gamma-Gamma is fit on).
    penalizers : sequence of float
        The ladder for both fits.

    Returns
    -------
    BacktestResult
    """
    cltv.spend_column(spend)  # refuses an unknown spend name
    holdout_spend = HOLDOUT_SPEND_COLUMNS[spend]
    needed = ["frequency_holdout", "duration_holdout", holdout_spend]
    missing = [c for c in needed if c not in backtest_summary.columns]
    if missing:
        raise ValueError(f"backtest summary lacks columns {missing}")
    calibration = calibration_summary(backtest_summary)
    bgnbd = cltv.fit_bgnbd(calibration, penalizers)
    gamma_gamma = cltv.fit_gamma_gamma(calibration, spend, penalizers)

    # Predict on unique (history, duration) rows: the cost follows distinct histories.
    keys = ["frequency", "recency", "t", "duration"]
    histories = calibration[["frequency", "recency", "t"]].astype(float)
    histories["duration"] = backtest_summary["duration_holdout"].to_numpy(dtype=float)
    grouped = histories.groupby(keys, sort=True)
    unique, row = grouped.size().reset_index()[keys], grouped.ngroup().to_numpy()
    with np.errstate(all="ignore"):
        predicted_unique = bgnbd.model.conditional_expected_number_of_purchases_up_to_time(
            unique["duration"].to_numpy(),
            unique["frequency"].to_numpy(),
            unique["recency"].to_numpy(),
            unique["t"].to_numpy(),
        )
    bgnbd_purchases = np.asarray(predicted_unique, dtype=float)[row]
    frequency = calibration["frequency"].to_numpy(dtype=float)
    spend_cal = calibration[gamma_gamma.spend_column].to_numpy(dtype=float)
    naive_purchases = baseline_purchases(
        frequency, calibration["t"].to_numpy(dtype=float), histories["duration"].to_numpy()
    )
    predictions = pd.DataFrame(
        {
            "customer_code": calibration["customer_code"].to_numpy(),
            "actual_purchases": backtest_summary["frequency_holdout"].to_numpy(dtype=float),
            "bgnbd_purchases": bgnbd_purchases,
            "baseline_purchases": naive_purchases,
            "actual_value": backtest_summary[holdout_spend].to_numpy(dtype=float),
            "bgnbd_value": bgnbd_purchases * cltv.expected_spend(gamma_gamma, frequency, spend_cal),
            "baseline_value": naive_purchases * spend_cal,
        }
    )
    if not np.isfinite(predictions["bgnbd_purchases"]).all():
        raise FloatingPointError("BG/NBD holdout predictions are not finite")
    metrics, summary = backtest_metrics(predictions)
    durations = backtest_summary["duration_holdout"].unique()
    summary["holdout_days"] = float(durations[0]) if len(durations) == 1 else None
    summary["spend"] = spend
    return BacktestResult(metrics, summary, predictions, bgnbd, gamma_gamma)


# --- ground truth (synthetic data) ------------------------------------------------------------


def compare_with_truth(
    scores: pd.DataFrame,
    truth: pd.DataFrame,
    bgnbd: cltv.FitResult,
    spend: str = "margin",
) -> tuple[pd.DataFrame, dict]:
    """Scores as of the as-of date beside the simulator's truth (a 365-day truth horizon).

    Parameters
    ----------
    scores : pd.DataFrame
        ``cltv.score_customers`` output; customers without orders (null scores) are left out.
    truth : pd.DataFrame
        The simulator's ``truth.customers``: ``customer_code``, ``purchase_rate``,
        ``dropout_prob``, ``alive_at_as_of``, ``future_orders``, ``future_net_sales``,
        ``future_gross_margin``.
    bgnbd : cltv.FitResult
        The fit the scores came from (for the population means).
    spend : {"margin", "revenue"}
        Which future spend the 365-day value is compared with.

    Returns
    -------
    (metrics, summary): tidy ``metric``, ``model`` (``bgnbd`` or ``truth``), ``value`` and the
    same as a nested dict.
    """
    cltv.spend_column(spend)  # refuses an unknown spend name
    needed = ["customer_code", "purchase_rate", "dropout_prob", "alive_at_as_of", "future_orders",
              TRUTH_SPEND_COLUMNS[spend]]
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
    params = bgnbd.params

    model: dict[str, float] = {
        "alive_share": float(p_alive.mean()),
        "p_alive_brier": float(np.mean((p_alive - alive) ** 2)),
        "p_alive_auc": _auc(alive, p_alive),
        "mean_purchase_rate_per_day": params["r"] / params["alpha"],
        "mean_dropout_prob": params["a"] / (params["a"] + params["b"]),
    }
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
    summary = {cltv.BGNBD: model, TRUTH: actual, "n_customers": len(joined), "spend": spend}
    rows = [(m, name, v) for name in (TRUTH, cltv.BGNBD) for m, v in summary[name].items()]
    rows.append(("n_customers", TRUTH, float(len(joined))))
    return pd.DataFrame(rows, columns=list(METRIC_COLUMNS)), summary


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of scores for boolean labels; NaN when only one class is present."""
    if labels.all() or not labels.any():
        return math.nan
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))
