"""Choose the CLTV models on the backtest holdout, against fair baselines.

Contract
--------
- Input: ``customer_backtest_summary`` (dbt): per customer first seen by the cutoff (as-of date
  minus the holdout days), the calibration summary (``*_cal``, log-spend statistics included),
  the repeat purchase days of the calibration period's last holdout-length window
  (``frequency_last_period_cal``) and what happened in the holdout.
- **Where it runs**: in the run's table store (``pipeline.engine``), the engine moving the data
  and one implementation for both engines. The fits read compact rows of the calibration columns
  (``cltv.tables.CompactFits`` over ``calibration_relation``); every customer's holdout
  predictions are computed batch by batch inside the engine (``holdout_predictions``) and
  written to ``analytics.cltv_backtest_predictions``; the metrics below are portable SQL over
  that table (sums, and windows for the ranks), so only one row per model or decile comes back.
- **Transaction candidates** (BG/NBD, MBG/NBD, Pareto/NBD) are fit on the calibration columns
  with the penalizer ladder and predict each customer's purchase days in the holdout. A candidate
  that cannot be fit is recorded with every rung's error and left out.
- **Baselines**: ``zero`` (nobody buys), ``last_period`` (each customer repeats the purchase days
  of the last holdout-length window before the cutoff) and ``naive`` (the calibration repeat rate
  ``frequency_cal / t_cal`` carried over the holdout; 0 when ``t_cal`` is 0).
- **Metrics** per predictor: RMSE, MAE, mean Poisson deviance (predictions floored at
  ``DEVIANCE_FLOOR`` purchase days, since a forecast of exactly 0 for a customer who buys scores
  an infinite deviance), total and aggregate % error, Spearman rank correlation (average ranks
  for ties), and a calibration table by decile of the prediction (mean predicted vs mean
  actual; customers ordered by prediction, ties by customer code).
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

import functools
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd

from pipeline.analytics import backtest
from pipeline.analytics.cltv import base, lognormal, transactions
from pipeline.analytics.cltv.lognormal import LOGNORMAL
from pipeline.analytics.cltv.spend import SPEND_MODELS, fit_spend_model, spend_per_day
from pipeline.analytics.cltv.tables import CompactFits

T = TypeVar("T")
U = TypeVar("U")
# Threads for the backtest's transaction fits (the spend fits run beside them on the caller's).
FIT_THREADS = max(1, min(2, os.cpu_count() or 1))

ZERO = "zero"
LAST_PERIOD = "last_period"
NAIVE = "naive"
BASELINES = (ZERO, LAST_PERIOD, NAIVE)
TRANSACTION = "transaction"
SPEND = "spend"
DEVIANCE_FLOOR = 1e-3
DECILES = 10
BACKTEST = "intermediate.customer_backtest_summary"
# one row per backtest customer: what they did in the holdout and every predictor's forecast
PREDICTIONS = "analytics.cltv_backtest_predictions"
HOLDOUT_COLUMNS = ("frequency_holdout", "duration_holdout", "frequency_last_period_cal")

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


# --- the per-customer predictions -------------------------------------------------------------


def purchases_column(model: str) -> str:
    """The predictions table's column of a purchase predictor (a candidate or a baseline)."""
    return f"purchases_{model}"


def spend_column(model: str) -> str:
    """The predictions table's column of a spend candidate."""
    return f"spend_{model}"


def calibration_relation(tables, spend: str) -> str:
    """``customer_backtest_summary`` as a portable subquery: the calibration columns under
    ``customer_summary``'s names (log-spend statistics and totals too, when the table has them),
    every customer with orders, and the holdout columns the predictions need (``spend_holdout``:
    the holdout's spend of ``spend``).

    Raises
    ------
    ValueError
        Naming the columns the table lacks.
    """
    holdout_spend = backtest.HOLDOUT_SPEND_COLUMNS[spend]
    have = {name for name, _ in tables.table_columns(*BACKTEST.split("."))}
    needed = ["customer_code", *backtest.CALIBRATION_COLUMNS, *HOLDOUT_COLUMNS, holdout_spend]
    missing = [c for c in needed if c not in have]
    if missing:
        raise ValueError(f"backtest summary lacks columns {missing}")
    renamed = {**backtest.CALIBRATION_COLUMNS, **CALIBRATION_LOG_COLUMNS}
    columns = [f"{source} as {target}" for source, target in renamed.items() if source in have]
    return (
        f"(select customer_code, true as has_orders, {', '.join(columns)}, "
        f"{', '.join(HOLDOUT_COLUMNS)}, {holdout_spend} as spend_holdout "
        f"from {BACKTEST}) as calibration"
    )


def holdout_purchases(
    fit: base.FitResult, calibration: pd.DataFrame, duration: np.ndarray
) -> np.ndarray:
    """Each customer's expected purchase days over their holdout, computed on unique
    (history, duration) rows (non-finite where the model's formulas overflow)."""
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
    return predicted[row]


def predictions_schema(transaction_names, spend_names) -> dict[str, str]:
    """The predictions table's columns (-> Spark SQL types): the customer, what they did in the
    holdout, then one column per purchase predictor and per spend candidate."""
    return {
        "customer_code": "string",
        "frequency_holdout": "double",
        "spend_holdout": "double",
        "one_time": "boolean",
        **{purchases_column(name): "double" for name in (*BASELINES, *transaction_names)},
        **{spend_column(name): "double" for name in spend_names},
    }


def holdout_predictions(
    batch: pd.DataFrame, transaction_fits: dict, spend_fits: dict
) -> pd.DataFrame:
    """A batch of ``calibration_relation``'s customers: their holdout purchase days (the
    baselines' and every fitted transaction candidate's; NaN where a candidate's is not finite)
    and spend per purchase day (every fitted spend candidate's), the predictions table's rows."""
    schema = predictions_schema(transaction_fits, spend_fits)
    if batch.empty:
        return pd.DataFrame({name: pd.Series(dtype="object") for name in schema})
    frequency = batch["frequency"].to_numpy(dtype=float)
    duration = batch["duration_holdout"].to_numpy(dtype=float)
    out = pd.DataFrame(
        {
            "customer_code": batch["customer_code"].to_numpy(),
            "frequency_holdout": batch["frequency_holdout"].to_numpy(dtype=float),
            "spend_holdout": batch["spend_holdout"].to_numpy(dtype=float),
            "one_time": frequency == 0,
            purchases_column(ZERO): np.zeros(len(batch)),
            purchases_column(LAST_PERIOD): batch["frequency_last_period_cal"].to_numpy(dtype=float),
            purchases_column(NAIVE): backtest.baseline_purchases(
                frequency, batch["t"].to_numpy(dtype=float), duration
            ),
        }
    )
    for name, fit in transaction_fits.items():
        predicted = holdout_purchases(fit, batch, duration)
        out[purchases_column(name)] = np.where(np.isfinite(predicted), predicted, np.nan)
    for name, fit in spend_fits.items():
        out[spend_column(name)] = spend_per_day(fit, batch)
    return out[list(schema)]


# --- metrics over the predictions table (portable SQL) ----------------------------------------


def _unpivot(columns: dict[str, str], values: str) -> str:
    """The predictions table's ``columns`` (model -> column) as rows of (``model``, ``predicted``,
    ``values``), one per customer and model."""
    return " union all ".join(
        f"select '{model}' as model, {column} as predicted, {values} from {PREDICTIONS}"
        for model, column in columns.items()
    )


def non_finite_predictions(tables, models: Sequence[str]) -> dict[str, int]:
    """Customers whose holdout purchase days under each model are not finite (NaN or null)."""
    if not models:
        return {}
    counts = ", ".join(
        f"sum(case when {purchases_column(m)} is null or isnan({purchases_column(m)}) "
        f"then 1 else 0 end) as {purchases_column(m)}"
        for m in models
    )
    row = tables.query(f"select {counts} from {PREDICTIONS}").iloc[0]
    return {m: int(row[purchases_column(m)] or 0) for m in models}


def purchase_metrics(tables, models: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per purchase predictor (``models``, columns of the predictions table): RMSE, MAE, mean
    Poisson deviance (predictions floored at ``DEVIANCE_FLOOR``: a forecast of exactly 0 for a
    buyer would score an infinite deviance), totals and aggregate % error from the engine's sums,
    and Spearman's rank correlation with the actual purchase days (``backtest.rank_correlations``)."""
    long = _unpivot({m: purchases_column(m) for m in models}, "frequency_holdout as actual")
    floor = f"greatest(predicted, cast({DEVIANCE_FLOOR!r} as double))"
    mean, total = backtest.exact_mean, backtest.exact_sum
    deviance = (
        f"2 * (case when actual > 0 then actual * ln(actual / {floor}) else 0 end "
        f"- (actual - {floor}))"
    )
    sums = tables.query(
        f"select model, count(*) as customers, {total('predicted')} as predicted_total, "
        f"{total('actual')} as actual_total, "
        f"{mean('(predicted - actual) * (predicted - actual)')} as mse, "
        f"{mean('abs(predicted - actual)')} as mae, {mean(deviance)} as deviance "
        f"from ({long}) as predictions group by model"
    ).set_index("model")
    spearman = backtest.rank_correlations(
        tables, f"select model as key, predicted as x, actual as y from ({long}) as predictions"
    )
    out = {}
    for model in models:
        row = sums.loc[model]
        out[model] = {
            "purchases_total": float(row["predicted_total"]),
            "purchases_rmse": float(np.sqrt(row["mse"])),
            "purchases_mae": float(row["mae"]),
            "purchases_poisson_deviance": float(row["deviance"]),
            "purchases_aggregate_pct_error": backtest.pct_error(
                float(row["predicted_total"]), float(row["actual_total"])
            ),
            "purchases_spearman": spearman.get(model, math.nan),
        }
    return out


def calibration_deciles(tables, models: Sequence[str]) -> pd.DataFrame:
    """Per purchase predictor: its customers in ten equal groups by predicted value (ties by
    customer code), mean predicted vs mean actual per group; decile 10 holds the highest
    predictions. Rows in ``models``' order, deciles ascending."""
    columns = ["model", "decile", "customers", "predicted_mean", "actual_mean"]
    if not models:
        return pd.DataFrame(columns=columns)
    long = _unpivot(
        {m: purchases_column(m) for m in models}, "frequency_holdout as actual, customer_code"
    )
    deciles = tables.query(
        f"select model, cast(floor(cast(position - 1 as double) * {DECILES} / customers) "
        "as bigint) + 1 as decile, count(*) as customers, "
        f"{backtest.exact_mean('predicted')} as predicted_mean, "
        f"{backtest.exact_mean('actual')} as actual_mean from ("
        "select model, predicted, actual, "
        "row_number() over (partition by model order by predicted, customer_code) as position, "
        "count(*) over (partition by model) as customers "
        f"from ({long}) as predictions) as ranked group by 1, 2"
    )
    order = {m: i for i, m in enumerate(models)}
    deciles = deciles.assign(_order=deciles["model"].map(order)).sort_values(["_order", "decile"])
    return deciles[columns].reset_index(drop=True)


def spend_metrics(tables, models: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per spend candidate (``models``): spend per purchase day vs the holdout's actual, over
    customers who bought in the holdout, weighted by their holdout purchase days (RMSE and
    aggregate % error); overall, one-time and repeat buyers (as of the cutoff)."""
    if not models:
        return {}
    long = _unpivot(
        {m: spend_column(m) for m in models},
        "frequency_holdout as days, spend_holdout as spend, one_time",
    )
    groups = {"": "true", "_one_time": "one_time", "_repeat": "not one_time"}
    sums = [
        backtest.weighted_error_sums(suffix, f"days > 0 and {where}", "days", "predicted", "spend")
        for suffix, where in groups.items()
    ]
    frame = tables.query(
        f"select model, {', '.join(sums)} from ({long}) as predictions group by model"
    ).set_index("model")
    out = {}
    for model in models:
        row, metrics = frame.loc[model], {}
        for suffix in groups:
            rmse, pct = backtest.weighted_errors(row, suffix) or (math.nan, math.nan)
            metrics[f"spend_rmse{suffix}"] = rmse
            metrics[f"spend_aggregate_pct_error{suffix}"] = pct
        out[model] = metrics
    return out


# --- the selection ----------------------------------------------------------------------------


def _fit_or_reason(fit):
    try:
        return fit(), None
    except (base.ModelFitError, ValueError, FloatingPointError) as error:
        return None, str(error)


def _fit_each(
    names: Sequence[str], fitter, workers: int = 1
) -> tuple[dict[str, base.FitResult], dict[str, str]]:
    """Each model's fit by name, and the reasons of those that failed; on ``workers`` threads
    when more than one (``fitter`` must then not touch the engine, see ``_side_by_side``)."""
    if workers > 1 and len(names) > 1:
        with ThreadPoolExecutor(max_workers=min(workers, len(names))) as pool:
            futures = [pool.submit(_fit_or_reason, functools.partial(fitter, n)) for n in names]
            outcomes = [future.result() for future in futures]
    else:
        outcomes = [_fit_or_reason(functools.partial(fitter, name)) for name in names]
    fits, errors = {}, {}
    for name, (fit, error) in zip(names, outcomes, strict=True):
        if error is None:
            fits[name] = fit
        else:
            errors[name] = error
    return fits, errors


def _side_by_side(background: Callable[[], T], foreground: Callable[[], U]) -> tuple[T, U]:
    """``background()`` on a worker thread while ``foreground()`` runs on this one; both results.

    The fits spend their time in NumPy and SciPy loops over hundreds of thousands of rows, which
    release the GIL, so fits on two threads use the two cores: at a million customers the
    backtest's fits took 12 s one after another. Results are the same bits (each fit is
    deterministic and shares nothing). Only the foreground may query the engine: a DuckDB
    connection serves one thread at a time, so the background gets its inputs beforehand.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        later = pool.submit(background)
        here = foreground()
        return later.result(), here


def _params_text(fit: base.FitResult | None) -> str | None:
    if fit is None:
        return None
    return ", ".join(f"{k}={v:.6g}" for k, v in fit.params.items())


def select_models(
    tables,
    spend: str = "margin",
    penalizers: Sequence[float] = base.DEFAULT_PENALIZERS,
    transaction_candidates: Sequence[str] = transactions.TRANSACTION_MODELS,
    spend_candidates: Sequence[str] = SPEND_MODELS,
) -> Selection:
    """Fit every candidate on the calibration period, score all of them and the baselines on the
    holdout, and rank them (see the module docstring), over the run's table store: the fits on
    the engine's compact rows of ``customer_backtest_summary`` (``cltv.tables.CompactFits``),
    each customer's predictions written inside the engine to ``analytics.cltv_backtest_predictions``
    (``holdout_predictions``, batch by batch), the metrics from the engine's sums and windows."""
    base.spend_column(spend)  # refuses an unknown spend before any fit
    calibration = calibration_relation(tables, spend)
    counts = tables.query(
        f"select count(*) as customers, sum(frequency_holdout) as purchases from {calibration}"
    ).iloc[0]
    n_customers = int(counts["customers"])
    rows: list[dict] = []
    if n_customers == 0:
        write_predictions(tables, calibration, {}, {})
        reason = "no customer was first seen before the holdout: nothing to backtest on"
        for kind, names in ((TRANSACTION, transaction_candidates), (SPEND, spend_candidates)):
            rows += [
                {"kind": kind, "model": name, "status": "not evaluated", "reason": reason}
                for name in names
            ]
        return _result(rows, [], tuple(transaction_candidates), tuple(spend_candidates), {}, {}, 0)

    compact = CompactFits(tables, spend, penalizers, source=calibration)
    compact.histories  # noqa: B018 -- queried here: the transaction fits run on other threads
    (transaction_fits, failed), (spend_fits, spend_errors) = _side_by_side(
        lambda: _fit_each(transaction_candidates, compact.transaction, workers=FIT_THREADS),
        lambda: _fit_each(spend_candidates, compact.spend_model),
    )
    write_predictions(tables, calibration, transaction_fits, spend_fits)
    for name, bad in non_finite_predictions(tables, list(transaction_fits)).items():
        if bad:
            failed[name] = f"{name} holdout predictions are not finite"
            del transaction_fits[name]

    for name in transaction_candidates:
        if name in failed:
            rows.append(
                {"kind": TRANSACTION, "model": name, "status": "failed", "reason": failed[name]}
            )
            continue
        fit = transaction_fits[name]
        rows.append(
            {
                "kind": TRANSACTION,
                "model": name,
                "status": "fitted",
                "penalizer": fit.penalizer,
                "params": _params_text(fit),
            }
        )
    predictors = [*BASELINES, *transaction_fits]
    metrics = purchase_metrics(tables, predictors)
    for name in predictors:
        if name in BASELINES:
            rows.append({"kind": "baseline", "model": name, "status": "baseline"})
        row = next(r for r in rows if r["model"] == name)
        row.update(metrics[name])
    # constant forecasts have no ranking to calibrate
    deciles = calibration_deciles(tables, [name for name in predictors if name != ZERO])

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
    scored = spend_metrics(tables, list(spend_fits))
    spend_rows = []
    for name in spend_candidates:
        row = {"kind": SPEND, "model": name}
        if name in spend_errors:
            row.update(status="failed", reason=spend_errors[name])
        else:
            fit = spend_fits[name]
            row.update(status="fitted", penalizer=fit.penalizer, params=_params_text(fit))
            row.update(scored[name])
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
        [deciles],
        transaction_ranking,
        tuple(r["model"] for r in eligible),
        transaction_fits,
        spend_fits,
        n_customers,
        float(counts["purchases"]),
    )


def write_predictions(tables, calibration: str, transaction_fits: dict, spend_fits: dict) -> int:
    """Every backtest customer's holdout predictions (``holdout_predictions``), computed batch by
    batch inside the engine and written to ``analytics.cltv_backtest_predictions``; its rows."""
    inputs = [
        "customer_code",
        "frequency",
        "recency",
        "t",
        *HOLDOUT_COLUMNS,
        "spend_holdout",
        *{c for fit in spend_fits.values() for c in spend_inputs(fit)},
    ]
    predictions = tables.map_batches(
        f"select {', '.join(dict.fromkeys(inputs))} from {calibration}",
        functools.partial(
            holdout_predictions, transaction_fits=transaction_fits, spend_fits=spend_fits
        ),
        predictions_schema(transaction_fits, spend_fits),
        order_by="customer_code",
    )
    return tables.replace_tables("analytics", {PREDICTIONS.split(".")[1]: predictions})[
        PREDICTIONS.split(".")[1]
    ]


def spend_inputs(fit: base.FitResult) -> list[str]:
    """The summary columns ``spend_per_day`` reads for a spend model."""
    if fit.name == LOGNORMAL:
        spend = "margin" if fit.spend_column == base.SPEND_COLUMNS["margin"] else "revenue"
        return list(lognormal.STAT_COLUMNS[spend])
    return [fit.spend_column]


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
