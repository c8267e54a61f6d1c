"""Blocking data-quality checks on the Python-built customer tables (dbt tests guard the dbt
models). A failing check stops everything downstream, including the publish.

Each check is a query returning one row: ``violations`` (0 = pass) and the counts behind it,
which become the check's metadata.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipeline.defs.assets.clusters import CLUSTERS_KEY
from pipeline.defs.assets.customers import customer_rfm
from pipeline.defs.resources import PipelineSettings


@dataclass(frozen=True)
class SqlCheck:
    name: str
    description: str
    sql: str


RFM_CHECKS = [
    SqlCheck(
        "every_customer_scored_once",
        "Each customer of marts.customer_summary has exactly one row in analytics.customer_rfm.",
        """
        with counts as (
            select
                (select count(*) from marts.customer_summary) as customers,
                (select count(*) from analytics.customer_rfm) as rows_scored,
                (select count(distinct customer_code) from analytics.customer_rfm) as customers_scored,
                (select count(*) from marts.customer_summary as s
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
        join marts.customer_summary as s on r.customer_code = s.customer_code
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


def run_sql_checks(duckdb: DuckDBResource, asset_key: dg.AssetKey, checks: list[SqlCheck]):
    with duckdb.get_connection() as conn:
        for check in checks:
            cursor = conn.execute(check.sql)
            columns = [d[0] for d in cursor.description]
            row = {c: int(v or 0) for c, v in zip(columns, cursor.fetchone())}
            yield dg.AssetCheckResult(
                asset_key=asset_key,
                check_name=check.name,
                passed=row["violations"] == 0,
                metadata=row,
            )


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(c.name, asset=customer_rfm.key, blocking=True, description=c.description)
        for c in RFM_CHECKS
    ]
)
def customer_rfm_checks(duckdb: DuckDBResource):
    yield from run_sql_checks(duckdb, customer_rfm.key, RFM_CHECKS)


# --- issue 15: clusters on too little data ----------------------------------------------------


@dg.asset_check(
    asset=CLUSTERS_KEY,
    blocking=False,
    description="WARN when this refresh found no clusters (too few customers for the K range); "
    "the reason is in the metadata and in marts.cluster_status.",
)
def clusters_were_found(settings: PipelineSettings, duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as conn:
        row = conn.execute(
            "select status, reason, customers from analytics.cluster_status where as_of_date = ?",
            [settings.current.as_of],
        ).fetchone()
    status, reason, customers = row if row else ("missing", "no status row for this as-of date", 0)
    return dg.AssetCheckResult(
        passed=status == "clustered",
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"status": status, "reason": reason or "", "customers": int(customers or 0)},
    )
