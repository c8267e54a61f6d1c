"""Customer analytics assets: thin wrappers that read per-customer tables, call
``pipeline.analytics`` and write ``analytics.*``."""

from __future__ import annotations

import dagster as dg
from dagster_dbt import get_asset_key_for_model
from dagster_duckdb import DuckDBResource

from pipeline import engine
from pipeline.analytics import rfm
from pipeline.defs.assets.dbt import star_schema
from pipeline.defs.assets.metadata import markdown_table
from pipeline.defs.resources import PipelineSettings

SUMMARY = "intermediate.customer_summary"
SEGMENT_MAP = "reference.rfm_segment_map"


@dg.asset(
    key=["analytics", "customer_rfm"],
    deps=[
        get_asset_key_for_model([star_schema], "customer_summary"),
        get_asset_key_for_model([star_schema], "rfm_segment_map"),
    ],
    group_name="analytics",
    kinds={"python", "duckdb"},
)
def customer_rfm(settings: PipelineSettings, duckdb: DuckDBResource) -> dg.MaterializeResult:
    """RFM scores (1-5 by quintile, recency reversed; 0 = no orders), FM (mean of F and M rounded
    half up), the new-customer flag (first order within PIPELINE_RFM_NEW_CUSTOMER_DAYS), the named
    segment from the R x FM segment map (reference.rfm_segment_map, first match wins) and the
    Pareto flag (the fewest top customers by net sales making at least half of it). One row per
    customer."""
    current = settings.current
    with engine.open_tables(current, duckdb) as tables:
        segment_map = rfm.validate_segment_map(
            tables.read_table(
                "reference", "rfm_segment_map", list(rfm.MAP_COLUMNS), order_by="priority"
            )
        )
        rfm.check_summary(tables.query(rfm.summary_problems_query(SUMMARY)), SUMMARY)
        rows = tables.replace_table_with_query(
            "analytics",
            "customer_rfm",
            rfm.customer_rfm_query(
                SUMMARY,
                SEGMENT_MAP,
                segment_map,
                current.as_of,
                current.models.rfm_new_customer_days,
            ),
        )
        distribution = tables.query(
            "select segment, count(*) as customers from analytics.customer_rfm "
            "group by segment order by customers desc, segment"
        )
        pareto = rfm.pareto_cut(tables.query(rfm.pareto_query("analytics.customer_rfm", SUMMARY)))

    distribution["share"] = (distribution["customers"] / rows).round(4)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "dagster/table_name": "analytics.customer_rfm",
            "as_of": current.as_of.isoformat(),
            "new_customer_days": current.models.rfm_new_customer_days,
            "segments": dg.MetadataValue.md(markdown_table(distribution)),
            "pareto_customers": pareto.customers,
            "pareto_customer_share": round(pareto.customer_share, 4),
            "pareto_revenue_share": round(pareto.revenue_share, 4),
        }
    )
