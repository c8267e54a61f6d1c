"""The CLTV fit and scoring over the run's table store (``pipeline.engine``): the fits read only
compact inputs the engine aggregates, and the scoring runs batch by batch inside the engine.
This is the one module of the CLTV stage that holds SQL (portable: DuckDB and Spark read it).

- **BG/NBD, MBG/NBD, Pareto/NBD**: fit on unique (frequency, recency, t) rows with ``weights``,
  a GROUP BY over ``customer_summary`` (``transactions.fit_histories``).
- **Gamma-Gamma**: fit on the repeat customers' unique (frequency, spend) pairs with weights, a
  GROUP BY too; spend is a mean per purchase day, so the pairs are about one per repeat customer
  (two numbers each): exact, not sampled (``gamma_gamma.fit_gamma_gamma_rows``).
- **Log-normal spend**: fit on sums per number of positive days (a few hundred rows), added up
  by the engine over batches, then one more pass of sums for its smearing factor
  (``lognormal.fit_spend_statistics``).
- **Scores**: ``scoring.score_batch`` over batches of ``customer_summary`` (``map_batches``: in
  process on DuckDB, ``mapInPandas`` with the fitted models broadcast on Spark), written to
  ``analytics.customer_cltv``; then the value tiers, which rank everyone: two CLV bounds queried
  from the written table (``scoring.tier_cuts``) and ``scoring.assign_tiers`` over the batches.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import pandas as pd

from pipeline.analytics.cltv import lognormal, scoring, transactions
from pipeline.analytics.cltv.base import DEFAULT_PENALIZERS, SPEND_COLUMNS, FitResult
from pipeline.analytics.cltv.gamma_gamma import GAMMA_GAMMA, fit_gamma_gamma_rows
from pipeline.analytics.cltv.lognormal import LOGNORMAL
from pipeline.analytics.cltv.spend import SPEND_MODELS

SUMMARY = "intermediate.customer_summary"
SCORES = "analytics.customer_cltv"
# what scoring reads of each customer
SCORE_INPUTS = (
    "customer_code",
    "has_orders",
    "frequency",
    "recency",
    "t",
    *SPEND_COLUMNS.values(),
    *(c for columns in lognormal.STAT_COLUMNS.values() for c in columns),
)
SCORES_SCHEMA = {
    "customer_code": "string",
    "as_of_date": "date",
    **{k: v for k, v in scoring.SCORE_SCHEMA.items() if k != "customer_code"},
}


def transaction_histories(tables, source: str = SUMMARY) -> pd.DataFrame:
    """Unique (frequency, recency, t) rows of the customers with orders and their ``weights``."""
    return tables.query(
        "select cast(frequency as double) as frequency, cast(recency as double) as recency, "
        "cast(t as double) as t, count(*) as weights "
        f"from {source} where has_orders group by 1, 2, 3 order by 1, 2, 3"
    )


def repeat_spend_rows(tables, spend: str, source: str = SUMMARY) -> pd.DataFrame:
    """Unique (frequency, spend) pairs of the repeat customers and their ``weights``."""
    column = SPEND_COLUMNS[spend]  # a fixed column name, never user input
    return tables.query(
        f"select cast(frequency as double) as frequency, cast({column} as double) as spend, "
        f"count(*) as weights from {source} where has_orders and frequency > 0 "
        "group by 1, 2 order by 1, 2"
    )


def _buyers_sql(spend: str, source: str) -> str:
    columns = ["frequency", *lognormal.STAT_COLUMNS[spend], lognormal.TOTAL_COLUMNS[spend]]
    return f"select customer_code, {', '.join(columns)} from {source} where has_orders"


def lognormal_statistics(tables, spend: str, source: str = SUMMARY) -> pd.DataFrame:
    """``lognormal.partial_statistics`` of every customer with orders, added up by the engine."""
    return tables.sum_batches(
        _buyers_sql(spend, source),
        functools.partial(lognormal.partial_statistics, spend=spend),
        lognormal.STAT_SCHEMA,
        by=["days"],
        order_by="customer_code",
    )


def lognormal_smearing(
    tables, model: lognormal.LogNormalSpend, spend: str, source: str = SUMMARY
) -> pd.DataFrame:
    """``lognormal.smearing_sums`` of every customer with orders under ``model``."""
    return tables.sum_batches(
        _buyers_sql(spend, source),
        functools.partial(lognormal.smearing_sums, model=model, spend=spend),
        lognormal.SMEARING_SCHEMA,
        by=["key"],
        order_by="customer_code",
    )


class CompactFits:
    """Fit the CLTV models by name on the engine's compact inputs (each queried once).

    ``source``: the customers, a table or a parenthesised query with an alias holding
    ``customer_summary``'s columns: the summary itself, or the backtest's calibration period
    under those names (``model_selection.calibration_relation``)."""

    def __init__(
        self,
        tables,
        spend: str = "margin",
        penalizers: Sequence[float] = DEFAULT_PENALIZERS,
        source: str = SUMMARY,
    ):
        self.tables, self.spend, self.penalizers = tables, spend, penalizers
        self.source = source

    @functools.cached_property
    def histories(self) -> pd.DataFrame:
        return transaction_histories(self.tables, self.source)

    def transaction(self, name: str) -> FitResult:
        return transactions.fit_histories(self.histories, name, self.penalizers)

    def spend_model(self, name: str) -> FitResult:
        if name == GAMMA_GAMMA:
            rows = repeat_spend_rows(self.tables, self.spend, self.source)
            return fit_gamma_gamma_rows(rows, self.spend, self.penalizers)
        if name == LOGNORMAL:
            return lognormal.fit_spend_statistics(
                lognormal_statistics(self.tables, self.spend, self.source),
                lambda model: lognormal_smearing(self.tables, model, self.spend, self.source),
                self.spend,
            )
        raise ValueError(f"spend model must be one of {list(SPEND_MODELS)}, got {name!r}")


def score_rows(
    batch: pd.DataFrame,
    transaction: FitResult,
    spend_model: FitResult,
    annual_discount_rate: float,
    as_of: pd.Timestamp,
) -> pd.DataFrame:
    """``scoring.score_batch`` with the as-of date, as ``analytics.customer_cltv`` holds it."""
    scores = scoring.score_batch(batch, transaction, spend_model, annual_discount_rate)
    scores.insert(1, "as_of_date", as_of)
    return scores


def unavailable_rows(batch: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """``scoring.unavailable_scores`` with the as-of date."""
    scores = scoring.unavailable_scores(batch).astype({"value_tier": "object"})
    scores.insert(1, "as_of_date", as_of)
    return scores


def write_scores(
    tables, transaction: FitResult, spend_model: FitResult, annual_discount_rate: float, as_of
) -> None:
    """Score every customer inside the engine and write ``analytics.customer_cltv`` with its
    value tiers.

    Raises
    ------
    FloatingPointError
        When a customer with orders got a non-finite score (the table then holds untiered
        scores: the caller writes ``write_unavailable`` instead).
    """
    as_of = pd.Timestamp(as_of)
    scores = tables.map_batches(
        f"select {', '.join(SCORE_INPUTS)} from {SUMMARY}",
        functools.partial(
            score_rows,
            transaction=transaction,
            spend_model=spend_model,
            annual_discount_rate=annual_discount_rate,
            as_of=as_of,
        ),
        SCORES_SCHEMA,
        order_by="customer_code",
    )
    tables.replace_tables("analytics", {"customer_cltv": scores})
    counts = tables.query(
        "select count(clv_12m) as scored, "
        # score_batch's failed rows: a customer with orders (tier not yet set) without a CLV
        "count(case when value_tier is null and clv_12m is null then 1 end) as failed "
        f"from {SCORES}"
    )
    failed = int(counts["failed"].iloc[0])
    if failed:
        raise FloatingPointError(
            f"{transaction.name} x {spend_model.name} scores are not finite for {failed} customers"
        )
    bounds = {}
    for tier, rank in scoring.tier_cuts(int(counts["scored"].iloc[0])).items():
        bounds[tier] = math.inf
        if rank:
            bound = tables.query(
                "select min(clv_12m) as bound from (select clv_12m from "
                f"{SCORES} where clv_12m is not null order by clv_12m desc limit {int(rank)}) as top"
            )
            bounds[tier] = float(bound["bound"].iloc[0])
    tiered = tables.map_batches(
        f"select {', '.join(SCORES_SCHEMA)} from {SCORES}",
        functools.partial(scoring.assign_tiers, bounds=bounds),
        SCORES_SCHEMA,
        order_by="customer_code",
    )
    tables.replace_tables("analytics", {"customer_cltv": tiered})


def write_unavailable(tables, as_of) -> None:
    """``analytics.customer_cltv`` without scores (no model could be fit or scored)."""
    scores = tables.map_batches(
        f"select customer_code, has_orders from {SUMMARY}",
        functools.partial(unavailable_rows, as_of=pd.Timestamp(as_of)),
        SCORES_SCHEMA,
        order_by="customer_code",
    )
    tables.replace_tables("analytics", {"customer_cltv": scores})


def score_summary(tables) -> dict:
    """What the asset reports of the written scores: rows, customers per tier, total CLV."""
    tiers = tables.query(
        "select coalesce(value_tier, 'null') as value_tier, count(*) as customers "
        f"from {SCORES} group by 1 order by 1"
    )
    totals = tables.query(f"select count(*) as customers, sum(clv_12m) as clv from {SCORES}")
    clv = totals["clv"].iloc[0]
    return {
        "rows": int(totals["customers"].iloc[0]),
        "tiers": tiers,
        "total_clv_12m": float(clv) if pd.notna(clv) else 0.0,
    }
