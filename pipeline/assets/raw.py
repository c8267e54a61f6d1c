"""Raw layer: the seeded simulator's tables written to ``raw.*`` (and its ground truth to ``truth.*``)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipeline import warehouse
from pipeline.resources import PipelineSettings
from pipeline.retry import retry_on_duckdb_lock
from pipeline.synthetic import SimulationConfig, simulate

RAW_TABLES = {
    "customers": "One row per customer account, with market, platform, channel and profile.",
    "products": "One row per product variant in the AtliQ hierarchy.",
    "gross_prices": "One row per product and fiscal year: the unit gross price.",
    "manufacturing_costs": "One row per product and cost year: the unit manufacturing cost.",
    "pre_invoice_deductions": "One row per customer and fiscal year: the pre-invoice discount rate.",
    "order_lines": "One row per order line up to the as-of date.",
}
TRUTH_TABLES = {
    "customers": "The simulator's latent truth per customer (persona, purchase rate, dropout, "
    "future purchases). Never read by the models: it exists to measure them.",
    "future_order_lines": "Order lines the simulator continues after the as-of date, to score "
    "predictions. Never read by the models.",
}

SPECS = [
    dg.AssetSpec(["raw", name], description=text, group_name="raw", kinds={"python", "duckdb"})
    for name, text in RAW_TABLES.items()
] + [
    dg.AssetSpec(["truth", name], description=text, group_name="truth", kinds={"python", "duckdb"})
    for name, text in TRUTH_TABLES.items()
]


def _column_schema(columns: list[tuple[str, str]]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, dtype) for name, dtype in columns])


@dg.multi_asset(specs=SPECS, name="synthetic_raw_data")
def synthetic_raw_data(settings: PipelineSettings, duckdb: DuckDBResource):
    """Simulate the sales history with the run's seed, scale and as-of date, and write it.

    One step writes every table, in one transaction per schema, because the tables come from
    one simulation and must agree with each other.
    """
    current = settings.current
    data = simulate(
        SimulationConfig(
            customers=current.customers,
            seed=current.seed,
            start_date=current.start_date,
            history_days=current.history_days,
            as_of=current.as_of,
            truth_horizon_days=current.truth_horizon_days,
        )
    )
    Path(duckdb.database).parent.mkdir(parents=True, exist_ok=True)
    with retry_on_duckdb_lock(), duckdb.get_connection() as conn:
        for schema, frames in data.tables().items():
            counts = warehouse.replace_tables(conn, schema, frames)
            for table, n_rows in counts.items():
                yield dg.MaterializeResult(
                    asset_key=[schema, table],
                    metadata={
                        "dagster/row_count": n_rows,
                        "dagster/table_name": f"{schema}.{table}",
                        "dagster/column_schema": _column_schema(
                            warehouse.table_columns(conn, schema, table)
                        ),
                        "as_of": current.as_of.isoformat(),
                        "seed": current.seed,
                    },
                )
