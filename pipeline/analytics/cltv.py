"""Predicted customer lifetime value: a purchase-count model (BG/NBD, MBG/NBD or Pareto/NBD) times
a spend model (Gamma-Gamma or log-normal empirical Bayes), chosen on the backtest holdout
(``model_selection``).

Inputs are per-customer frames (the SQL ``customer_summary``), never order lines: lifetimes'
``summary_data_from_transaction_data`` is replaced by SQL that computes the same summary.

Contract
--------
- **Time unit: days.** ``frequency`` (purchase days after the first), ``recency`` and ``t`` are
  in days, as ``customer_summary`` computes them (lifetimes' ``freq='D'``), so the fitted
  ``alpha`` and the simulator's latent purchase rates are both per day, and the 90- and 365-day
  horizons need no conversion. A "purchase" is a purchase *day* (several orders on one day
  count once), as in lifetimes.
- **Transaction models** (BG/NBD, MBG/NBD, Pareto/NBD; ``fit_transaction_model``) are fit on
  the customers with orders, compressed to unique (frequency, recency, t) rows with ``weights``:
  the optimiser's cost grows with distinct histories, not customers, and the parameters are the
  same as on the uncompressed rows.
- **Gamma-Gamma** is fit on repeat customers (frequency > 0) whose mean spend is positive
  (lifetimes refuses non-positive values). Spend is ``"margin"`` (gross margin, the default:
  it is what the business keeps) or ``"revenue"`` (net sales). The model assumes spend is
  independent of frequency; the Pearson correlation of the two among the fitted customers is
  reported so that the assumption can be watched.
- **Convergence** is never assumed. Each fit walks a penalizer ladder (``DEFAULT_PENALIZERS``)
  and keeps the first rung whose fit succeeds with finite parameters inside
  ``PARAMETER_RANGE`` (outside it the optimiser has run off towards a boundary) and a finite
  log-likelihood; if no rung does, ``ModelFitError`` names the model and every rung's failure.
  lifetimes' penalty is ``penalizer * sum(params ** 2)`` added to the *mean* negative
  log-likelihood (BG/NBD: with time rescaled so that the longest ``t`` is 1), so a penalizer
  means the same whatever the number of customers.
- **Scores** (``score_customers``): P(alive); expected purchase days in the next 90 and 365
  days; expected spend per purchase day (Gamma-Gamma conditional mean); the 12-month CLV,
  discounted monthly like lifetimes' ``customer_lifetime_value(time=12, freq='D')`` (a month
  is 30 days there, so the CLV covers days 1-360); and a value tier. Customers without orders
  get null scores and the tier ``"none"``. As in BG/NBD, P(alive) is 1 for customers without
  repeat purchases (nobody drops out before a repeat purchase). Order value and CLV are in the
  spend's unit (gross margin by default).
- **Tiers** rank customers with orders by CLV: ``high`` = the top 20%, ``medium`` = the next
  30%, ``low`` = the rest. A customer's tier comes from the share of customers with a strictly
  higher CLV (< 20% -> high, < 50% -> medium), so equal CLVs always share a tier and the result
  does not depend on row order.
- **Gamma-Gamma with q <= 1.** The model's population mean spend ``p v / (q - 1)`` is then
  infinite, and lifetimes returns a negative number for customers without repeat purchases.
  Repeat customers are unaffected (their conditional mean ``p (v + x m) / (p x + q - 1)`` stays
  proper while ``p + q > 1``). The fit is kept and says ``population_mean_defined = False``;
  customers without repeat purchases get the mean spend of the fitted customers. Model
  selection treats such a fit as unable to value one-time buyers (a reason to choose the
  log-normal model), so no warning is raised; pass ``undefined_mean="raise"`` to refuse it.
- **Log-normal spend** (``fit_lognormal_spend``, ``spend_models``): every purchase day's log
  spend, each customer's mean shrunk towards the population; one-time buyers get their own first
  day shrunk, not a constant.
- **Unavailable models.** ``unavailable_scores`` gives every customer null CLTV columns and a
  null tier (``"none"`` still marks customers without orders), for a refresh whose models could
  not be fit: the marts are published, the status table says why.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

# Importing lifetimes silences every FutureWarning in the process; undo that for our import.
with warnings.catch_warnings():
    from lifetimes import GammaGammaFitter
    from lifetimes.utils import ConvergenceError

from pipeline.analytics import spend_models, transaction_models
from pipeline.analytics.spend_models import LOGNORMAL
from pipeline.analytics.transaction_models import (  # noqa: F401 (re-exported)
    BGNBD,
    MBGNBD,
    PARETO_NBD,
    TRANSACTION_MODELS,
)

GAMMA_GAMMA = "gamma_gamma"
SPEND_MODELS: tuple[str, ...] = (GAMMA_GAMMA, LOGNORMAL)
TIME_UNIT = "day"

DEFAULT_PENALIZERS: tuple[float, ...] = (0.0, 0.001, 0.01, 0.1)
# A fitted parameter outside this range means the optimiser ran towards a boundary where the
# likelihood has no maximum (degenerate data), not an estimate. Real fits sit well inside it:
# CDNOW r 0.24 .. alpha 4.4 (weeks); 1M synthetic customers alpha 139 (days).
PARAMETER_RANGE = (1e-6, 1e6)
SPEND_COLUMNS = {
    "margin": "monetary_value_gross_margin",
    "revenue": "monetary_value_net_sales",
}
SUMMARY_COLUMNS = ("frequency", "recency", "t")

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
PARAMETER_COLUMNS = (
    "model",
    "r",
    "alpha",
    "a",
    "b",
    "p",
    "q",
    "v",
    "s",
    "beta",
    "mu0",
    "tau2",
    "sigma2",
    "smearing",
    "penalizer",
    "log_likelihood",
    "n_customers",
    "n_rows",
    "converged",
    "spend_column",
    "frequency_spend_correlation",
    "population_mean_spend",
    "population_mean_defined",
    "time_unit",
)
TEXT_PARAMETER_COLUMNS = ("model", "spend_column", "time_unit")
PARAMETER_TYPES = {
    "n_customers": "int64",
    "n_rows": "int64",
    "converged": "boolean",
    "population_mean_defined": "boolean",
}


class ModelFitError(RuntimeError):
    """No rung of the penalizer ladder gave a converged, usable fit of a model."""

    def __init__(self, model: str, attempts: Sequence[FitAttempt]):
        self.model = model
        self.attempts = tuple(attempts)
        tried = "; ".join(f"penalizer {a.penalizer:g}: {a.error}" for a in self.attempts)
        super().__init__(
            f"{model}: no penalizer in {[a.penalizer for a in self.attempts]} gave a converged, "
            f"usable fit ({tried})"
        )


@dataclass(frozen=True)
class FitAttempt:
    """One rung of the penalizer ladder: its penalizer and why it failed (None = it won)."""

    penalizer: float
    error: str | None = None


@dataclass(frozen=True)
class FitResult:
    """A fitted model and what a reader needs to trust it.

    Attributes
    ----------
    name
        ``"bgnbd"``, ``"mbgnbd"``, ``"pareto_nbd"``, ``"gamma_gamma"`` or ``"lognormal_eb"``.
    model
        The fitted lifetimes fitter (``spend_models.LogNormalSpend`` for the log-normal model).
    penalizer
        The penalizer of the winning rung of the ladder.
    converged
        True for every returned fit (failures raise ``ModelFitError``); kept as data so that
        saved parameter tables say so.
    log_likelihood
        Total log-likelihood of the fitted customers at the fitted parameters, in the original
        time unit (days), without the penalty term. lifetimes' own ``_negative_log_likelihood_``
        is a mean per customer over time-rescaled data plus the penalty, so it is not
        comparable across data sets; this is the number in the papers (CDNOW: -9582.4).
    n_customers
        Customers the model was fit on (the sum of the weights).
    n_rows
        Unique rows the optimiser saw after compression.
    params
        Fitted parameters: r, alpha (per day), a, b for BG/NBD and MBG/NBD; r, alpha, s, beta
        (per day) for Pareto/NBD; p, q, v for Gamma-Gamma; mu0, tau2, sigma2 (log scale) for the
        log-normal spend model.
    attempts
        Every rung tried, in order; the last one won.
    spend_column
        Spend models only: the summary column used as spend.
    frequency_spend_correlation
        Gamma-Gamma only: Pearson correlation of frequency and spend among the fitted customers
        (the model assumes independence; near 0 is good).
    population_mean_spend
        Spend models only: the population's expected spend per purchase day (Gamma-Gamma:
        ``p v / (q - 1)``, or the fallback when that is undefined, see the module docstring).
    population_mean_defined
        Spend models only: whether the population mean exists (Gamma-Gamma: ``q > 1``).
    """

    name: str
    model: object
    penalizer: float
    converged: bool
    log_likelihood: float
    n_customers: int
    n_rows: int
    params: dict[str, float]
    attempts: tuple[FitAttempt, ...] = field(default_factory=tuple)
    spend_column: str | None = None
    frequency_spend_correlation: float | None = None
    population_mean_spend: float | None = None
    population_mean_defined: bool | None = None


# --- inputs ---------------------------------------------------------------------------------


def orders_mask(summary: pd.DataFrame) -> np.ndarray:
    """Which rows are customers with orders: ``has_orders`` when present, else a non-null
    ``frequency``."""
    if "has_orders" in summary.columns:
        return summary["has_orders"].fillna(False).astype(bool).to_numpy()
    return summary["frequency"].notna().to_numpy()


def customers_with_orders(summary: pd.DataFrame) -> pd.DataFrame:
    """The rows of customers with orders, with frequency / recency / t checked.

    Uses ``has_orders`` when the frame has it, else the rows with a frequency.

    Raises
    ------
    ValueError
        Naming the column when a value cannot be a lifetimes summary.
    """
    missing = [c for c in SUMMARY_COLUMNS if c not in summary.columns]
    if missing:
        raise ValueError(f"customer summary lacks columns {missing}")
    buyers = summary.loc[orders_mask(summary)]
    for column in SUMMARY_COLUMNS:
        if buyers[column].isna().any():
            raise ValueError(
                f"customer summary: {int(buyers[column].isna().sum())} customers with orders "
                f"have a null {column!r}"
            )
    frequency = buyers["frequency"].to_numpy(dtype=float)
    recency = buyers["recency"].to_numpy(dtype=float)
    t = buyers["t"].to_numpy(dtype=float)
    problems = {
        "'frequency' must be a whole number >= 0": (frequency < 0)
        | (frequency != np.round(frequency)),
        "'recency' must be >= 0": recency < 0,
        "'recency' must be <= 't'": recency > t,
        "'recency' must be 0 when 'frequency' is 0": (frequency == 0) & (recency != 0),
    }
    for message, bad in problems.items():
        if bad.any():
            example = buyers.iloc[int(np.argmax(bad))]
            who = example["customer_code"] if "customer_code" in buyers.columns else example.name
            raise ValueError(f"customer summary: {message} ({int(bad.sum())} rows, e.g. {who!r})")
    return buyers


def spend_column(spend: str) -> str:
    """The summary column of a spend name (``"margin"`` or ``"revenue"``)."""
    try:
        return SPEND_COLUMNS[spend]
    except KeyError:
        raise ValueError(f"spend must be one of {sorted(SPEND_COLUMNS)}, got {spend!r}") from None


def compress(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Unique rows of ``columns``, sorted, with ``weights`` = how many rows share each.

    Sorting makes the fit independent of the input's row order.
    """
    return frame.groupby(list(columns), sort=True).size().rename("weights").reset_index()


# --- log-likelihoods in the original time unit ---------------------------------------------


def bgnbd_log_likelihood(
    params: Mapping[str, float],
    frequency: np.ndarray,
    recency: np.ndarray,
    t: np.ndarray,
    weights: np.ndarray | None = None,
) -> float:
    """Total BG/NBD log-likelihood (Fader, Hardie & Lee 2005, eq. 6) without penalty.

    lifetimes' static ``_negative_log_likelihood`` is the weighted *mean* negative
    log-likelihood plus the penalty; with unscaled parameters and no penalty, minus it times
    the total weight is the paper's total.
    """
    return transaction_models.log_likelihood(BGNBD, params, frequency, recency, t, weights)


def gamma_gamma_log_likelihood(
    params: Mapping[str, float],
    frequency: np.ndarray,
    spend: np.ndarray,
    weights: np.ndarray | None = None,
) -> float:
    """Total Gamma-Gamma log-likelihood (Fader, Hardie & Lee 2005b, eq. 1a) without penalty."""
    weights = np.ones(len(frequency)) if weights is None else np.asarray(weights, dtype=float)
    log_params = np.log([params["p"], params["q"], params["v"]])
    mean_nll = GammaGammaFitter._negative_log_likelihood(
        log_params,
        np.asarray(frequency, dtype=float),
        np.asarray(spend, dtype=float),
        weights,
        0.0,
    )
    return -float(mean_nll) * float(weights.sum())


# --- fitting with a penalizer ladder --------------------------------------------------------


# What a failing lifetimes fit raises: its ConvergenceError, a singular Hessian when it
# computes standard errors, and numeric errors from a likelihood evaluated at extreme values.
# Input errors are caught earlier by customers_with_orders, so a ValueError here is numeric.
FIT_ERRORS = (
    ConvergenceError,
    np.linalg.LinAlgError,
    FloatingPointError,
    OverflowError,
    ZeroDivisionError,
    ValueError,
)


def _fit_quietly(fit) -> tuple[object | None, str | None]:
    """Run ``fit()``; return (model, None) or (None, why it failed).

    lifetimes prints scipy's result on failure and resets warning filters inside its
    likelihood; both are contained here. Overflow warnings during line searches are expected
    and harmless: the result is validated afterwards.
    """
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return fit(), None
    except FIT_ERRORS as error:
        detail = next(
            (line.strip() for line in printed.getvalue().splitlines() if "message" in line), ""
        )
        text = f"{type(error).__name__}: {str(error).strip() or 'no message'}"
        return None, f"{text} {detail}".strip()


def pearson(a: pd.Series, b: pd.Series) -> float:
    """Pearson correlation; NaN when either side is constant or there are fewer than 2 rows."""
    x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
    if len(x) < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def _invalid_params(params: Mapping[str, float], log_likelihood: float) -> str | None:
    """Why fitted parameters cannot be used, or None."""
    values = np.array(list(params.values()), dtype=float)
    if not np.all(np.isfinite(values)):
        return f"non-finite parameters {params}"
    low, high = PARAMETER_RANGE
    if np.any(values < low) or np.any(values > high):
        return f"parameters ran off to a boundary (outside [{low:g}, {high:g}]) {params}"
    if not math.isfinite(log_likelihood):
        return f"non-finite log-likelihood {log_likelihood}"
    return None


def _ladder(
    name: str, penalizers: Sequence[float], attempt
) -> tuple[object, float, list[FitAttempt]]:
    """Try ``attempt(penalizer)`` rung by rung; it returns (result, None) or (None, reason)."""
    if not penalizers:
        raise ValueError("penalizers must name at least one penalizer")
    attempts: list[FitAttempt] = []
    for penalizer in penalizers:
        result, error = attempt(float(penalizer))
        attempts.append(FitAttempt(float(penalizer), error))
        if error is None:
            return result, float(penalizer), attempts
    raise ModelFitError(name, attempts)


def fit_transaction_model(
    summary: pd.DataFrame,
    name: str = BGNBD,
    penalizers: Sequence[float] = DEFAULT_PENALIZERS,
) -> FitResult:
    """Fit a purchase-count model on the customers with orders, compressed to unique histories.

    Parameters
    ----------
    summary : pd.DataFrame
        One row per customer with ``frequency``, ``recency``, ``t`` in days (and ``has_orders``
        when customers without orders are included).
    name : {"bgnbd", "mbgnbd", "pareto_nbd"}
        The model.
    penalizers : sequence of float
        The ladder, tried in order; the first valid fit wins.

    Returns
    -------
    FitResult

    Raises
    ------
    ModelFitError
        When no penalizer gives a valid fit.
    """
    transaction_models.check_name(name)
    buyers = transaction_models.sample_customers(customers_with_orders(summary), name)
    if buyers.empty:
        raise ValueError(f"cannot fit {name}: no customers with orders")
    if float(buyers["t"].max()) <= 0:
        raise ValueError(f"cannot fit {name}: every customer's first purchase is on the as-of date")
    rows = compress(buyers, SUMMARY_COLUMNS)
    frequency = rows["frequency"].to_numpy(dtype=float)
    recency = rows["recency"].to_numpy(dtype=float)
    t = rows["t"].to_numpy(dtype=float)
    weights = rows["weights"].to_numpy(dtype=float)

    def attempt(penalizer: float):
        model, error = _fit_quietly(
            lambda: transaction_models.fit(name, frequency, recency, t, weights, penalizer)
        )
        if error:
            return None, error
        params = {k: float(model.params_[k]) for k in transaction_models.PARAMETER_NAMES[name]}
        log_likelihood = transaction_models.log_likelihood(
            name, params, frequency, recency, t, weights
        )
        invalid = _invalid_params(params, log_likelihood)
        return (None, invalid) if invalid else ((model, params, log_likelihood), None)

    (model, params, log_likelihood), penalizer, attempts = _ladder(name, penalizers, attempt)
    return FitResult(
        name=name,
        model=model,
        penalizer=penalizer,
        converged=True,
        log_likelihood=log_likelihood,
        n_customers=int(weights.sum()),
        n_rows=len(rows),
        params=params,
        attempts=tuple(attempts),
    )


def fit_bgnbd(summary: pd.DataFrame, penalizers: Sequence[float] = DEFAULT_PENALIZERS) -> FitResult:
    """``fit_transaction_model`` for BG/NBD."""
    return fit_transaction_model(summary, BGNBD, penalizers)


def fit_gamma_gamma(
    summary: pd.DataFrame,
    spend: str = "margin",
    penalizers: Sequence[float] = DEFAULT_PENALIZERS,
    undefined_mean: Literal["fallback", "raise"] = "fallback",
) -> FitResult:
    """Fit Gamma-Gamma on repeat customers with positive spend.

    Parameters
    ----------
    summary : pd.DataFrame
        One row per customer with ``frequency`` and the spend column.
    spend : {"margin", "revenue"}
        Gross margin (``monetary_value_gross_margin``) or net sales
        (``monetary_value_net_sales``) per repeat purchase day.
    penalizers : sequence of float
        The ladder, tried in order.
    undefined_mean : {"fallback", "raise"}
        What to do when ``q <= 1`` (infinite population mean): keep the fit and use the mean
        spend of the fitted customers for customers without repeat purchases, or treat the rung
        as failed.

    Returns
    -------
    FitResult

    Raises
    ------
    ModelFitError
        When no penalizer gives a valid fit (finite parameters inside ``PARAMETER_RANGE``, a
        finite log-likelihood, and ``p + q > 1`` so that every repeat customer's expected spend
        is proper; with ``undefined_mean="raise"`` also ``q > 1``).
    """
    if undefined_mean not in ("fallback", "raise"):
        raise ValueError(f"undefined_mean must be 'fallback' or 'raise', got {undefined_mean!r}")
    column = spend_column(spend)
    buyers = customers_with_orders(summary)
    if column not in buyers.columns:
        raise ValueError(f"customer summary lacks the spend column {column!r}")
    repeat = buyers[buyers["frequency"] > 0]
    if repeat[column].isna().any():
        raise ValueError(f"customer summary: repeat customers with a null {column!r}")
    fitted = repeat[repeat[column] > 0]
    if len(fitted) < 2:
        raise ValueError(
            f"cannot fit Gamma-Gamma on {column!r}: only {len(fitted)} repeat customers with "
            "positive spend"
        )
    correlation = pearson(fitted["frequency"], fitted[column])
    rows = compress(fitted, ["frequency", column])
    frequency = rows["frequency"].to_numpy(dtype=float)
    value = rows[column].to_numpy(dtype=float)
    weights = rows["weights"].to_numpy(dtype=float)

    def attempt(penalizer: float):
        model, error = _fit_quietly(
            lambda: GammaGammaFitter(penalizer_coef=penalizer).fit(
                frequency, value, weights=weights
            )
        )
        if error:
            return None, error
        params = {k: float(v) for k, v in model.params_.items()}
        log_likelihood = gamma_gamma_log_likelihood(params, frequency, value, weights)
        invalid = _invalid_params(params, log_likelihood)
        if invalid:
            return None, invalid
        if params["p"] + params["q"] <= 1:
            return None, f"p + q <= 1 makes repeat customers' expected spend improper {params}"
        if params["q"] <= 1 and undefined_mean == "raise":
            return None, f"q <= 1: the population mean spend is infinite {params}"
        return (model, params, log_likelihood), None

    (model, params, log_likelihood), penalizer, attempts = _ladder(GAMMA_GAMMA, penalizers, attempt)
    defined = params["q"] > 1
    if defined:
        population_mean = params["p"] * params["v"] / (params["q"] - 1)
    else:
        # infinite population mean: the fitted customers' mean spend stands in (model selection
        # counts this against Gamma-Gamma, see the module docstring)
        population_mean = float(np.average(value, weights=weights))
    return FitResult(
        name=GAMMA_GAMMA,
        model=model,
        penalizer=penalizer,
        converged=True,
        log_likelihood=log_likelihood,
        n_customers=int(weights.sum()),
        n_rows=len(rows),
        params=params,
        attempts=tuple(attempts),
        spend_column=column,
        frequency_spend_correlation=correlation,
        population_mean_spend=float(population_mean),
        population_mean_defined=bool(defined),
    )


def fit_lognormal_spend(summary: pd.DataFrame, spend: str = "margin") -> FitResult:
    """Fit the log-normal empirical-Bayes spend model (``spend_models``) on the customers with
    orders, from the SQL log-spend statistics of ``spend``.

    Raises
    ------
    ModelFitError
        When the moments cannot be estimated (e.g. fewer than two customers with positive
        spend); one attempt, penalizer 0 (the model has no penalizer).
    """
    column = spend_column(spend)
    buyers = customers_with_orders(summary)
    n, mean_log, var_log = spend_models.statistics(buyers, spend)
    try:
        fitted = spend_models.fit_lognormal(n, mean_log, var_log)
    except ValueError as error:
        raise ModelFitError(LOGNORMAL, [FitAttempt(0.0, f"ValueError: {error}")]) from None
    total = spend_models.TOTAL_COLUMNS[spend]
    if total in buyers.columns:
        days = buyers["frequency"].to_numpy(dtype=float) + 1
        fitted = spend_models.with_smearing(
            fitted, n, mean_log, days, buyers[total].fillna(0).to_numpy(dtype=float)
        )
    has = n > 0
    log_likelihood = float(
        np.sum(
            -0.5 * n[has] * np.log(2 * np.pi * fitted.sigma2)
            - 0.5 * n[has] * var_log[has] / fitted.sigma2
            - 0.5 * np.log1p(n[has] * fitted.tau2 / fitted.sigma2)
            - 0.5 * (mean_log[has] - fitted.mu0) ** 2 / (fitted.tau2 + fitted.sigma2 / n[has])
        )
    )
    frequency = buyers["frequency"].to_numpy(dtype=float)
    correlation = pearson(pd.Series(frequency[has]), pd.Series(mean_log[has]))
    return FitResult(
        name=LOGNORMAL,
        model=fitted,
        penalizer=0.0,
        converged=True,
        log_likelihood=log_likelihood,
        n_customers=fitted.n_customers,
        n_rows=fitted.n_customers,
        params=fitted.params,
        attempts=(FitAttempt(0.0),),
        spend_column=column,
        frequency_spend_correlation=correlation,
        population_mean_spend=fitted.population_mean,
        population_mean_defined=True,
    )


def fit_spend_model(
    summary: pd.DataFrame,
    name: str,
    spend: str = "margin",
    penalizers: Sequence[float] = DEFAULT_PENALIZERS,
) -> FitResult:
    """Fit the spend model ``name`` (``"gamma_gamma"`` or ``"lognormal_eb"``)."""
    if name == GAMMA_GAMMA:
        return fit_gamma_gamma(summary, spend, penalizers)
    if name == LOGNORMAL:
        return fit_lognormal_spend(summary, spend)
    raise ValueError(f"spend model must be one of {list(SPEND_MODELS)}, got {name!r}")


# --- scoring ----------------------------------------------------------------------------------


def monthly_discount_rate(annual_rate: float) -> float:
    """The monthly rate that compounds to ``annual_rate`` over 12 months."""
    if not annual_rate > -1:
        raise ValueError(f"annual discount rate must be > -1, got {annual_rate}")
    return (1.0 + annual_rate) ** (1.0 / 12.0) - 1.0


def expected_spend(gamma_gamma: FitResult, frequency: np.ndarray, spend: np.ndarray) -> np.ndarray:
    """Gamma-Gamma conditional expected spend per purchase day.

    lifetimes' ``conditional_expected_average_profit`` for repeat customers; for customers
    without repeat purchases its answer is the population mean, which is what they get here
    too (or the fallback when the population mean is undefined).
    """
    frequency = np.asarray(frequency, dtype=float)
    spend = np.asarray(spend, dtype=float)
    repeat = frequency > 0
    out = np.full(len(frequency), gamma_gamma.population_mean_spend, dtype=float)
    out[repeat] = np.asarray(
        gamma_gamma.model.conditional_expected_average_profit(frequency[repeat], spend[repeat]),
        dtype=float,
    )
    return out


def spend_per_day(fit: FitResult, buyers: pd.DataFrame) -> np.ndarray:
    """Expected spend per purchase day of each row of ``buyers`` (customers with orders) under
    a spend model: Gamma-Gamma (``expected_spend``) or log-normal (``spend_models``)."""
    column = fit.spend_column
    if column is None:
        raise ValueError(f"{fit.name} is not a spend model")
    if fit.name == LOGNORMAL:
        spend = "margin" if column == SPEND_COLUMNS["margin"] else "revenue"
        n, mean_log, _ = spend_models.statistics(buyers, spend)
        return fit.model.expected_spend(n, mean_log)
    if column not in buyers.columns:
        raise ValueError(f"customer summary lacks the spend column {column!r}")
    if buyers.loc[buyers["frequency"] > 0, column].isna().any():
        raise ValueError(f"customer summary: repeat customers with a null {column!r}")
    return expected_spend(
        fit,
        buyers["frequency"].to_numpy(dtype=float),
        buyers[column].fillna(0).to_numpy(dtype=float),
    )


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
) -> pd.DataFrame:
    """P(alive), expected purchases per horizon and discounted purchases over 12 months.

    Computed with the transaction model's lifetimes formulas (``transaction_models.predictions``)
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
    p_alive, cumulative = transaction_models.predictions(
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
    if bad.any():
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
    """Per-customer predictions, vectorized over unique histories.

    Parameters
    ----------
    summary : pd.DataFrame
        ``customer_summary``: ``customer_code``, ``has_orders``, ``frequency``, ``recency``,
        ``t`` and the spend model's columns (Gamma-Gamma: the spend column; log-normal: the
        log-spend statistics).
    transaction, spend_model : FitResult
        From ``fit_transaction_model`` (or ``fit_bgnbd``) and ``fit_spend_model`` (or
        ``fit_gamma_gamma``).
    annual_discount_rate : float
        Converted to the monthly rate lifetimes discounts with.

    Returns
    -------
    pd.DataFrame, one row per input row in input order, columns ``SCORE_COLUMNS``:
    ``p_alive``, ``expected_purchases_90d``, ``expected_purchases_365d`` (purchase days),
    ``expected_order_value`` (spend per purchase day), ``clv_12m`` (discounted spend over
    12 x 30 days) and ``value_tier``. Customers without orders: nulls and tier ``"none"``.
    """
    if spend_model.spend_column is None:
        raise ValueError(f"{spend_model.name} is not a spend model")
    _check_customer_codes(summary)
    buyers = customers_with_orders(summary)
    order_value = spend_per_day(spend_model, buyers)
    histories, row = _unique_histories(buyers)
    predicted = purchase_predictions(transaction, histories, HORIZONS_DAYS, annual_discount_rate)
    per_buyer = {
        "p_alive": predicted["p_alive"].to_numpy()[row],
        "expected_purchases_90d": predicted["expected_purchases_90d"].to_numpy()[row],
        "expected_purchases_365d": predicted["expected_purchases_365d"].to_numpy()[row],
        "expected_order_value": order_value,
        "clv_12m": order_value * predicted["discounted_purchases_12m"].to_numpy()[row],
    }
    has_orders = orders_mask(summary)
    scores = pd.DataFrame({"customer_code": summary["customer_code"].to_numpy()})
    for name, values in per_buyer.items():
        column_values = np.full(len(summary), np.nan)
        column_values[has_orders] = values
        scores[name] = column_values
    scores["value_tier"] = value_tiers(scores["clv_12m"])
    return scores


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


# --- model outputs as data ------------------------------------------------------------------


def model_parameters(fits: Iterable[FitResult], as_of_date: object | None = None) -> pd.DataFrame:
    """One row per model, with a fixed schema so that rows can be appended per as-of date.

    Columns: ``as_of_date`` (when given) then ``PARAMETER_COLUMNS``; parameters a model does
    not have are null (BG/NBD and MBG/NBD have r, alpha, a, b; Pareto/NBD r, alpha, s, beta;
    Gamma-Gamma p, q, v; the log-normal spend model mu0, tau2, sigma2).
    """
    rows = []
    for fit in fits:
        row = {c: None for c in PARAMETER_COLUMNS}
        row.update(
            model=fit.name,
            penalizer=fit.penalizer,
            log_likelihood=fit.log_likelihood,
            n_customers=fit.n_customers,
            n_rows=fit.n_rows,
            converged=fit.converged,
            spend_column=fit.spend_column,
            frequency_spend_correlation=fit.frequency_spend_correlation,
            population_mean_spend=fit.population_mean_spend,
            population_mean_defined=fit.population_mean_defined,
            time_unit=TIME_UNIT,
        )
        row.update(fit.params)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(PARAMETER_COLUMNS))
    # every parameter column is a float except the text, count and flag columns named here
    frame = frame.astype(
        {
            c: PARAMETER_TYPES.get(c, "float64")
            for c in PARAMETER_COLUMNS
            if c not in TEXT_PARAMETER_COLUMNS
        }
    )
    if as_of_date is not None:
        frame.insert(0, "as_of_date", pd.Timestamp(as_of_date))
    return frame


def save_models(fits: Iterable[FitResult], folder: str | os.PathLike) -> list[Path]:
    """Write each model as ``<name>.pkl`` (lifetimes' dill ``save_model``, without the
    training data; not for the log-normal spend model, which its parameters define) and
    ``<name>.json`` (parameters and diagnostics). Each file is written beside its final name and
    moved into place, so a crash never leaves half a file. Models of an earlier save in the same
    folder that are not in ``fits`` are removed, so the folder holds the refresh's models only.

    Returns
    -------
    The paths written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    fits = list(fits)
    for fit in fits:
        if fit.name != LOGNORMAL:
            model_path = folder / f"{fit.name}.pkl"
            tmp = model_path.with_suffix(".pkl.tmp")
            fit.model.save_model(str(tmp), save_data=False, save_generate_data_method=False)
            os.replace(tmp, model_path)
            written.append(model_path)
        meta = {k: v for k, v in asdict(replace(fit, model=None)).items() if k != "model"}
        meta["attempts"] = [asdict(a) for a in fit.attempts]
        meta_path = folder / f"{fit.name}.json"
        tmp = meta_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
        os.replace(tmp, meta_path)
        written.append(meta_path)
    for stale in [*folder.glob("*.json"), *folder.glob("*.pkl")]:
        if stale not in written:
            stale.unlink()
    return written


def load_models(folder: str | os.PathLike) -> dict[str, FitResult]:
    """Read what ``save_models`` wrote: ``{name: FitResult}``."""
    folder = Path(folder)
    classes = {**transaction_models.FITTERS, GAMMA_GAMMA: GammaGammaFitter}
    fits = {}
    for meta_path in sorted(folder.glob("*.json")):
        meta = json.loads(meta_path.read_text())
        name = meta["name"]
        if name == LOGNORMAL:
            p = meta["params"]
            model = spend_models.LogNormalSpend(
                p["mu0"], p["tau2"], p["sigma2"], meta["n_customers"], 0, p["smearing"]
            )
        elif name in classes:
            model = classes[name]()
            model.load_model(str(folder / f"{name}.pkl"))
        else:
            continue
        meta["attempts"] = tuple(FitAttempt(**a) for a in meta["attempts"])
        fits[name] = FitResult(model=model, **meta)
    return fits
