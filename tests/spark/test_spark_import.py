"""The file import in Spark mode (PIPELINE_SOURCE=files, PIPELINE_ENGINE=spark): the same files
give the same raw tables as on DuckDB, written as Parquet where Spark reads them, with the load
log in the import's own staging file and no DuckDB warehouse. The import itself starts no Spark
(DuckDB stages and copies the files), so this is quick; the dbt build on such tables is what
test_spark_refresh.py covers."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

# the spark extra's (SparkTables writes with it): `make test` collects this module without it
pads = pytest.importorskip("pyarrow.dataset")

from pipeline import settings  # noqa: E402
from pipeline.defs.assets.raw import IMPORT_TABLES, RAW_TABLES, imported_raw_data  # noqa: E402
from pipeline.defs.resources import PipelineSettings  # noqa: E402
from pipeline.engine.spark_tables import SparkTables  # noqa: E402
from tests.spark.test_spark_equivalence import pytestmark  # noqa: E402, F401  (skips without Spark)
from tests.test_own_data import import_settings, transactions  # noqa: E402

AS_OF = dt.date(2026, 11, 24)


def _import(root, engine: str, import_dir, monkeypatch) -> settings.Settings:
    for name, value in {
        "PIPELINE_DATA_DIR": str(root / engine),
        "PIPELINE_ENGINE": engine,
        **import_settings(import_dir),
    }.items():
        monkeypatch.setenv(name, value)
    current = settings.load(as_of=AS_OF)
    result = dg.materialize(
        [imported_raw_data],
        resources={
            "settings": PipelineSettings(as_of=AS_OF.isoformat()),
            "duckdb": DuckDBResource(database=str(current.warehouse)),
        },
    )
    assert result.success
    return current


def test_spark_import_writes_the_raw_tables_duckdb_loads_as_parquet(tmp_path, monkeypatch):
    import_dir = tmp_path / "import"
    import_dir.mkdir()
    frame = transactions(1, range(0, 300))
    frame.to_csv(import_dir / "transactions_2026_10.csv", index=False)
    bad = frame.head(3).assign(total="not a number")  # quarantined, on both engines
    bad.to_csv(import_dir / "transactions_2026_11.csv", index=False)

    on_duckdb = _import(tmp_path, "duckdb", import_dir, monkeypatch)
    # an earlier synthetic Spark run's truth in the same data folder: imported data has none
    truth = tmp_path / "spark" / "spark" / "tables" / "truth" / "customers"
    truth.mkdir(parents=True)
    on_spark = _import(tmp_path, "spark", import_dir, monkeypatch)
    assert not truth.exists()

    assert not on_spark.paths.warehouse.exists()
    tables = SparkTables(on_spark.paths.spark, "local[1]")  # reads files only: no Spark session
    with duckdb.connect(str(on_duckdb.warehouse), read_only=True) as conn:
        for table in [*RAW_TABLES, *IMPORT_TABLES]:
            columns = [c for c in conn.execute(f"select * from raw.{table} limit 0").df().columns]
            # what differs by nature: when each refresh loaded the file
            columns = [c for c in columns if c != "loaded_at"]
            expected = (
                conn.execute(f"select {', '.join(columns)} from raw.{table}")
                .df()
                .sort_values(columns, ignore_index=True)
            )
            files = str(tables.location("raw", table) / "*.parquet")
            got = (
                conn.execute(f"select {', '.join(columns)} from read_parquet(?)", [files])
                .df()
                .sort_values(columns, ignore_index=True)
            )
            assert len(got) == len(expected), table
            assert got.astype(str).equals(expected.astype(str)), table
        (quarantined,) = conn.execute("select count(*) from raw.quarantine").fetchone()
    assert quarantined == len(bad)
    # a second refresh finds the files in the staging file's load log: nothing loaded twice
    again = _import(tmp_path, "spark", import_dir, monkeypatch)
    lines = pads.dataset(str(tables.location("raw", "order_lines")), format="parquet")
    assert lines.count_rows() == len(frame)
    with duckdb.connect(str(again.paths.spark / "import.duckdb"), read_only=True) as conn:
        assert conn.execute("select count(*) from raw.import_files").fetchone() == (2,)
