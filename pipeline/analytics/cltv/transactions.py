"""The purchase-count models the CLTV stage chooses between: BG/NBD, MBG/NBD (``bgnbd``) and
Pareto/NBD (``pareto_nbd``), behind one interface, and their fit on a customer summary.

- **Fits** (``fit_transaction_model``) are on the customers with orders, compressed to unique
  (frequency, recency, t) rows with ``weights``: the optimiser's cost grows with distinct
  histories, not customers, and the parameters are the same as on the uncompressed rows. Each
  walks the penalizer ladder (``base``).
- **Log-likelihoods in the original time unit** (totals, without penalty), comparable between
  models on the same data.
- **Compact inputs** (``fit_histories``): a fit reads only the compressed rows, which the
  engine aggregates (a GROUP BY, ``cltv.tables``) or ``histories`` computes from a summary in
  memory; the customers themselves never reach the fit.
- **A bounded cost**: a model is fit on at most ``SAMPLE_LIMITS`` customers (a seeded random
  draw from the compressed rows; Pareto/NBD's likelihood is slow, see ``pareto_nbd``) and still
  predicts for everyone.
- **Vectorized predictions** (``predictions``): P(alive) and expected purchases at several
  horizons in one pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from pipeline.analytics.cltv import bgnbd, pareto_nbd
from pipeline.analytics.cltv.base import (
    DEFAULT_PENALIZERS,
    SUMMARY_COLUMNS,
    FitResult,
    compress,
    customers_with_orders,
    fit_quietly,
    history_problems,
    invalid_params,
    ladder,
)
from pipeline.analytics.cltv.bgnbd import BGNBD, MBGNBD
from pipeline.analytics.cltv.pareto_nbd import PARETO_NBD

TRANSACTION_MODELS: tuple[str, ...] = (BGNBD, MBGNBD, PARETO_NBD)
PARAMETER_NAMES = {
    BGNBD: bgnbd.PARAMETER_NAMES,
    MBGNBD: bgnbd.PARAMETER_NAMES,
    PARETO_NBD: pareto_nbd.PARAMETER_NAMES,
}
FITTERS = {**bgnbd.FITTERS, **pareto_nbd.FITTERS}
# Customers a model is fit on at most (a seeded sample beyond that); None = all.
SAMPLE_LIMITS: dict[str, int | None] = {BGNBD: None, MBGNBD: None, PARETO_NBD: 5_000}
SAMPLE_SEED = 20261203


def sample_histories(rows: pd.DataFrame, name: str) -> pd.DataFrame:
    """The compressed rows ``name`` is fit on: all of them, or a seeded random sample of
    ``SAMPLE_LIMITS[name]`` customers drawn from them without replacement (each row's weight
    becomes how many of its customers were drawn; the same draw for the same rows)."""
    limit = SAMPLE_LIMITS[check_name(name)]
    weights = rows["weights"].to_numpy(dtype=np.int64)
    if limit is None or int(weights.sum()) <= limit:
        return rows
    drawn = np.random.default_rng(SAMPLE_SEED).multivariate_hypergeometric(weights, limit)
    return rows.assign(weights=drawn)[drawn > 0].reset_index(drop=True)


def check_histories(rows: pd.DataFrame) -> pd.DataFrame:
    """Compressed (frequency, recency, t, weights) rows of the customers with orders, checked
    as ``customers_with_orders`` checks a summary (the same rules, on every distinct history).

    Raises
    ------
    ValueError
        Naming the column when a value cannot be a lifetimes summary.
    """
    missing = [c for c in (*SUMMARY_COLUMNS, "weights") if c not in rows.columns]
    if missing:
        raise ValueError(f"compressed histories lack columns {missing}")
    for column in SUMMARY_COLUMNS:
        nulls = rows[column].isna().to_numpy()
        if nulls.any():
            raise ValueError(
                f"customer summary: {int(rows.loc[nulls, 'weights'].sum())} customers with "
                f"orders have a null {column!r}"
            )
    for message, bad in history_problems(rows).items():
        if bad.any():
            example = rows.loc[bad, list(SUMMARY_COLUMNS)].iloc[0].to_dict()
            customers = int(rows.loc[bad, "weights"].sum())
            raise ValueError(f"customer summary: {message} ({customers} rows, e.g. {example})")
    return rows


def histories(summary: pd.DataFrame) -> pd.DataFrame:
    """A summary's customers with orders as compressed, checked (frequency, recency, t,
    weights) rows: what the engine's GROUP BY gives (``cltv.tables``), in memory."""
    buyers = customers_with_orders(summary)
    rows = compress(buyers[list(SUMMARY_COLUMNS)].astype(float), SUMMARY_COLUMNS)
    return rows.astype({"weights": "int64"})


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
    if check_name(name) == PARETO_NBD:
        return pareto_nbd.log_likelihood(params, frequency, recency, t, weights)
    return bgnbd.log_likelihood(name, params, frequency, recency, t, weights)


def fit(name: str, frequency, recency, t, weights, penalizer: float):
    """Fit one model at one penalizer (raises what the fitter raises)."""
    if check_name(name) == PARETO_NBD:
        return pareto_nbd.fit(frequency, recency, t, weights, penalizer)
    return bgnbd.fit(name, frequency, recency, t, weights, penalizer)


def predictions(
    name: str, model, frequency, recency, t, horizons: Sequence[float]
) -> tuple[np.ndarray, dict[float, np.ndarray]]:
    """P(alive) and ``{horizon: expected purchases in (0, horizon]}`` for each history."""
    x = np.asarray(frequency, dtype=float)
    t_x = np.asarray(recency, dtype=float)
    big_t = np.asarray(t, dtype=float)
    family = pareto_nbd if check_name(name) == PARETO_NBD else bgnbd
    p_alive, expected = family.predictions(model, x, t_x, big_t, horizons)
    return np.asarray(p_alive, dtype=float), expected


def load(name: str, params: Mapping[str, float]):
    """A lifetimes fitter of ``name`` with ``params`` set, for predictions."""
    model = FITTERS[check_name(name)]()
    model.params_ = pd.Series({k: float(params[k]) for k in PARAMETER_NAMES[name]})
    return model


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
    return log_likelihood(BGNBD, params, frequency, recency, t, weights)


def fit_transaction_model(
    summary: pd.DataFrame,
    name: str = BGNBD,
    penalizers: Sequence[float] = DEFAULT_PENALIZERS,
) -> FitResult:
    """Fit a purchase-count model on the customers with orders of a summary (one row per
    customer with ``frequency``, ``recency``, ``t`` in days, and ``has_orders`` when customers
    without orders are included): ``fit_histories`` on its compressed rows."""
    return fit_histories(histories(summary), name, penalizers)


def fit_histories(
    rows: pd.DataFrame,
    name: str = BGNBD,
    penalizers: Sequence[float] = DEFAULT_PENALIZERS,
) -> FitResult:
    """Fit a purchase-count model on compressed histories.

    Parameters
    ----------
    rows : pd.DataFrame
        Unique (``frequency``, ``recency``, ``t``) rows of the customers with orders and
        ``weights``, how many customers share each: ``histories(summary)``, or the engine's
        GROUP BY over the customer table (``cltv.tables``), so the fit never sees customers.
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
    check_name(name)
    rows = sample_histories(check_histories(rows), name)
    if rows.empty:
        raise ValueError(f"cannot fit {name}: no customers with orders")
    if float(rows["t"].max()) <= 0:
        raise ValueError(f"cannot fit {name}: every customer's first purchase is on the as-of date")
    frequency = rows["frequency"].to_numpy(dtype=float)
    recency = rows["recency"].to_numpy(dtype=float)
    t = rows["t"].to_numpy(dtype=float)
    weights = rows["weights"].to_numpy(dtype=float)

    def attempt(penalizer: float):
        model, error = fit_quietly(lambda: fit(name, frequency, recency, t, weights, penalizer))
        if error:
            return None, error
        params = {k: float(model.params_[k]) for k in PARAMETER_NAMES[name]}
        total = log_likelihood(name, params, frequency, recency, t, weights)
        invalid = invalid_params(params, total)
        return (None, invalid) if invalid else ((model, params, total), None)

    (model, params, total), penalizer, attempts = ladder(name, penalizers, attempt)
    return FitResult(
        name=name,
        model=model,
        penalizer=penalizer,
        converged=True,
        log_likelihood=total,
        n_customers=int(weights.sum()),
        n_rows=len(rows),
        params=params,
        attempts=tuple(attempts),
    )


def fit_bgnbd(summary: pd.DataFrame, penalizers: Sequence[float] = DEFAULT_PENALIZERS) -> FitResult:
    """``fit_transaction_model`` for BG/NBD."""
    return fit_transaction_model(summary, BGNBD, penalizers)
