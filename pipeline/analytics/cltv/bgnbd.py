"""BG/NBD and MBG/NBD, the beta-geometric purchase-count models (Fader, Hardie & Lee 2005;
Batislam, Denizel & Filiztekin 2007).

lifetimes' ``BetaGeoFitter`` and ``ModifiedBetaGeoFitter`` fit them and give their predictions;
what is added here is the total log-likelihood in the original time unit, comparable between
models on the same data (``transactions`` dispatches to this module and to ``pareto_nbd``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np

# Importing lifetimes silences every FutureWarning in the process; undo that for our import.
with warnings.catch_warnings():
    from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter

from pipeline.analytics.cltv.base import WithoutStandardErrors


class BetaGeo(WithoutStandardErrors, BetaGeoFitter):
    pass


class ModifiedBetaGeo(WithoutStandardErrors, ModifiedBetaGeoFitter):
    pass


BGNBD = "bgnbd"
MBGNBD = "mbgnbd"
PARAMETER_NAMES = ("r", "alpha", "a", "b")
FITTERS = {BGNBD: BetaGeo, MBGNBD: ModifiedBetaGeo}


def log_likelihood(
    name: str,
    params: Mapping[str, float],
    frequency: np.ndarray,
    recency: np.ndarray,
    t: np.ndarray,
    weights: np.ndarray,
) -> float:
    """Total log-likelihood of ``name`` at ``params`` (original time unit, no penalty)."""
    values = [params[k] for k in PARAMETER_NAMES]
    with np.errstate(all="ignore"):
        # lifetimes' static likelihoods are the weighted *mean* negative log-likelihood
        mean_nll = FITTERS[name]._negative_log_likelihood(
            np.log(values), frequency, recency, t, weights, 0.0
        )
    return -float(mean_nll) * float(weights.sum())


def fit(name: str, frequency, recency, t, weights, penalizer: float):
    """Fit ``name`` with lifetimes at one penalizer (raises what the fitter raises)."""
    return FITTERS[name](penalizer_coef=penalizer).fit(frequency, recency, t, weights=weights)


def predictions(
    model, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray, horizons: Sequence[float]
) -> tuple[np.ndarray, dict[float, np.ndarray]]:
    """P(alive) and ``{horizon: expected purchases in (0, horizon]}``, lifetimes' formulas."""
    with np.errstate(all="ignore"):
        p_alive = np.asarray(model.conditional_probability_alive(x, t_x, big_t), dtype=float)
        expected = {
            h: np.asarray(
                model.conditional_expected_number_of_purchases_up_to_time(float(h), x, t_x, big_t),
                dtype=float,
            )
            for h in horizons
        }
    return p_alive, expected
