"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987), on lifetimes' likelihood and formulas.

What is added to lifetimes' ``ParetoNBDFitter``:

- **A deterministic, checked fit.** lifetimes' ``ParetoNBDFitter.fit`` starts Nelder-Mead from
  random parameters (numpy's global generator) and never reports a failed optimisation. ``fit``
  minimises the same likelihood (lifetimes' ``_conditional_log_likelihood``) over log
  parameters with L-BFGS-B from a fixed start, time rescaled so that the longest ``t`` is 1 and
  the penalty added to the *mean* negative log-likelihood, as lifetimes does for BG/NBD, so a
  penalizer means the same for every model and any number of customers. A failed optimisation
  raises ``ConvergenceError``.
- **A bounded cost.** Its likelihood needs the Gauss hypergeometric function, which scipy
  evaluates slowly where the fit often goes (large ``s``): about 25-70 ms per likelihood
  evaluation on 12,500 histories, hundreds of evaluations per fit, where BG/NBD's whole fit takes
  0.1 s. So Pareto/NBD is fit on a seeded random sample of customers
  (``transactions.SAMPLE_LIMITS``); it still predicts for everyone, and its holdout score is
  computed on everyone, so the comparison stays fair. Likelihoods and predictions are evaluated
  with time rescaled so that the longest ``t`` is 1 (the formulas are scale-free; in days the
  hypergeometric terms lose precision).
- **Vectorized predictions**: the hypergeometric term lifetimes recomputes on every call is
  computed once per history.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import gammaln

# Importing lifetimes silences every FutureWarning in the process; undo that for our import.
with warnings.catch_warnings():
    from lifetimes import ParetoNBDFitter
    from lifetimes.utils import ConvergenceError


PARETO_NBD = "pareto_nbd"
PARAMETER_NAMES = ("r", "alpha", "s", "beta")
FITTERS = {PARETO_NBD: ParetoNBDFitter}
# The Pareto/NBD optimiser works on log parameters within +-LOG_BOUND, and s <= PARETO_MAX_S: a
# larger s means nearly equal dropout rates for everyone (s -> infinity is the model's boundary),
# where the hypergeometric function costs 10-100x more; a fit stopped there fails its rung.
LOG_BOUND = 15.0
PARETO_MAX_S = 10.0


def _scaled(params, recency, t, scale):
    r, alpha, s, beta = params
    return [r, alpha * scale, s, beta * scale], recency * scale, t * scale


def log_likelihood(
    params: Mapping[str, float],
    frequency: np.ndarray,
    recency: np.ndarray,
    t: np.ndarray,
    weights: np.ndarray,
) -> float:
    """Total log-likelihood at ``params`` (original time unit, no penalty)."""
    values = [params[k] for k in PARAMETER_NAMES]
    with np.errstate(all="ignore"):
        # in rescaled time, then back: each purchase's density carries one 1/time unit
        scale = 1.0 / float(np.max(t))
        scaled, rec, big_t = _scaled(values, recency, t, scale)
        per_row = ParetoNBDFitter._conditional_log_likelihood(scaled, frequency, rec, big_t)
        return float(np.sum(weights * per_row) + np.log(scale) * np.sum(weights * frequency))


def _objective(log_params, frequency, recency, t, weights, penalizer):
    params = np.exp(log_params)
    with np.errstate(all="ignore"):
        per_row = ParetoNBDFitter._conditional_log_likelihood(params, frequency, recency, t)
    value = -np.sum(weights * per_row) / np.sum(weights) + penalizer * np.sum(params**2)
    return float(value) if np.isfinite(value) else 1e300


def fit(
    frequency: np.ndarray,
    recency: np.ndarray,
    t: np.ndarray,
    weights: np.ndarray,
    penalizer: float,
) -> ParetoNBDFitter:
    """Fit Pareto/NBD on (compressed, weighted) rows; a lifetimes ``ParetoNBDFitter`` with
    ``params_`` set, so that its own prediction methods work.

    Raises
    ------
    ConvergenceError
        When L-BFGS-B does not report success.
    """
    frequency = np.asarray(frequency, dtype=float)
    scale = 1.0 / float(np.max(t))
    args = (
        frequency,
        np.asarray(recency) * scale,
        np.asarray(t) * scale,
        np.asarray(weights, dtype=float),
        penalizer,
    )
    # r and s near 1, alpha and beta near the (rescaled) observation period: a neutral start
    bounds = [(-LOG_BOUND, LOG_BOUND)] * 4
    bounds[2] = (-LOG_BOUND, np.log(PARETO_MAX_S))
    result = minimize(
        _objective,
        x0=np.zeros(4),
        args=args,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 500},
    )
    if not result.success or result.fun >= 1e300:
        raise ConvergenceError(f"Pareto/NBD did not converge: {result.message}")
    r, alpha, s, beta = np.exp(result.x)
    if s >= PARETO_MAX_S * (1 - 1e-6):
        raise ConvergenceError(
            f"Pareto/NBD ran off towards s -> infinity (no spread in dropout rates) and stopped "
            f"at the bound s = {PARETO_MAX_S:g}"
        )
    model = ParetoNBDFitter(penalizer_coef=penalizer)
    model.params_ = pd.Series(
        [r, alpha / scale, s, beta / scale], index=["r", "alpha", "s", "beta"]
    )
    model._scale = scale
    model._negative_log_likelihood_ = float(result.fun)
    model.predict = model.conditional_expected_number_of_purchases_up_to_time
    return model


def _expected(params, x, t_x, big_t, horizon, log_likelihood_rows):
    """lifetimes' ParetoNBDFitter.conditional_expected_number_of_purchases_up_to_time (Hardie
    note 009, eq. 41), with the likelihood passed in and the s -> 1 limit taken stably."""
    r, alpha, s, beta = params
    first = (
        gammaln(r + x)
        - gammaln(r)
        + r * np.log(alpha)
        + s * np.log(beta)
        - (r + x) * np.log(alpha + big_t)
        - s * np.log(beta + big_t)
    )
    second = np.log(r + x) + np.log(beta + big_t) - np.log(alpha + big_t)
    ratio_log = np.log(beta + big_t) - np.log(beta + big_t + horizon)
    if abs(s - 1.0) < 1e-12:
        third = np.log(-ratio_log)
    else:
        third = np.log(-np.expm1((s - 1.0) * ratio_log) / (s - 1.0))
    return np.exp(first + second + third - log_likelihood_rows)


def predictions(
    model: ParetoNBDFitter,
    x: np.ndarray,
    t_x: np.ndarray,
    big_t: np.ndarray,
    horizons: Sequence[float],
) -> tuple[np.ndarray, dict[float, np.ndarray]]:
    """P(alive) and ``{horizon: expected purchases in (0, horizon]}`` for each history."""
    with np.errstate(all="ignore"):
        scale = 1.0 / max(float(np.max(big_t)), float(np.max(horizons)), 1e-12)
        params, t_x, big_t = _scaled(
            [float(model.params_[k]) for k in PARAMETER_NAMES], t_x, big_t, scale
        )
        r, alpha, s, beta = params
        log_a0 = ParetoNBDFitter._log_A_0(params, x, t_x, big_t)
        p_alive = 1.0 / (
            1.0
            + np.exp(
                np.log(s)
                - np.log(r + s + x)
                + (r + x) * np.log(alpha + big_t)
                + s * np.log(beta + big_t)
                + log_a0
            )
        )
        rows = ParetoNBDFitter._conditional_log_likelihood(params, x, t_x, big_t)
        expected = {h: _expected(params, x, t_x, big_t, float(h) * scale, rows) for h in horizons}
    return p_alive, expected
