"""Where the tables live and how data moves between them and the Python models: the one place
that knows the engine (PIPELINE_ENGINE).

The assets and ``pipeline.analytics`` call the same functions on both engines; they read and
write tables through a table store opened here:

- ``duckdb``: ``DuckDBTables``, over the run's DuckDB warehouse file (``pipeline.warehouse``).
- ``spark``: ``SparkTables``, over Parquet folders under ``<data_dir>/spark`` (the tables dbt-spark
  builds and the ones Python writes), through a Spark session in the run's process.

A step that only exists for DuckDB asks ``require_duckdb`` first, so Spark mode fails with a
clear message instead of falling back to the DuckDB file.

The file import (PIPELINE_SOURCE=files) reads, validates and stages the files with DuckDB on
both engines (``import_connection``): on Spark in a staging file of its own, whose raw tables
are then written to Spark's tables as Parquet (``SparkTables.copy_raw_from``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pipeline.engine.duckdb_tables import DuckDBTables
from pipeline.engine.errors import EngineError

__all__ = [
    "DuckDBTables",
    "EngineError",
    "failures_database",
    "import_connection",
    "open_tables",
    "require_duckdb",
    "is_spark",
]


def is_spark(current) -> bool:
    return current.engine.engine == "spark"


def failures_database(current):
    """The DuckDB file of ``ops.run_failures``: the warehouse; on Spark, which has none, a file
    of its own beside the import's staging file, on the machine that runs the job (as the
    Dagster instance is)."""
    return current.paths.spark / "failures.duckdb" if is_spark(current) else current.warehouse


def require_duckdb(current, what: str) -> None:
    """Refuse a DuckDB-only step in Spark mode, naming it and the setting."""
    if is_spark(current):
        raise EngineError(
            f"{what} runs on DuckDB only; it is not available with PIPELINE_ENGINE=spark "
            "(set PIPELINE_ENGINE=duckdb, or see the README's 'Running on Spark')"
        )


@contextmanager
def open_tables(current, duckdb_resource) -> Iterator[object]:
    """The run's table store: DuckDB's connection (lock conflicts become a step retry) or the
    Spark session's Parquet tables."""
    if is_spark(current):
        from pipeline.engine.spark_tables import SparkTables

        yield SparkTables.for_settings(current)
        return
    from pipeline.retry import retry_on_duckdb_lock

    with retry_on_duckdb_lock(), duckdb_resource.get_connection() as conn:
        yield DuckDBTables(conn)


@contextmanager
def import_connection(current, duckdb_resource) -> Iterator[object]:
    """The DuckDB connection the file import works in: the warehouse's on DuckDB; on Spark, the
    import's staging file ``<data_dir>/spark/import.duckdb`` (the load log, the staged rows,
    the quarantine: what lets the next refresh skip files it has loaded), never a warehouse."""
    from pipeline.retry import retry_on_duckdb_lock

    if is_spark(current):
        import duckdb

        current.paths.spark.mkdir(parents=True, exist_ok=True)
        with retry_on_duckdb_lock(), duckdb.connect(str(import_staging(current))) as conn:
            # a connection setting (not accepted in connect's config): no bars in the run's log
            conn.execute("set enable_progress_bar = false")
            yield conn
        return
    with retry_on_duckdb_lock(), duckdb_resource.get_connection() as conn:
        yield conn


def import_staging(current):
    """Spark mode's import staging file."""
    return current.paths.spark / "import.duckdb"
