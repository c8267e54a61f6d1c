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


def _blocks(n_blocks: int, rows: int, fail_at: int | None = None):
    for i in range(n_blocks):
        if i == fail_at:
            raise RuntimeError("block failed")
        codes = [f"C{j}" for j in range(i * rows, (i + 1) * rows)]
        yield pd.DataFrame(
            {
                "customer_code": pd.Series(codes, dtype="str"),
                "order_date": pd.Series(pd.Timestamp("2026-11-24"), index=range(rows)),
                "n": range(i * rows, (i + 1) * rows),
            }
        )


def test_a_table_in_blocks_loads_as_the_whole_frame_would(tmp_path):
    """The simulator hands its large tables over block by block: the table holds the blocks'
    rows in order, with the types the whole frame gets, next to tables given whole."""
    import duckdb

    whole = pd.concat(list(_blocks(3, 1000)), ignore_index=True)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        tables = engine.DuckDBTables(conn)
        counts = tables.replace_tables("raw", {"blocks": _blocks(3, 1000), "whole": whole})
        assert counts == {"blocks": 3000, "whole": 3000}
        assert tables.table_columns("raw", "blocks") == tables.table_columns("raw", "whole")
        got = conn.execute("select * from raw.blocks order by rowid").df()
        assert tables.row_count("raw.blocks") == 3000
        assert tables.query("select table_name from duckdb_tables() order by 1")[
            "table_name"
        ].tolist() == ["blocks", "whole"]
    pd.testing.assert_frame_equal(got, whole, check_dtype=False)


def test_frames_scanned_as_arrow_load_as_pandas_frames_do(tmp_path):
    """The raw load hands DuckDB Arrow tables (faster); a frame with ``object`` columns is
    scanned by DuckDB's pandas reader. Both give the same types, values and missing values."""
    import duckdb

    frame = pd.DataFrame(
        {
            "code": pd.Series(["A1", None, "C3"], dtype="str"),
            "n": [1, 2, 3],
            "amount": [1.5, float("nan"), 2.25],
            "day": pd.to_datetime(["2026-11-24", "2026-11-25", None]),
            "flag": [True, False, True],
        }
    )
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        tables = engine.DuckDBTables(conn)
        tables.replace_tables("raw", {"arrow": frame, "objects": frame.astype({"code": object})})
        assert tables.table_columns("raw", "arrow") == tables.table_columns("raw", "objects")
        rows = {
            name: conn.execute(f"select * from raw.{name} order by n").fetchall()
            for name in ("arrow", "objects")
        }
    assert rows["arrow"] == rows["objects"]
    assert rows["arrow"][1][0] is None and rows["arrow"][2][3] is None


def test_a_failing_block_leaves_the_previous_tables_in_place(tmp_path):
    import duckdb

    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        tables = engine.DuckDBTables(conn)
        tables.replace_tables("raw", {"blocks": _blocks(2, 10), "whole": next(_blocks(1, 5))})
        with pytest.raises(RuntimeError, match="block failed"):
            tables.replace_tables(
                "raw", {"whole": next(_blocks(1, 7)), "blocks": _blocks(3, 100, fail_at=2)}
            )
        assert (tables.row_count("raw.blocks"), tables.row_count("raw.whole")) == (20, 5)
        names = tables.query("select table_name from duckdb_tables() order by 1")
        assert names["table_name"].tolist() == ["blocks", "whole"]  # no staging table left
        tables.replace_tables("raw", {"blocks": _blocks(3, 100)})  # the next load replaces
        assert tables.row_count("raw.blocks") == 300


def test_spark_writes_a_table_in_blocks_as_one_file(tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from pipeline.engine.spark_tables import SparkTables

    tables = SparkTables(tmp_path, "local[1]")  # no Spark session is started for this call
    assert tables.replace_tables("raw", {"blocks": _blocks(3, 10)}) == {"blocks": 30}
    (part,) = (tmp_path / "tables" / "raw" / "blocks").iterdir()
    got = pq.read_table(part).to_pandas()
    assert got["customer_code"].tolist() == [f"C{j}" for j in range(30)]
