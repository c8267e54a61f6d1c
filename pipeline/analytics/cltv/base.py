"""What every CLTV model shares: the input contract, the fit result and the penalizer ladder.

- **Inputs** are per-customer frames (the SQL ``customer_summary``), never order lines, with
  ``frequency`` (purchase days after the first), ``recency`` and ``t`` in days (``TIME_UNIT``).
- **Convergence** is never assumed. Each fit walks a penalizer ladder (``DEFAULT_PENALIZERS``)
  and keeps the first rung whose fit succeeds with finite parameters inside
  ``PARAMETER_RANGE`` (outside it the optimiser has run off towards a boundary) and a finite
  log-likelihood; if no rung does, ``ModelFitError`` names the model and every rung's failure.
  lifetimes' penalty is ``penalizer * sum(params ** 2)`` added to the *mean* negative
  log-likelihood (BG/NBD: with time rescaled so that the longest ``t`` is 1), so a penalizer
  means the same whatever the number of customers.
"""

from __future__ import annotations

import contextlib
import math
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from autograd import value_and_grad
from scipy.optimize import minimize

# Importing lifetimes silences every FutureWarning in the process; undo that for our import.
with warnings.catch_warnings():
    from lifetimes.utils import ConvergenceError


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
        The fitted lifetimes fitter (``lognormal.LogNormalSpend`` for the log-normal model).
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
        Unique rows the optimiser saw after compression (the log-normal spend model: its rows of
        sums, one per number of purchase days with positive spend).
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
        ``p v / (q - 1)``, or the fallback when that is undefined, see ``gamma_gamma``).
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


def history_problems(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """The lifetimes summary rules, each with the mask of the rows breaking it."""
    frequency = rows["frequency"].to_numpy(dtype=float)
    recency = rows["recency"].to_numpy(dtype=float)
    t = rows["t"].to_numpy(dtype=float)
    return {
        "'frequency' must be a whole number >= 0": (frequency < 0)
        | (frequency != np.round(frequency)),
        "'recency' must be >= 0": recency < 0,
        "'recency' must be <= 't'": recency > t,
        "'recency' must be 0 when 'frequency' is 0": (frequency == 0) & (recency != 0),
    }


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
    for message, bad in history_problems(buyers).items():
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


# --- fitting with a penalizer ladder --------------------------------------------------------


# What a failing lifetimes fit raises: its ConvergenceError, and linear algebra and numeric
# errors from a likelihood evaluated at extreme values.
# Input errors are caught earlier by customers_with_orders, so a ValueError here is numeric.
FIT_ERRORS = (
    ConvergenceError,
    np.linalg.LinAlgError,
    FloatingPointError,
    OverflowError,
    ZeroDivisionError,
    ValueError,
)


class WithoutStandardErrors:
    """Mixin for a lifetimes fitter (``class X(WithoutStandardErrors, XFitter)``): the fit of
    lifetimes 0.11.3 without the standard errors it adds to every fit.

    After each successful fit lifetimes takes the Hessian of the likelihood over every row
    (autograd, reverse over reverse) and inverts it for ``standard_errors_`` and
    ``confidence_intervals_``. The pipeline reads neither, and at a million customers the
    Hessian costs half as much again as the fit (214 against 396 profile samples over a
    refresh's fits). ``_fit`` below is lifetimes' own optimiser call, line for line, so the
    fitted parameters are the same bits. What goes: ``summary`` and the standard errors (None),
    and the rung failure an exactly singular Hessian raised; a fit that degenerate runs its
    parameters off towards a boundary, which ``invalid_params`` refuses. What no longer happens:
    printing to stdout, which fits running side by side could not each capture.
    """

    def _fit(
        self,
        minimizing_function_args,
        initial_params,
        params_size,
        disp,
        tol=1e-7,
        bounds=None,
        **kwargs,
    ):
        options = {"disp": disp, **kwargs}
        x0 = 0.1 * np.ones(params_size) if initial_params is None else initial_params
        output = minimize(
            value_and_grad(self._negative_log_likelihood),
            jac=True,
            method=None,
            tol=tol,
            x0=x0,
            args=minimizing_function_args,
            options=options,
            bounds=bounds,
        )
        if output.success:
            return output.x, output.fun, None
        # lifetimes prints the optimiser's result here; its message goes into the error instead,
        # so a failed rung says why without anything captured from stdout
        raise ConvergenceError(
            "The model did not converge. Try adding a larger penalizer to see if that helps "
            f"convergence. message: {output.message}"
        )

    def _compute_variance_matrix(self):
        return None

    def _compute_standard_errors(self):
        return None

    def _compute_confidence_intervals(self):
        return None


_quiet_lock = threading.Lock()
_quiet_users = 0
_quiet_restore: contextlib.ExitStack | None = None


@contextlib.contextmanager
def quiet_fits() -> Iterator[None]:
    """Warnings off for the fits inside, shared by every fit running at the time.

    lifetimes resets warning filters inside its likelihood (``simplefilter``), and overflow
    warnings during line searches are expected and harmless (results are validated after).
    Warning filters are process globals: fits on several threads cannot each save and restore
    them (the last to leave would put back what another had set), so the first fit in saves
    them and the last one out restores them.
    """
    global _quiet_users, _quiet_restore
    with _quiet_lock:
        if _quiet_users == 0:
            stack = contextlib.ExitStack()
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore", RuntimeWarning)
            _quiet_restore = stack
        _quiet_users += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_users -= 1
            if _quiet_users == 0 and _quiet_restore is not None:
                _quiet_restore.close()
                _quiet_restore = None


def fit_quietly(fit) -> tuple[object | None, str | None]:
    """Run ``fit()`` inside ``quiet_fits``; return (model, None) or (None, why it failed).
    Safe to call from several threads at once."""
    try:
        with quiet_fits():
            return fit(), None
    except FIT_ERRORS as error:
        return None, f"{type(error).__name__}: {str(error).strip() or 'no message'}"


def pearson(a: pd.Series, b: pd.Series) -> float:
    """Pearson correlation; NaN when either side is constant or there are fewer than 2 rows."""
    x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
    if len(x) < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def weighted_pearson(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> float:
    """``pearson`` of rows repeated ``weights`` times (compressed rows); NaN when either side
    is constant or there are fewer than 2 customers."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    weights = np.asarray(weights, dtype=np.int64)
    if weights.sum() < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    cov = np.cov(x, y, fweights=weights)
    return float(cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1]))


def invalid_params(params: Mapping[str, float], log_likelihood: float) -> str | None:
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


def ladder(
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
