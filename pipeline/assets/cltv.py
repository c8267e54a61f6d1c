"""CLTV assets: fit and score every refresh, and backtest the model every refresh."""

import warnings
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_dbt import get_asset_key_for_model
from dagster_duckdb import DuckDBResource

from pipeline import warehouse
from pipeline.analytics import backtest, cltv
from pipeline.assets.dbt import star_schema
from pipeline.assets.metadata import markdown_table
from pipeline.assets.raw import TRUTH_CUSTOMERS
from pipeline.resources import PipelineSettings
from pipeline.retry import retry_on_duckdb_lock

SUMMARY_COLUMNS = (
    "customer_code",
    "has_orders",
    "frequency",
    "recency",
    "t",
    "monetary_value_net_sales",
    "monetary_value_gross_margin",
)


def models_dir(duckdb: DuckDBResource, as_of) -> Path:
    """Fitted models are kept per as-of date beside the warehouse, so a past refresh can be explained."""
    return Path(duckdb.database).parent / "models" / as_of.isoformat()


CLTV_KEY = dg.AssetKey(["analytics", "customer_cltv"])
PARAMETERS_KEY = dg.AssetKey(["analytics", "cltv_model_parameters"])


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            CLTV_KEY,
            deps=[get_asset_key_for_model([star_schema], "customer_summary")],
            description="One row per customer: CLTV predictions and value tier.",
            group_name="customer_analytics",
            kinds={"python", "duckdb"},
        ),
        dg.AssetSpec(
            PARAMETERS_KEY,
            deps=[CLTV_KEY],
            description="One row per as-of date and model: fitted parameters, penalizer, "
            "log-likelihood, customers, convergence.",
            group_name="customer_analytics",
            kinds={"python", "duckdb"},
        ),
    ],
    name="customer_cltv",
)
def customer_cltv(context: dg.AssetExecutionContext, settings: PipelineSettings, duckdb: DuckDBResource):
    """Predicted customer lifetime value: BG/NBD (purchase days) and Gamma-Gamma (spend per purchase
    day, margin or revenue per PIPELINE_CLTV_SPEND), fit every refresh. Per customer: P(alive),
    expected purchases in 90 and 365 days, expected order value, discounted 12-month CLV and a
    value tier (high = top 20% by CLV, medium = next 30%, low = the rest, none = no orders).
    Also appends the fitted parameters to analytics.cltv_model_parameters and saves the models
    under <data_dir>/models/<as-of>/."""
    current = settings.current
    with retry_on_duckdb_lock(), duckdb.get_connection() as conn:
        summary = warehouse.read_table(conn, "marts", "customer_summary", list(SUMMARY_COLUMNS))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", cltv.CltvWarning)
            bgnbd = cltv.fit_bgnbd(summary)
            gamma_gamma = cltv.fit_gamma_gamma(summary, spend=current.cltv_spend)
        for warning in caught:
            if issubclass(warning.category, cltv.CltvWarning):
                context.log.warning(str(warning.message))
        scores = cltv.score_customers(summary, bgnbd, gamma_gamma, current.cltv_discount_rate)
        scores.insert(1, "as_of_date", pd.Timestamp(current.as_of))
        parameters = cltv.model_parameters([bgnbd, gamma_gamma], as_of_date=pd.Timestamp(current.as_of))
        warehouse.replace_tables(conn, "analytics", {"customer_cltv": scores})
        warehouse.replace_as_of_rows(conn, "analytics", "cltv_model_parameters", parameters, current.as_of)
    saved = cltv.save_models([bgnbd, gamma_gamma], models_dir(duckdb, current.as_of))

    tiers = scores["value_tier"].value_counts().rename_axis("value_tier").reset_index(name="customers")
    yield dg.MaterializeResult(
        asset_key=CLTV_KEY,
        metadata={
            "dagster/row_count": len(scores),
            "as_of": current.as_of.isoformat(),
            "spend": current.cltv_spend,
            "bgnbd": dg.MetadataValue.json({k: round(v, 6) for k, v in bgnbd.params.items()}),
            "gamma_gamma": dg.MetadataValue.json({k: round(v, 6) for k, v in gamma_gamma.params.items()}),
            "bgnbd_penalizer": bgnbd.penalizer,
            "gamma_gamma_penalizer": gamma_gamma.penalizer,
            "bgnbd_log_likelihood": bgnbd.log_likelihood,
            "frequency_spend_correlation": gamma_gamma.frequency_spend_correlation,
            "gamma_gamma_population_mean_defined": gamma_gamma.population_mean_defined,
            "tiers": dg.MetadataValue.md(markdown_table(tiers)),
            "total_clv_12m": float(scores["clv_12m"].sum()),
            "models": dg.MetadataValue.path(str(saved[0].parent)),
        }
    )
    yield dg.MaterializeResult(
        asset_key=PARAMETERS_KEY,
        metadata={"dagster/row_count": len(parameters), "as_of": current.as_of.isoformat()},
    )


EVALUATION_CHECK = "cltv_beats_naive_baseline"


@dg.asset(
    key=["analytics", "cltv_evaluation"],
    deps=[
        get_asset_key_for_model([star_schema], "customer_backtest_summary"),
        CLTV_KEY,
        TRUTH_CUSTOMERS,
    ],
    group_name="customer_analytics",
    kinds={"python", "duckdb"},
    check_specs=[
        dg.AssetCheckSpec(
            EVALUATION_CHECK,
            asset=["analytics", "cltv_evaluation"],
            description="Warns when the CLTV model no longer beats the naive baseline in the backtest.",
        )
    ],
)
def cltv_evaluation(
    context: dg.AssetExecutionContext, settings: PipelineSettings, duckdb: DuckDBResource
):
    """How good the CLTV model is, every refresh. Backtest: refit on data up to the as-of date
    minus PIPELINE_BACKTEST_HOLDOUT_DAYS, predict the holdout and compare with what happened,
    beside a naive baseline (each customer's past repeat rate carried forward). On synthetic
    data, also the comparison with the simulator's truth. One row per as-of, metric and model
    in analytics.cltv_evaluation."""
    current = settings.current
    with retry_on_duckdb_lock(), duckdb.get_connection() as conn:
        backtest_summary = conn.execute(
            "select * from marts.customer_backtest_summary order by customer_code"
        ).df()
        result = backtest.run_backtest(backtest_summary, spend=current.cltv_spend)
        frames = [result.metrics.assign(evaluation="backtest")]
        if warehouse.table_exists(conn, "truth", "customers"):
            scores = conn.execute("select * from analytics.customer_cltv order by customer_code").df()
            truth = conn.execute("select * from truth.customers order by customer_code").df()
            fits = cltv.load_models(models_dir(duckdb, current.as_of))
            truth_metrics, _ = backtest.compare_with_truth(
                scores, truth, fits[cltv.BGNBD], spend=current.cltv_spend
            )
            frames.append(truth_metrics.assign(evaluation="truth"))
        metrics = pd.concat(frames, ignore_index=True)
        metrics.insert(0, "as_of_date", pd.Timestamp(current.as_of))
        warehouse.replace_as_of_rows(conn, "analytics", "cltv_evaluation", metrics, current.as_of)

    beats = bool(result.summary["beats_baseline"])
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(metrics),
            "as_of": current.as_of.isoformat(),
            "holdout_days": current.backtest_holdout_days,
            "beats_baseline": beats,
            "metrics": dg.MetadataValue.md(markdown_table(metrics.drop(columns="as_of_date").round(4))),
        }
    )
    yield dg.AssetCheckResult(
        check_name=EVALUATION_CHECK,
        passed=beats,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"holdout_days": current.backtest_holdout_days},
    )
