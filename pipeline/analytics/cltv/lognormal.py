"""A log-normal empirical-Bayes spend model, the alternative to Gamma-Gamma.

Model
-----
Each purchase day's spend ``z`` of customer ``i`` is log-normal: ``log z ~ N(mu_i, sigma2)``,
with the customer's own mean ``mu_i ~ N(mu0, tau2)`` drawn from the population (normal-normal).
A customer with ``n`` purchase days of positive spend and mean log spend ``ybar`` then has

    posterior mean     m = (mu0 / tau2 + n ybar / sigma2) / (1 / tau2 + n / sigma2)
    posterior variance v = 1 / (1 / tau2 + n / sigma2)
    expected spend per purchase day  E[z] = exp(m + (sigma2 + v) / 2)

so a customer's own spend counts more the more days it rests on, and a one-time buyer's single
first order is shrunk towards the population rather than replaced by a constant. Unlike
Gamma-Gamma it uses every purchase day, the first included, and its population mean
``exp(mu0 + (tau2 + sigma2) / 2)`` always exists.

Spend per day is not exactly log-normal (on the synthetic data an order is a laptop or an
accessory, so a customer's log spend is bimodal), and ``exp(sigma2 / 2)`` then misjudges the
mean. As in Duan's smearing estimator, a population factor ``smearing`` puts the level right:
the customers' total spend over all their purchase days (non-positive days included) divided by
what the model expects for those days in-sample. Expected spend is multiplied by it.

Estimation (moments, no optimiser, so it cannot fail to converge):
- ``sigma2``: the pooled within-customer variance of log spend, sum of each customer's squared
  deviations over the sum of (n - 1), from customers with at least two positive days;
- ``mu0`` and ``tau2``: the between-customer variance of ``ybar`` minus the average sampling
  variance ``sigma2 / n`` (floored at a small positive value), and the precision-weighted mean of
  ``ybar``, iterated a few times as in the usual empirical-Bayes recipe.

Inputs are per-customer statistics computed in SQL over purchase days with positive spend:
``log_<spend>_days`` (n), ``log_<spend>_mean`` (ybar), ``log_<spend>_var`` (population variance
of the logs). Days with zero or negative spend (e.g. a margin lost to a discount) have no log and
are left out; a customer without any positive day gets the population mean.

``fit_lognormal_spend`` fits it on a customer summary, as a ``FitResult`` like the other models'.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from pipeline.analytics.cltv.base import (
    FitAttempt,
    FitResult,
    ModelFitError,
    customers_with_orders,
    pearson,
    spend_column,
)

LOGNORMAL = "lognormal_eb"
STAT_COLUMNS = {
    "margin": ("log_gross_margin_days", "log_gross_margin_mean", "log_gross_margin_var"),
    "revenue": ("log_net_sales_days", "log_net_sales_mean", "log_net_sales_var"),
}
TOTAL_COLUMNS = {"margin": "total_gross_margin", "revenue": "total_net_sales"}
MIN_TAU2 = 1e-6
ITERATIONS = 20


@dataclass(frozen=True)
class LogNormalSpend:
    """Fitted population parameters (log scale) and the customers they rest on."""

    mu0: float
    tau2: float
    sigma2: float
    n_customers: int
    n_days: int
    smearing: float = 1.0

    @property
    def params(self) -> dict[str, float]:
        return {
            "mu0": self.mu0,
            "tau2": self.tau2,
            "sigma2": self.sigma2,
            "smearing": self.smearing,
        }

    @property
    def population_mean(self) -> float:
        return float(self.smearing * np.exp(self.mu0 + (self.tau2 + self.sigma2) / 2.0))

    def expected_spend(self, days, mean_log) -> np.ndarray:
        """Expected spend per purchase day for customers with ``days`` positive days of mean
        log spend ``mean_log`` (ignored where ``days`` is 0)."""
        n = np.asarray(days, dtype=float)
        ybar = np.where(n > 0, np.nan_to_num(np.asarray(mean_log, dtype=float)), 0.0)
        precision = 1.0 / self.tau2 + n / self.sigma2
        posterior_mean = (self.mu0 / self.tau2 + n * ybar / self.sigma2) / precision
        return self.smearing * np.exp(posterior_mean + (self.sigma2 + 1.0 / precision) / 2.0)


def statistics(summary: pd.DataFrame, spend: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, mean log, variance of logs) per row, from the SQL columns of ``spend``."""
    try:
        columns = STAT_COLUMNS[spend]
    except KeyError:
        raise ValueError(f"spend must be one of {sorted(STAT_COLUMNS)}, got {spend!r}") from None
    missing = [c for c in columns if c not in summary.columns]
    if missing:
        raise ValueError(f"customer summary lacks the log-spend columns {missing}")
    n = summary[columns[0]].fillna(0).to_numpy(dtype=float)
    mean = summary[columns[1]].to_numpy(dtype=float)
    var = summary[columns[2]].to_numpy(dtype=float)
    bad = (n < 0) | ((n > 0) & ~np.isfinite(mean)) | ((n > 0) & ~(var >= 0))
    if bad.any():
        raise ValueError(f"customer summary: {int(bad.sum())} rows with inconsistent {columns}")
    return n, mean, np.where(n > 0, var, 0.0)


def fit_lognormal(n: np.ndarray, mean_log: np.ndarray, var_log: np.ndarray) -> LogNormalSpend:
    """Moment estimates of the normal-normal model (see the module docstring).

    Raises
    ------
    ValueError
        With fewer than two customers with positive spend, or no customer with two positive
        days (the within-customer variance cannot be estimated).
    """
    n = np.asarray(n, dtype=float)
    has = n > 0
    if has.sum() < 2:
        raise ValueError(f"log-normal spend: only {int(has.sum())} customers with positive spend")
    several = n >= 2
    if not several.any():
        raise ValueError("log-normal spend: no customer has two purchase days with positive spend")
    squares = np.asarray(var_log, dtype=float)[several] * n[several]
    sigma2 = float(squares.sum() / (n[several] - 1).sum())
    if not sigma2 > 0:
        raise ValueError("log-normal spend: every customer spends the same on every day")
    ybar, k = np.asarray(mean_log, dtype=float)[has], n[has]
    mu0 = float(ybar.mean())
    tau2 = max(float(ybar.var()) - float(np.mean(sigma2 / k)), MIN_TAU2)
    for _ in range(ITERATIONS):
        w = 1.0 / (tau2 + sigma2 / k)
        mu0 = float(np.sum(w * ybar) / np.sum(w))
        # weighted moment equation: E[w (ybar - mu0)^2] = 1 at the right tau2
        tau2 = max(float(np.sum(w**2 * ((ybar - mu0) ** 2 - sigma2 / k)) / np.sum(w**2)), MIN_TAU2)
    return LogNormalSpend(
        mu0=mu0, tau2=tau2, sigma2=sigma2, n_customers=int(has.sum()), n_days=int(k.sum())
    )


def with_smearing(model: LogNormalSpend, n, mean_log, days, total_spend) -> LogNormalSpend:
    """``model`` with the smearing factor that makes its in-sample expected spend over each
    customer's ``days`` purchase days add up to their ``total_spend`` (unchanged when the
    expected total is not positive)."""
    expected = float(np.sum(np.asarray(days, dtype=float) * model.expected_spend(n, mean_log)))
    actual = float(np.sum(np.asarray(total_spend, dtype=float)))
    if not (expected > 0 and actual > 0):
        return model
    return replace(model, smearing=model.smearing * actual / expected)


def fit_lognormal_spend(summary: pd.DataFrame, spend: str = "margin") -> FitResult:
    """Fit the log-normal empirical-Bayes spend model (above) on the customers with
    orders, from the SQL log-spend statistics of ``spend``.

    Raises
    ------
    ModelFitError
        When the moments cannot be estimated (e.g. fewer than two customers with positive
        spend); one attempt, penalizer 0 (the model has no penalizer).
    """
    column = spend_column(spend)
    buyers = customers_with_orders(summary)
    n, mean_log, var_log = statistics(buyers, spend)
    try:
        fitted = fit_lognormal(n, mean_log, var_log)
    except ValueError as error:
        raise ModelFitError(LOGNORMAL, [FitAttempt(0.0, f"ValueError: {error}")]) from None
    total = TOTAL_COLUMNS[spend]
    if total in buyers.columns:
        days = buyers["frequency"].to_numpy(dtype=float) + 1
        fitted = with_smearing(
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
