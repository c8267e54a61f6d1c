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

Every estimate above is a sum over customers whose terms depend on a customer's ``n`` and on
``ybar`` only through ``ybar`` and ``ybar**2``, so the fit reads sums per value of ``n``
(``partial_statistics``: a few hundred rows whatever the number of customers), which the engine
adds up batch by batch (``cltv.tables``). The smearing factor needs the fitted parameters, so it
is a second pass of sums (``smearing_sums``). ``fit_lognormal_spend`` fits it on a customer
summary in memory with the same two functions, as a ``FitResult`` like the other models'.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from pipeline.analytics.cltv.base import (
    FitAttempt,
    FitResult,
    ModelFitError,
    customers_with_orders,
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


# Sums per number of positive days n: everything the moment estimates, the log-likelihood and
# the frequency-spend correlation need.
STAT_SUMS = (
    "customers",  # customers with n positive days
    "sum_mean",  # sum of ybar
    "sum_mean2",  # sum of ybar ** 2
    "sum_squares",  # sum of n * var (squared deviations from each customer's mean)
    "sum_frequency",
    "sum_frequency2",
    "sum_frequency_mean",
)
STAT_SCHEMA = {"days": "double", **{name: "double" for name in STAT_SUMS}}


def partial_statistics(frame: pd.DataFrame, spend: str) -> pd.DataFrame:
    """One row per number of positive days ``days`` of ``frame``'s customers with orders
    (``frequency`` and the log-spend columns of ``spend``): the sums of ``STAT_SUMS``. Sums of
    batches add up to the sums of the whole (``sum_batches``)."""
    n, mean, var = statistics(frame, spend)
    mean = np.where(n > 0, mean, 0.0)
    frequency = frame["frequency"].to_numpy(dtype=float)
    parts = pd.DataFrame(
        {
            "days": n,
            "customers": np.ones(len(n)),
            "sum_mean": mean,
            "sum_mean2": mean**2,
            "sum_squares": n * var,
            "sum_frequency": frequency,
            "sum_frequency2": frequency**2,
            "sum_frequency_mean": frequency * mean,
        }
    )
    return parts.groupby("days", sort=True).sum().reset_index()[list(STAT_SCHEMA)]


def _moments(stats: pd.DataFrame) -> tuple[np.ndarray, ...]:
    has = stats[stats["days"] > 0]
    return tuple(
        has[c].to_numpy(dtype=float)
        for c in ("days", "customers", "sum_mean", "sum_mean2", "sum_squares")
    )


def fit_statistics(stats: pd.DataFrame) -> LogNormalSpend:
    """Moment estimates of the normal-normal model (see the module docstring) from
    ``partial_statistics`` (all customers' sums).

    Raises
    ------
    ValueError
        With fewer than two customers with positive spend, or no customer with two positive
        days (the within-customer variance cannot be estimated).
    """
    k, count, s1, s2, squares = _moments(stats)
    customers = float(count.sum())
    if customers < 2:
        raise ValueError(f"log-normal spend: only {int(customers)} customers with positive spend")
    several = k >= 2
    if not several.any():
        raise ValueError("log-normal spend: no customer has two purchase days with positive spend")
    sigma2 = float(squares[several].sum() / (count[several] * (k[several] - 1)).sum())
    if not sigma2 > 0:
        raise ValueError("log-normal spend: every customer spends the same on every day")
    mu0 = float(s1.sum() / customers)
    variance = float(s2.sum() / customers - mu0**2)
    tau2 = max(variance - float(np.sum(count * sigma2 / k) / customers), MIN_TAU2)
    for _ in range(ITERATIONS):
        w = 1.0 / (tau2 + sigma2 / k)
        mu0 = float(np.sum(w * s1) / np.sum(w * count))
        # weighted moment equation: E[w (ybar - mu0)^2] = 1 at the right tau2
        deviations = s2 - 2 * mu0 * s1 + count * mu0**2 - count * sigma2 / k
        tau2 = max(float(np.sum(w**2 * deviations) / np.sum(w**2 * count)), MIN_TAU2)
    return LogNormalSpend(
        mu0=mu0,
        tau2=tau2,
        sigma2=sigma2,
        n_customers=int(customers),
        n_days=int(np.sum(k * count)),
    )


def fit_lognormal(n: np.ndarray, mean_log: np.ndarray, var_log: np.ndarray) -> LogNormalSpend:
    """``fit_statistics`` on per-customer (n, mean log, variance of logs) arrays."""
    frame = pd.DataFrame(
        {"frequency": 0.0, "d": n, "m": mean_log, "v": var_log}, index=range(len(n))
    )
    columns = dict(zip(("d", "m", "v"), STAT_COLUMNS["margin"]))
    return fit_statistics(partial_statistics(frame.rename(columns=columns), "margin"))


SMEARING_SCHEMA = {"key": "bigint", "expected": "double", "actual": "double"}


def smearing_sums(frame: pd.DataFrame, model: LogNormalSpend, spend: str) -> pd.DataFrame:
    """One row (``key`` 0): what ``model`` expects over ``frame``'s customers' purchase days
    (``frequency`` + 1 each) and what they spent (``TOTAL_COLUMNS[spend]``); batches add up."""
    n, mean_log, _ = statistics(frame, spend)
    days = frame["frequency"].to_numpy(dtype=float) + 1
    expected = float(np.sum(days * model.expected_spend(n, mean_log)))
    actual = float(frame[TOTAL_COLUMNS[spend]].fillna(0).to_numpy(dtype=float).sum())
    return pd.DataFrame({"key": [0], "expected": [expected], "actual": [actual]})


def with_smearing(model: LogNormalSpend, n, mean_log, days, total_spend) -> LogNormalSpend:
    """``model`` with the smearing factor that makes its in-sample expected spend over each
    customer's ``days`` purchase days add up to their ``total_spend`` (unchanged when the
    expected total is not positive)."""
    expected = float(np.sum(np.asarray(days, dtype=float) * model.expected_spend(n, mean_log)))
    return smeared(model, expected, float(np.sum(np.asarray(total_spend, dtype=float))))


def smeared(model: LogNormalSpend, expected: float, actual: float) -> LogNormalSpend:
    """``model`` with its smearing factor scaled by actual / expected total spend."""
    if not (expected > 0 and actual > 0):
        return model
    return replace(model, smearing=model.smearing * actual / expected)


def fit_lognormal_spend(summary: pd.DataFrame, spend: str = "margin") -> FitResult:
    """Fit the log-normal empirical-Bayes spend model (above) on the customers with
    orders of a summary, from the SQL log-spend statistics of ``spend``: ``fit_spend_statistics``
    with both passes over the summary in memory."""
    spend_column(spend)
    buyers = customers_with_orders(summary)
    with_total = TOTAL_COLUMNS[spend] in buyers.columns
    return fit_spend_statistics(
        partial_statistics(buyers, spend),
        lambda model: smearing_sums(buyers, model, spend) if with_total else None,
        spend,
    )


def fit_spend_statistics(
    stats: pd.DataFrame,
    smearing: Callable[[LogNormalSpend], pd.DataFrame | None],
    spend: str = "margin",
) -> FitResult:
    """Fit the model from ``partial_statistics`` sums (all customers with orders) and
    ``smearing(model)``, the ``smearing_sums`` of the customers under the unsmeared model (None:
    no smearing).

    Raises
    ------
    ModelFitError
        When the moments cannot be estimated (e.g. fewer than two customers with positive
        spend); one attempt, penalizer 0 (the model has no penalizer).
    """
    column = spend_column(spend)
    try:
        fitted = fit_statistics(stats)
    except ValueError as error:
        raise ModelFitError(LOGNORMAL, [FitAttempt(0.0, f"ValueError: {error}")]) from None
    sums = smearing(fitted)
    if sums is not None:
        fitted = smeared(fitted, float(sums["expected"].sum()), float(sums["actual"].sum()))
    k, count, s1, s2, squares = _moments(stats)
    mu0, tau2, sigma2 = fitted.mu0, fitted.tau2, fitted.sigma2
    log_likelihood = float(
        np.sum(
            -0.5 * k * count * np.log(2 * np.pi * sigma2)
            - 0.5 * squares / sigma2
            - 0.5 * count * np.log1p(k * tau2 / sigma2)
            - 0.5 * (s2 - 2 * mu0 * s1 + count * mu0**2) / (tau2 + sigma2 / k)
        )
    )
    has = stats[stats["days"] > 0]
    customers = float(has["customers"].sum())
    correlation = float("nan")
    if customers >= 2:
        mean_f = has["sum_frequency"].sum() / customers
        mean_y = has["sum_mean"].sum() / customers
        var_f = has["sum_frequency2"].sum() / customers - mean_f**2
        var_y = has["sum_mean2"].sum() / customers - mean_y**2
        cov = has["sum_frequency_mean"].sum() / customers - mean_f * mean_y
        # a constant side has no correlation (pearson's NaN); rounding leaves a tiny variance
        if var_f > 1e-12 * max(1.0, mean_f**2) and var_y > 1e-12 * max(1.0, mean_y**2):
            correlation = float(cov / np.sqrt(var_f * var_y))
    return FitResult(
        name=LOGNORMAL,
        model=fitted,
        penalizer=0.0,
        converged=True,
        log_likelihood=log_likelihood,
        n_customers=fitted.n_customers,
        n_rows=len(k),  # its compact rows: the sums per number of purchase days
        params=fitted.params,
        attempts=(FitAttempt(0.0),),
        spend_column=column,
        frequency_spend_correlation=correlation,
        population_mean_spend=fitted.population_mean,
        population_mean_defined=True,
    )
