"""Choose the CLTV models on the backtest holdout, against fair baselines.

Contract
--------
- Input: ``customer_backtest_summary`` (dbt): per customer first seen by the cutoff (as-of date
  minus the holdout days), the calibration summary (``*_cal``, log-spend statistics included),
  the repeat purchase days of the calibration period's last holdout-length window
  (``frequency_last_period_cal``) and what happened in the holdout.
- **Transaction candidates** (BG/NBD, MBG/NBD, Pareto/NBD) are fit on the calibration columns
  with the penalizer ladder and predict each customer's purchase days in the holdout. A candidate
  that cannot be fit is recorded with every rung's error and left out.
- **Baselines**: ``zero`` (nobody buys), ``last_period`` (each customer repeats the purchase days
  of the last holdout-length window before the cutoff) and ``naive`` (the calibration repeat rate
  ``frequency_cal / t_cal`` carried over the holdout; 0 when ``t_cal`` is 0).
- **Metrics** per predictor: RMSE, MAE, mean Poisson deviance (predictions floored at
  ``DEVIANCE_FLOOR`` purchase days, since a forecast of exactly 0 for a customer who buys scores
  an infinite deviance), total and aggregate % error, Spearman rank correlation, and a
  calibration table by decile of the prediction (mean predicted vs mean actual).
- **The choice**: the fitted candidate with the lowest Poisson deviance (a proper score for
  counts); RMSE breaks ties. Every candidate gets a rank (failed ones none) and the chosen one a
  reason naming the numbers. ``beats_baselines``: the chosen model has a lower RMSE *and* a lower
  deviance than every baseline (the WARN gate).
- **Spend candidates** (Gamma-Gamma, log-normal empirical Bayes) are fit on the calibration
  period and predict spend per purchase day; they are scored on the customers who bought in the
  holdout against their actual spend per holdout purchase day, weighted by those days (RMSE and
  aggregate % error), for one-time and repeat buyers (as of the cutoff) separately. A Gamma-Gamma
  fit with ``q <= 1`` has no population mean, so it cannot value one-time buyers: it is not
  eligible, and that is the reason given. Among eligible fits the lowest weighted RMSE wins.
- When no candidate of a kind can be fit, or there is nobody to backtest on, nothing is chosen
  and the reasons are kept: the CLTV stage then tries the candidates in their default order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.analytics import backtest
from pipeline.analytics.cltv import base, transactions
from pipeline.analytics.cltv.spend import SPEND_MODELS, fit_spend_model, spend_per_day

ZERO = "zero"
LAST_PERIOD = "last_period"
NAIVE = "naive"
BASELINES = (ZERO, LAST_PERIOD, NAIVE)
TRANSACTION = "transaction"
SPEND = "spend"
DEVIANCE_FLOOR = 1e-3
DECILES = 10

SELECTION_COLUMNS = (
    "kind",
    "model",
    "status",
    "rank",
    "chosen",
    "reason",
    "penalizer",
    "params",
    "purchases_rmse",
    "purchases_mae",
    "purchases_poisson_deviance",
    "purchases_aggregate_pct_error",
    "purchases_spearman",
    "spend_rmse",
    "spend_aggregate_pct_error",
    "spend_rmse_one_time",
    "spend_aggregate_pct_error_one_time",
    "spend_rmse_repeat",
    "spend_aggregate_pct_error_repeat",
)
# the log-normal spend model's inputs, under customer_summary's names
CALIBRATION_LOG_COLUMNS = {
    **{
        f"log_{name}_{stat}_cal": f"log_{name}_{stat}"
        for name in ("net_sales", "gross_margin")
        for stat in ("days", "mean", "var")
    },
    "total_net_sales_cal": "total_net_sales",
    "total_gross_margin_cal": "total_gross_margin",
}


@dataclass(frozen=True)
class Selection:
    """What was tried on the holdout and what was chosen.

    ``selection``: one row per candidate and baseline (``SELECTION_COLUMNS``). ``metrics``: the
    same as tidy (``metric``, ``model``, ``value``) rows. ``deciles``: ``model``, ``decile``
    (10 = highest predicted), ``customers``, ``predicted_mean``, ``actual_mean``.
    ``transaction_ranking`` / ``spend_ranking``: candidate names, best first (the default order
    when nothing could be evaluated). ``beats_baselines``: the WARN gate (None when no model).
    """

    selection: pd.DataFrame
    metrics: pd.DataFrame
    deciles: pd.DataFrame
    transaction_ranking: tuple[str, ...]
    spend_ranking: tuple[str, ...]
    transaction_fits: dict
    spend_fits: dict
    beats_baselines: bool | None
    n_customers: int


# --- metrics ----------------------------------------------------------------------------------


def poisson_deviance(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean Poisson deviance 2 [y log(y / mu) - (y - mu)], mu floored at ``DEVIANCE_FLOOR``."""
    y = np.asarray(actual, dtype=float)
    mu = np.maximum(np.asarray(predicted, dtype=float), DEVIANCE_FLOOR)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return float(np.mean(2.0 * (term - (y - mu))))


def purchase_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    return {
        "purchases_total": float(predicted.sum()),
        "purchases_rmse": float(np.sqrt(np.mean((predicted - actual) ** 2))),
        "purchases_mae": float(np.mean(np.abs(predicted - actual))),
        "purchases_poisson_deviance": poisson_deviance(actual, predicted),
        "purchases_aggregate_pct_error": backtest.pct_error(
            float(predicted.sum()), float(actual.sum())
        ),
        "purchases_spearman": backtest.spearman(predicted, actual),
    }


def calibration_deciles(model: str, actual: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    """Customers in ten equal groups by predicted value (ties by row order), mean predicted vs
    mean actual per group; decile 10 holds the highest predictions."""
    n = len(actual)
    order = np.argsort(np.asarray(predicted, dtype=float), kind="stable")
    decile = np.empty(n, dtype=int)
    decile[order] = np.arange(n) * DECILES // max(n, 1) + 1
    frame = pd.DataFrame({"decile": decile, "predicted": predicted, "actual": actual})
    grouped = frame.groupby("decile", sort=True)
    out = grouped.agg(
        customers=("actual", "size"),
        predicted_mean=("predicted", "mean"),
        actual_mean=("actual", "mean"),
    ).reset_index()
    out.insert(0, "model", model)
    return out


def spend_metrics(
    predicted: np.ndarray, holdout_spend: np.ndarray, holdout_days: np.ndarray, one_time: np.ndarray
) -> dict[str, float]:
    """Spend per purchase day vs the holdout's actual, over customers who bought in the holdout,
    weighted by their holdout purchase days; overall, one-time and repeat buyers."""
    out: dict[str, float] = {}
    bought = holdout_days > 0
    for suffix, mask in (
        ("", bought),
        ("_one_time", bought & one_time),
        ("_repeat", bought & ~one_time),
    ):
        days = holdout_days[mask]
        if days.sum() == 0:
            out[f"spend_rmse{suffix}"] = math.nan
            out[f"spend_aggregate_pct_error{suffix}"] = math.nan
            continue
        actual_per_day = holdout_spend[mask] / days
        error = predicted[mask] - actual_per_day
        out[f"spend_rmse{suffix}"] = float(np.sqrt(np.sum(days * error**2) / days.sum()))
        out[f"spend_aggregate_pct_error{suffix}"] = backtest.pct_error(
            float(np.sum(days * predicted[mask])), float(holdout_spend[mask].sum())
        )
    return out


# --- the selection ----------------------------------------------------------------------------


def calibration_frame(backtest_summary: pd.DataFrame) -> pd.DataFrame:
    """The calibration columns under ``customer_summary``'s names, log-spend statistics too."""
    frame = backtest.calibration_summary(backtest_summary)
    for source, target in CALIBRATION_LOG_COLUMNS.items():
        if source in backtest_summary.columns:
            frame[target] = backtest_summary[source].to_numpy()
    return frame


def holdout_purchases(
    fit: base.FitResult, calibration: pd.DataFrame, duration: np.ndarray
) -> np.ndarray:
    """Each customer's expected purchase days over their holdout, computed on unique
    (history, duration) rows."""
    keys = ["frequency", "recency", "t"]
    histories = calibration[keys].astype(float)
    histories["duration"] = np.asarray(duration, dtype=float)
    grouped = histories.groupby([*keys, "duration"], sort=True)
    unique, row = grouped.size().reset_index(), grouped.ngroup().to_numpy()
    predicted = np.empty(len(unique))
    for duration_value, rows in unique.groupby("duration").groups.items():
        part = unique.loc[rows]
        _, expected = transactions.predictions(
            fit.name,
            fit.model,
            part["frequency"],
            part["recency"],
            part["t"],
            [float(duration_value)],
        )
        predicted[np.asarray(rows)] = expected[float(duration_value)]
    if not np.isfinite(predicted).all():
        raise FloatingPointError(f"{fit.name} holdout predictions are not finite")
    return predicted[row]


def _fit_or_reason(fit):
    try:
        return fit(), None
    except (base.ModelFitError, ValueError, FloatingPointError) as error:
        return None, str(error)


def _params_text(fit: base.FitResult | None) -> str | None:
    if fit is None:
        return None
    return ", ".join(f"{k}={v:.6g}" for k, v in fit.params.items())


def select_models(
    backtest_summary: pd.DataFrame,
    spend: str = "margin",
    penalizers: Sequence[float] = base.DEFAULT_PENALIZERS,
    transaction_candidates: Sequence[str] = transactions.TRANSACTION_MODELS,
    spend_candidates: Sequence[str] = SPEND_MODELS,
) -> Selection:
    """Fit every candidate on the calibration period, score all of them and the baselines on the
    holdout, and rank them (see the module docstring)."""
    base.spend_column(spend)  # refuses an unknown spend before any fit
    holdout_spend_column = backtest.HOLDOUT_SPEND_COLUMNS[spend]
    needed = [
        "frequency_holdout",
        "duration_holdout",
        "frequency_last_period_cal",
        holdout_spend_column,
    ]
    missing = [c for c in needed if c not in backtest_summary.columns]
    if missing:
        raise ValueError(f"backtest summary lacks columns {missing}")
    rows: list[dict] = []
    deciles: list[pd.DataFrame] = []
    transaction_fits: dict[str, base.FitResult] = {}
    spend_fits: dict[str, base.FitResult] = {}
    if backtest_summary.empty:
        reason = "no customer was first seen before the holdout: nothing to backtest on"
        for kind, names in ((TRANSACTION, transaction_candidates), (SPEND, spend_candidates)):
            rows += [
                {"kind": kind, "model": name, "status": "not evaluated", "reason": reason}
                for name in names
            ]
        return _result(
            rows, deciles, tuple(transaction_candidates), tuple(spend_candidates), {}, {}, 0
        )

    calibration = calibration_frame(backtest_summary)
    actual = backtest_summary["frequency_holdout"].to_numpy(dtype=float)
    duration = backtest_summary["duration_holdout"].to_numpy(dtype=float)
    predictions: dict[str, np.ndarray] = {
        ZERO: np.zeros(len(actual)),
        LAST_PERIOD: backtest_summary["frequency_last_period_cal"].to_numpy(dtype=float),
        NAIVE: backtest.baseline_purchases(calibration["frequency"], calibration["t"], duration),
    }
    for name in transaction_candidates:
        fit, error = _fit_or_reason(
            lambda: transactions.fit_transaction_model(calibration, name, penalizers)
        )
        if fit is not None:
            predicted, error = _fit_or_reason(lambda: holdout_purchases(fit, calibration, duration))
        if error is not None:
            rows.append({"kind": TRANSACTION, "model": name, "status": "failed", "reason": error})
            continue
        transaction_fits[name] = fit
        predictions[name] = predicted
        rows.append(
            {
                "kind": TRANSACTION,
                "model": name,
                "status": "fitted",
                "penalizer": fit.penalizer,
                "params": _params_text(fit),
            }
        )
    for name, predicted in predictions.items():
        if name in BASELINES:
            rows.append({"kind": "baseline", "model": name, "status": "baseline"})
        row = next(r for r in rows if r["model"] == name)
        row.update(purchase_metrics(actual, predicted))
        if name != ZERO:  # constant forecasts have no ranking to calibrate
            deciles.append(calibration_deciles(name, actual, predicted))

    fitted = [r for r in rows if r["kind"] == TRANSACTION and r["status"] == "fitted"]
    fitted.sort(key=lambda r: (r["purchases_poisson_deviance"], r["purchases_rmse"]))
    if fitted:
        best = fitted[0]
        baseline_rows = [r for r in rows if r["kind"] == "baseline"]
        beats = _beats(best, baseline_rows)
        others = "; ".join(
            f"{r['model']} {r['purchases_poisson_deviance']:.4f}" for r in fitted[1:]
        )
        best["reason"] = (
            f"lowest holdout Poisson deviance {best['purchases_poisson_deviance']:.4f} "
            f"(RMSE {best['purchases_rmse']:.4f}) of the fitted candidates"
            + (f"; others: {others}" if others else "")
            + f"; beats every baseline on RMSE and deviance: {'yes' if beats else 'no'}"
        )
        for rank, row in enumerate(fitted, start=1):
            row["rank"] = rank
    transaction_ranking = tuple(r["model"] for r in fitted)

    # spend: scored with each candidate's own expected spend per purchase day
    one_time = calibration["frequency"].to_numpy(dtype=float) == 0
    holdout_spend = backtest_summary[holdout_spend_column].to_numpy(dtype=float)
    spend_rows = []
    for name in spend_candidates:
        fit, error = _fit_or_reason(lambda: fit_spend_model(calibration, name, spend, penalizers))
        row = {"kind": SPEND, "model": name}
        if fit is not None:
            predicted, error = _fit_or_reason(lambda: spend_per_day(fit, calibration))
        if error is not None:
            row.update(status="failed", reason=error)
        else:
            spend_fits[name] = fit
            row.update(status="fitted", penalizer=fit.penalizer, params=_params_text(fit))
            row.update(spend_metrics(predicted, holdout_spend, actual, one_time))
            if not fit.population_mean_defined:
                row.update(
                    status="not eligible",
                    reason=(
                        f"q = {fit.params['q']:.3f} <= 1: the population mean spend is infinite, so "
                        "one-time buyers cannot be valued"
                    ),
                )
        spend_rows.append(row)
    eligible = [r for r in spend_rows if r["status"] == "fitted"]
    eligible.sort(key=lambda r: (np.nan_to_num(r["spend_rmse"], nan=np.inf), r["model"]))
    if eligible:
        best = eligible[0]
        others = "; ".join(f"{r['model']} {r['spend_rmse']:.4f}" for r in eligible[1:])
        not_eligible = [r["model"] for r in spend_rows if r["status"] == "not eligible"]
        best["reason"] = (
            f"lowest holdout RMSE of spend per purchase day {best['spend_rmse']:.4f}"
            + (f"; others: {others}" if others else "")
            + (f"; not eligible: {', '.join(not_eligible)}" if not_eligible else "")
        )
        for rank, row in enumerate(eligible, start=1):
            row["rank"] = rank
    rows += spend_rows
    return _result(
        rows,
        deciles,
        transaction_ranking,
        tuple(r["model"] for r in eligible),
        transaction_fits,
        spend_fits,
        len(backtest_summary),
        float(actual.sum()),
    )


def _beats(best, baselines) -> bool:
    return all(
        best["purchases_rmse"] < b["purchases_rmse"]
        and best["purchases_poisson_deviance"] < b["purchases_poisson_deviance"]
        for b in baselines
    )


def gate(selection: pd.DataFrame) -> bool | None:
    """The WARN gate: does the chosen transaction model (rank 1) have a lower holdout RMSE and
    Poisson deviance than every baseline? None when no model was chosen."""
    best = selection[(selection["kind"] == TRANSACTION) & (selection["rank"] == 1)]
    if best.empty:
        return None
    baselines = selection[selection["kind"] == "baseline"]
    return _beats(best.iloc[0], [row for _, row in baselines.iterrows()])


def tidy_metrics(selection: pd.DataFrame) -> pd.DataFrame:
    """The selection's metrics as (``metric``, ``model``, ``value``) rows, plus the number of
    customers backtested on and the gate."""
    names = [c for c in selection.columns if c.startswith(("purchases_", "spend_"))]
    tidy = selection.melt(id_vars=["model"], value_vars=names, var_name="metric")
    tidy = tidy.dropna(subset=["value"])[["metric", "model", "value"]]
    extra = []
    if len(selection):
        extra.append(("n_customers", "actual", float(selection["n_customers"].iloc[0])))
        extra.append(
            ("purchases_total", "actual", float(selection["holdout_purchases_total"].iloc[0]))
        )
    beats = gate(selection)
    if beats is not None:
        best = selection.loc[(selection["kind"] == TRANSACTION) & (selection["rank"] == 1), "model"]
        extra.append(("beats_baselines", best.iloc[0], float(beats)))
    rows = pd.DataFrame(extra, columns=["metric", "model", "value"])
    return pd.concat([tidy, rows], ignore_index=True).astype({"value": "float64"})


def _result(
    rows,
    deciles,
    transaction_ranking,
    spend_ranking,
    transaction_fits,
    spend_fits,
    n_customers,
    holdout_total=0.0,
) -> Selection:
    selection = pd.DataFrame(rows).reindex(columns=list(SELECTION_COLUMNS))
    chosen = {
        transaction_ranking[0] if transaction_ranking else None,
        spend_ranking[0] if spend_ranking else None,
    } - {None}
    selection["chosen"] = selection["model"].isin(chosen) & selection["rank"].eq(1)
    selection = selection.astype({"rank": "Int64", "chosen": "boolean"})
    numeric = [c for c in SELECTION_COLUMNS if c.startswith(("purchases_", "spend_"))]
    selection = selection.astype({c: "float64" for c in [*numeric, "penalizer"]})
    selection = selection.astype(
        {c: "string" for c in ("kind", "model", "status", "reason", "params")}
    )
    selection["n_customers"] = n_customers
    selection["holdout_purchases_total"] = holdout_total
    deciles_frame = (
        pd.concat(deciles, ignore_index=True)
        if deciles
        else pd.DataFrame(columns=["model", "decile", "customers", "predicted_mean", "actual_mean"])
    )
    deciles_frame = deciles_frame.astype(
        {
            "decile": "int64",
            "customers": "int64",
            "predicted_mean": "float64",
            "actual_mean": "float64",
        }
    )
    return Selection(
        selection,
        tidy_metrics(selection),
        deciles_frame,
        transaction_ranking,
        spend_ranking,
        transaction_fits,
        spend_fits,
        gate(selection),
        n_customers,
    )


# --- fitting the chosen models on the full history --------------------------------------------


@dataclass(frozen=True)
class Chosen:
    """The models fit on the full summary, or None with the reason (``status`` row)."""

    transaction: base.FitResult | None
    spend: base.FitResult | None
    reason: str

    @property
    def available(self) -> bool:
        return self.transaction is not None and self.spend is not None


def fit_chosen(
    summary: pd.DataFrame,
    transaction_ranking: Sequence[str],
    spend_ranking: Sequence[str],
    spend: str = "margin",
    penalizers: Sequence[float] = base.DEFAULT_PENALIZERS,
) -> Chosen:
    """``fit_chosen_with`` on a summary in memory."""
    return fit_chosen_with(
        lambda name: transactions.fit_transaction_model(summary, name, penalizers),
        lambda name: fit_spend_model(summary, name, spend, penalizers),
        transaction_ranking,
        spend_ranking,
    )


def fit_chosen_with(
    fit_transaction: Callable[[str], base.FitResult],
    fit_spend: Callable[[str], base.FitResult],
    transaction_ranking: Sequence[str],
    spend_ranking: Sequence[str],
) -> Chosen:
    """Fit the best-ranked candidate of each kind on the full history (``fit_transaction`` /
    ``fit_spend`` fit a model by name: in memory, or on the engine's compact inputs,
    ``cltv.tables``), falling back down the ranking when a fit fails; nothing to fit (an empty
    ranking) or every fit failing gives ``None`` and a reason listing every failure."""
    reasons: list[str] = []
    fits = {}
    for kind, ranking, fitter in (
        (TRANSACTION, transaction_ranking, fit_transaction),
        (SPEND, spend_ranking, fit_spend),
    ):
        fits[kind] = None
        if not ranking:
            reasons.append(f"no {kind} model could be fit on the backtest's calibration period")
            continue
        for name in ranking:
            fit, error = _fit_or_reason(lambda: fitter(name))
            if fit is not None:
                fits[kind] = fit
                break
            reasons.append(f"{name} failed on the full history: {error}")
        else:
            reasons.append(f"no {kind} model could be fit on the full history")
    return Chosen(fits[TRANSACTION], fits[SPEND], "; ".join(reasons))
