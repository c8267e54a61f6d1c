"""Every Dagster asset check of the pipeline (dbt's tests come with the dbt assets):

- blocking checks on the Python-built customer tables (a failing check stops everything
  downstream, including the publish): SQL queries returning one row, ``violations`` (0 = pass)
  and the counts behind it, which become the check's metadata;
- WARN checks on the clusters and the CLTV models, which degrade rather than fail;
- the file import's checks, evaluated by the import step itself from what it loaded.

Checks that an asset evaluates itself are declared here (their specs) with the function that
builds their result; the asset passes the specs to its decorator and yields the results.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from pipeline import engine
from pipeline.defs.resources import PipelineSettings

RFM_KEY = dg.AssetKey(["analytics", "customer_rfm"])
CLUSTERS_KEY = dg.AssetKey(["analytics", "customer_clusters"])
CLTV_KEY = dg.AssetKey(["analytics", "customer_cltv"])
CLTV_EVALUATION_KEY = dg.AssetKey(["analytics", "cltv_evaluation"])
IMPORT_FILES_KEY = dg.AssetKey(["raw", "import_files"])


@dataclass(frozen=True)
class SqlCheck:
    name: str
    description: str
    sql: str


RFM_CHECKS = [
    SqlCheck(
        "every_customer_scored_once",
        "Each customer of intermediate.customer_summary has exactly one row in analytics.customer_rfm.",
        """
        with counts as (
            select
                (select count(*) from intermediate.customer_summary) as customers,
                (select count(*) from analytics.customer_rfm) as rows_scored,
                (select count(distinct customer_code) from analytics.customer_rfm) as customers_scored,
                (select count(*) from intermediate.customer_summary as s
                 left join analytics.customer_rfm as r on s.customer_code = r.customer_code
                 where r.customer_code is null) as customers_unscored
        )
        select
            abs(customers - rows_scored) + (rows_scored - customers_scored) + customers_unscored
                as violations,
            customers, rows_scored, customers_scored, customers_unscored
        from counts
        """,
    ),
    SqlCheck(
        "scores_within_range",
        "R, F and M are 1-5 for customers with orders and 0 for customers without.",
        """
        select
            count(*) filter (where s.has_orders and not (
                r.r_score between 1 and 5 and r.f_score between 1 and 5 and r.m_score between 1 and 5
            )) + count(*) filter (where not s.has_orders and not (
                r.r_score = 0 and r.f_score = 0 and r.m_score = 0
            )) as violations,
            count(*) as customers
        from analytics.customer_rfm as r
        join intermediate.customer_summary as s on r.customer_code = s.customer_code
        """,
    ),
    SqlCheck(
        "segment_counts_add_up",
        "Every customer has one segment, and the segment counts add up to the customer count.",
        """
        with by_segment as (
            select segment, count(*) as n from analytics.customer_rfm group by segment
        )
        select
            abs((select count(*) from analytics.customer_rfm) - (select sum(n) from by_segment))
                + (select count(*) from analytics.customer_rfm where segment is null) as violations,
            (select count(*) from by_segment) as segments
        """,
    ),
]


def run_sql_checks(tables, asset_key: dg.AssetKey, checks: list[SqlCheck]):
    """Each check's portable SQL on the run's table store (``pipeline.engine``)."""
    for check in checks:
        result = tables.query(check.sql).iloc[0]
        row = {c: 0 if pd.isna(v) else int(v) for c, v in result.items()}
        yield dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=check.name,
            passed=row["violations"] == 0,
            metadata=row,
        )


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(c.name, asset=RFM_KEY, blocking=True, description=c.description)
        for c in RFM_CHECKS
    ]
)
def customer_rfm_checks(settings: PipelineSettings, duckdb: DuckDBResource):
    with engine.open_tables(settings.current, duckdb) as tables:
        yield from run_sql_checks(tables, RFM_KEY, RFM_CHECKS)


# --- issue 15: clusters on too little data ----------------------------------------------------


@dg.asset_check(
    asset=CLUSTERS_KEY,
    blocking=False,
    description="WARN when this refresh found no clusters (too few customers for the K range); "
    "the reason is in the metadata and in marts.cluster_status.",
)
def clusters_were_found(settings: PipelineSettings, duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with engine.open_tables(settings.current, duckdb) as tables:
        rows = tables.query(
            "select status, reason, customers from analytics.cluster_status where as_of_date = ?",
            [settings.current.as_of],
        )
    row = tuple(rows.iloc[0]) if len(rows) else None
    status, reason, customers = row if row else ("missing", "no status row for this as-of date", 0)
    return dg.AssetCheckResult(
        passed=status == "clustered",
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "status": status,
            "reason": reason if isinstance(reason, str) else "",
            "customers": 0 if pd.isna(customers) else int(customers),
        },
    )


# --- CLTV: the models degrade, never fail the refresh ---------------------------------------

AVAILABLE_CHECK = "cltv_model_available"
CLTV_CHECKS = [
    dg.AssetCheckSpec(
        AVAILABLE_CHECK,
        asset=CLTV_KEY,
        description="Warns when no CLTV model could be fit, so the CLTV columns are NULL.",
    )
]


def cltv_available(available: bool, reason: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=CLTV_KEY,
        check_name=AVAILABLE_CHECK,
        passed=available,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"reason": reason},
    )


EVALUATION_CHECK = "cltv_beats_baselines"
EVALUATION_CHECKS = [
    dg.AssetCheckSpec(
        EVALUATION_CHECK,
        asset=CLTV_EVALUATION_KEY,
        description="Warns when the chosen transaction model does not beat every baseline "
        "(zero, repeat the last period, naive rate) on holdout RMSE and Poisson deviance, "
        "or when no model could be chosen.",
    )
]


def cltv_beats_baselines(beats: bool | None, holdout_days: int) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=EVALUATION_CHECK,
        passed=bool(beats),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"holdout_days": holdout_days, "beats_baselines": str(beats)},
    )


# --- the file import ------------------------------------------------------------------------

ROWS_ACCOUNTED_CHECK = "every_input_row_loaded_or_quarantined"
NO_FEWER_CHECK = "no_file_loads_fewer_rows_than_before"
IMPORT_CHECKS = [
    dg.AssetCheckSpec(
        ROWS_ACCOUNTED_CHECK,
        asset=IMPORT_FILES_KEY,
        blocking=True,
        description="For every imported file: input rows = loaded + quarantined.",
    ),
    dg.AssetCheckSpec(
        NO_FEWER_CHECK,
        asset=IMPORT_FILES_KEY,
        blocking=True,
        description="No file loads fewer rows than at the last accepted refresh (same or later "
        "as-of date); only `python -m pipeline.cli reprocess --apply` may lower it.",
    ),
]


def import_check_results(outcome) -> list[dg.AssetCheckResult]:
    """The import's checks from its ``pipeline.ingest.importer.ImportRefresh``."""
    report = outcome.report
    return [
        dg.AssetCheckResult(
            check_name=ROWS_ACCOUNTED_CHECK,
            asset_key=IMPORT_FILES_KEY,
            passed=not outcome.unaccounted,
            metadata={
                "files": len(report.files),
                "input_rows": report.input_rows,
                "loaded_plus_quarantined": report.loaded_rows + report.quarantined_rows,
                "unaccounted_files": ", ".join(
                    f"{n} ({r} rows, {loaded} loaded, {qn} quarantined)"
                    for n, r, loaded, qn in outcome.unaccounted
                )
                or "none",
            },
        ),
        dg.AssetCheckResult(
            check_name=NO_FEWER_CHECK,
            asset_key=IMPORT_FILES_KEY,
            passed=not report.fewer_loaded,
            metadata={
                "loaded_rows": report.loaded_rows,
                "files_with_fewer_rows": "; ".join(
                    f"{name}: {now} loaded, {before} before"
                    for name, before, now in report.fewer_loaded
                )
                or "none",
            },
            description=(
                "Fewer loaded rows than the last refresh in "
                + ", ".join(name for name, _, _ in report.fewer_loaded)
                + ": see raw.quarantine for why; run `python -m pipeline.cli reprocess` to review and accept."
            )
            if report.fewer_loaded
            else None,
        ),
    ]
