"""The purchase-count models the CLTV stage chooses between: BG/NBD, MBG/NBD and Pareto/NBD.

All three come from lifetimes (its fitters, likelihoods and prediction formulas). What is added
here is what lifetimes lacks for a model that is fit every refresh and must never block it:

- **Log-likelihoods in the original time unit** (totals, without penalty), comparable between
  models on the same data.
- **A deterministic, checked Pareto/NBD fit.** lifetimes' ``ParetoNBDFitter.fit`` starts
  Nelder-Mead from random parameters (numpy's global generator) and never reports a failed
  optimisation. ``fit_pareto_nbd`` minimises the same likelihood (lifetimes'
  ``_conditional_log_likelihood``) over log parameters with L-BFGS-B from a fixed start, time
  rescaled so that the longest ``t`` is 1 and the penalty added to the *mean* negative
  log-likelihood, as lifetimes does for BG/NBD, so a penalizer means the same for every model
  and any number of customers. A failed optimisation raises ``ConvergenceError``.
- **A bounded Pareto/NBD cost.** Its likelihood needs the Gauss hypergeometric function, which
  scipy evaluates slowly where the fit often goes (large ``s``): about 25-70 ms per likelihood
  evaluation on 12,500 histories, hundreds of evaluations per fit, where BG/NBD's whole fit takes
  0.1 s. So Pareto/NBD is fit on a seeded random sample of at most ``SAMPLE_LIMITS`` customers
  (``sample_customers``); it still predicts for everyone, and its holdout score is computed on
  everyone, so the comparison stays fair. Likelihoods and predictions are evaluated with time
  rescaled so that the longest ``t`` is 1 (the formulas are scale-free; in days the
  hypergeometric terms lose precision).
- **Vectorized predictions** (``predictions``): P(alive) and expected purchases at several
  horizons in one pass. For Pareto/NBD the hypergeometric term lifetimes recomputes on every call
  is computed once per history.
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
    from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
    from lifetimes.utils import ConvergenceError

BGNBD = "bgnbd"
MBGNBD = "mbgnbd"
PARETO_NBD = "pareto_nbd"
TRANSACTION_MODELS: tuple[str, ...] = (BGNBD, MBGNBD, PARETO_NBD)
PARAMETER_NAMES = {
    BGNBD: ("r", "alpha", "a", "b"),
    MBGNBD: ("r", "alpha", "a", "b"),
    PARETO_NBD: ("r", "alpha", "s", "beta"),
}
FITTERS = {BGNBD: BetaGeoFitter, MBGNBD: ModifiedBetaGeoFitter, PARETO_NBD: ParetoNBDFitter}
# Customers a model is fit on at most (a seeded sample beyond that); None = all.
SAMPLE_LIMITS: dict[str, int | None] = {BGNBD: None, MBGNBD: None, PARETO_NBD: 5_000}
SAMPLE_SEED = 20261203
# The Pareto/NBD optimiser works on log parameters within +-LOG_BOUND, and s <= PARETO_MAX_S: a
# larger s means nearly equal dropout rates for everyone (s -> infinity is the model's boundary),
# where the hypergeometric function costs 10-100x more; a fit stopped there fails its rung.
LOG_BOUND = 15.0
PARETO_MAX_S = 10.0


def sample_customers(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """The rows ``name`` is fit on: all of them, or a seeded random sample of
    ``SAMPLE_LIMITS[name]`` rows (the same rows for the same input)."""
    limit = SAMPLE_LIMITS[check_name(name)]
    if limit is None or len(frame) <= limit:
        return frame
    rng = np.random.default_rng(SAMPLE_SEED)
    return frame.iloc[np.sort(rng.choice(len(frame), size=limit, replace=False))]


def _pareto_scaled(params, recency, t, scale):
    r, alpha, s, beta = params
    return [r, alpha * scale, s, beta * scale], recency * scale, t * scale


def check_name(name: str) -> str:
    if name not in TRANSACTION_MODELS:
        raise ValueError(
            f"transaction model must be one of {list(TRANSACTION_MODELS)}, got {name!r}"
        )
    return name


def log_likelihood(
    name: str,
    params: Mapping[str, float],
    frequency: np.ndarray,
    recency: np.ndarray,
    t: np.ndarray,
    weights: np.ndarray | None = None,
) -> float:
    """Total log-likelihood of a model at ``params`` (original time unit, no penalty)."""
    frequency = np.asarray(frequency, dtype=float)
    recency = np.asarray(recency, dtype=float)
    t = np.asarray(t, dtype=float)
    weights = np.ones(len(frequency)) if weights is None else np.asarray(weights, dtype=float)
    values = [params[k] for k in PARAMETER_NAMES[check_name(name)]]
    with np.errstate(all="ignore"):
        if name == PARETO_NBD:
            # in rescaled time, then back: each purchase's density carries one 1/time unit
            scale = 1.0 / float(np.max(t))
            scaled, rec, big_t = _pareto_scaled(values, recency, t, scale)
            per_row = ParetoNBDFitter._conditional_log_likelihood(scaled, frequency, rec, big_t)
            return float(np.sum(weights * per_row) + np.log(scale) * np.sum(weights * frequency))
        # lifetimes' static likelihoods are the weighted *mean* negative log-likelihood
        mean_nll = FITTERS[name]._negative_log_likelihood(
            np.log(values), frequency, recency, t, weights, 0.0
        )
    return -float(mean_nll) * float(weights.sum())


def _pareto_objective(log_params, frequency, recency, t, weights, penalizer):
    params = np.exp(log_params)
    with np.errstate(all="ignore"):
        per_row = ParetoNBDFitter._conditional_log_likelihood(params, frequency, recency, t)
    value = -np.sum(weights * per_row) / np.sum(weights) + penalizer * np.sum(params**2)
    return float(value) if np.isfinite(value) else 1e300


def fit_pareto_nbd(
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
        _pareto_objective,
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


def fit(name: str, frequency, recency, t, weights, penalizer: float):
    """Fit one model with lifetimes at one penalizer (raises what the fitter raises)."""
    if check_name(name) == PARETO_NBD:
        return fit_pareto_nbd(frequency, recency, t, weights, penalizer)
    return FITTERS[name](penalizer_coef=penalizer).fit(frequency, recency, t, weights=weights)


def _pareto_expected(params, x, t_x, big_t, horizon, log_likelihood_rows):
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
    name: str, model, frequency, recency, t, horizons: Sequence[float]
) -> tuple[np.ndarray, dict[float, np.ndarray]]:
    """P(alive) and ``{horizon: expected purchases in (0, horizon]}`` for each history."""
    x = np.asarray(frequency, dtype=float)
    t_x = np.asarray(recency, dtype=float)
    big_t = np.asarray(t, dtype=float)
    with np.errstate(all="ignore"):
        if check_name(name) == PARETO_NBD:
            scale = 1.0 / max(float(np.max(big_t)), float(np.max(horizons)), 1e-12)
            params, t_x, big_t = _pareto_scaled(
                [float(model.params_[k]) for k in PARAMETER_NAMES[PARETO_NBD]], t_x, big_t, scale
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
            expected = {
                h: _pareto_expected(params, x, t_x, big_t, float(h) * scale, rows) for h in horizons
            }
        else:
            p_alive = np.asarray(model.conditional_probability_alive(x, t_x, big_t), dtype=float)
            expected = {
                h: np.asarray(
                    model.conditional_expected_number_of_purchases_up_to_time(
                        float(h), x, t_x, big_t
                    ),
                    dtype=float,
                )
                for h in horizons
            }
    return np.asarray(p_alive, dtype=float), expected


def load(name: str, params: Mapping[str, float]):
    """A lifetimes fitter of ``name`` with ``params`` set, for predictions."""
    model = FITTERS[check_name(name)]()
    model.params_ = pd.Series({k: float(params[k]) for k in PARAMETER_NAMES[name]})
    return model
