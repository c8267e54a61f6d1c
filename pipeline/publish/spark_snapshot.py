"""The BI serving snapshot of a Spark refresh (PIPELINE_ENGINE=spark): the same folder layout,
manifest and atomic swap as ``snapshot.publish``, built from the marts' Parquet tables.

    <serve_dir>/builds/<build_id>/parquet/<mart>.parquet   one file per mart, written by Spark
    <serve_dir>/builds/<build_id>/customer_analytics.duckdb  views marts.<mart> over those files,
                                                             and the snapshot_manifest table
    <serve_dir>/builds/<build_id>/manifest.json

BI tools and the API open the DuckDB file read-only exactly as they open a DuckDB refresh's
snapshot: the marts are views instead of tables, with the same schema, names and columns. The
views name their Parquet files by absolute path, so a build folder must not move.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Collection, Mapping
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from pipeline import warehouse
from pipeline.engine.errors import EngineError
from pipeline.publish import snapshot


def _write_mart(tables, table: str, columns: list[str], as_of: dt.date, target: Path) -> int:
    """One mart as one Parquet file, rows sorted on every column (identical refreshes give
    identical files); history marts only up to the as-of date, as in the DuckDB snapshot."""
    from pyspark.sql import functions as F

    frame = tables.frame(snapshot.PUBLISHED_SCHEMA, table).select(*[f"`{c}`" for c in columns])
    if "as_of_date" in columns:
        frame = frame.where(F.col("as_of_date") <= F.lit(as_of))
    staged = target.with_name(f".{target.stem}.spark")
    frame.orderBy(*[f"`{c}`" for c in columns]).coalesce(1).write.mode("overwrite").parquet(
        str(staged)
    )
    (part,) = staged.glob("part-*.parquet")
    os.replace(part, target)
    shutil.rmtree(staged)
    return pq.ParquetFile(target).metadata.num_rows


def publish(
    tables,
    serve_dir: Path,
    as_of: dt.date,
    run_id: str,
    version: str,
    marts: Mapping[str, Collection[str]],
    keep_builds: int = 3,
) -> snapshot.Manifest:
    """Build a snapshot of the published marts from the Spark tables and swap it in (a backfill
    of a past as-of date is built, not promoted), through ``snapshot.publish_build`` as
    ``snapshot.publish`` does for DuckDB."""

    def export(staging: Path) -> dict[str, int]:
        counts = {}
        for table, hidden in sorted(marts.items()):
            if not tables.table_exists(snapshot.PUBLISHED_SCHEMA, table):
                # never a snapshot silently short of a mart BI reads
                raise EngineError(
                    f"marts.{table} is published but has no Parquet table on Spark "
                    f"({tables.location(snapshot.PUBLISHED_SCHEMA, table)}): "
                    "materialize it as a table (a view has no files)"
                )
            columns = [
                name
                for name, _ in tables.table_columns(snapshot.PUBLISHED_SCHEMA, table)
                if name not in set(hidden)
            ]
            counts[table] = _write_mart(
                tables, table, columns, as_of, staging / "parquet" / f"{table}.parquet"
            )
        return counts

    def views(final: Path, counts: dict[str, int]) -> None:
        # views bind their files when created: only now are the files at their final path
        with duckdb.connect(str(final / snapshot.SNAPSHOT_FILE)) as conn:
            conn.execute(f"create schema {snapshot.PUBLISHED_SCHEMA}")
            for table in counts:
                path = warehouse.quote_literal(str(final / "parquet" / f"{table}.parquet"))
                conn.execute(
                    f"create view {warehouse.qualified(snapshot.PUBLISHED_SCHEMA, table)} as "
                    f"select * from read_parquet({path})"
                )

    return snapshot.publish_build(
        serve_dir, as_of, run_id, version, export, keep_builds=keep_builds, finish=views
    )
