"""CLTV assets: choose the models on the backtest holdout, fit and score them, judge them.

Order each refresh: ``cltv_model_selection`` (every candidate and baseline on the holdout) ->
``customer_cltv`` (the chosen models fit on the full history; NULL scores and a status row
when none can be fit) -> ``cltv_evaluation`` (backtest metrics, truth comparison, WARN gate).
A model that cannot be fit never fails the run: the marts are published without CLTV.
"""

import dagster as dg
import pandas as pd
from dagster_dbt import get_asset_key_for_model
from dagster_duckdb import DuckDBResource

from pipeline import engine
from pipeline.analytics import backtest, model_selection
from pipeline.analytics.cltv import storage
from pipeline.analytics.cltv import tables as cltv_tables
from pipeline.defs import checks
from pipeline.defs.assets.dbt import star_schema
from pipeline.defs.assets.metadata import markdown_table
from pipeline.defs.assets.raw import TRUTH_CUSTOMERS
from pipeline.defs.resources import PipelineSettings

CLTV_KEY = checks.CLTV_KEY
PARAMETERS_KEY = dg.AssetKey(["analytics", "cltv_model_parameters"])
STATUS_KEY = dg.AssetKey(["analytics", "cltv_model_status"])
SELECTION_KEY = dg.AssetKey(["analytics", "cltv_model_selection"])
DECILES_KEY = dg.AssetKey(["analytics", "cltv_calibration_deciles"])
PREDICTIONS_KEY = dg.AssetKey(["analytics", "cltv_backtest_predictions"])
STATUS_COLUMNS = ("as_of_date", "status", "transaction_model", "spend_model", "reason")


def analytics_table(key: dg.AssetKey, deps: list, description: str) -> dg.AssetSpec:
    """A table the CLTV steps write into the analytics schema."""
    return dg.AssetSpec(
        key, deps=deps, description=description, group_name="analytics", kinds={"python", "duckdb"}
    )


@dg.multi_asset(
    specs=[
        analytics_table(
            PREDICTIONS_KEY,
            deps=[get_asset_key_for_model([star_schema], "customer_backtest_summary")],
            description="One row per backtest customer: holdout purchase days and spend, and "
            "each baseline's and fitted candidate's forecast of them (what the selection's "
            "metrics and deciles are computed from, inside the engine).",
        ),
        analytics_table(
            SELECTION_KEY,
            deps=[PREDICTIONS_KEY],
            description="One row per as-of date and candidate or baseline: holdout metrics "
            "(RMSE, Poisson deviance, aggregate error, spend error), status, rank, the choice "
            "and its reason.",
        ),
        analytics_table(
            DECILES_KEY,
            deps=[SELECTION_KEY],
            description="One row per as-of date, predictor and decile of its holdout "
            "prediction: customers, mean predicted and mean actual purchase days.",
        ),
    ],
    name="cltv_backtest",
)
def cltv_model_selection(
    context: dg.AssetExecutionContext, settings: PipelineSettings, duckdb: DuckDBResource
):
    """Choose the CLTV models on the backtest holdout: fit BG/NBD, MBG/NBD and Pareto/NBD, and
    Gamma-Gamma and the log-normal spend model, on the data up to the as-of date minus
    PIPELINE_BACKTEST_HOLDOUT_DAYS, predict the holdout, score them against three baselines
    (zero, repeat the last period, naive rate), and rank them. See
    pipeline/analytics/model_selection.py."""
    current = settings.current
    with engine.open_tables(current, duckdb) as tables:
        # fits on the engine's compact rows, predictions and metrics inside the engine
        result = model_selection.select_models(
            tables,
            spend=current.models.cltv_spend,
            transaction_candidates=current.models.cltv_transaction_models,
        )
        as_of = pd.Timestamp(current.as_of)
        selection = result.selection.assign(holdout_days=current.models.backtest_holdout_days)
        selection.insert(0, "as_of_date", as_of)
        deciles = result.deciles.copy()
        deciles.insert(0, "as_of_date", as_of)
        tables.replace_as_of_rows("analytics", "cltv_model_selection", selection, current.as_of)
        tables.replace_as_of_rows("analytics", "cltv_calibration_deciles", deciles, current.as_of)
        predicted = tables.row_count(model_selection.PREDICTIONS)
    shown = selection[
        [
            "kind",
            "model",
            "status",
            "rank",
            "purchases_rmse",
            "purchases_poisson_deviance",
            "purchases_aggregate_pct_error",
            "spend_rmse",
        ]
    ]
    # in dependency order, as a multi-asset must
    yield dg.MaterializeResult(
        asset_key=PREDICTIONS_KEY,
        metadata={"dagster/row_count": predicted, "as_of": current.as_of.isoformat()},
    )
    yield dg.MaterializeResult(
        asset_key=SELECTION_KEY,
        metadata={
            "dagster/row_count": len(selection),
            "as_of": current.as_of.isoformat(),
            "transaction_model": (result.transaction_ranking or ("none",))[0],
            "spend_model": (result.spend_ranking or ("none",))[0],
            "beats_baselines": str(result.beats_baselines),
            "candidates": dg.MetadataValue.md(markdown_table(shown.round(4))),
        },
    )
    yield dg.MaterializeResult(
        asset_key=DECILES_KEY,
        metadata={"dagster/row_count": len(deciles), "as_of": current.as_of.isoformat()},
    )


def rankings(selection: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The transaction and spend candidates, best first, from this refresh's selection rows;
    candidates that could not be evaluated (no holdout) keep their default order."""
    out = []
    for kind in (model_selection.TRANSACTION, model_selection.SPEND):
        rows = selection[selection["kind"] == kind]
        ranked = rows[rows["rank"].notna()].sort_values("rank")
        if ranked.empty and (rows["status"] == "not evaluated").all():
            ranked = rows
        out.append(ranked["model"].tolist())
    return out[0], out[1]


@dg.multi_asset(
    specs=[
        analytics_table(
            CLTV_KEY,
            deps=[get_asset_key_for_model([star_schema], "customer_summary"), SELECTION_KEY],
            description="One row per customer: CLTV predictions and value tier (NULL when no "
            "model could be fit; see cltv_model_status).",
        ),
        analytics_table(
            PARAMETERS_KEY,
            deps=[CLTV_KEY],
            description="One row per as-of date and model: fitted parameters, penalizer, "
            "log-likelihood, customers, convergence.",
        ),
        analytics_table(
            STATUS_KEY,
            deps=[CLTV_KEY],
            description="One row per as-of date: whether CLTV is available, the models used "
            "and why (or why not).",
        ),
    ],
    check_specs=checks.CLTV_CHECKS,
    name="customer_cltv",
)
def customer_cltv(
    context: dg.AssetExecutionContext, settings: PipelineSettings, duckdb: DuckDBResource
):
    """Predicted customer lifetime value with the models chosen on the backtest holdout
    (cltv_model_selection), fit on the full history: P(alive), expected purchases in 90 and 365
    days, expected order value (margin or revenue per PIPELINE_CLTV_SPEND), discounted 12-month
    CLV and a value tier (high = top 20% by CLV, medium = next 30%, low = the rest, none = no
    orders). When no model can be fit the columns are NULL, analytics.cltv_model_status says why
    and a WARN check shows it; the refresh goes on. Also appends the fitted parameters to
    analytics.cltv_model_parameters and saves the models under <data_dir>/models/<as-of>/."""
    current = settings.current
    as_of = pd.Timestamp(current.as_of)
    with engine.open_tables(current, duckdb) as tables:
        selection = tables.read_as_of_rows("analytics", "cltv_model_selection", current.as_of)
        transaction_ranking, spend_ranking = rankings(selection)
        # the fits read compact rows the engine aggregates; the scores are computed inside it
        compact = cltv_tables.CompactFits(tables, spend=current.models.cltv_spend)
        chosen = model_selection.fit_chosen_with(
            compact.transaction, compact.spend_model, transaction_ranking, spend_ranking
        )
        available, failure = False, chosen.reason
        if chosen.available:
            try:
                cltv_tables.write_scores(
                    tables,
                    chosen.transaction,
                    chosen.spend,
                    current.models.cltv_discount_rate,
                    current.as_of,
                )
                available = True
            except FloatingPointError as error:  # non-finite predictions: unavailable, not a crash
                failure = f"{chosen.transaction.name} x {chosen.spend.name} scoring failed: {error}"
        if available:
            fits = [chosen.transaction, chosen.spend]
            reason = (
                "; ".join(
                    selection.loc[selection["chosen"].fillna(False).astype(bool), "reason"].dropna()
                )
                or "chosen in the default order (no holdout to compare on)"
            )
            if chosen.reason:
                reason = f"{reason}; {chosen.reason}"
        else:
            fits = [f for f in (chosen.transaction, chosen.spend) if f is not None]
            cltv_tables.write_unavailable(tables, current.as_of)
            reason = failure
            context.log.warning(f"CLTV unavailable: {reason}")
        status = pd.DataFrame(
            [
                {
                    "as_of_date": as_of,
                    "status": "available" if available else "unavailable",
                    "transaction_model": chosen.transaction.name if chosen.transaction else None,
                    "spend_model": chosen.spend.name if chosen.spend else None,
                    "reason": reason,
                }
            ],
            columns=list(STATUS_COLUMNS),
        ).astype({"transaction_model": "string", "spend_model": "string"})
        parameters = storage.model_parameters(fits, as_of_date=as_of)
        tables.replace_as_of_rows("analytics", "cltv_model_parameters", parameters, current.as_of)
        tables.replace_as_of_rows("analytics", "cltv_model_status", status, current.as_of)
        written = cltv_tables.score_summary(tables)
    saved = storage.save_models(fits, current.paths.models_for(current.as_of))

    metadata = {
        "dagster/row_count": written["rows"],
        "as_of": current.as_of.isoformat(),
        "spend": current.models.cltv_spend,
        "status": status["status"].iloc[0],
        "reason": reason,
        "tiers": dg.MetadataValue.md(markdown_table(written["tiers"])),
        "total_clv_12m": written["total_clv_12m"],
        "models": dg.MetadataValue.path(str(current.paths.models_for(current.as_of))),
    }
    for fit in fits:
        metadata[fit.name] = dg.MetadataValue.json({k: round(v, 6) for k, v in fit.params.items()})
        metadata[f"{fit.name}_penalizer"] = fit.penalizer
    yield dg.MaterializeResult(asset_key=CLTV_KEY, metadata=metadata)
    yield dg.MaterializeResult(
        asset_key=PARAMETERS_KEY,
        metadata={
            "dagster/row_count": len(parameters),
            "as_of": current.as_of.isoformat(),
            "files": len(saved),
        },
    )
    yield dg.MaterializeResult(
        asset_key=STATUS_KEY,
        metadata={"status": status["status"].iloc[0], "reason": reason},
    )
    yield checks.cltv_available(available, reason)


@dg.asset(
    key=["analytics", "cltv_evaluation"],
    deps=[SELECTION_KEY, CLTV_KEY, TRUTH_CUSTOMERS],
    group_name="analytics",
    kinds={"python", "duckdb"},
    check_specs=checks.EVALUATION_CHECKS,
)
def cltv_evaluation(
    context: dg.AssetExecutionContext, settings: PipelineSettings, duckdb: DuckDBResource
):
    """How good the CLTV models are, every refresh: the holdout metrics of every candidate and
    baseline (from cltv_model_selection) and, on synthetic data, the scores against the
    simulator's truth (P(alive) AUC and Brier for all customers and for repeat buyers, next
    year's purchases and value, spend per order for one-time and repeat buyers). One row per
    as-of, evaluation, metric and model in analytics.cltv_evaluation."""
    current = settings.current
    with engine.open_tables(current, duckdb) as tables:
        selection = tables.read_as_of_rows("analytics", "cltv_model_selection", current.as_of)
        frames = [model_selection.tidy_metrics(selection).assign(evaluation="backtest")]
        status = tables.read_as_of_rows("analytics", "cltv_model_status", current.as_of)
        available = bool(len(status)) and status["status"].iloc[0] == "available"
        if available and tables.table_exists("truth", "customers"):
            fits = storage.load_models(current.paths.models_for(current.as_of))
            transaction = fits[status["transaction_model"].iloc[0]]
            # the engine's sums over the scores beside the truth: no customer table here
            truth_metrics, _ = backtest.compare_with_truth(
                tables, transaction, spend=current.models.cltv_spend
            )
            frames.append(truth_metrics.assign(evaluation="truth"))
        metrics = pd.concat(frames, ignore_index=True)
        metrics.insert(0, "as_of_date", pd.Timestamp(current.as_of))
        tables.replace_as_of_rows("analytics", "cltv_evaluation", metrics, current.as_of)

    beats = model_selection.gate(selection)
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(metrics),
            "as_of": current.as_of.isoformat(),
            "holdout_days": current.models.backtest_holdout_days,
            "beats_baselines": str(beats),
            "metrics": dg.MetadataValue.md(
                markdown_table(metrics.drop(columns="as_of_date").round(4))
            ),
        }
    )
    yield checks.cltv_beats_baselines(beats, current.models.backtest_holdout_days)
