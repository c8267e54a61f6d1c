"""Raw layer: the seeded simulator's tables written to ``raw.*`` (and its ground truth to ``truth.*``)."""

from __future__ import annotations

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipeline import engine, warehouse
from pipeline.defs import checks
from pipeline.defs.resources import PipelineSettings
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

# What the model assets compare with on synthetic data (absent when importing files).
TRUTH_CUSTOMERS = dg.AssetKey(["truth", "customers"])

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
    data = simulate(SimulationConfig.from_settings(current))
    current.data_dir.mkdir(parents=True, exist_ok=True)
    with engine.open_tables(current, duckdb) as tables:
        for schema, frames in data.table_blocks().items():
            counts = tables.replace_tables(schema, frames)
            for table, n_rows in counts.items():
                yield dg.MaterializeResult(
                    asset_key=[schema, table],
                    metadata={
                        "dagster/row_count": n_rows,
                        "dagster/table_name": f"{schema}.{table}",
                        "dagster/column_schema": _column_schema(
                            tables.table_columns(schema, table)
                        ),
                        "as_of": current.as_of.isoformat(),
                        "seed": current.simulation.seed,
                    },
                )


# --- bring your own data (PIPELINE_SOURCE=files) ---------------------------------------------

IMPORT_TABLES = {
    "import_files": "Load log of the file import: one row per file (name, content hash, rows read, "
    "the settings it was read with, and as of the latest refresh rows loaded, quarantined and the "
    "count per reason).",
    "quarantine": "Input rows of the latest refresh that were not loaded: file, row, input table, "
    "reason and the original values (the row as JSON, or the raw line when it could not be split).",
}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(["raw", name], description=text, group_name="raw", kinds={"python", "duckdb"})
        for name, text in {**RAW_TABLES, **IMPORT_TABLES}.items()
    ],
    check_specs=checks.IMPORT_CHECKS,
    name="imported_raw_data",
)
def imported_raw_data(settings: PipelineSettings, duckdb: DuckDBResource):
    """Load the files of PIPELINE_IMPORT_DIR (layout PIPELINE_IMPORT_LAYOUT) into raw.*: new files
    are staged once (tracked by name and content hash), every row is validated, bad rows go to
    raw.quarantine. Input that cannot be loaded at all fails with a FileImportError."""
    from pipeline.ingest import ImportConfig, importer

    current = settings.current
    config = ImportConfig.from_settings(current)
    current.data_dir.mkdir(parents=True, exist_ok=True)
    with engine.import_connection(current, duckdb) as conn:
        outcome = importer.refresh(conn, config)
        report = outcome.report
        if engine.is_spark(current):
            # validated and staged by DuckDB on this machine; Spark reads raw.* as Parquet
            from pipeline.engine.spark_tables import SparkTables

            SparkTables.for_settings(current).copy_raw_from(conn, [*report.tables, *IMPORT_TABLES])
        common = {"as_of": current.as_of.isoformat(), "layout": config.layout}
        for table, n_rows in report.tables.items():
            yield dg.MaterializeResult(
                asset_key=["raw", table],
                metadata={
                    "dagster/row_count": n_rows,
                    "dagster/table_name": f"raw.{table}",
                    "dagster/column_schema": _column_schema(
                        warehouse.table_columns(conn, "raw", table)
                    ),
                    **common,
                },
            )
    per_file = "\n".join(
        ["| file | rows | loaded | quarantined | reasons |", "|---|---|---|---|---|"]
        + [
            f"| {f['file_name']} | {f['rows']} | {f['loaded']} | {f['quarantined']} | "
            + ", ".join(f"{k}: {v}" for k, v in f["reasons"].items())
            + " |"
            for f in report.files
        ]
    )
    yield dg.MaterializeResult(
        asset_key=["raw", "import_files"],
        metadata={
            "dagster/row_count": len(report.files),
            "new_files": ", ".join(report.new_files) or "none",
            "already_loaded_files": len(report.known_files),
            "ignored_files": ", ".join(report.ignored_files) or "none",
            "input_rows": report.input_rows,
            "loaded_rows": report.loaded_rows,
            "quarantined_rows": report.quarantined_rows,
            "files": dg.MetadataValue.md(per_file),
            **common,
        },
    )
    yield dg.MaterializeResult(
        asset_key=["raw", "quarantine"],
        metadata={
            "dagster/row_count": report.quarantined_rows,
            **{f"quarantined/{reason}": n for reason, n in sorted(report.reasons.items())},
            **{f"quarantined_from/{table}": n for table, n in outcome.quarantined_by_table.items()},
            **common,
        },
    )
    yield from checks.import_check_results(outcome)


def raw_assets_for(assets: list, source: str) -> list:
    """``assets`` with the raw producer the source setting selects (exactly one of the two)."""
    chosen, other = (
        (imported_raw_data, synthetic_raw_data)
        if source == "files"
        else (synthetic_raw_data, imported_raw_data)
    )
    return [chosen if a is other else a for a in assets]
