"""The fitted models as data: the parameter table (one row per model and as-of date) and the
model files saved per refresh."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd

from pipeline.analytics.cltv import gamma_gamma, lognormal, transactions
from pipeline.analytics.cltv.base import TIME_UNIT, FitAttempt, FitResult
from pipeline.analytics.cltv.lognormal import LOGNORMAL

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
    classes = {**transactions.FITTERS, **gamma_gamma.FITTERS}
    fits = {}
    for meta_path in sorted(folder.glob("*.json")):
        meta = json.loads(meta_path.read_text())
        name = meta["name"]
        if name == LOGNORMAL:
            p = meta["params"]
            model = lognormal.LogNormalSpend(
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
