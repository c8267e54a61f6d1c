"""Gamma-Gamma spend per purchase day (Fader, Hardie & Lee 2005b), lifetimes' ``GammaGammaFitter``.

- **Fit** on repeat customers (frequency > 0) whose mean spend is positive (lifetimes refuses
  non-positive values). Spend is ``"margin"`` (gross margin, the default: it is what the
  business keeps) or ``"revenue"`` (net sales). The model assumes spend is independent of
  frequency; the Pearson correlation of the two among the fitted customers is reported so that
  the assumption can be watched.
- **q <= 1.** The model's population mean spend ``p v / (q - 1)`` is then infinite, and
  lifetimes returns a negative number for customers without repeat purchases. Repeat customers
  are unaffected (their conditional mean ``p (v + x m) / (p x + q - 1)`` stays proper while
  ``p + q > 1``). The fit is kept and says ``population_mean_defined = False``; customers
  without repeat purchases get the mean spend of the fitted customers. Model selection treats
  such a fit as unable to value one-time buyers (a reason to choose the log-normal model), so no
  warning is raised; pass ``undefined_mean="raise"`` to refuse it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

# Importing lifetimes silences every FutureWarning in the process; undo that for our import.
with warnings.catch_warnings():
    from lifetimes import GammaGammaFitter

from pipeline.analytics.cltv.base import (
    DEFAULT_PENALIZERS,
    FitResult,
    WithoutStandardErrors,
    compress,
    customers_with_orders,
    fit_quietly,
    invalid_params,
    ladder,
    spend_column,
    weighted_pearson,
)


class GammaGamma(WithoutStandardErrors, GammaGammaFitter):
    pass


GAMMA_GAMMA = "gamma_gamma"
FITTERS = {GAMMA_GAMMA: GammaGamma}


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
    column = spend_column(spend)
    buyers = customers_with_orders(summary)
    if column not in buyers.columns:
        raise ValueError(f"customer summary lacks the spend column {column!r}")
    repeat = buyers[buyers["frequency"] > 0]
    if repeat[column].isna().any():
        raise ValueError(f"customer summary: repeat customers with a null {column!r}")
    rows = compress(repeat[["frequency", column]].astype(float), ["frequency", column])
    return fit_gamma_gamma_rows(
        rows.rename(columns={column: "spend"}), spend, penalizers, undefined_mean
    )


def fit_gamma_gamma_rows(
    rows: pd.DataFrame,
    spend: str = "margin",
    penalizers: Sequence[float] = DEFAULT_PENALIZERS,
    undefined_mean: Literal["fallback", "raise"] = "fallback",
) -> FitResult:
    """``fit_gamma_gamma`` on compressed rows: the repeat customers' unique (``frequency``,
    ``spend``) pairs with ``weights`` (how many customers share each), as the engine's GROUP BY
    gives them (``cltv.tables``) or ``fit_gamma_gamma`` computes them in memory. Spend is a
    customer's mean per repeat purchase day, so pairs rarely repeat: the rows are about one per
    repeat customer, two numbers each, but exact (no sample). Rows with a null spend are refused;
    rows with a non-positive spend are left out of the fit."""
    if undefined_mean not in ("fallback", "raise"):
        raise ValueError(f"undefined_mean must be 'fallback' or 'raise', got {undefined_mean!r}")
    column = spend_column(spend)
    nulls = rows["spend"].isna().to_numpy()
    if nulls.any():
        raise ValueError(
            f"customer summary: {int(rows.loc[nulls, 'weights'].sum())} repeat customers with "
            f"a null {column!r}"
        )
    rows = rows[(rows["frequency"] > 0) & (rows["spend"] > 0)]
    frequency = rows["frequency"].to_numpy(dtype=float)
    value = rows["spend"].to_numpy(dtype=float)
    weights = rows["weights"].to_numpy(dtype=float)
    if weights.sum() < 2:
        raise ValueError(
            f"cannot fit Gamma-Gamma on {column!r}: only {int(weights.sum())} repeat customers "
            "with positive spend"
        )
    correlation = weighted_pearson(frequency, value, weights)

    def attempt(penalizer: float):
        model, error = fit_quietly(
            lambda: GammaGamma(penalizer_coef=penalizer).fit(frequency, value, weights=weights)
        )
        if error:
            return None, error
        params = {k: float(v) for k, v in model.params_.items()}
        log_likelihood = gamma_gamma_log_likelihood(params, frequency, value, weights)
        invalid = invalid_params(params, log_likelihood)
        if invalid:
            return None, invalid
        if params["p"] + params["q"] <= 1:
            return None, f"p + q <= 1 makes repeat customers' expected spend improper {params}"
        if params["q"] <= 1 and undefined_mean == "raise":
            return None, f"q <= 1: the population mean spend is infinite {params}"
        return (model, params, log_likelihood), None

    (model, params, log_likelihood), penalizer, attempts = ladder(GAMMA_GAMMA, penalizers, attempt)
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
