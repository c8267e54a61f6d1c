"""The spend models the CLTV stage chooses between, behind one interface: Gamma-Gamma
(``gamma_gamma``) and the log-normal empirical-Bayes model (``lognormal``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.analytics.cltv import lognormal
from pipeline.analytics.cltv.base import DEFAULT_PENALIZERS, SPEND_COLUMNS, FitResult
from pipeline.analytics.cltv.gamma_gamma import GAMMA_GAMMA, expected_spend, fit_gamma_gamma
from pipeline.analytics.cltv.lognormal import LOGNORMAL, fit_lognormal_spend

SPEND_MODELS: tuple[str, ...] = (GAMMA_GAMMA, LOGNORMAL)


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


def spend_per_day(fit: FitResult, buyers: pd.DataFrame) -> np.ndarray:
    """Expected spend per purchase day of each row of ``buyers`` (customers with orders) under
    a spend model: Gamma-Gamma (``expected_spend``) or log-normal (``lognormal``)."""
    column = fit.spend_column
    if column is None:
        raise ValueError(f"{fit.name} is not a spend model")
    if fit.name == LOGNORMAL:
        spend = "margin" if column == SPEND_COLUMNS["margin"] else "revenue"
        n, mean_log, _ = lognormal.statistics(buyers, spend)
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
