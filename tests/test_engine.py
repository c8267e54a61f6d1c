"""The engine setting's contracts that need no Spark: DuckDB-only steps refuse Spark mode with a
clear error, and the Spark table store's file layout (history tables keep one Parquet file per
as-of date, replaced atomically). The Spark runs themselves are in tests/spark (make test-spark)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from pipeline import engine, settings


def test_duckdb_only_steps_refuse_spark_mode_naming_the_setting():
    spark = settings.load(environ={"PIPELINE_ENGINE": "spark"})
    with pytest.raises(engine.EngineError, match=r"file import .*PIPELINE_ENGINE=spark"):
        engine.require_duckdb(spark, "The file import (PIPELINE_SOURCE=files)")
    engine.require_duckdb(settings.load(environ={}), "The file import")  # DuckDB: allowed


def test_the_file_import_stages_in_its_own_duckdb_file_in_spark_mode_not_a_warehouse():
    spark = settings.load(environ={"PIPELINE_ENGINE": "spark", "PIPELINE_DATA_DIR": "/d"})
    assert str(engine.import_staging(spark)) == "/d/spark/import.duckdb"
    assert engine.import_staging(spark) != spark.warehouse


def test_spark_mode_gives_dbt_the_tables_folder_and_duckdb_mode_does_not():
    spark = settings.load(environ={"PIPELINE_ENGINE": "spark", "PIPELINE_DATA_DIR": "/d"})
    assert spark.dbt_vars()["spark_tables_dir"] == "/d/spark/tables"
    assert "spark_tables_dir" not in settings.load(environ={}).dbt_vars()


def test_spark_history_tables_keep_one_file_per_as_of_date(tmp_path):
    pytest.importorskip("pyarrow")
    from pipeline.engine.spark_tables import SparkTables

    tables = SparkTables(tmp_path, "local[1]")  # no Spark session is started for these calls
    first, second = dt.date(2026, 11, 9), dt.date(2026, 11, 24)
    for day, value in ((first, 1.0), (second, 2.0), (second, 3.0)):
        frame = pd.DataFrame({"as_of_date": [pd.Timestamp(day)], "k": [value], "note": [None]})
        tables.replace_as_of_rows("analytics", "cluster_k_curve", frame, day)
    folder = tmp_path / "tables" / "analytics" / "cluster_k_curve"
    assert sorted(p.name for p in folder.iterdir()) == [
        "as-of-2026-11-09.parquet",
        "as-of-2026-11-24.parquet",
    ]
    assert tables.previous_as_of("analytics", "cluster_k_curve", second) == first
    assert tables.previous_as_of("analytics", "cluster_k_curve", first) is None
    columns = dict(tables.table_columns("analytics", "cluster_k_curve"))
    # dates as dates, all-null columns as strings (Spark reads no Parquet null type)
    assert columns == {"as_of_date": "date32[day]", "k": "double", "note": "string"}
    assert tables.row_count("`analytics`.`cluster_k_curve`") == 2  # the re-run replaced its row


def test_a_history_table_read_back_in_the_same_connection_holds_every_row(tmp_path):
    """More than one row group (122,880 rows) into a new history table, then read in the same
    connection, as the clusters step reads every customer's cluster back: DuckDB 2.0 lost the
    rows' statistics (count 0, filters empty) when the table was created in the same transaction."""
    import duckdb

    rows = 130_000
    frame = pd.DataFrame(
        {
            "as_of_date": pd.Series(pd.Timestamp("2026-11-24"), index=range(rows)),
            "customer_code": [f"C{i}" for i in range(rows)],
        }
    )
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        tables = engine.DuckDBTables(conn)
        tables.replace_as_of_rows("analytics", "labels", frame, dt.date(2026, 11, 24))
        got = tables.query(
            "select count(*) as n, min(customer_code) as first from analytics.labels "
            "where as_of_date = ?",
            [dt.date(2026, 11, 24)],
        )
    assert (int(got["n"].iloc[0]), got["first"].iloc[0]) == (rows, "C0")
